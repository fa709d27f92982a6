//! The SIP UDP socket, wrapped so that bad datagrams are dealt with before the SIP stack sees
//! them (by [`crate::sip::guard`]): rsipstack alone would drop them silently, after logging the
//! raw bytes at debug level.

use super::family::{sendable, unmapped};
use crate::sip::guard::{bad_request_for, classify, Verdict, MAX_DATAGRAM};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Counters of what the guard dropped.
#[derive(Debug, Default)]
pub(crate) struct TransportCounters {
    pub malformed: AtomicU64,
    pub bad_request_sent: AtomicU64,
}

/// A tokio UDP socket that filters what rsipstack's receive loop gets.
pub(crate) struct GuardedUdpSocket {
    /// Taken out by [`GuardedUdpSocket::close`]: rsipstack keeps its transport alive as long as
    /// the endpoint object lives, but the port must be free as soon as `stop()` returns.
    socket: std::sync::RwLock<Option<Arc<tokio::net::UdpSocket>>>,
    /// Receive buffer larger than any datagram, so truncation is detected rather than parsed.
    scratch: Mutex<Vec<u8>>,
    counters: Arc<TransportCounters>,
}

impl GuardedUdpSocket {
    pub(crate) fn new(socket: tokio::net::UdpSocket, counters: Arc<TransportCounters>) -> Self {
        Self {
            socket: std::sync::RwLock::new(Some(Arc::new(socket))),
            scratch: Mutex::new(vec![0u8; 65536]),
            counters,
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
            let (len, from) = socket.recv_from(&mut scratch).await?;
            // An IPv4 peer of a dual-stack socket: the stack and its Via see plain IPv4.
            let from = unmapped(from);
            let packet = &scratch[..len];
            match classify(packet, buf.len().min(MAX_DATAGRAM)) {
                Verdict::Pass => {
                    buf[..len].copy_from_slice(packet);
                    return Ok((len, from));
                }
                Verdict::Drop(why) => {
                    self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(src = %from, len, reason = why, "dropped malformed SIP datagram");
                    if let Some(resp) = bad_request_for(packet, why) {
                        // never `?` here: an error would end the stack's receive loop
                        let to = socket.local_addr().and_then(|l| sendable(l, from));
                        let sent = match to {
                            Ok(to) => socket.send_to(resp.as_bytes(), to).await.is_ok(),
                            Err(_) => false,
                        };
                        if sent {
                            self.counters
                                .bad_request_sent
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        let socket = self.socket()?;
        let to = sendable(socket.local_addr()?, addr)?;
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
    async fn a_dual_stack_socket_shows_ipv4_peers_as_ipv4_and_answers_them() {
        let std = super::super::family::bind_udp("[::]:0".parse().unwrap()).unwrap();
        std.set_nonblocking(true).unwrap();
        let port = std.local_addr().unwrap().port();
        let socket = tokio::net::UdpSocket::from_std(std).unwrap();
        let guarded = GuardedUdpSocket::new(socket, Arc::default());
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
