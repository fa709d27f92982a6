//! Dialling a stream connection to a server: locate it (RFC 3263, through the endpoint's
//! locator: NAPTR/SRV/A/AAAA on `dnsServers`), connect from our bind address with a timeout to
//! each target in turn until one answers (a refused or silent target is remembered as bad for
//! a while), and run the handshakes the transport needs. Errors name the server and the cause
//! in plain words ("cannot connect to TCP 127.0.0.1:5070: connection refused").

use super::locator::Locator;
use super::resolve::{NextHop, Target};
use super::stream::Io;
use super::tls::TlsClient;
use super::websocket::{handshake, Ws};
use crate::config::TransportKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Where and how to dial.
#[derive(Clone)]
pub(crate) struct DialTarget {
    pub kind: TransportKind,
    /// The server's host as configured (a name or an IP literal, without brackets).
    pub host: String,
    pub port: u16,
    /// `port` was configured: then A/AAAA only (RFC 3263 §4.2); else NAPTR/SRV first, and
    /// `port` is the default for the transport.
    pub port_given: bool,
    /// Where names are looked up (and failed targets remembered); `None`: the system's
    /// resolver, first address only.
    pub locator: Option<Arc<Locator>>,
    /// Our bind address; connections leave from it unless it is a wildcard.
    pub bind_ip: IpAddr,
    /// Bounds the TCP connect, and the TLS handshake after it.
    pub connect_timeout: Duration,
    /// The TLS client of the TLS and WSS transports.
    pub tls: Option<TlsClient>,
    /// The URL of the WebSocket transports (its host and port are `host` and `port`).
    pub ws_url: Option<String>,
    /// `maxMessageSize`, which bounds what the WebSocket library reads.
    pub max_message: usize,
}

/// Why a dial failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialError {
    /// Names the server and the cause.
    pub message: String,
    /// The server answered but its TLS certificate or handshake was refused: retrying will
    /// not help until someone changes a certificate or the config.
    pub tls_refused: bool,
}

impl From<String> for DialError {
    fn from(message: String) -> Self {
        Self {
            message,
            tls_refused: false,
        }
    }
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl DialTarget {
    /// `host:port` as the user wrote it (the host alone when DNS picks the port), for events
    /// and errors.
    pub(crate) fn describe(&self) -> String {
        if self.port_given {
            crate::sip::uri::host_port(&self.host, self.port)
        } else {
            crate::sip::uri::bracketed(&self.host)
        }
    }
}

/// What runs on a dialled connection.
pub(crate) enum Wire {
    /// SIP framed by Content-Length (TCP, TLS).
    Bytes(Box<dyn Io>),
    /// One SIP message per WebSocket message (WS, WSS).
    WebSocket(Box<Ws>),
}

/// A connected, handshaken stream.
pub(crate) struct Dialled {
    pub wire: Wire,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Dials `target`: its located addresses in order, until one connects and completes the
/// handshakes. A TLS refusal ends the search (another address of the same server will show
/// the same certificate); the last failure is the error.
pub(crate) async fn dial(target: &DialTarget) -> Result<Dialled, DialError> {
    let mut failure = None;
    for (located, remote) in locate(target).await? {
        match dial_at(target, remote).await {
            Ok(d) => {
                if let (Some(l), Some(t)) = (&target.locator, &located) {
                    l.answered(t);
                }
                return Ok(d);
            }
            Err(e) => {
                if let (Some(l), Some(t)) = (&target.locator, &located) {
                    l.failed(t, None);
                }
                if e.tls_refused {
                    return Err(e);
                }
                failure = Some(e);
            }
        }
    }
    Err(failure.unwrap_or_else(|| format!("cannot resolve {}: no address", target.host).into()))
}

/// The addresses to try for `target`, with the locator's target each came from.
async fn locate(target: &DialTarget) -> Result<Vec<(Option<Target>, SocketAddr)>, String> {
    let Some(locator) = &target.locator else {
        return Ok(vec![(None, resolve(target).await?)]);
    };
    let hop = NextHop {
        host: target.host.trim_matches(['[', ']']).to_string(),
        port: target.port_given.then_some(target.port),
        // Without a port, NAPTR picks among the transports we have (RFC 3263 §4.1: only
        // `supported` ones are kept); with one, A/AAAA over ours.
        transport: target.port_given.then(|| target.kind.sip_transport()),
        secure: target.kind == TransportKind::Tls,
    };
    let targets = locator.locate(&hop).await.map_err(|e| e.to_string())?;
    Ok(targets
        .into_iter()
        .map(|t| (Some(t.clone()), t.addr))
        .collect())
}

/// Dials one address of `target`.
async fn dial_at(target: &DialTarget, remote: SocketAddr) -> Result<Dialled, DialError> {
    let tcp = connect(target, remote).await?;
    let local = tcp
        .local_addr()
        .map_err(|e| format!("{}: {e}", failed(target, remote)))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match &target.tls {
        None => Box::new(tcp),
        // SNI and the certificate check use the host as configured, not the address dialled.
        Some(tls) => match tls.connect(tcp, &target.host, target.connect_timeout).await {
            Ok(stream) => Box::new(stream),
            Err(e) => {
                let message = match e {
                    crate::Error::Transport(m) | crate::Error::Config(m) => m,
                    other => other.to_string(),
                };
                return Err(DialError {
                    tls_refused: !message.contains("timed out"),
                    message: format!("{}: {message}", failed(target, remote)),
                });
            }
        },
    };
    let wire = match &target.ws_url {
        None => Wire::Bytes(io),
        Some(url) => Wire::WebSocket(Box::new(
            handshake(io, url, target.connect_timeout, target.max_message)
                .await
                .map_err(|e| format!("{}: {e}", failed(target, remote)))?,
        )),
    };
    Ok(Dialled {
        wire,
        local,
        remote,
    })
}

/// "cannot connect to TCP host:port", with the address when the host is a name.
fn failed(target: &DialTarget, remote: SocketAddr) -> String {
    let name = target.describe();
    let shown = if name == remote.to_string() {
        name
    } else {
        format!("{name} ({remote})")
    };
    format!(
        "cannot connect to {} {shown}",
        target.kind.as_str().to_ascii_uppercase()
    )
}

/// The server's first address, of our bind address's family when it has one.
async fn resolve(target: &DialTarget) -> Result<SocketAddr, String> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, target.port));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, target.port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let same_family = addrs
        .iter()
        .find(|a| target.bind_ip.is_unspecified() || a.is_ipv4() == target.bind_ip.is_ipv4());
    same_family
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("cannot resolve {host}: no address"))
}

