//! Rewrites the header values rsipstack 0.7.14 cannot read although RFC 3261 allows them, before
//! the stack sees the message: folded lines (§7.3.1) and linear whitespace around `;`, `=` (and
//! `/` in Via) in the address and Via headers (§25.1 SEMI/EQUAL/SLASH = SWS x SWS). rsipstack
//! reads `;  tag = x` as no tag ("from tags missing") and drops RFC 4475 §3.1.1.1 (wsinv).
//! Pure: the same message with those values written compactly; the body is untouched, so
//! Content-Length stays right. Upstream: rsipstack's header-parameter parser should skip SWS.

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
    for line in lines.iter_mut().skip(1) {
        if is_rewritten(line) {
            let (name, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let via = matches!(name.trim().to_ascii_lowercase().as_str(), "via" | "v");
            *line = format!("{}: {}", name.trim(), compact(value.trim(), via));
        }
    }
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
    let (mut quoted, mut escaped) = (false, false);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        if c == '"' {
            quoted = true;
        }
        if c.is_whitespace() {
            // whitespace before a separator, or a run of it: dropped / collapsed to one space
            while chars.peek().is_some_and(|n| n.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_some_and(|&n| is_sep(n)) || out.ends_with(is_sep) {
                continue;
            }
            out.push(' ');
            continue;
        }
        out.push(c);
    }
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
    fn rfc4475_wsinv_has_its_tags_for_rsipstack_once_rewritten() {
        use rsipstack::sip::prelude::HeadersExt;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/rfc4475/wsinv.dat"
        );
        let raw = std::fs::read(path).unwrap();
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
