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
                        let to = sendable(socket.local_addr()?, from)?;
                        if socket.send_to(resp.as_bytes(), to).await.is_ok() {
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
