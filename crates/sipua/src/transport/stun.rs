//! STUN (RFC 5389) binding requests: what public address and port a NAT gives one of our UDP
//! sockets. Only the client side of a plain Binding transaction (no authentication, no
//! FINGERPRINT: servers accept it without, RFC 5389 §7.1), so a small codec of our own rather
//! than a STUN library with its crypto stack. The codec is pure; [`binding`] runs one
//! transaction on a socket we read ourselves (an RTP port before its session starts); the SIP
//! socket's is run by [`super::GuardedUdpSocket::stun_binding`], whose receive loop hands
//! STUN datagrams back by transaction id.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The fixed cookie of RFC 5389 messages (bytes 4-7), which tells them from RFC 3489 ones and
/// from SIP and RTP on a shared socket.
const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// The pre-standard code point some older servers still use for XOR-MAPPED-ADDRESS.
const ATTR_XOR_MAPPED_ADDRESS_OLD: u16 = 0x8020;

/// The 96-bit transaction id that pairs a response with its request.
pub(crate) type TransactionId = [u8; 12];

/// Why a binding transaction gave no address.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StunError {
    /// Not a well-formed STUN message, or not a Binding response.
    Malformed(&'static str),
    /// The server answered with an error response (code, reason).
    Refused(u16, String),
    /// The success response carried no mapped address.
    NoAddress,
    /// No answer within the time given.
    Timeout,
    /// The server's name did not resolve, or the socket failed.
    Io(String),
}

impl std::fmt::Display for StunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed STUN response ({why})"),
            Self::Refused(code, reason) => write!(f, "STUN error response {code} {reason}"),
            Self::NoAddress => write!(f, "STUN response without a mapped address"),
            Self::Timeout => write!(f, "no STUN response"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Whether a datagram is a STUN message (RFC 5389 §6, RFC 7983 demultiplexing): the two top
/// bits zero, the magic cookie, and a length that matches. SIP starts with a letter or CRLF,
/// RTP with version bits 10, so neither passes.
pub(crate) fn is_stun(packet: &[u8]) -> bool {
    packet.len() >= HEADER_LEN
        && packet[0] & 0xC0 == 0
        && u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]) == MAGIC_COOKIE
        && usize::from(u16::from_be_bytes([packet[2], packet[3]])) + HEADER_LEN == packet.len()
}

/// A fresh random transaction id.
pub(crate) fn new_transaction_id() -> TransactionId {
    use rand::RngExt;
    rand::rng().random()
}

/// A Binding request without attributes.
pub(crate) fn binding_request(id: &TransactionId) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // length 0: bytes 2-3 stay zero
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(id);
    out
}

/// The transaction id of a STUN message (check [`is_stun`] first).
pub(crate) fn transaction_id(packet: &[u8]) -> Option<TransactionId> {
    packet.get(8..20)?.try_into().ok()
}

/// The mapped address of a Binding success response: XOR-MAPPED-ADDRESS, else (older
/// servers) MAPPED-ADDRESS. An error response gives its code and reason.
pub(crate) fn parse_binding_response(packet: &[u8]) -> Result<SocketAddr, StunError> {
    if !is_stun(packet) {
        return Err(StunError::Malformed("not a STUN message"));
    }
    let kind = u16::from_be_bytes([packet[0], packet[1]]);
    let id = transaction_id(packet).ok_or(StunError::Malformed("short header"))?;
    let mut mapped = None;
    let mut xor_mapped = None;
    let mut error = None;
    let mut at = HEADER_LEN;
    while at + 4 <= packet.len() {
        let attr = u16::from_be_bytes([packet[at], packet[at + 1]]);
        let len = usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]]));
        let value = packet
            .get(at + 4..at + 4 + len)
            .ok_or(StunError::Malformed("attribute overruns the message"))?;
        match attr {
            ATTR_XOR_MAPPED_ADDRESS | ATTR_XOR_MAPPED_ADDRESS_OLD => {
                xor_mapped = xor_mapped.or(address(value, Some(&id)))
            }
            ATTR_MAPPED_ADDRESS => mapped = mapped.or(address(value, None)),
            ATTR_ERROR_CODE if value.len() >= 4 => {
                let code = u16::from(value[2] & 0x07) * 100 + u16::from(value[3]);
                error = Some((code, String::from_utf8_lossy(&value[4..]).into_owned()));
            }
            _ => {}
        }
        // attributes are padded to 4 bytes
        at += 4 + len.div_ceil(4) * 4;
    }
    match kind {
        BINDING_SUCCESS => xor_mapped.or(mapped).ok_or(StunError::NoAddress),
        BINDING_ERROR => {
            let (code, reason) = error.unwrap_or((0, String::new()));
            Err(StunError::Refused(code, reason))
        }
        _ => Err(StunError::Malformed("not a Binding response")),
    }
}

