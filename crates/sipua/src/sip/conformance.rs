//! The RFC 3261 §8.2 checks a UAS makes before it processes a request, applied to the raw bytes
//! in front of rsipstack's parser (which has none of them, and rejects some of these messages
//! outright so that no answer would ever go out): RFC 4475 §3.1.2/§3.3 name the answers.
//! Pure: bytes in, the response's status and extra headers out.

use super::quoted::quoting;

/// Methods we implement (also our `Allow`).
pub(crate) const ALLOW: &str =
    "INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY";
/// Methods other SIP extensions define that we do not serve: 405, not 501.
const KNOWN_ELSEWHERE: &[&str] = &["REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"];
/// Option tags we can honour in `Require`.
const SUPPORTED: &[&str] = &["100rel", "timer", "replaces"];
/// Request-URI schemes we route.
const SCHEMES: &[&str] = &["sip", "sips", "tel"];
/// Body types a session request of ours can carry.
const SESSION_BODIES: &[&str] = &[
    "application/sdp",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/signed",
];

/// A request the UAS refuses: the status line's code and reason, and headers the RFC asks for.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub headers: Vec<String>,
}

fn refuse(code: u16, reason: &'static str) -> Option<Refusal> {
    Some(Refusal {
        code,
        reason,
        headers: Vec::new(),
    })
}

/// The header block, unfolded (RFC 3261 §7.3.1 continuation lines), as (lower-case long name,
/// value) pairs; the body is what follows the blank line.
pub(crate) fn headers(text: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => (&text[..i], &text[i + 4..]),
        None => (text, ""),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((long_name(name.trim()), value.trim().to_string()));
        }
    }
    (out, body)
}

fn long_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        _ => return lower,
    }
    .to_string()
}

fn values<'a>(hs: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    hs.iter()
        .filter(move |(n, _)| n == name)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The answer RFC 3261/4475 names for a request we must refuse, `None` for one to process