async fn connect(target: &DialTarget, remote: SocketAddr) -> Result<TcpStream, String> {
    let fail = |cause: String| format!("{}: {cause}", failed(target, remote));
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| fail(e.to_string()))?;
    if !target.bind_ip.is_unspecified() && target.bind_ip.is_ipv4() == remote.is_ipv4() {
        socket
            .bind(SocketAddr::new(target.bind_ip, 0))
            .map_err(|e| fail(format!("cannot bind {}: {e}", target.bind_ip)))?;
    }
    match tokio::time::timeout(target.connect_timeout, socket.connect(remote)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(fail(describe_io(&e))),
        Err(_) => Err(fail(format!(
            "timed out after {} ms",
            target.connect_timeout.as_millis()
        ))),
    }
}

/// An I/O error in words, without the `(os error N)` suffix.
fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        AddrNotAvailable => "address not available".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> DialTarget {
        DialTarget {
            kind: TransportKind::Tcp,
            host: host.into(),
            port,
            port_given: true,
            locator: None,
            bind_ip: "127.0.0.1".parse().unwrap(),
            connect_timeout: Duration::from_secs(2),
            tls: None,
            ws_url: None,
            max_message: crate::transport::framing::MAX_MESSAGE,
        }
    }

    #[tokio::test]
    async fn a_refused_connect_fails_at_once_naming_server_and_cause() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let err = dial(&target("127.0.0.1", port))
            .await
            .err()
            .unwrap()
            .message;
        assert_eq!(
            err,
            format!("cannot connect to TCP 127.0.0.1:{port}: connection refused")
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        let err = dial(&target("localhost", port))
            .await
            .err()
            .unwrap()
            .message;
        assert!(
            err.starts_with(&format!(
                "cannot connect to TCP localhost:{port} (127.0.0.1:{port})"
            )),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_listening_server_is_reached_from_the_bind_address() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let d = dial(&target("127.0.0.1", port)).await.unwrap();
        assert_eq!(d.remote, SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(d.local.ip(), IpAddr::from([127, 0, 0, 1]));
        let err = dial(&target("no-such-host.invalid", port))
            .await
            .err()
            .unwrap()
            .message;
        assert!(
            err.starts_with("cannot resolve no-such-host.invalid"),
            "{err}"
        );
    }
}
