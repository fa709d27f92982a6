//! The headers of a hang-up, both ways. RFC 3326 `Reason: SIP;cause=<code>;text="<text>"`:
//! formatted for our BYE, CANCEL and rejection, parsed from the peer's BYE or CANCEL.
//!
//! rsipstack builds the CANCEL and the final response of a rejected INVITE itself, with no
//! way to add headers (its `reject` takes one Reason text, its `cancel` nothing). This
//! inspector adds the application's headers to them on the way out, keyed by Call-ID, once;
//! and it remembers the Reason of the peer's BYE or CANCEL, by Call-ID, until the call's end
//! takes it (the dialog reports a BYE or CANCEL without the request).

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{self, Header, Method, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept at most per map: a peer that sends BYEs for calls we do not have must not
/// grow it without bound.
const MAX_ENTRIES: usize = 4096;

/// `Reason: SIP;cause=<code>[;text="<text>"]` (RFC 3326), the value only. A `"` or `\` in
/// the text is escaped as a quoted-string needs.
pub(crate) fn reason_value(code: u16, text: Option<&str>) -> String {
    match text.filter(|t| !t.is_empty()) {
        Some(t) => {
            let escaped = t.replace('\\', "\\\\").replace('"', "\\\"");
            format!("SIP;cause={code};text=\"{escaped}\"")
        }
        None => format!("SIP;cause={code}"),
    }
}

/// The `text` parameter of a Reason header value, unquoted; `None` without one.
pub(crate) fn reason_text(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let at = lower.find("text=")? + "text=".len();
    let rest = value[at..].trim_start();
    let Some(quoted) = rest.strip_prefix('"') else {
        // a token, up to the next parameter
        let t = rest.split(';').next().unwrap_or("").trim();
        return (!t.is_empty()).then(|| t.to_string());
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    Some(out)
}

/// Which message of ours the pending headers go on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Outgoing {
    /// Our CANCEL of an outgoing INVITE.
    Cancel,
    /// Our final non-2xx response to an incoming INVITE.
    Rejection,
}

type Pending = HashMap<(String, Outgoing), Vec<Header>>;

/// Headers waiting for a CANCEL or rejection of ours, and the peers' Reasons; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct HangupHeaders {
    pending: Arc<Mutex<Pending>>,
    peer_reasons: Arc<Mutex<HashMap<String, String>>>,
}

impl HangupHeaders {
    /// `headers` go on our next `what` for the call `call_id`.
    pub(crate) fn add(&self, call_id: &str, what: Outgoing, headers: Vec<Header>) {
        if headers.is_empty() {
            return;
        }
        if let Ok(mut p) = self.pending.lock() {
            if p.len() >= MAX_ENTRIES {
                p.clear();
            }
            p.insert((call_id.to_string(), what), headers);
        }
    }

    /// Forgets what a call left (its INVITE transaction is over: the CANCEL or the final
    /// response went out, or the call ended another way).
    pub(crate) fn forget(&self, call_id: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|(id, _), _| id != call_id);
        }
        if let Ok(mut r) = self.peer_reasons.lock() {
            r.remove(call_id);
        }
    }

    /// The raw Reason of the peer's BYE or CANCEL for `call_id`, once.
    pub(crate) fn take_peer_reason(&self, call_id: &str) -> Option<String> {
        self.peer_reasons.lock().ok()?.remove(call_id)
    }

    fn take(&self, call_id: &str, what: Outgoing) -> Option<Vec<Header>> {
        self.pending
            .lock()
            .ok()?
            .remove(&(call_id.to_string(), what))
    }
}

fn call_id_of(headers: &sip::Headers) -> Option<String> {
    headers.iter().find_map(|h| match h {
        Header::CallId(c) => Some(c.value().to_string()),
        _ => None,
    })
}