/// (or for a response, or bytes that are not a request line at all: the guard's parse decides).
pub(crate) fn check(packet: &[u8]) -> Option<Refusal> {
    let text = String::from_utf8_lossy(packet);
    let start = text.split("\r\n").next()?;
    let parts: Vec<&str> = start.split(' ').collect();
    let last = start.trim_end().rsplit(' ').next().unwrap_or("");
    if start.starts_with("SIP/") || !is_token(parts[0]) || !last.starts_with("SIP/") {
        return None;
    }
    // Exactly one SP between the three elements, none after (RFC 4475 §3.1.2.8-10).
    if parts.len() != 3 {
        return refuse(400, "Malformed Request-Line");
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if version != "SIP/2.0" {
        return refuse(505, "Version Not Supported");
    }
    let (hs, body) = headers(&text);
    // in octets of the datagram, not of its lossy text (RFC 4475 mpart01's binary part)
    let body_len = packet
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| packet.len() - i - 4);
    // CSeq's method must be the request's (RFC 4475 §3.1.2.17/18).
    let cseq: Vec<&str> = hs
        .iter()
        .filter(|(n, _)| n == "cseq")
        .map(|(_, v)| v.as_str())
        .collect();
    match cseq.as_slice() {
        [one] => match one.split_whitespace().collect::<Vec<_>>().as_slice() {
            [num, m] if *m == method && num.parse::<u32>().is_ok() => {}
            _ => return refuse(400, "CSeq Does Not Match Request"),
        },
        _ => return refuse(400, "Bad CSeq"),
    }
    // One Content-Length, not negative, not past the datagram (RFC 4475 §3.1.2.2/3, §3.3.9).
    let lengths: Vec<&str> = values(&hs, "content-length").collect();
    if let Some(first) = lengths.first() {
        if lengths.iter().any(|l| l != first) {
            return refuse(400, "Conflicting Content-Length");
        }
        match first.parse::<usize>() {
            Ok(n) if n <= body_len => {}
            _ => return refuse(400, "Bad Content-Length"),
        }
    }
    // Empty Via parameters or list elements (RFC 4475 §3.1.2.1): rsipstack takes them.
    let separators = |v: &str| {
        let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        v.contains(";;") || v.contains(";,") || v.contains(",,") || v.ends_with([';', ','])
    };
    if hs.iter().any(|(n, v)| n == "via" && separators(v)) {
        return refuse(400, "Empty Via Parameter");
    }
    // A quoted string left open (RFC 4475 §3.1.2.6), whitespace inside `< >` (§3.1.2.15) or a
    // bare URI with headers (§3.1.2.14): rsipstack reads them as some other address than sent.
    if hs
        .iter()
        .any(|(n, v)| ADDRESS_HEADERS.contains(&n.as_str()) && !well_formed_address(v))
    {
        return refuse(400, "Malformed Address");
    }
    if method == "ACK" {
        return None;
    }
    let scheme = uri.split(':').next().unwrap_or("").to_ascii_lowercase();
    // No <> around it, no escaped headers in it (RFC 4475 §3.1.2.7, §3.1.2.11).
    if !uri.contains(':')
        || uri.starts_with('<')
        || uri
            .rsplit('@')
            .next()
            .is_some_and(|host| host.contains('?'))
    {
        return refuse(400, "Bad Request-URI");
    }
    // An IPv6 host must be in brackets (RFC 5118 §4.10); rsipstack takes it bare.
    let host = uri.rsplit('@').next().unwrap_or("");
    let host = host.strip_prefix(&format!("{scheme}:")).unwrap_or(host);
    let host = host.split([';', '?']).next().unwrap_or("");
    if !host.starts_with('[') && host.matches(':').count() > 1 {
        return refuse(400, "Bad Request-URI Host");
    }
    if !SCHEMES.contains(&scheme.as_str()) {
        return refuse(416, "Unsupported URI Scheme");
    }
    if !ALLOW.split(", ").any(|m| m == method) {
        let mut r = if KNOWN_ELSEWHERE.contains(&method) {
            refuse(405, "Method Not Allowed")?
        } else {
            refuse(501, "Not Implemented")?
        };
        r.headers.push(format!("Allow: {ALLOW}"));
        return Some(r);
    }
    let unknown: Vec<&str> = values(&hs, "require")
        .filter(|t| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    if !unknown.is_empty() {
        let mut r = refuse(420, "Bad Extension")?;
        r.headers
            .push(format!("Unsupported: {}", unknown.join(", ")));
        return Some(r);
    }
    if matches!(method, "INVITE" | "UPDATE") {
        return session_body(&hs, body);
    }
    None
}

/// Headers whose values are name-addr / addr-spec lists.
const ADDRESS_HEADERS: &[&str] = &["from", "to", "contact", "route", "record-route"];

/// Quotes balanced (a backslash escapes the next character inside them), and no whitespace
/// right after `<` or right before `>` (RFC 3261 §25.1: LAQUOT = SWS "<", RAQUOT = ">" SWS),
/// and a URI with escaped headers inside `< >` (§20: a bare addr-spec takes no `?`).
fn well_formed_address(value: &str) -> bool {
    if !value.contains('<') && value.contains('?') {
        return false;
    }
    let mut chars = quoting(value);
    let mut prev = ' ';
    for (c, quoted) in chars.by_ref() {
        if !quoted {
            match c {
                c if c.is_whitespace() && prev == '<' => return false,
                '>' if prev.is_whitespace() => return false,
                _ => {}
            }
        }
        prev = c;
    }
    !chars.unterminated()
}

/// A session request's body must be SDP we read, and its `Accept` must allow SDP for our answer.
fn session_body(hs: &[(String, String)], body: &str) -> Option<Refusal> {
    let media = |v: &str| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    if !body.is_empty() {
        let ctype = values(hs, "content-type")
            .next()
            .map(media)
            .unwrap_or_default();
        let encoded = values(hs, "content-encoding").any(|e| !e.eq_ignore_ascii_case("identity"));
        if !SESSION_BODIES.contains(&ctype.as_str()) || encoded {
            let mut r = refuse(415, "Unsupported Media Type")?;
            r.headers.push("Accept: application/sdp".into());
            if encoded {
                r.headers.push("Accept-Encoding: identity".into());
            }
            return Some(r);
        }
    }
    let accepts: Vec<String> = values(hs, "accept").map(media).collect();
    let sdp_ok = accepts.is_empty()
        || accepts
            .iter()
            .any(|a| a == "application/sdp" || a == "application/*" || a == "*/*");
    if !sdp_ok {
        let mut r = refuse(406, "Not Acceptable")?;
        r.headers.push("Accept: application/sdp".into());
        return Some(r);
    }
    None
}

#[cfg(test)]
#[path = "conformance_tests.rs"]
mod tests;
