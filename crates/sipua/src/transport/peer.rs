//! Connections to peers other than the PBX (a call dialled straight to `sip:x@host;transport=tls`
//! on a stream transport): dialled by us like the PBX flow, so they get our framing, timeout,
//! TLS verification and error text, instead of rsipstack's own dial (which for TLS trusts no
//! CA at all). The peer keeps the connection alive; it lives until either side closes it.

use super::counters::TransportCounters;
use super::dial::{dial, DialTarget, Wire};
use super::locator::Locator;
use super::stream::{spawn_stream, Inbound, StreamSetup};
use super::tls::TlsClient;
use crate::config::TransportKind;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::SipAddr;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Dials peers for the endpoint's TCP or TLS transport.
pub(crate) struct PeerDialer {
    pub kind: TransportKind,
    pub bind_ip: IpAddr,
    pub connect_timeout: Duration,
    pub tls: Option<TlsClient>,
    /// Looks the host up on `dnsServers` (A/AAAA: the URI gives the port or its default).
    pub locator: Arc<Locator>,
    pub counters: Arc<TransportCounters>,
    pub inbound: Inbound,
    pub cancel: CancellationToken,
}

impl PeerDialer {
    /// Where a request to `uri` must be dialled by us: a `tcp`/`tls` target (by its
    /// `;transport=`, else our transport), as `(host, port)`; `None` for UDP targets. A `sips:`
    /// URI is TLS whatever its `;transport=` says (RFC 5630 §3.1.3): never plain TCP.
    pub(crate) fn target_of(&self, uri: &rsipstack::sip::Uri) -> Option<(String, u16)> {
        use rsipstack::sip::uri::{ParamsExt, Scheme};
        use rsipstack::sip::Transport;
        let wanted = match uri.transport() {
            _ if uri.scheme == Some(Scheme::Sips) => TransportKind::Tls,
            Some(Transport::Tcp) => TransportKind::Tcp,
            Some(Transport::Tls) => TransportKind::Tls,
            Some(_) => return None,
            None => self.kind,
        };
        if wanted != self.kind {
            return None;
        }
        let default_port = if self.kind == TransportKind::Tls {
            5061
        } else {
            5060
        };
        let host = uri.host_with_port.host.to_string();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri
            .host_with_port
            .port
            .as_ref()
            .map(|p| p.value())
            .unwrap_or(default_port);
        Some((host, port))
    }

    /// Dials `host:port` and registers the connection with the stack; the address returned is
    /// the key the stack finds it under (use it as the request's destination).
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
        sip: &EndpointInnerRef,
    ) -> Result<SipAddr, String> {
        let target = DialTarget {
            kind: self.kind,
            host: host.to_string(),
            port,
            port_given: true,
            locator: Some(self.locator.clone()),
            bind_ip: self.bind_ip,
            connect_timeout: self.connect_timeout,
            tls: self.tls.clone(),
            ws_url: None,
            max_message: self.inbound.max_message,
        };
        let d = dial(&target).await.map_err(|e| e.message)?;
        let setup = StreamSetup {
            transport: self.kind.sip_transport(),
            local: d.local,
            remote: d.remote,
            keepalive: None,
            counters: self.counters.clone(),
            inbound: self.inbound.clone(),
            cancel: self.cancel.clone(),
        };
        let Wire::Bytes(io) = d.wire else {
            return Err("a WebSocket peer is reached through its server only".into());
        };
        let flow = spawn_stream(io, setup, &sip.transport_layer)
            .await
            .map_err(|e| e.to_string())?;
        Ok(flow.remote.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialer(kind: TransportKind) -> PeerDialer {
        PeerDialer {
            kind,
            bind_ip: "127.0.0.1".parse().unwrap(),
            connect_timeout: Duration::from_secs(1),
            tls: None,
            locator: Arc::new(Locator::new(
                &[],
                vec![kind.sip_transport()],
                "127.0.0.1:0".parse().unwrap(),
                Default::default(),
                Arc::default(),
            )),
            counters: Arc::default(),
            inbound: Inbound {
                admission: Arc::default(),
                max_message: crate::transport::framing::MAX_MESSAGE,
            },
            cancel: CancellationToken::new(),
        }
    }

    fn target(d: &PeerDialer, uri: &str) -> Option<(String, u16)> {
        d.target_of(&rsipstack::sip::Uri::try_from(uri).unwrap())
    }

    #[test]
    fn targets_follow_the_uri_transport_and_sips_means_tls() {
        let tcp = dialer(TransportKind::Tcp);
        assert_eq!(
            target(&tcp, "sip:a@10.0.0.1"),
            Some(("10.0.0.1".into(), 5060))
        );
        assert_eq!(
            target(&tcp, "sip:a@h:5070;transport=tcp"),
            Some(("h".into(), 5070))
        );
        assert_eq!(target(&tcp, "sip:a@h;transport=udp"), None);
        assert_eq!(
            target(&tcp, "sips:a@h;transport=tcp"),
            None,
            "sips is never plain TCP"
        );
        let tls = dialer(TransportKind::Tls);
        assert_eq!(
            target(&tls, "sips:a@h;transport=tcp"),
            Some(("h".into(), 5061))
        );
        assert_eq!(target(&tls, "sip:a@[::1]:5071"), Some(("::1".into(), 5071)));
        assert_eq!(target(&tls, "sip:a@h;transport=tcp"), None);
    }
}
