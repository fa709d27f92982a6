//! The SIP UDP socket, wrapped so that bad datagrams are dealt with before the SIP stack sees
//! them (by [`crate::sip::guard`]): rsipstack alone would drop them silently, after logging the
//! raw bytes at debug level. STUN responses to our binding requests share the socket (the
//! NAT mapping is per socket) and are taken out before the guard, which would count them as
//! malformed SIP.

use super::admission::{self, Admission, Screened};
use super::counters::TransportCounters;
use super::family::{sendable, unmapped};
use super::icmp::{self, Unreachable};
use super::stun::{self, StunError, TransactionId};
use crate::sip::guard::{bad_request_for, classify, reply_for, Verdict, MAX_DATAGRAM};
use crate::sip::normalize::normalize;
use crate::sip::trace::{self, Direction};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Mutex};

/// A tokio UDP socket that filters what rsipstack's receive loop gets.
pub(crate) struct GuardedUdpSocket {
    /// Taken out by [`GuardedUdpSocket::close`]: rsipstack keeps its transport alive as long as
    /// the endpoint object lives, but the port must be free as soon as `stop()` returns.
    socket: std::sync::RwLock<Option<Arc<tokio::net::UdpSocket>>>,
    /// Receive buffer larger than any datagram, so truncation is detected rather than parsed.
    scratch: Mutex<Vec<u8>>,
    counters: Arc<TransportCounters>,
    /// Who may open dialogs, and how fast unknown sources may send.
    admission: Arc<Admission>,
    /// `maxMessageSize` for datagrams.
    max_message: usize,
    /// Where the ICMP errors the socket reports go (RFC 3263 failover).
    unreachable: Unreachable,
    /// Our STUN transactions in flight, by id: the receive loop hands their responses over.
    stun_waiters: std::sync::Mutex<HashMap<TransactionId, oneshot::Sender<Vec<u8>>>>,
    /// The endpoint's span (current at creation): the stack's receive loop runs outside it,
    /// and the SIP trace records must still tell whose socket it is.
    span: tracing::Span,
}

impl GuardedUdpSocket {
    pub(crate) fn new(
        socket: tokio::net::UdpSocket,
        counters: Arc<TransportCounters>,
        admission: Arc<Admission>,
        max_message: usize,
    ) -> Self {
        icmp::enable(&socket);
        Self {
            socket: std::sync::RwLock::new(Some(Arc::new(socket))),
            scratch: Mutex::new(vec![0u8; 65536]),
            counters,
            admission,
            max_message: max_message.min(MAX_DATAGRAM),
            unreachable: Unreachable::default(),
            stun_waiters: std::sync::Mutex::new(HashMap::new()),
            span: tracing::Span::current(),
        }
    }

    /// One STUN binding transaction from the SIP socket (the receive loop must be running):
    /// the public address and port the server saw, within `total`.
    pub(crate) async fn stun_binding(
        &self,
        server: SocketAddr,
        total: Duration,
    ) -> Result<SocketAddr, StunError> {
        let id = stun::new_transaction_id();
        let (tx, mut rx) = oneshot::channel();
        if let Ok(mut w) = self.stun_waiters.lock() {
            w.insert(id, tx);
        }
        let request = stun::binding_request(&id);
        let mut result = Err(StunError::Timeout);
        for wait in stun::retransmit_waits(total) {
            if let Err(e) = self.send_raw(&request, server).await {
                result = Err(StunError::Io(format!(
                    "cannot send to STUN server {server}: {e}"
                )));
                break;
            }
            if let Ok(answer) = tokio::time::timeout(wait, &mut rx).await {
                result = match answer {
                    Ok(packet) => stun::parse_binding_response(&packet),
                    Err(_) => Err(StunError::Io("SIP socket closed".into())),
                };
                break;
            }
        }
        if let Ok(mut w) = self.stun_waiters.lock() {
            w.remove(&id);
        }
        result
    }

