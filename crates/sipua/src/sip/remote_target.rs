//! The remote target of our dialogs, exactly as the peer's Contact wrote it.
//!
//! rsipstack's typed Contact parser drops `;transport=udp` from the URI, and it builds the
//! 2xx ACK, the BYE and every other in-dialog request from that parsed URI. RFC 3261 §12.1
//! says the remote target is the Contact URI as sent, parameters included (a proxy or a PBX
//! behind NAT may need them to route). This inspector remembers the peer's Contact URI per
//! Call-ID from the INVITEs and INVITE responses we receive, and puts it back into the
//! Request-URI of the in-dialog requests we send when the stack's version only lacks what its
//! parser dropped.

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{self, Method, Param, SipMessage, Transport};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Call-IDs remembered at most; beyond, the oldest-looking entry goes (a retransmitted
/// INVITE after its call ended could otherwise re-add entries nobody removes).
const MAX_DIALOGS: usize = 8192;

/// The peers' Contact URIs by Call-ID; cheap to clone (one shared table).
#[derive(Clone, Default)]
pub(crate) struct RemoteTargets {
    by_call_id: Arc<Mutex<HashMap<String, sip::Uri>>>,
}

impl RemoteTargets {
    /// Forgets a call's target once the call is over.
    pub(crate) fn forget(&self, call_id: &str) {
        if let Ok(mut map) = self.by_call_id.lock() {
            map.remove(call_id);
        }
    }

    fn remember(&self, call_id: String, uri: sip::Uri) {
        if let Ok(mut map) = self.by_call_id.lock() {
            if map.len() >= MAX_DIALOGS && !map.contains_key(&call_id) {
                if let Some(old) = map.keys().next().cloned() {
                    map.remove(&old);
                }
            }
            map.insert(call_id, uri);
        }
    }

    fn target(&self, call_id: &str) -> Option<sip::Uri> {
        self.by_call_id.lock().ok()?.get(call_id).cloned()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_call_id.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// The URI inside the first Contact's angle brackets, parameters kept. A Contact without
/// brackets has no URI parameters (what follows `;` belongs to the header), so nothing to keep.
fn raw_contact_uri(msg: &SipMessage) -> Option<sip::Uri> {
    let headers = match msg {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    let value = headers.iter().find_map(|h| match h {
        sip::Header::Contact(c) => Some(c.value().to_string()),
        _ => None,
    })?;
    let start = value.find('<')?;
    let end = start + value[start..].find('>')?;
    sip::Uri::try_from(&value[start + 1..end]).ok()
}

/// What rsipstack's Contact parser makes of `uri`: the same without `;transport=udp`.
fn as_stack_parses(uri: &sip::Uri) -> sip::Uri {
    let mut parsed = uri.clone();
    parsed
        .params
        .retain(|p| !matches!(p, Param::Transport(Transport::Udp)));
    parsed
}

fn has_to_tag(req: &sip::Request) -> bool {
    req.to_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .is_some()
}

impl MessageInspector for RemoteTargets {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        let SipMessage::Request(mut req) = msg else {
            return msg;
        };
        if req.method != Method::Register && has_to_tag(&req) {
            if let Some(target) = req
                .call_id_header()
                .ok()
                .and_then(|c| self.target(c.value()))
            {
                if target != req.uri && as_stack_parses(&target) == req.uri {
                    req.uri = target;
                }
            }
        }
        SipMessage::Request(req)
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        let is_invite = match &msg {
            SipMessage::Request(r) => r.method == Method::Invite,
            SipMessage::Response(r) => {
                r.cseq_header()
                    .ok()
                    .and_then(|c| c.method().ok())
                    .is_some_and(|m| m == Method::Invite)
                    && r.status_code.code() < 300
            }
        };
        if is_invite {
            let call_id = match &msg {
                SipMessage::Request(r) => r.call_id_header().ok().map(|c| c.value().to_string()),
                SipMessage::Response(r) => r.call_id_header().ok().map(|c| c.value().to_string()),
            };
            if let (Some(call_id), Some(uri)) = (call_id, raw_contact_uri(&msg)) {
                self.remember(call_id, uri);
            }
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SipMessage {
        SipMessage::try_from(text.replace('\n', "\r\n").as_str()).unwrap()
    }

    const OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1
From: <sip:a@h>;tag=1
To: <sip:b@h>;tag=2
Call-ID: c1
CSeq: 1 INVITE
Contact: <sip:b@10.0.0.2:5070;transport=udp;ob>
Content-Length: 0

";

    fn bye(uri: &str, call_id: &str) -> SipMessage {
        parse(&format!(
            "BYE {uri} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2
From: <sip:a@h>;tag=1
To: <sip:b@h>;tag=2
Call-ID: {call_id}
CSeq: 2 BYE
Content-Length: 0

"
        ))
    }

    fn uri_of(msg: &SipMessage) -> String {
        match msg {
            SipMessage::Request(r) => r.uri.to_string(),
            SipMessage::Response(_) => panic!("not a request"),
        }
    }

    #[test]
    fn in_dialog_requests_get_the_contact_parameters_back() {
        let targets = RemoteTargets::default();
        targets.after_received(parse(OK), None);
        let sent = targets.before_send(bye("sip:b@10.0.0.2:5070;ob", "c1"), None);
        // the stack writes the transport name in capitals; URI parameters compare without case
        assert_eq!(
            uri_of(&sent).to_ascii_lowercase(),
            "sip:b@10.0.0.2:5070;transport=udp;ob"
        );
    }

    #[test]
    fn other_targets_and_other_calls_are_left_alone() {
        let targets = RemoteTargets::default();
        targets.after_received(parse(OK), None);
        // a target refresh the stack already applied (another host): not ours to change
        let sent = targets.before_send(bye("sip:b@10.0.0.9:5070", "c1"), None);
        assert_eq!(uri_of(&sent), "sip:b@10.0.0.9:5070");
        let sent = targets.before_send(bye("sip:b@10.0.0.2:5070;ob", "other"), None);
        assert_eq!(uri_of(&sent), "sip:b@10.0.0.2:5070;ob");
        targets.forget("c1");
        assert_eq!(targets.len(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let targets = RemoteTargets::default();
        for i in 0..MAX_DIALOGS + 10 {
            targets.remember(format!("c{i}"), sip::Uri::try_from("sip:x@h").unwrap());
        }
        assert_eq!(targets.len(), MAX_DIALOGS);
    }
}
