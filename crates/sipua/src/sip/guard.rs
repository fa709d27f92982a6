//! The guard in front of the SIP parser: oversized, unparseable or incomplete messages are
//! counted, answered with `400 Bad Request` when they look enough like a request to route a
//! response, and dropped. Pure functions over bytes; the transports call them.

use super::conformance::{self, Refusal};
use super::message::stable_hash;
use super::normalize::normalize;
use rsipstack::sip::SipMessage;

/// Largest datagram we accept; rsipstack reads into an 8 KiB buffer and would truncate more.
pub(crate) const MAX_DATAGRAM: usize = 8192;

/// What the guard decided for one message.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Pass,
    Drop(&'static str),
    /// A request RFC 3261 §8.2 has us refuse (see [`conformance`]): answered, not passed on.
    Refuse(Refusal),
}

/// Decides whether a datagram goes to the stack. Keep-alives (CRLF) pass: the stack answers them.
pub(crate) fn classify(packet: &[u8], max: usize) -> Verdict {
    if packet.len() > max {
        return Verdict::Drop("oversized");
    }
    if packet.iter().all(|b| b.is_ascii_whitespace()) {
        return Verdict::Pass;
    }
    if let Some(refusal) = conformance::check(packet) {
        return Verdict::Refuse(refusal);
    }
    // what fails to parse may parse as the stack will get it, once `normalize` rewrote it
    // (RFC 5118 §4.10); only then, so that a message needing no rewrite is not copied here
    let parsed = parse_checked(packet)
        .map(drop)
        .or_else(|why| normalize(packet).map_or(Err(why), |fixed| parse_checked(&fixed).map(drop)));
    match parsed {
        Ok(_) => Verdict::Pass,
        Err(why) => Verdict::Drop(why),
    }
}

/// Parses one whole message and checks it carries what the stack needs to build a
/// transaction key (without these it errors later, after the message is accepted).
pub(crate) fn parse_checked(message: &[u8]) -> Result<SipMessage, &'static str> {
    use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
    let msg = SipMessage::try_from(message).map_err(|_| "unparseable")?;
    // Headers parse lazily: Via and CSeq are parsed here, as the transaction key will.
    let ok = msg.via_header().is_ok_and(|v| v.typed().is_ok())
        && msg.cseq_header().is_ok_and(|c| c.typed().is_ok())
        && msg.call_id_header().is_ok()
        && msg.from_header().is_ok()
        && msg.to_header().is_ok();
    if ok {
        Ok(msg)
    } else {
        Err("missing mandatory header")
    }
}

/// Builds a `400 Bad Request` for a datagram whose start line is a request and which carries the
/// headers a response needs (Via, From, To, Call-ID, CSeq), copied verbatim. `None` otherwise:
/// a response cannot be routed, so the datagram is only dropped.
pub(crate) fn bad_request_for(packet: &[u8], why: &str) -> Option<String> {
    let refusal = Refusal {
        code: 400,
        reason: "Bad Request",
        headers: vec![format!("Warning: 399 sip-native \"{why}\"")],
    };
    reply_for(packet, &refusal)
}

/// The response to a refused request, built from its own Via, From, To, Call-ID and CSeq lines
/// (with a To tag added, RFC 3261 §8.2.6.2); `None` when those are missing or for an ACK.
pub(crate) fn reply_for(packet: &[u8], refusal: &Refusal) -> Option<String> {
    let text = String::from_utf8_lossy(packet);
    let mut lines = text.split("\r\n");
    let start = lines.next()?;
    let parts: Vec<&str> = start.split_whitespace().collect();
    if parts.len() < 3 || !parts[parts.len() - 1].starts_with("SIP/") || parts[0] == "ACK" {
        return None;
    }
    let mut copied = Vec::new();
    let mut have = [false; 5];
    let mut call_id = "";
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let idx = match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => 0,
            "from" | "f" => 1,
            "to" | "t" => 2,
            "call-id" | "i" => 3,
            "cseq" => 4,
            _ => continue,
        };
        if idx == 3 {
            call_id = value.trim();
        }
        let tagless = idx == 2 && !value.to_ascii_lowercase().contains(";tag=");
        have[idx] = true;
        copied.push((line.to_string(), tagless));
    }
    if !have.iter().all(|h| *h) {
        return None;
    }
    let mut out = format!("SIP/2.0 {} {}\r\n", refusal.code, refusal.reason);
    for (line, tagless) in copied {
        out.push_str(&line);
        if tagless {
            out.push_str(&format!(";tag=g{:x}", stable_hash(call_id)));
        }
        out.push_str("\r\n");
    }
    for h in &refusal.headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: x1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn good_message_passes_and_keepalive_passes() {
        assert_eq!(classify(GOOD.as_bytes(), MAX_DATAGRAM), Verdict::Pass);
        assert_eq!(classify(b"\r\n\r\n", MAX_DATAGRAM), Verdict::Pass);
    }

    #[test]
    fn garbage_truncated_and_oversized_are_dropped() {
        assert_ne!(
            classify(b"\x00\x01garbage\xff", MAX_DATAGRAM),
            Verdict::Pass
        );
        let big = vec![b'a'; MAX_DATAGRAM + 1];
        assert_eq!(classify(&big, MAX_DATAGRAM), Verdict::Drop("oversized"));
        for cut in [10, 40, 80, 120] {
            assert_ne!(
                classify(&GOOD.as_bytes()[..cut], MAX_DATAGRAM),
                Verdict::Pass,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn bad_request_only_when_routable() {
        let broken = GOOD.replace("CSeq: 1 OPTIONS", "CSeq: 1 OPTIONS\r\nContent-Length: abc");
        let resp = bad_request_for(broken.as_bytes(), "unparseable").unwrap();
        assert!(resp.starts_with("SIP/2.0 400 Bad Request\r\n"));
        assert!(resp.contains("Call-ID: x1\r\n") && resp.contains("Via: SIP/2.0/UDP"));
        assert!(bad_request_for(b"garbage", "x").is_none());
        let no_callid = GOOD.replace("Call-ID: x1\r\n", "");
        assert!(bad_request_for(no_callid.as_bytes(), "x").is_none());
        let ack = GOOD.replace("OPTIONS sip", "ACK sip");
        assert!(bad_request_for(ack.as_bytes(), "x").is_none());
    }
}