    /// Sends bytes that are not SIP messages (keep-alives, STUN) from the SIP socket.
    pub(crate) async fn send_raw(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.socket()?.send_to(bytes, to).await
    }

    /// Hands a STUN datagram to the transaction waiting for it; false when none is (a stray
    /// or late response, dropped).
    fn deliver_stun(&self, packet: &[u8]) -> bool {
        let waiter =
            stun::transaction_id(packet).and_then(|id| self.stun_waiters.lock().ok()?.remove(&id));
        match waiter {
            Some(tx) => tx.send(packet.to_vec()).is_ok(),
            None => false,
        }
    }

    /// The destinations this socket learns are unreachable.
    pub(crate) fn unreachable(&self) -> &Unreachable {
        &self.unreachable
    }

    /// Sends the guard's answer to a datagram; never fails the receive loop (an error there
    /// would end the stack's), only says whether it went out.
    async fn answer(&self, socket: &tokio::net::UdpSocket, from: SocketAddr, resp: &str) -> bool {
        let to = socket.local_addr().and_then(|l| sendable(l, from));
        match to {
            Ok(to) => {
                self.trace(Direction::Sent, to, resp.as_bytes());
                socket.send_to(resp.as_bytes(), to).await.is_ok()
            }
            Err(_) => false,
        }
    }