/// A (XOR-)MAPPED-ADDRESS value: reserved byte, family (1 IPv4, 2 IPv6), port, address. The
/// XOR form masks the port with the cookie's top half and the address with cookie + id.
fn address(value: &[u8], xor_id: Option<&TransactionId>) -> Option<SocketAddr> {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    if let Some(id) = xor_id {
        mask[4..].copy_from_slice(id);
    } else {
        mask = [0u8; 16];
    }
    let port = u16::from_be_bytes([value.get(2)? ^ mask[0], value.get(3)? ^ mask[1]]);
    let ip = match (value.get(1)?, value.len()) {
        (1, 8) => {
            let b: [u8; 4] = std::array::from_fn(|i| value[4 + i] ^ mask[i]);
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (2, 20) => {
            let b: [u8; 16] = std::array::from_fn(|i| value[4 + i] ^ mask[i]);
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// When to (re)send a request within `total`: at 0, then after 100, 200, 400 ... ms (RFC 5389
/// §7.2.1 doubling, with a shorter first RTO: calls wait on it), the last wait ending at
/// `total`. Returned as the waits after each send.
pub(crate) fn retransmit_waits(total: Duration) -> Vec<Duration> {
    let mut waits = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut rto = Duration::from_millis(100);
    while elapsed < total {
        let wait = rto.min(total - elapsed);
        waits.push(wait);
        elapsed += wait;
        rto *= 2;
    }
    waits
}

/// The STUN server's address of the family of `local` (our socket's), by DNS when a name.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    local: SocketAddr,
) -> Result<SocketAddr, StunError> {
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| StunError::Io(format!("cannot resolve {host}: {e}")))?;
    found
        .into_iter()
        .find(|a| a.is_ipv4() == local.is_ipv4())
        .ok_or_else(|| {
            StunError::Io(format!(
                "{host} has no {} address",
                if local.is_ipv4() { "IPv4" } else { "IPv6" }
            ))
        })
}

/// One Binding transaction on a socket nobody else reads yet: the mapping the server saw, or
/// why not, within `total`. Datagrams that are not its response are ignored.
pub(crate) async fn binding(
    socket: &tokio::net::UdpSocket,
    server: SocketAddr,
    total: Duration,
) -> Result<SocketAddr, StunError> {
    let id = new_transaction_id();
    let request = binding_request(&id);
    let mut buf = [0u8; 1500];
    for wait in retransmit_waits(total) {
        socket
            .send_to(&request, server)
            .await
            .map_err(|e| StunError::Io(format!("cannot send to STUN server {server}: {e}")))?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
            let Ok(Ok((len, from))) = received else {
                break; // this wait is over (or a transient error): retransmit
            };
            let packet = &buf[..len];
            if from == server && is_stun(packet) && transaction_id(packet) == Some(id) {
                return parse_binding_response(packet);
            }
        }
    }
    Err(StunError::Timeout)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Binding success response to `request` reporting `mapped` (XOR-MAPPED-ADDRESS), as a
    /// server builds it: for the codec tests and the SIP socket's demultiplexing test.
    pub(crate) fn success_response(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
        let id: TransactionId = request[8..20].try_into().unwrap();
        let mut mask = [0u8; 16];
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&id);
        let mut value = vec![0u8, 0, 0, 0];
        let port = mapped.port().to_be_bytes();
        value[2] = port[0] ^ mask[0];
        value[3] = port[1] ^ mask[1];
        match mapped.ip() {
            IpAddr::V4(ip) => {
                value[1] = 1;
                value.extend(ip.octets().iter().zip(mask).map(|(b, m)| b ^ m));
            }
            IpAddr::V6(ip) => {
                value[1] = 2;
                value.extend(ip.octets().iter().zip(mask).map(|(b, m)| b ^ m));
            }
        }
        let mut out = Vec::new();
        out.extend(BINDING_SUCCESS.to_be_bytes());
        out.extend(((4 + value.len()) as u16).to_be_bytes());
        out.extend(MAGIC_COOKIE.to_be_bytes());
        out.extend(id);
        out.extend(ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
        out.extend((value.len() as u16).to_be_bytes());
        out.extend(value);
        out
    }

    #[test]
    fn request_is_a_bare_binding_request() {
        let id = [7u8; 12];
        let req = binding_request(&id);
        assert_eq!(&req[..8], &[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42]);
        assert_eq!(&req[8..], &id);
        assert!(is_stun(&req));
        assert_eq!(transaction_id(&req), Some(id));
        assert_ne!(new_transaction_id(), new_transaction_id());
    }

    #[test]
    fn xor_mapped_address_round_trips_v4_and_v6() {
        for mapped in ["203.0.113.9:40123", "[2001:db8::7]:5060"] {
            let mapped: SocketAddr = mapped.parse().unwrap();
            let req = binding_request(&new_transaction_id());
            let resp = success_response(&req, mapped);
            assert!(is_stun(&resp));
            assert_eq!(parse_binding_response(&resp), Ok(mapped));
        }
    }

    #[test]
    fn a_real_server_answer_decodes() {
        // stund 0.97's answer to 127.0.0.1:39360 (MAPPED, SOURCE, CHANGED, XOR-MAPPED, SERVER)
        let hex = "010100442112a44282643003c08fb4c664fc5ca1\
                   0001000800 0199c07f000001\
                   0004000800 0187dd7f000001\
                   0005000800 0187e77f000002\
                   0020000800 01b8d25e12a443\
                   802200 10 566f766964612e6f726720302e393700";
        let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            parse_binding_response(&bytes),
            Ok("127.0.0.1:39360".parse().unwrap())
        );
    }

    #[test]
    fn mapped_address_alone_is_used_by_old_servers() {
        let mut msg = binding_request(&[1; 12]).to_vec();
        msg[..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
        msg[3] = 12;
        msg.extend([0, 1, 0, 8, 0, 1, 0x13, 0x88, 192, 0, 2, 1]);
        assert_eq!(
            parse_binding_response(&msg),
            Ok("192.0.2.1:5000".parse().unwrap())
        );
    }

    #[test]
    fn error_response_and_garbage_are_reported_not_panicked() {
        let mut msg = binding_request(&[1; 12]).to_vec();
        msg[..2].copy_from_slice(&BINDING_ERROR.to_be_bytes());
        let reason = b"Try Later";
        let mut value = vec![0, 0, 4, 0];
        value.extend(reason);
        let padded = value.len().div_ceil(4) * 4;
        msg[3] = (4 + padded) as u8;
        msg.extend([0, 9, 0, value.len() as u8]);
        msg.extend(&value);
        msg.resize(HEADER_LEN + 4 + padded, 0);
        assert_eq!(
            parse_binding_response(&msg),
            Err(StunError::Refused(400, "Try Later".into()))
        );
        // SIP, RTP and a CRLF keep-alive are not STUN
        assert!(!is_stun(b"REGISTER sip:x SIP/2.0\r\n\r\n"));
        assert!(!is_stun(&[
            0x80, 0, 0, 1, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]));
        assert!(!is_stun(b"\r\n\r\n"));
        // a length that lies, and an attribute that overruns
        let mut lying = binding_request(&[1; 12]).to_vec();
        lying[3] = 8;
        assert!(!is_stun(&lying));
        lying.extend([0, 0x20, 0, 40, 0, 0, 0, 0]);
        lying[..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
        assert_eq!(
            parse_binding_response(&lying),
            Err(StunError::Malformed("attribute overruns the message"))
        );
        let alphabet: Vec<u8> = (0..=255).collect();
        for mut bytes in crate::test_support::byte_soup(0x5eed_57a2, 200, &alphabet) {
            if bytes.len() >= HEADER_LEN {
                bytes[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                let len = (bytes.len() - HEADER_LEN) as u16;
                bytes[2..4].copy_from_slice(&len.to_be_bytes());
                bytes[0] &= 0x3F;
            }
            let _ = parse_binding_response(&bytes);
        }
    }

    #[test]
    fn retransmissions_double_and_stop_at_the_total() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            retransmit_waits(Duration::from_millis(800)),
            ms(&[100, 200, 400, 100])
        );
        assert_eq!(retransmit_waits(Duration::from_millis(50)), ms(&[50]));
        assert!(retransmit_waits(Duration::ZERO).is_empty());
    }

    #[tokio::test]
    async fn binding_on_a_socket_against_a_responder() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 100];
            let mut seen = 0;
            while let Ok((len, from)) = server.recv_from(&mut buf).await {
                seen += 1;
                if seen < 2 {
                    continue; // lose the first request: the client must retransmit
                }
                let _ = server.send_to(b"noise", from).await;
                let _ = server
                    .send_to(&success_response(&buf[..len], from), from)
                    .await;
            }
        });
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let got = binding(&client, server_addr, Duration::from_millis(900)).await;
        assert_eq!(got, Ok(client.local_addr().unwrap()));
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let start = std::time::Instant::now();
        let got = binding(
            &client,
            silent.local_addr().unwrap(),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(got, Err(StunError::Timeout));
        assert!(start.elapsed() < Duration::from_millis(600));
    }
}
