//! IPv4 and IPv6 on one socket. A socket bound to `::` serves both families (dual stack):
//! IPv4 peers then appear as IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`), and some
//! systems (Windows, macOS) refuse to send to a plain IPv4 address from it. So the SIP and RTP
//! sockets are bound here with dual stack switched on explicitly (Windows defaults to IPv6
//! only), addresses coming in are unmapped (the SIP stack, Via `received` and symmetric RTP
//! see `192.0.2.1`), and IPv4 targets are mapped on the way out of an IPv6 socket.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// A blocking UDP socket bound to `addr`; on `::`, one that also takes IPv4.
pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    if !(addr.is_ipv6() && addr.ip().is_unspecified()) {
        return UdpSocket::bind(addr);
    }
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_only_v6(false)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// `addr` with an IPv4-mapped IPv6 address turned back into IPv4.
pub(crate) fn unmapped(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// `to` as a socket bound to `local` can send to it: IPv4 mapped into IPv6 on a dual-stack
/// socket. A family the socket cannot reach is an error that says so (rsipstack logs it with
/// its "send failed"), rather than the kernel's bare "invalid argument".
pub(crate) fn sendable(local: SocketAddr, to: SocketAddr) -> io::Result<SocketAddr> {
    match (local, to.ip()) {
        (SocketAddr::V6(l), IpAddr::V4(v4)) if l.ip().is_unspecified() => {
            Ok(SocketAddr::new(v4.to_ipv6_mapped().into(), to.port()))
        }
        (SocketAddr::V6(_), IpAddr::V4(_)) | (SocketAddr::V4(_), IpAddr::V6(_)) => {
            Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "cannot send to {to} from {local}: other address family; bind '::' for IPv4 and IPv6"
                ),
            ))
        }
        _ => Ok(to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_ipv6_socket_talks_to_ipv4_peers_with_plain_ipv4_addresses() {
        let ours = bind_udp("[::]:0".parse().unwrap()).unwrap();
        let port = ours.local_addr().unwrap().port();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        ours.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        peer.send_to(b"ping", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        let (_, from) = ours.recv_from(&mut buf).unwrap();
        assert!(from.ip().to_string().starts_with("::ffff:"), "{from}");
        let from = unmapped(from);
        assert_eq!(from, peer.local_addr().unwrap());
        ours.send_to(b"pong", sendable(ours.local_addr().unwrap(), from).unwrap())
            .unwrap();
        let (len, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"pong");
    }

    #[test]
    fn specific_addresses_keep_their_family() {
        let v6: SocketAddr = "[::1]:5060".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let any6: SocketAddr = "[::]:5060".parse().unwrap();
        assert_eq!(unmapped(v6), v6);
        assert_eq!(unmapped("[::ffff:127.0.0.1]:5060".parse().unwrap()), v4);
        assert_eq!(sendable(v4, v4).unwrap(), v4);
        assert_eq!(sendable(v6, v6).unwrap(), v6);
        assert_eq!(sendable(any6, v6).unwrap(), v6);
        assert_eq!(
            sendable(any6, v4).unwrap(),
            "[::ffff:127.0.0.1]:5060".parse::<SocketAddr>().unwrap()
        );
        for (local, to) in [(v6, v4), (v4, v6)] {
            let e = sendable(local, to).unwrap_err().to_string();
            assert!(e.contains(&to.to_string()) && e.contains("'::'"), "{e}");
        }
        let s = bind_udp("[::1]:0".parse().unwrap()).unwrap();
        assert!(s.local_addr().unwrap().is_ipv6());
    }
}
