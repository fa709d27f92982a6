//! Requests from RFC 2543 elements, which send no From tag (RFC 4475 §3.4.1 inv2543: an RFC 3261
//! element must accept them; RFC 3261 §12.2.2 treats the missing tag as null).
//!
//! rsipstack 0.7.14 keys every server transaction on the From tag and drops a request without
//! one ("from tags missing", `transaction/key.rs`); a missing Via branch it handles already (its
//! key falls back to the sent-by, the §17.2.3 matching). So the request gets a From tag in front
//! of the stack ([`add_from_tag`], called by `normalize`), and the tag leaves again on the way
//! out ([`Rfc2543Tags`]): RFC 3261 §8.2.6.2 has a response's From equal the request's, and an
//! RFC 2543 client matches its responses and our in-dialog requests by the headers it sent.
//!
//! The tag is derived from the Call-ID alone: the same for the INVITE, its retransmissions, its
//! ACK, CANCEL and BYE (each maps to the same transaction and dialog), and recognisable on the
//! way out without any state. Upstream: rsipstack's `TransactionKey::from_request` should take a
//! missing From tag as empty rather than fail.

use super::message::stable_hash;
use super::quoted::quoting;
use rsipstack::sip::{Header, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

/// The From tag we give a request of `call_id` that came without one.
fn tag_for(call_id: &str) -> String {
    format!("2543-{:x}", stable_hash(call_id.trim()))
}

fn header_name(line: &str) -> String {
    let name = line.split(':').next().unwrap_or("").trim();
    name.to_ascii_lowercase()
}

/// Appends the derived tag to a request's From line that has none (`lines` are the unfolded
/// head, start line first). Responses are left alone: ours always carry our From tag.
pub(crate) fn add_from_tag(lines: &mut [String]) {
    if lines.first().is_none_or(|start| start.starts_with("SIP/")) {
        return;
    }
    let call_id = lines
        .iter()
        .skip(1)
        .find(|l| matches!(header_name(l).as_str(), "call-id" | "i"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let Some(call_id) = call_id else { return };
    let from = lines
        .iter_mut()
        .skip(1)
        .find(|l| matches!(header_name(l).as_str(), "from" | "f"));
    if let Some(from) = from {
        if !has_tag(from.split_once(':').map_or("", |(_, v)| v)) {
            from.push_str(";tag=");
            from.push_str(&tag_for(&call_id));
        }
    }
}

/// Whether a From value has a `tag` header parameter: one after the `>` of a name-addr (not a
/// URI parameter, not inside a quoted display name), or after a bare addr-spec (RFC 3261 §20.10:
/// its parameters are the header's).
fn has_tag(value: &str) -> bool {
    let params = value
        .char_indices()
        .zip(quoting(value))
        .filter(|(_, (c, quoted))| !quoted && *c == '>')
        .last()
        .map_or(0, |((i, _), _)| i + 1);
    value[params..].split(';').skip(1).any(|p| {
        p.split('=')
            .next()
            .is_some_and(|name| name.trim().eq_ignore_ascii_case("tag"))
    })
}

/// `value` without the tag [`add_from_tag`] gave this Call-ID, `None` when it has not that tag.
fn untagged(value: &str, call_id: &str) -> Option<String> {
    let tag = format!(";tag={}", tag_for(call_id));
    value.strip_suffix(tag.as_str()).map(str::to_string)
}

/// Takes the derived tag out of what we send: the From of our responses, the To of our
/// requests in such a dialog.
pub(crate) struct Rfc2543Tags;

impl MessageInspector for Rfc2543Tags {
    fn before_send(&self, mut msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        let (headers, response) = match &mut msg {
            SipMessage::Request(r) => (&mut r.headers, false),
            SipMessage::Response(r) => (&mut r.headers, true),
        };
        let call_id = headers.iter().find_map(|h| match h {
            Header::CallId(c) => Some(c.value().to_string()),
            _ => None,
        });
        let Some(call_id) = call_id else { return msg };
        for h in headers.iter_mut() {
            match h {
                Header::From(f) if response => {
                    if let Some(v) = untagged(f.value(), &call_id) {
                        *h = Header::From(v.into());
                    }
                }
                Header::To(t) if !response => {
                    if let Some(v) = untagged(t.value(), &call_id) {
                        *h = Header::To(v.into());
                    }
                }
                _ => {}
            }
        }
        msg
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.split("\r\n").map(str::to_string).collect()
    }

    #[test]
    fn a_tagless_request_gets_the_call_ids_tag_and_a_tagged_one_keeps_its_own() {
        let mut l = lines("INVITE sip:b@x SIP/2.0\r\nf: <sip:a@y;user=phone>\r\ni: c1");
        add_from_tag(&mut l);
        assert_eq!(
            l[1],
            format!("f: <sip:a@y;user=phone>;tag={}", tag_for("c1"))
        );
        let mut again = lines("BYE sip:b@x SIP/2.0\r\nFrom: <sip:a@y>\r\nCall-ID: c1");
        add_from_tag(&mut again);
        assert!(again[1].ends_with(&tag_for("c1")), "same dialog, same tag");
        for tagless in [
            r#"<sip:a@y;tag=u>"#,
            r#""a;tag=q" <sip:a@y>"#,
            "<sip:a@y>;tags=2",
        ] {
            assert!(!has_tag(tagless), "{tagless}");
        }
        assert!(has_tag("sip:a@y ; Tag = 3") && has_tag(r#""x>" <sip:a@y>;tag=4"#));
        for kept in [
            "INVITE sip:b@x SIP/2.0\r\nFrom: <sip:a@y>;tag=9\r\nCall-ID: c1",
            "SIP/2.0 200 OK\r\nFrom: <sip:a@y>\r\nCall-ID: c1",
        ] {
            let mut l = lines(kept);
            add_from_tag(&mut l);
            assert_eq!(l, lines(kept));
        }
    }

    #[test]
    fn rfc4475_inv2543_gets_a_transaction_key_once_normalized_and_its_retransmission_the_same() {
        use rsipstack::transaction::key::{TransactionKey, TransactionRole};
        let raw = crate::test_support::fixture("rfc4475/inv2543");
        let key = |bytes: &[u8]| {
            let rsipstack::sip::SipMessage::Request(req) =
                rsipstack::sip::SipMessage::try_from(bytes).unwrap()
            else {
                panic!("not a request")
            };
            TransactionKey::from_request(&req, TransactionRole::Server)
                .map(|k| k.to_string())
                .ok()
        };
        // the gap: rsipstack keys no transaction for it, so it is dropped
        assert_eq!(key(&raw), None);
        let fixed = crate::sip::normalize::normalize(&raw).unwrap();
        let first = key(&fixed).unwrap();
        assert_eq!(
            key(&crate::sip::normalize::normalize(&raw).unwrap()).unwrap(),
            first
        );
        // no branch: the §17.2.3 key of rsipstack (the Via sent-by) is the one used
        assert!(first.ends_with("iftgw.example.com.2543"), "{first}");
    }

    #[test]
    fn the_derived_tag_leaves_our_responses_and_no_other_tag_does() {
        let from = format!("<sip:a@y>;tag={}", tag_for("c1"));
        assert_eq!(untagged(&from, "c1").as_deref(), Some("<sip:a@y>"));
        assert_eq!(untagged(&from, "c2"), None);
        assert_eq!(untagged("<sip:a@y>;tag=2543-1", "c1"), None);
    }
}