    fn socket(&self) -> std::io::Result<Arc<tokio::net::UdpSocket>> {
        self.socket
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotConnected, "SIP socket closed")
            })
    }

    fn trace(&self, direction: Direction, remote: SocketAddr, bytes: &[u8]) {
        let trace = || trace::message(direction, "udp", remote, bytes);
        // A send from one of our tasks (a call's) is in its span already; the stack's receive
        // loop is in none.
        if tracing::Span::current().is_none() {
            self.span.in_scope(trace)
        } else {
            trace()
        }
    }

    /// Whether a datagram the guard passed may reach the stack; a refused one is answered
    /// `403` (statelessly, untraced) or dropped, and counted.
    async fn admitted(
        &self,
        socket: &tokio::net::UdpSocket,
        packet: &[u8],
        from: SocketAddr,
    ) -> bool {
        let reply = match self.admission.screen(packet, from, &self.counters) {
            Screened::Pass => return true,
            Screened::Dropped => return false,
            Screened::Forbidden(reply) => reply,
        };
        if let Ok(to) = socket.local_addr().and_then(|l| sendable(l, from)) {
            if socket.send_to(reply.as_bytes(), to).await.is_ok() {
                Admission::forbidden_sent(&self.counters, from);
            }
        }
        false
    }

    /// Drops our handle on the socket; it closes once the receive loop (cancelled by the
    /// endpoint's shutdown) lets go of its clone.
    pub(crate) fn close(&self) {
        if let Ok(mut s) = self.socket.write() {
            s.take();
        }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let socket = self.socket()?;
        let mut scratch = self.scratch.lock().await;
        loop {
            let (len, from) = match socket.recv_from(&mut scratch).await {
                Ok(v) => v,
                Err(e) => {
                    // An ICMP error for an earlier datagram: say for whom, and go on reading.
                    icmp::drain(&socket, &self.unreachable);
                    if icmp::is_icmp_error(&e) {
                        continue;
                    }
                    return Err(e.into());
                }
            };
            // An IPv4 peer of a dual-stack socket: the stack and its Via see plain IPv4.
            let from = unmapped(from);
            let packet = &scratch[..len];
            if stun::is_stun(packet) {
                if !self.deliver_stun(packet) {
                    tracing::debug!(src = %from, len, "dropped a STUN message nobody waits for");
                }
                continue;
            }
            if len > self.max_message {
                // counted, not logged: a flood of large datagrams must not flood the log
                self.counters.oversized.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match classify(packet, buf.len().min(self.max_message)) {
                Verdict::Pass if !self.admitted(&socket, packet, from).await => {}
                Verdict::Pass => {
                    // what rsipstack cannot read, rewritten (never longer than what was checked)
                    let rewritten = normalize(packet).filter(|n| n.len() <= buf.len());
                    let packet = rewritten.as_deref().unwrap_or(packet);
                    self.trace(Direction::Received, from, packet);
                    buf[..packet.len()].copy_from_slice(packet);
                    return Ok((packet.len(), from));
                }
                Verdict::Drop(why) => {
                    let n = self.counters.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                    // the 1st, 10th, 100th...: garbage sprayed at the port is not a log per packet
                    if admission::worth_logging(n) {
                        tracing::warn!(src = %from, len, reason = why, total = n, "dropped malformed SIP datagram");
                    }
                    if let Some(resp) = bad_request_for(packet, why) {
                        if self.answer(&socket, from, &resp).await {
                            self.counters
                                .bad_request_sent
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Verdict::Refuse(refusal) => {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(src = %from, code = refusal.code, "refused a request");
                    if let Some(resp) = reply_for(packet, &refusal) {
                        self.answer(&socket, from, &resp).await;
                    }
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        let socket = self.socket()?;
        let to = sendable(socket.local_addr()?, addr)?;
        self.trace(Direction::Sent, to, buf);
        Ok(socket.send_to(buf, to).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket()?.local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::platform::net::UdpSocket as _;

    #[tokio::test]
    async fn stun_responses_bypass_the_guard_and_reach_their_transaction() {
        let sip = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let counters = Arc::new(TransportCounters::default());
        let guarded = Arc::new(GuardedUdpSocket::new(
            sip,
            counters.clone(),
            Arc::default(),
            MAX_DATAGRAM,
        ));
        let ours = guarded.local_addr().unwrap();
        // the SIP stack's receive loop
        let reader = guarded.clone();
        let got_sip = tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let (len, _) = reader.recv_from(&mut buf).await.unwrap();
            buf.truncate(len);
            buf
        });
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        let mapped: SocketAddr = "198.51.100.4:31000".parse().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 100];
            let (len, from) = server.recv_from(&mut buf).await.unwrap();
            // a stray STUN response first (another id), then the answer, then SIP
            let mut stray = buf[..len].to_vec();
            stray[8] ^= 0xff;
            let stray = crate::transport::stun::tests::success_response(&stray, mapped);
            server.send_to(&stray, from).await.unwrap();
            let answer = crate::transport::stun::tests::success_response(&buf[..len], mapped);
            server.send_to(&answer, from).await.unwrap();
            server.send_to(b"\r\n\r\n", from).await.unwrap();
        });
        let public = guarded
            .stun_binding(server_addr, Duration::from_millis(800))
            .await;
        assert_eq!(public, Ok(mapped));
        assert_eq!(
            got_sip.await.unwrap(),
            b"\r\n\r\n",
            "SIP still reaches the stack"
        );
        assert_eq!(
            counters.malformed.load(Ordering::Relaxed),
            0,
            "STUN is not malformed SIP"
        );
        assert!(guarded.stun_waiters.lock().unwrap().is_empty());
        assert_ne!(ours.port(), 0);
    }

    #[tokio::test]
    async fn a_dual_stack_socket_shows_ipv4_peers_as_ipv4_and_answers_them() {
        let std = super::super::family::bind_udp("[::]:0".parse().unwrap()).unwrap();
        std.set_nonblocking(true).unwrap();
        let port = std.local_addr().unwrap().port();
        let socket = tokio::net::UdpSocket::from_std(std).unwrap();
        let guarded = GuardedUdpSocket::new(socket, Arc::default(), Arc::default(), MAX_DATAGRAM);
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        peer.send_to(b"\r\n\r\n", ("127.0.0.1", port))
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (len, from) = guarded.recv_from(&mut buf).await.unwrap();
        // what the stack sees and writes into Via received: the peer's plain IPv4 address
        assert_eq!((len, from), (4, peer.local_addr().unwrap()));
        guarded.send_to(b"pong", from).await.unwrap();
        let (len, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], b"pong");
    }
}
