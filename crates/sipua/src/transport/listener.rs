//! The TCP (or TLS) listener on our SIP port: connections peers open to us run through the
//! same framing as the flow we dial ([`super::stream`]). The SIP stack is told of the listener's
//! address (for the Via of requests it sends over TCP) by a placeholder connection that
//! carries nothing: the real connections are registered one by one as they are accepted.

use super::counters::TransportCounters;
use super::stream::{spawn_stream, Inbound, StreamSetup};
use super::tls::accept;
use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Binds the TCP listener.
pub(crate) async fn bind_tcp(bind: SocketAddr) -> crate::Result<TcpListener> {
    TcpListener::bind(bind)
        .await
        .map_err(|e| crate::Error::Transport(format!("cannot bind TCP {bind}: {e}")))
}

/// Adds the listener's advertised address to the stack's listeners (so a Via for TCP names
/// it). rsipstack only reads the address of this entry; it logs once that it cannot serve it.
pub(crate) async fn advertise(
    layer: &TransportLayer,
    advertised: SocketAddr,
    transport: Transport,
) -> crate::Result<()> {
    let (_, nothing_in) = mpsc::unbounded_channel();
    let (nowhere, _) = mpsc::unbounded_channel();
    let addr = SipAddr {
        r#type: Some(transport),
        addr: advertised.into(),
    };
    let placeholder = ChannelConnection::create_connection(nothing_in, nowhere, addr, None).await?;
    layer.add_transport(SipConnection::Channel(placeholder));
    Ok(())
}

/// How long an accepted connection may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections until `cancel`; with `tls`, runs a TLS server handshake on each.
pub(crate) fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    sip: EndpointInnerRef,
    counters: Arc<TransportCounters>,
    inbound: Inbound,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let setup = StreamSetup {
                transport: if tls.is_some() {
                    Transport::Tls
                } else {
                    Transport::Tcp
                },
                local,
                remote,
                // The peer opened it; keeping it alive is the peer's business (RFC 5626).
                keepalive: None,
                counters: counters.clone(),
                inbound: inbound.clone(),
                cancel: cancel.clone(),
            };
            let (tls, sip) = (tls.clone(), sip.clone());
            // The handshake runs in its own task: a slow peer must not hold up the others.
            tokio::spawn(async move {
                let io: Box<dyn super::stream::Io> = match &tls {
                    None => Box::new(stream),
                    Some(config) => {
                        match accept(config, stream, &remote.to_string(), HANDSHAKE_TIMEOUT).await {
                            Ok(s) => Box::new(s),
                            Err(e) => {
                                tracing::warn!(peer = %remote, error = %e, "TLS connection refused");
                                return;
                            }
                        }
                    }
                };
                if let Err(e) = spawn_stream(io, setup, &sip.transport_layer).await {
                    tracing::warn!(peer = %remote, error = %e, "cannot serve SIP connection");
                }
            }.in_current_span());
        }
    }.in_current_span());
}
