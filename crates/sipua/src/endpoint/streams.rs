//! Setting up an endpoint's stream transports: the TCP (or TLS) listener on the SIP port, the
//! flow to the PBX, and the dialer of other peers, from the config.

use crate::config::{EndpointConfig, TransportKind};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::transport::{
    advertise, bind_tcp, serve_tcp, tls_server_config, Addressing, Admission, DialTarget,
    FlowSetup, Inbound, Locator, PbxFlow, PeerDialer, StreamTransports, TlsClient,
    TransportCounters,
};
use rsipstack::transaction::endpoint::Endpoint as Stack;
use rsipstack::transport::TransportLayer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a connect (and a TLS or WebSocket handshake) may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound stream listener, served once the stack is built.
pub(super) struct StreamListener {
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    pub local: SocketAddr,
}

/// Binds the listener on the SIP port: TCP on the TCP transport, TLS on the TLS one when it
/// has a certificate to serve; the stack learns its address for the Via of its requests.
pub(super) async fn bind_listener(
    config: &EndpointConfig,
    addressing: &Addressing,
    layer: &TransportLayer,
) -> Result<Option<StreamListener>> {
    let tls = match config.transport {
        TransportKind::Tls if config.tls.cert_file.is_some() => {
            Some(tls_server_config(&config.tls)?)
        }
        TransportKind::Tcp => None,
        _ => return Ok(None),
    };
    if config.transport == TransportKind::Tls && tls.is_none() {
        return Ok(None);
    }
    let listener = bind_tcp(addressing.local).await?;
    let local = listener.local_addr()?;
    let advertised = SocketAddr::new(addressing.advertised, local.port());
    advertise(layer, advertised, config.transport.sip_transport()).await?;
    Ok(Some(StreamListener {
        listener,
        tls,
        local,
    }))
}

/// What the stream transports share with the rest of the endpoint.
pub(super) struct StreamEnv<'a> {
    pub addressing: &'a Addressing,
    /// RFC 3263 location of the PBX and of other hosts dialled, with the bad-target memory.
    pub locator: &'a Arc<Locator>,
    pub counters: &'a Arc<TransportCounters>,
    /// The UDP socket's admission, so every transport shares its PBX addresses and buckets.
    pub admission: &'a Arc<Admission>,
    pub events: &'a mpsc::UnboundedSender<Event>,
    pub cancel: &'a CancellationToken,
}

/// Serves the listener, starts dialling the PBX and builds the peer dialer.
pub(super) fn start(
    config: &EndpointConfig,
    env: StreamEnv<'_>,
    listener: Option<StreamListener>,
    stack: &Stack,
) -> Result<StreamTransports> {
    let StreamEnv {
        addressing,
        locator,
        counters,
        admission,
        events,
        cancel,
    } = env;
    let inbound = Inbound {
        admission: admission.clone(),
        max_message: max_message(config),
    };
    if let Some(l) = listener {
        let sip = stack.inner.clone();
        serve_tcp(
            l.listener,
            l.tls,
            sip,
            counters.clone(),
            inbound.clone(),
            cancel.child_token(),
        );
    }
    let tls = match config.transport {
        TransportKind::Tls | TransportKind::Wss => Some(TlsClient::new(&config.tls)?),
        _ => None,
    };
    let peers = match config.transport {
        TransportKind::Tcp | TransportKind::Tls => Some(PeerDialer {
            kind: config.transport,
            bind_ip: addressing.local.ip(),
            connect_timeout: CONNECT_TIMEOUT,
            tls: tls.clone(),
            locator: locator.clone(),
            counters: counters.clone(),
            inbound: inbound.clone(),
            cancel: cancel.child_token(),
        }),
        _ => None,
    };
    let pbx = match (&config.server, config.transport.is_stream()) {
        (Some(server), true) => {
            let setup = FlowSetup {
                target: pbx_target(config, server, addressing, tls, locator)?,
                keepalive: config.stream_keepalive(),
                counters: counters.clone(),
                inbound,
                events: events.clone(),
                cancel: cancel.child_token(),
            };
            Some(PbxFlow::start(setup, stack.inner.clone()))
        }
        _ => None,
    };
    Ok(StreamTransports { pbx, peers })
}

/// Where the PBX flow dials: `server:serverPort`, the outbound proxy when one is configured,
/// or for WS/WSS the URL's host and port (the registrar stays `server`).
fn pbx_target(
    config: &EndpointConfig,
    server: &str,
    addressing: &Addressing,
    tls: Option<TlsClient>,
    locator: &Arc<Locator>,
) -> Result<DialTarget> {
    let ws = match config.transport {
        TransportKind::Ws | TransportKind::Wss => config
            .websocket_target()
            .transpose()
            .map_err(|e| Error::Config(format!("websocketUrl: {e}")))?,
        _ => None,
    };
    // RFC 3261 §19.1.2: 5061 for TLS, 5060 otherwise, when no port is configured.
    let default_port = match config.transport {
        TransportKind::Tls => 5061,
        _ => 5060,
    };
    let proxy = match config.outbound_proxy.as_deref().filter(|_| ws.is_none()) {
        Some(p) => Some(
            rsipstack::sip::Uri::try_from(p.trim())
                .map_err(|e| Error::Config(format!("outboundProxy: {e}")))?,
        ),
        None => None,
    };
    let (host, port, port_given) = match (&ws, &proxy) {
        (Some(url), _) => (url.host.clone(), url.port, true),
        (None, Some(uri)) => {
            let port = uri.host_with_port.port.map(u16::from);
            let host = uri.host_with_port.host.to_string();
            let host = host.trim_matches(['[', ']']).to_string();
            (host, port.unwrap_or(default_port), port.is_some())
        }
        (None, None) => (
            server.to_string(),
            config.server_port.unwrap_or(default_port),
            config.server_port.is_some(),
        ),
    };
    Ok(DialTarget {
        kind: config.transport,
        host,
        port,
        // The WebSocket URL names its port (or implies 80/443); a PBX (or proxy) without a
        // port is located by NAPTR/SRV.
        port_given,
        locator: Some(locator.clone()),
        bind_ip: addressing.local.ip(),
        connect_timeout: CONNECT_TIMEOUT,
        tls,
        ws_url: ws.map(|u| u.as_url()),
        max_message: max_message(config),
    })
}

/// `maxMessageSize` on streams: any size (a stream has no datagram bound), 65535 by default.
fn max_message(config: &EndpointConfig) -> usize {
    config
        .max_message_size
        .map_or(crate::transport::framing::MAX_MESSAGE, |m| m as usize)
}
