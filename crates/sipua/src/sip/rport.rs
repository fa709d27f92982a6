//! What a response's Via says about our public address (RFC 3581): the server writes the
//! source IP it saw as `received` (when it differs from sent-by) and the source port as
//! `rport`. Behind a NAT these are the NAT's mapping of our SIP socket, which is where the
//! registrar must send requests to reach us. Pure functions; the registration acts on them.

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self, Param};
use std::net::{IpAddr, SocketAddr};

/// The address the server saw our request come from, by the top Via of its response: `None`
/// when the server does not do RFC 3581 (no `received` and no `rport` value), or the Via
/// cannot be read.
pub(crate) fn seen_address(resp: &sip::Response) -> Option<SocketAddr> {
    let via = resp.top_via_header().ok()?.typed().ok()?;
    let mut received = None;
    let mut rport = None;
    for p in &via.params {
        match p {
            // a bracketed IPv6 `received=[2001:db8::1]` is written by some servers
            Param::Received(r) => {
                received = r.value().trim_matches(['[', ']']).parse::<IpAddr>().ok()
            }
            Param::Rport(Some(port)) => rport = Some(*port),
            _ => {}
        }
    }
    if received.is_none() && rport.is_none() {
        return None;
    }
    let sent_by = &via.uri.host_with_port;
    let ip = match received {
        Some(ip) => ip,
        None => sent_by.host.clone().try_into().ok()?,
    };
    // without rport the server answers to the sent-by port (RFC 3261 §18.2.2)
    let port = rport.unwrap_or_else(|| sent_by.port.as_ref().map(|p| p.0).unwrap_or(5060));
    Some(SocketAddr::new(ip, port))
}

/// The Contact rewrite decision (PJSIP's `contactRewriteUse`): the address to re-register
/// with when the server saw `seen` and our Contact says `current`, or `None` to keep it. A
/// seen address of another family or an unspecified one is not ours to take.
pub(crate) fn rewrite_to(
    enabled: bool,
    current: SocketAddr,
    seen: Option<SocketAddr>,
) -> Option<SocketAddr> {
    let seen = seen?;
    let usable = enabled
        && seen != current
        && seen.is_ipv4() == current.is_ipv4()
        && !seen.ip().is_unspecified()
        && seen.port() != 0;
    usable.then_some(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(via: &str) -> sip::Response {
        let text = format!(
            "SIP/2.0 401 Unauthorized\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\n\
             Call-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        match sip::SipMessage::try_from(text.as_str()).unwrap() {
            sip::SipMessage::Response(r) => r,
            _ => unreachable!(),
        }
    }

    #[test]
    fn received_and_rport_give_the_mapping() {
        let r =
            response("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport=31000;received=198.51.100.4");
        assert_eq!(
            seen_address(&r),
            Some("198.51.100.4:31000".parse().unwrap())
        );
        // only the port changed (no received: the IP matched sent-by)
        let r = response("SIP/2.0/UDP 198.51.100.4:5060;branch=z9hG4bK1;rport=31000");
        assert_eq!(
            seen_address(&r),
            Some("198.51.100.4:31000".parse().unwrap())
        );
        // received without rport: the sent-by port
        let r = response("SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK1;received=198.51.100.4");
        assert_eq!(seen_address(&r), Some("198.51.100.4:5070".parse().unwrap()));
        let r = response(
            "SIP/2.0/UDP [2001:db8::2]:5060;branch=z9hG4bK1;rport=5062;received=[2001:db8::9]",
        );
        assert_eq!(
            seen_address(&r),
            Some("[2001:db8::9]:5062".parse().unwrap())
        );
    }

    #[test]
    fn a_server_without_rfc3581_tells_nothing() {
        let r = response("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport");
        assert_eq!(seen_address(&r), None);
        let r = response("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1");
        assert_eq!(seen_address(&r), None);
        let r = response("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;received=garbage");
        assert_eq!(
            seen_address(&r),
            None,
            "sent-by without received or rport value"
        );
    }

    #[test]
    fn rewrite_only_when_enabled_and_different() {
        let current: SocketAddr = "10.0.0.2:5060".parse().unwrap();
        let public: SocketAddr = "198.51.100.4:31000".parse().unwrap();
        assert_eq!(rewrite_to(true, current, Some(public)), Some(public));
        assert_eq!(
            rewrite_to(false, current, Some(public)),
            None,
            "contactRewrite: false"
        );
        assert_eq!(
            rewrite_to(true, public, Some(public)),
            None,
            "already public"
        );
        assert_eq!(rewrite_to(true, current, None), None);
        let v6: SocketAddr = "[2001:db8::9]:5060".parse().unwrap();
        assert_eq!(rewrite_to(true, current, Some(v6)), None, "another family");
        let zero: SocketAddr = "0.0.0.0:5060".parse().unwrap();
        assert_eq!(rewrite_to(true, current, Some(zero)), None);
    }
}
