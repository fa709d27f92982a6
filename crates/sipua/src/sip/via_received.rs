//! The `received` parameter of the top Via, in the one form every reader understands.
//!
//! rsipstack 0.7.14 gets IPv6 `received` wrong twice. On an inbound request whose Via sent-by
//! differs from the source, it writes `received=[[2001:db8::9]]` (its host `Display` already
//! brackets and it brackets again), and it reads `received` with a plain IP parse, so any
//! bracketed value is ignored. The first makes our responses go to the sent-by host instead of
//! the source address (RFC 3261 §18.2.2; RFC 3581 §4) and echoes a malformed Via to the peer;
//! the second hides a registrar's `received=[v6]` (RFC 5118 §4.5 lets it write brackets).
//!
//! This inspector rewrites the top Via's `received` of every message we receive, after the
//! stack added its own and before the transaction layer reads it, to the bare address
//! (RFC 3261 §25.1 `IPv6address`), which the stack's parser and the peer's both accept.

use rsipstack::sip::{Header, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;
use std::net::IpAddr;

/// Normalises the top Via's `received` parameter of received messages.
pub(crate) struct ViaReceived;

impl MessageInspector for ViaReceived {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        msg
    }

    fn after_received(&self, mut msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        let headers = match &mut msg {
            SipMessage::Request(r) => &mut r.headers,
            SipMessage::Response(r) => &mut r.headers,
        };
        if let Some(via) = headers.iter_mut().find_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        }) {
            if let Some(fixed) = normalise_received(&via.0) {
                via.0 = fixed;
            }
        }
        msg
    }
}

/// The Via value with its first value's `received` unbracketed, or `None` when there is
/// nothing to change (no `received`, already bare, or not an IP address: left as sent).
fn normalise_received(via: &str) -> Option<String> {
    // The first Via value ends at the first comma (IPv6 literals have none).
    let first_end = via.find(',').unwrap_or(via.len());
    let mut at = 0;
    while let Some(semi) = via[at..first_end].find(';') {
        let param_start = at + semi + 1;
        let param_end = via[param_start..first_end]
            .find(';')
            .map_or(first_end, |i| param_start + i);
        if let Some((name, value)) = via[param_start..param_end].split_once('=') {
            if name.trim().eq_ignore_ascii_case("received") {
                let raw = value.trim();
                let bare = raw.trim_start_matches('[').trim_end_matches(']');
                if bare == raw {
                    return None;
                }
                let ip: IpAddr = bare.parse().ok()?;
                let raw_start =
                    param_start + name.len() + 1 + (value.len() - value.trim_start().len());
                return Some(format!(
                    "{}{ip}{}",
                    &via[..raw_start],
                    &via[raw_start + raw.len()..]
                ));
            }
        }
        at = param_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::prelude::HeadersExt;
    use rsipstack::transport::connection::SipConnection;
    use std::net::SocketAddr;

    fn parse(text: &str) -> SipMessage {
        SipMessage::try_from(text.replace('\n', "\r\n").as_str()).unwrap()
    }

    /// An INVITE whose Via sent-by (a NATed or made-up address) is not where it came from.
    const INVITE: &str = "INVITE sip:7779@[::1]:5062 SIP/2.0
Via: SIP/2.0/UDP [2001:db8::9]:5999;branch=z9hG4bK1;rport
From: <sip:1000@[::1]>;tag=1
To: <sip:7779@[::1]>
Call-ID: c1
CSeq: 1 INVITE
Content-Length: 0

";

    /// Where the stack sends the responses to `msg`, as its server transaction computes it.
    fn response_target(msg: &SipMessage) -> String {
        let SipMessage::Request(req) = msg else {
            panic!("not a request")
        };
        let (_, hp) = SipConnection::parse_target_from_via(req.via_header().unwrap()).unwrap();
        hp.to_string()
    }

    #[test]
    fn the_stack_double_brackets_an_inbound_ipv6_received_and_we_repair_it() {
        let from: SocketAddr = "[::1]:40000".parse().unwrap();
        // what rsipstack's UDP receive loop does to every inbound request
        let stamped =
            SipConnection::update_msg_received(parse(INVITE), from, rsipstack::sip::Transport::Udp)
                .unwrap();
        let via = |m: &SipMessage| match m {
            SipMessage::Request(r) => r.via_header().unwrap().value().to_string(),
            SipMessage::Response(_) => unreachable!(),
        };
        // the bug: double brackets, ignored by the stack's own parser, so the 200 would go to
        // the sent-by host and the rport
        assert!(
            via(&stamped).contains("received=[[::1]]"),
            "{}",
            via(&stamped)
        );
        assert_eq!(response_target(&stamped), "[2001:db8::9]:40000");

        let fixed = ViaReceived.after_received(stamped, None);
        assert!(via(&fixed).contains(";received=::1;"), "{}", via(&fixed));
        assert_eq!(response_target(&fixed), "[::1]:40000");
    }

    #[test]
    fn a_registrars_bracketed_received_becomes_readable() {
        let ok = parse(
            "SIP/2.0 200 OK
Via: SIP/2.0/UDP [::1]:5062;branch=z9hG4bK1;received=[2001:db8::7];rport=41000
From: <sip:7779@[::1]>;tag=1
To: <sip:7779@[::1]>;tag=2
Call-ID: c2
CSeq: 1 REGISTER
Content-Length: 0

",
        );
        let target = |m: &SipMessage| match m {
            SipMessage::Response(r) => {
                SipConnection::parse_target_from_via(r.via_header().unwrap())
                    .unwrap()
                    .1
                    .to_string()
            }
            SipMessage::Request(_) => unreachable!(),
        };
        // the bug: the stack reads the sent-by host, not what the registrar saw
        assert_eq!(target(&ok), "[::1]:41000");
        let fixed = ViaReceived.after_received(ok, None);
        assert_eq!(target(&fixed), "[2001:db8::7]:41000");
    }

    #[test]
    fn other_values_are_left_as_sent() {
        let cases = [
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=192.0.2.1;rport=5",
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;received=::1",
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;received=[not-an-ip]",
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;x-received=[::2]",
        ];
        for via in cases {
            assert_eq!(normalise_received(via), None, "{via}");
        }
    }

    #[test]
    fn only_the_first_value_and_any_case_or_spacing() {
        assert_eq!(
            normalise_received("SIP/2.0/UDP h;branch=b; Received = [[::2]] ;rport=9").as_deref(),
            Some("SIP/2.0/UDP h;branch=b; Received = ::2 ;rport=9")
        );
        assert_eq!(
            normalise_received("SIP/2.0/UDP h;received=[::2],SIP/2.0/UDP g;received=[::3]")
                .as_deref(),
            Some("SIP/2.0/UDP h;received=::2,SIP/2.0/UDP g;received=[::3]")
        );
        assert_eq!(normalise_received("SIP/2.0/UDP h;received=[::3]x"), None);
        assert_eq!(normalise_received(";;;received"), None);
        assert_eq!(normalise_received(""), None);
    }

    #[test]
    fn never_panics_on_byte_soup() {
        for bytes in crate::test_support::byte_soup(7, 400, b";received=[]:, ab1") {
            let _ = normalise_received(&String::from_utf8_lossy(&bytes));
        }
    }
}
