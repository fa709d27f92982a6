//! Reading SIP messages: header values by name, reason phrases, and the header values we build.

use rsipstack::sip::{self, Header};

/// FNV-1a of a Call-ID: the tags we make up for a request (a refused one's To tag, an RFC 2543
/// From tag) are stable for it, so a retransmission gets the same.
pub(crate) fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Every header of `headers` as `(name, value)`, in order, names as written on the wire.
pub(crate) fn header_pairs(headers: &sip::Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (n, v) = text.split_once(':')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Values of every header named `name` (case-insensitive), in order.
pub(crate) fn header_values(headers: &sip::Headers, name: &str) -> Vec<String> {
    header_pairs(headers)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// The reason phrase of a response: the one on the wire, else the standard text.
pub(crate) fn reason_of(resp: &sip::Response) -> String {
    resp.reason_phrase().map(str::to_string).unwrap_or_else(|| {
        resp.status_code
            .to_string()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ')
            .to_string()
    })
}

/// The Retry-After of a 503 (RFC 3261 §20.33: seconds, maybe a comment and parameters).
pub(crate) fn retry_after_of(resp: &sip::Response) -> Option<std::time::Duration> {
    if resp.status_code.code() != 503 {
        return None;
    }
    header_values(&resp.headers, "Retry-After")
        .first()?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
        .map(std::time::Duration::from_secs)
}

/// The application's extra headers (`X-CRM-Id` and the like) as headers to send; `field` names
/// the argument in the error. A name must be a token of letters, digits, `-` and `_`, and a
/// value one line: anything else could smuggle a second header or end the header block.
pub(crate) fn extra_headers(
    field: &str,
    pairs: Vec<(String, String)>,
) -> crate::error::Result<Vec<Header>> {
    pairs
        .into_iter()
        .map(|(name, value)| {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !token {
                return Err(crate::error::Error::InvalidArgument(format!(
                    "{field}: not a header name: {name:?}"
                )));
            }
            if value.contains(['\r', '\n']) {
                return Err(crate::error::Error::InvalidArgument(format!(
                    "{field}: the value of {name} spans lines"
                )));
            }
            Ok(Header::Other(name, value))
        })
        .collect()
}

/// A `Content-Type` header with `value`.
pub(crate) fn content_type(value: &str) -> Header {
    Header::ContentType(value.into())
}

/// The SDP content type, on every offer and answer we send.
pub(crate) fn sdp_content_type() -> Header {
    content_type("application/sdp")
}

/// The final response a client transaction ends with, skipping provisional ones; `None` when
/// the transaction ended without one (Timer F / B, a transport error).
pub(crate) async fn final_response(
    tx: &mut rsipstack::transaction::transaction::Transaction,
) -> Option<sip::Response> {
    while let Some(msg) = tx.receive().await {
        if let sip::SipMessage::Response(resp) = msg {
            if resp.status_code.kind() != sip::StatusCodeKind::Provisional {
                return Some(resp);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_headers_refuse_what_would_break_the_message() {
        let ok = extra_headers("headers", vec![("X-CRM-Id".into(), "42".into())]).unwrap();
        assert_eq!(ok[0].to_string(), "X-CRM-Id: 42");
        let e = extra_headers("headers", vec![("X CRM".into(), "1".into())]).unwrap_err();
        assert!(e.to_string().contains("headers: not a header name"), "{e}");
        let e = extra_headers("headers", vec![("X-A".into(), "1\r\nBYE".into())]).unwrap_err();
        assert!(e.to_string().contains("X-A spans lines"), "{e}");
    }

    #[test]
    fn headers_by_name_ignore_case_and_keep_order() {
        let msg = sip::SipMessage::try_from(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"a\"\r\nwww-authenticate: Digest realm=\"b\"\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let sip::SipMessage::Response(resp) = msg else {
            panic!("a response")
        };
        assert_eq!(
            header_values(&resp.headers, "WWW-Authenticate"),
            ["Digest realm=\"a\"", "Digest realm=\"b\""]
        );
        assert!(header_pairs(&resp.headers).contains(&("Call-ID".into(), "c".into())));
        assert_eq!(reason_of(&resp), "Unauthorized");
        assert_eq!(retry_after_of(&resp), None);
        let busy = sip::SipMessage::try_from(
            "SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nRetry-After: 120 (maintenance);duration=60\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let sip::SipMessage::Response(busy) = busy else {
            panic!("a response")
        };
        assert_eq!(
            retry_after_of(&busy),
            Some(std::time::Duration::from_secs(120))
        );
    }
}
