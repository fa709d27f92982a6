//! The SDP answer in the ACK of a re-INVITE we sent without an offer (RFC 3261 §14.1, RFC
//! 3264 §5: the peer offers in its 2xx, our ACK answers).
//!
//! rsipstack's transaction sends the 2xx ACK itself, built from the response with no body,
//! before the dialog hands the 2xx to us. So the answer is made here: a caller arms its
//! dialog's Call-ID with an answerer for the time of its re-INVITE; when that 2xx arrives
//! (`after_received`, before the transaction sees it) the answerer turns its offer into our
//! answer, and the ACK of that CSeq (`before_send`) carries it. A retransmitted 2xx gets the
//! ACK the transaction cached, answer included.

use rsipstack::sip::{Header, Method, SipMessage, StatusCodeKind};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Makes our SDP answer from the offer of a 2xx; `None` when it is unusable (the ACK then
/// goes without a body and the call keeps its media).
pub(crate) type Answerer = Box<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

struct Armed {
    answerer: Answerer,
    /// The CSeq number of the 2xx answered, and our answer.
    answer: Option<(u32, Vec<u8>)>,
}

/// The armed dialogs by Call-ID; cheap to clone (one shared table).
#[derive(Clone, Default)]
pub(crate) struct LateAnswers {
    by_call_id: Arc<Mutex<HashMap<String, Armed>>>,
}

/// Disarms its Call-ID when dropped (the re-INVITE is over).
pub(crate) struct ArmGuard {
    table: LateAnswers,
    call_id: String,
}

impl Drop for ArmGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.table.by_call_id.lock() {
            map.remove(&self.call_id);
        }
    }
}

impl LateAnswers {
    /// Answers the offer of the next INVITE 2xx in dialog `call_id` with `answerer`, until
    /// the guard is dropped.
    pub(crate) fn arm(&self, call_id: &str, answerer: Answerer) -> ArmGuard {
        if let Ok(mut map) = self.by_call_id.lock() {
            map.insert(
                call_id.to_string(),
                Armed {
                    answerer,
                    answer: None,
                },
            );
        }
        ArmGuard {
            table: self.clone(),
            call_id: call_id.to_string(),
        }
    }

    fn answer_2xx(&self, resp: &rsipstack::sip::Response) {
        let Some((call_id, seq)) = call_id_and_seq(&resp.headers, Method::Invite) else {
            return;
        };
        if resp.status_code.kind() != StatusCodeKind::Successful || resp.body.is_empty() {
            return;
        }
        if let Ok(mut map) = self.by_call_id.lock() {
            if let Some(armed) = map.get_mut(&call_id) {
                if armed.answer.as_ref().is_none_or(|(s, _)| *s != seq) {
                    armed.answer = (armed.answerer)(&resp.body).map(|a| (seq, a.into_bytes()));
                }
            }
        }
    }

    fn answer_for_ack(&self, ack: &rsipstack::sip::Request) -> Option<Vec<u8>> {
        let (call_id, seq) = call_id_and_seq(&ack.headers, Method::Ack)?;
        let map = self.by_call_id.lock().ok()?;
        let (s, answer) = map.get(&call_id)?.answer.as_ref()?;
        (*s == seq).then(|| answer.clone())
    }
}

/// The Call-ID and CSeq number of a message whose CSeq method is `method`.
fn call_id_and_seq(headers: &rsipstack::sip::Headers, method: Method) -> Option<(String, u32)> {
    let mut call_id = None;
    let mut cseq = None;
    for h in headers.iter() {
        match h {
            Header::CallId(c) => call_id = Some(c.value().to_string()),
            Header::CSeq(c) => cseq = Some((c.seq().ok()?, c.method().ok()?)),
            _ => {}
        }
    }
    let (seq, m) = cseq?;
    (m == method).then_some((call_id?, seq))
}

impl MessageInspector for LateAnswers {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        let SipMessage::Request(mut req) = msg else {
            return msg;
        };
        if req.method == Method::Ack && req.body.is_empty() {
            if let Some(answer) = self.answer_for_ack(&req) {
                req.headers
                    .retain(|h| !matches!(h, Header::ContentLength(_) | Header::ContentType(_)));
                req.headers.push(crate::sip::message::sdp_content_type());
                req.headers
                    .push(Header::ContentLength((answer.len() as u32).into()));
                req.body = answer;
            }
        }
        SipMessage::Request(req)
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        if let SipMessage::Response(resp) = &msg {
            self.answer_2xx(resp);
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> SipMessage {
        SipMessage::try_from(text.replace('\n', "\r\n").as_str()).unwrap()
    }

    const OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1
From: <sip:a@x>;tag=1
To: <sip:b@x>;tag=2
Call-ID: c1
CSeq: 7 INVITE
Contact: <sip:b@127.0.0.1:5070>
Content-Type: application/sdp
Content-Length: 5

offer";

    fn ack(call_id: &str, seq: u32) -> SipMessage {
        message(&format!(
            "ACK sip:b@127.0.0.1:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2
From: <sip:a@x>;tag=1
To: <sip:b@x>;tag=2
Call-ID: {call_id}
CSeq: {seq} ACK

"
        ))
    }

    fn body(msg: SipMessage) -> String {
        match msg {
            SipMessage::Request(r) => String::from_utf8(r.body).unwrap(),
            SipMessage::Response(r) => String::from_utf8(r.body).unwrap(),
        }
    }

    #[test]
    fn the_ack_of_the_armed_2xx_carries_the_answer() {
        let table = LateAnswers::default();
        let guard = table.arm(
            "c1",
            Box::new(|offer| Some(format!("answer to {}", String::from_utf8_lossy(offer)))),
        );
        table.after_received(message(OK), None);
        let sent = table.before_send(ack("c1", 7), None);
        let SipMessage::Request(req) = &sent else {
            panic!("not a request")
        };
        assert!(req
            .headers
            .iter()
            .any(|h| matches!(h, Header::ContentType(c) if c.value() == "application/sdp")));
        assert_eq!(body(sent), "answer to offer");
        // Another CSeq or dialog, or once disarmed: no body.
        assert_eq!(body(table.before_send(ack("c1", 8), None)), "");
        assert_eq!(body(table.before_send(ack("c2", 7), None)), "");
        drop(guard);
        assert_eq!(body(table.before_send(ack("c1", 7), None)), "");
    }

    #[test]
    fn an_unusable_offer_leaves_the_ack_empty() {
        let table = LateAnswers::default();
        let _guard = table.arm("c1", Box::new(|_| None));
        table.after_received(message(OK), None);
        assert_eq!(body(table.before_send(ack("c1", 7), None)), "");
    }
}
