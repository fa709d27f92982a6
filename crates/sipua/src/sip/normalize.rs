//! Rewrites the header values rsipstack 0.7.14 cannot read although RFC 3261 allows them, before
//! the stack sees the message: folded lines (§7.3.1) and linear whitespace around `;`, `=` (and
//! `/` in Via) in the address and Via headers (§25.1 SEMI/EQUAL/SLASH = SWS x SWS). rsipstack
//! reads `;  tag = x` as no tag ("from tags missing") and drops RFC 4475 §3.1.1.1 (wsinv).
//! Also what it cannot take although other RFCs have us accept it: RFC 2543's tagless From
//! ([`rfc2543`]) and RFC 3261's own ABNF's three-colon IPv6 reference (RFC 5118 §4.10).
//! Pure: the same message with those values written compactly; the body is untouched, so
//! Content-Length stays right. Upstream: rsipstack's header-parameter parser should skip SWS.

use super::quoted::quoting;
use super::rfc2543;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Headers whose parameters rsipstack splits on the bare separators (long and compact names).
const REWRITTEN: &[&str] = &["from", "f", "to", "t", "via", "v", "contact", "m"];

/// The rewritten message, `None` when nothing needed rewriting (the common case: no copy).
pub(crate) fn normalize(packet: &[u8]) -> Option<Vec<u8>> {
    let split = packet.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&packet[..split]).ok()?;
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) && is_rewritten(last) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => lines.push(line.to_string()),
        }
    }
    for (i, line) in lines.iter_mut().enumerate() {
        if i > 0 && is_rewritten(line) {
            let (name, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let via = matches!(name.trim().to_ascii_lowercase().as_str(), "via" | "v");
            *line = format!("{}: {}", name.trim(), compact(value.trim(), via));
        }
        if line.contains(":::") {
            *line = two_colons(line);
        }
    }
    rfc2543::add_from_tag(&mut lines);
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&packet[split..]);
    (out != packet).then_some(out)
}

fn is_rewritten(line: &str) -> bool {
    !line.starts_with([' ', '\t'])
        && line
            .split_once(':')
            .is_some_and(|(name, _)| REWRITTEN.contains(&name.trim().to_ascii_lowercase().as_str()))
}

/// Drops whitespace next to the separators outside quoted strings.
fn compact(value: &str, via: bool) -> String {
    let is_sep = |c: char| c == ';' || c == '=' || (via && c == '/');
    let mut out = String::with_capacity(value.len());
    let mut chars = quoting(value).peekable();
    while let Some((c, quoted)) = chars.next() {
        if quoted || !c.is_whitespace() {
            out.push(c);
            continue;
        }
        // whitespace before a separator, or a run of it: dropped / collapsed to one space
        while chars.next_if(|&(n, q)| !q && n.is_whitespace()).is_some() {}
        if chars.peek().is_some_and(|&(n, q)| !q && is_sep(n)) || out.ends_with(is_sep) {
            continue;
        }
        out.push(' ');
    }
    out
}

/// `[h:h:::a.b.c.d]` written `[h:h::a.b.c.d]`: RFC 3261 §25.1's `IPv6address`, taken from the
/// obsoleted RFC 2373, derives three colons before an embedded IPv4 address, which RFC 4291
/// (and rsipstack, and `std`) reject. RFC 5118 §4.10 says "an implementation must tolerate both
/// of the above constructs", so we accept it and read the one address both spell. Only that
/// position is rewritten, and only when the result is an IPv6 address: `[::::1]` or a `:::`
/// without an IPv4 tail stays, and is refused as it was.
fn two_colons(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        let fixed = inner.split_once(":::").and_then(|(head, v4)| {
            let two = format!("{head}::{v4}");
            (v4.parse::<Ipv4Addr>().is_ok() && two.parse::<Ipv6Addr>().is_ok()).then_some(two)
        });
        out.push_str(&rest[..=open]);
        out.push_str(fixed.as_deref().unwrap_or(inner));
        out.push(']');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaced_and_folded_parameters_are_written_compactly() {
        let msg = "INVITE sip:a@b SIP/2.0\r\nTO :\r\n sip:a@b ;   tag    = 19n\r\nfrom   : \"J \\\\\\\"\"  <sip:j@e>\r\n  ;\r\n  tag = 98\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390\r\nSubject: a ; b\r\n\r\nbody ; x = y";
        let out = String::from_utf8(normalize(msg.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            "INVITE sip:a@b SIP/2.0\r\nTO: sip:a@b;tag=19n\r\nfrom: \"J \\\\\\\"\" <sip:j@e>;tag=98\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=390\r\nSubject: a ; b\r\n\r\nbody ; x = y"
        );
    }

    #[test]
    fn quoted_separators_stay_and_compact_messages_are_not_copied() {
        let msg = "OPTIONS sip:a@b SIP/2.0\r\nFrom: \"a ; b = c\" <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n\r\n";
        assert_eq!(normalize(msg.as_bytes()), None);
        let spaced = msg.replace(";tag=1", " ; tag=1");
        let out = String::from_utf8(normalize(spaced.as_bytes()).unwrap()).unwrap();
        assert!(
            out.contains("From: \"a ; b = c\" <sip:x@y>;tag=1\r\n"),
            "{out}"
        );
    }

    #[test]
    fn three_colons_before_an_embedded_ipv4_address_read_as_two_and_nothing_else_does() {
        assert_eq!(
            two_colons("OPTIONS sip:user@[2001:db8:::192.0.2.1] SIP/2.0"),
            "OPTIONS sip:user@[2001:db8::192.0.2.1] SIP/2.0"
        );
        for kept in [
            "To: <sip:[2001:db8:::10]>",
            "To: <sip:[::::192.0.2.1]>",
            "X: [a:::b",
        ] {
            assert_eq!(two_colons(kept), kept);
        }
    }

    #[test]
    fn rfc4475_wsinv_has_its_tags_for_rsipstack_once_rewritten() {
        use rsipstack::sip::prelude::HeadersExt;
        let raw = crate::test_support::fixture("rfc4475/wsinv");
        let tag = |bytes: &[u8]| {
            let msg = rsipstack::sip::SipMessage::try_from(bytes).unwrap();
            let rsipstack::sip::SipMessage::Request(req) = msg else {
                panic!("not a request")
            };
            let from = req.from_header().unwrap().tag().ok().flatten();
            let to = req.to_header().unwrap().tag().ok().flatten();
            (from.map(|t| t.to_string()), to.map(|t| t.to_string()))
        };
        // the gap this module closes: rsipstack reads no tags from the RFC's bytes
        assert_eq!(tag(&raw).0, None);
        let fixed = normalize(&raw).unwrap();
        assert_eq!(
            tag(&fixed),
            (Some("98asjd8".into()), Some("1918181833n".into()))
        );
        assert!(crate::sip::guard::parse_checked(&fixed).is_ok());
    }
}
