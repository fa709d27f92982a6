//! ICMP errors on the SIP UDP socket, attributed to the destination they were for, so that a
//! request to a UDP target that refuses (port unreachable) fails over at once instead of after
//! its silence (RFC 3261 §8.1.3.1 treats them as a 503; RFC 3263 §4.3 moves on). An unconnected
//! socket reports nothing by default; with `IP_RECVERR` the kernel queues each ICMP error with
//! the datagram's destination, read back with `MSG_ERRQUEUE`. Linux only; elsewhere a silent
//! target is still left after the failover timeout.

use std::net::SocketAddr;
use tokio::sync::broadcast;

/// Fan-out of "this destination refused or is unreachable" to the requests waiting on it.
#[derive(Clone)]
pub(crate) struct Unreachable {
    tx: broadcast::Sender<SocketAddr>,
}

impl Default for Unreachable {
    fn default() -> Self {
        // Only the newest few matter: a waiter that lags just sees its own timeout instead.
        Self {
            tx: broadcast::channel(64).0,
        }
    }
}

impl Unreachable {
    /// Receives the destinations reported from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SocketAddr> {
        self.tx.subscribe()
    }

    fn report(&self, addr: SocketAddr) {
        tracing::info!(destination = %addr, "ICMP: destination unreachable");
        // No one waiting is fine.
        let _ = self.tx.send(addr);
    }
}

/// Whether a receive error is an earlier datagram's ICMP error rather than the socket's own.
pub(crate) fn is_icmp_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | HostUnreachable | NetworkUnreachable
    )
}

/// Resolves once `addr` is reported unreachable on `rx` (never when the channel closes).
pub(crate) async fn reported(rx: &mut broadcast::Receiver<SocketAddr>, addr: SocketAddr) {
    loop {
        match rx.recv().await {
            Ok(a) if same_addr(a, addr) => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Equal, counting an IPv4-mapped IPv6 address (a dual-stack socket's view) as its IPv4.
fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    let plain = |s: SocketAddr| match s {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map_or(s, |v4| SocketAddr::from((v4, v6.port()))),
        v4 => v4,
    };
    plain(a) == plain(b)
}

#[cfg(target_os = "linux")]
mod os {
    use super::Unreachable;
    use nix::libc;
    use nix::sys::socket::{
        recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
    };
    use std::io::IoSliceMut;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    /// Asks the kernel to queue ICMP errors on `socket` (both families on an IPv6 socket).
    pub(crate) fn enable(socket: &tokio::net::UdpSocket) {
        let v6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
        let result = if v6 {
            setsockopt(socket, sockopt::Ipv6RecvErr, &true)
                .and_then(|()| setsockopt(socket, sockopt::Ipv4RecvErr, &true).or(Ok(())))
        } else {
            setsockopt(socket, sockopt::Ipv4RecvErr, &true)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "IP_RECVERR not available: UDP targets fail over by timeout only");
        }
    }

    /// Drains the socket's error queue, reporting each ICMP error's destination.
    pub(crate) fn drain(socket: &tokio::net::UdpSocket, unreachable: &Unreachable) {
        let fd = socket.as_raw_fd();
        // The queued datagram itself is of no interest: a small buffer truncates it.
        let mut payload = [0u8; 64];
        let mut control = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
        for _ in 0..64 {
            let mut iov = [IoSliceMut::new(&mut payload)];
            let Ok(msg) = recvmsg::<SockaddrStorage>(
                fd,
                &mut iov,
                Some(&mut control),
                MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
            ) else {
                return;
            };
            let icmp = msg.cmsgs().into_iter().flatten().any(|c| match c {
                ControlMessageOwned::Ipv4RecvErr(e, _) => e.ee_origin == libc::SO_EE_ORIGIN_ICMP,
                ControlMessageOwned::Ipv6RecvErr(e, _) => {
                    e.ee_origin == libc::SO_EE_ORIGIN_ICMP6
                        || e.ee_origin == libc::SO_EE_ORIGIN_ICMP
                }
                _ => false,
            });
            let destination = msg.address.as_ref().and_then(socket_addr);
            if let (true, Some(addr)) = (icmp, destination) {
                unreachable.report(addr);
            }
        }
    }

    fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = s.as_sockaddr_in() {
            return Some(SocketAddr::from(*v4));
        }
        s.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use super::Unreachable;

    pub(crate) fn enable(_: &tokio::net::UdpSocket) {}

    pub(crate) fn drain(_: &tokio::net::UdpSocket, _: &Unreachable) {}
}

pub(crate) use os::{drain, enable};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn mapped_addresses_compare_as_ipv4() {
        let v4: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5060".parse().unwrap();
        assert!(same_addr(v4, mapped));
        assert!(!same_addr(v4, "127.0.0.1:5061".parse().unwrap()));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_refused_datagram_is_reported_with_its_destination() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        enable(&socket);
        let unreachable = Unreachable::default();
        let mut rx = unreachable.subscribe();
        socket.send_to(b"OPTIONS", dead).await.unwrap();
        // The kernel's port-unreachable fails the next receive; the queue says for whom.
        let mut buf = [0u8; 16];
        let err = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .expect("an error, not silence")
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        drain(&socket, &unreachable);
        tokio::time::timeout(Duration::from_secs(1), reported(&mut rx, dead))
            .await
            .expect("the destination was reported");
    }
}