impl MessageInspector for HangupHeaders {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        match msg {
            SipMessage::Request(mut req) if req.method == Method::Cancel => {
                if let Some(extra) =
                    call_id_of(&req.headers).and_then(|id| self.take(&id, Outgoing::Cancel))
                {
                    req.headers.extend(extra);
                }
                SipMessage::Request(req)
            }
            SipMessage::Response(mut resp)
                if resp.status_code.code() >= 300
                    && resp
                        .cseq_header()
                        .ok()
                        .and_then(|c| c.method().ok())
                        .is_some_and(|m| m == Method::Invite) =>
            {
                if let Some(extra) =
                    call_id_of(&resp.headers).and_then(|id| self.take(&id, Outgoing::Rejection))
                {
                    resp.headers.extend(extra);
                }
                SipMessage::Response(resp)
            }
            other => other,
        }
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        if let SipMessage::Request(req) = &msg {
            if matches!(req.method, Method::Bye | Method::Cancel) {
                let reason = req.headers.iter().find_map(|h| match h {
                    Header::Reason(r) => Some(r.value().to_string()),
                    Header::Other(n, v) if n.eq_ignore_ascii_case("Reason") => Some(v.clone()),
                    _ => None,
                });
                if let (Some(id), Some(reason)) = (call_id_of(&req.headers), reason) {
                    if let Ok(mut r) = self.peer_reasons.lock() {
                        if r.len() >= MAX_ENTRIES {
                            r.clear();
                        }
                        r.insert(id, reason);
                    }
                }
            }
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_values_are_formatted_and_parsed() {
        assert_eq!(
            reason_value(200, Some("Operator \"done\"")),
            r#"SIP;cause=200;text="Operator \"done\"""#
        );
        assert_eq!(reason_value(486, None), "SIP;cause=486");
        assert_eq!(reason_value(486, Some("")), "SIP;cause=486");
        let round = reason_value(200, Some(r#"a "b" \c"#));
        assert_eq!(reason_text(&round).as_deref(), Some(r#"a "b" \c"#));
        assert_eq!(
            reason_text("Q.850;cause=16;text=\"Normal call clearing\"").as_deref(),
            Some("Normal call clearing")
        );
        assert_eq!(
            reason_text("SIP;cause=200;TEXT=bye;x=1").as_deref(),
            Some("bye")
        );
        assert_eq!(reason_text("SIP;cause=200"), None);
        assert_eq!(
            reason_text("SIP;text=\"unterminated").as_deref(),
            Some("unterminated")
        );
    }

    fn parse(text: &str) -> SipMessage {
        SipMessage::try_from(text).unwrap()
    }

    #[test]
    fn pending_headers_go_on_the_cancel_and_the_rejection_once() {
        let h = HangupHeaders::default();
        let x = vec![Header::Other("X-CRM-Id".into(), "42".into())];
        h.add("c1", Outgoing::Cancel, x.clone());
        h.add("c1", Outgoing::Rejection, x);
        let cancel = "CANCEL sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
        let out = h.before_send(parse(cancel), None).to_string();
        assert!(out.contains("X-CRM-Id: 42"), "{out}");
        let again = h.before_send(parse(cancel), None).to_string();
        assert!(!again.contains("X-CRM-Id"), "only once: {again}");
        let busy = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let out = h.before_send(parse(busy), None).to_string();
        assert!(out.contains("X-CRM-Id: 42"), "{out}");
    }

    #[test]
    fn the_peers_reason_on_bye_is_kept_until_taken() {
        let h = HangupHeaders::default();
        let bye = "BYE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c2\r\nCSeq: 2 BYE\r\nReason: SIP;cause=200;text=\"Caller gone\"\r\nContent-Length: 0\r\n\r\n";
        h.after_received(parse(bye), None);
        assert_eq!(
            h.take_peer_reason("c2").as_deref(),
            Some("SIP;cause=200;text=\"Caller gone\"")
        );
        assert_eq!(h.take_peer_reason("c2"), None);
    }
}
