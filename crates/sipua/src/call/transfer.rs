//! Transfer (RFC 3515, RFC 5589): our REFER and the NOTIFYs that report its progress as
//! `transfer` events; a REFER from the peer offered to the application as a `refer` event and,
//! once accepted, the new call (placed by the endpoint through [`Referral`]) reported back to
//! the transferor in sipfrag NOTIFYs with the subscription's state.

use super::Call;
use crate::error::{Error, Result};
use crate::event::{CallState, Direction, Event};
use crate::sip::mask::masked_headers;
use crate::sip::message::{content_type, extra_headers, header_pairs, header_values, reason_of};
use crate::sip::replaces::split_refer_to;
use crate::sip::sipfrag;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// How long the application may take to accept or refuse a REFER before the default (accept)
/// applies, at most: the REFER's transaction must get its answer well within 64·T1.
const REFER_DECISION: Duration = Duration::from_secs(4);

/// `expires` of the subscription a REFER we accept creates, in seconds (RFC 3515 §2.4.4):
/// the time the new call has to be answered before the last NOTIFY at the latest.
const REFER_SUBSCRIPTION_S: u32 = 120;

/// The application's answer to a REFER: `None` accepts, `Some(code)` refuses.
pub(crate) type ReferDecision = Option<u16>;

/// A call the endpoint places for an accepted REFER: the call table is the endpoint's, so a
/// call asks for it and gets the new call back (or why it could not be placed).
pub(crate) struct Referral {
    /// The account that places it: the one of the transferee's call.
    pub from: String,
    /// The Refer-To URI without its URI headers.
    pub to: String,
    /// Headers for the INVITE: Replaces and Referred-By when the REFER had them.
    pub headers: Vec<(String, String)>,
    /// Our id of the transferee's call, the new call's `referredFrom`.
    pub referred_from: String,
    pub reply: oneshot::Sender<Result<Arc<Call>>>,
}

impl Call {
    /// Our address of record in this call: the From of a call we placed, the To of one we got.
    fn local_uri(&self) -> &str {
        match self.direction {
            Direction::Outgoing => &self.from,
            Direction::Incoming => &self.to,
        }
    }

    /// The transferee's call id when this call was placed for a REFER.
    pub(crate) fn referred_from(&self) -> Option<String> {
        self.referred_from.get().cloned()
    }

    pub(crate) fn set_referred_from(&self, call_id: &str) {
        let _ = self.referred_from.set(call_id.to_string());
    }

    /// Where this call asks for the new call of a REFER it accepts (the endpoint's table).
    pub(crate) fn set_referral_sink(&self, sink: mpsc::UnboundedSender<Referral>) {
        let _ = self.referrals.set(sink);
    }

    /// Sends REFER with `refer_to` (a bracketed URI) and Referred-By our AoR; resolves on a
    /// 2xx, fails with the peer's status otherwise.
    pub(crate) async fn transfer(
        &self,
        refer_to: String,
        headers: Vec<(String, String)>,
    ) -> Result<()> {
        self.expect(CallState::Confirmed, "transfer")?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        let mut all = vec![
            Header::Other("Refer-To".into(), refer_to),
            Header::Other("Referred-By".into(), format!("<{}>", self.local_uri())),
        ];
        all.extend(extra_headers("headers", headers)?);
        let (code, reason) = match dialog.request(Method::Refer, Some(all), None).await? {
            Some(resp) if (200..300).contains(&resp.status_code.code()) => return Ok(()),
            Some(resp) => (resp.status_code.code(), reason_of(&resp)),
            None => (408, "Request Timeout".to_string()),
        };
        Err(Error::Sip(format!(
            "transfer: the REFER of call {} got {code} {reason}",
            self.id
        )))
    }

    /// Accepts (`None`) or refuses (`Some(code)`) the REFER waiting for the application.
    pub(crate) fn decide_refer(&self, decision: ReferDecision) -> Result<()> {
        let pending = self.refer_decision.lock().ok().and_then(|mut p| p.take());
        match pending {
            Some(tx) => {
                let _ = tx.send(decision);
                Ok(())
            }
            None => Err(Error::InvalidState {
                operation: "refer accept/reject".into(),
                call_id: self.id.clone(),
                state: "without a pending REFER".into(),
                expected: "a REFER waiting for its answer".into(),
            }),
        }
    }
}

/// A NOTIFY in the call: one of our REFER's progress reports becomes a `transfer` event.
/// Always 200: a sipfrag we cannot read must not end the subscription (RFC 6665 §4.1.3 lets
/// the notifier end it on an error response), so it is logged, and reported only when it is
/// the last one (code 0) so the application still learns the transfer is over.
pub(super) async fn on_notify(call: &Call, req: &Request, handle: TransactionHandle) {
    let _ = handle.reply(StatusCode::OK).await;
    let event = header_values(&req.headers, "Event");
    let is_refer = event.first().is_some_and(|e| {
        e.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("refer")
    });
    if !is_refer {
        return;
    }
    let state = header_values(&req.headers, "Subscription-State");
    let state = state.first().map(String::as_str);
    let (code, reason, last) = match sipfrag::progress(&req.body, state) {
        Some(p) => (p.code, p.reason, p.last),
        None => {
            tracing::info!(call_id = %call.id, "NOTIFY of a REFER without a sipfrag status line");
            if !state.is_some_and(sipfrag::is_terminated) {
                return;
            }
            (0, "unreadable sipfrag".to_string(), true)
        }
    };
    call.ctx.emit(Event::Transfer {
        call_id: call.id.clone(),
        code,
        reason,
        last,
    });
}

/// A REFER from the peer: 400 without a usable Refer-To (the call goes on), else the
/// application's decision, then the new call and its NOTIFYs.
pub(super) async fn on_refer(call: Arc<Call>, req: Request, handle: TransactionHandle) {
    let refer_to = header_values(&req.headers, "Refer-To")
        .into_iter()
        .chain(header_values(&req.headers, "r"))
        .next();
    let Some((raw, (target, uri_headers))) =
        refer_to.and_then(|v| split_refer_to(&v).map(|parts| (v, parts)))
    else {
        tracing::info!(call_id = %call.id, "REFER without a usable Refer-To: 400");
        let _ = handle.reply(StatusCode::BadRequest).await;
        return;
    };
    let referred_by = header_values(&req.headers, "Referred-By")
        .into_iter()
        .chain(header_values(&req.headers, "b"))
        .next();
    let replaces = uri_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Replaces"))
        .map(|(_, v)| v.clone());
    let (tx, rx) = oneshot::channel();
    let pending = call.refer_decision.lock().map(|mut p| match *p {
        Some(_) => true,
        None => {
            *p = Some(tx);
            false
        }
    });
    if pending.unwrap_or(true) {
        // One REFER at a time per call: the first one is still being decided.
        let _ = handle.reply(StatusCode::RequestPending).await;
        return;
    }
    call.ctx.emit(Event::Refer {
        call_id: call.id.clone(),
        refer_to: raw,
        referred_by: referred_by.clone(),
        replaces: replaces.clone(),
        headers: masked_headers(header_pairs(&req.headers).into_iter()),
    });
    let bound = REFER_DECISION.min(call.ctx.config.t1x64() / 2);
    let decision = tokio::time::timeout(bound, rx)
        .await
        .ok()
        .and_then(|d| d.ok())
        .flatten();
    if let Ok(mut p) = call.refer_decision.lock() {
        p.take();
    }
    if let Some(code) = decision {
        let _ = handle.reply(StatusCode::from(code)).await;
        return;
    }
    let _ = handle.reply(StatusCode::Accepted).await;
    // The first NOTIFY after the 202 (RFC 3515 allows either order, strict peers do not): the
    // dialog says when the 202 went out; T1 at most.
    let t1 = Duration::from_millis(call.ctx.config.timer_t1_ms);
    let _ = tokio::time::timeout(t1, call.refer_answered.notified()).await;
    let mut headers: Vec<(String, String)> = replaces
        .map(|r| ("Replaces".into(), r))
        .into_iter()
        .collect();
    headers.extend(referred_by.map(|b| ("Referred-By".to_string(), b)));
    // The new call does not wait for the transferor's 200 to the first NOTIFY; the last NOTIFY
    // waits for it (one NOTIFY transaction at a time, in CSeq order).
    let trying = {
        let call = call.clone();
        tokio::spawn(async move { notify_progress(&call, 100, "Trying").await }.in_current_span())
    };
    let (code, reason) = follow_referral(&call, target, headers).await;
    let _ = trying.await;
    notify_progress(&call, code, &reason).await;
}

/// Whether a response the dialog reports is our 2xx to a REFER.
pub(super) fn answers_refer(resp: &rsipstack::sip::Response) -> bool {
    let is_refer = resp
        .cseq_header()
        .ok()
        .and_then(|c| c.method().ok())
        .is_some_and(|m| m == Method::Refer);
    is_refer && (200..300).contains(&resp.status_code.code())
}

/// Has the endpoint place the new call and follows it to its answer or its end: the status
/// the last NOTIFY reports.
async fn follow_referral(
    call: &Call,
    target: String,
    headers: Vec<(String, String)>,
) -> (u16, String) {
    let (reply, placed) = oneshot::channel();
    let referral = Referral {
        from: crate::sip::uri::user_part(call.local_uri()).to_string(),
        to: target,
        headers,
        referred_from: call.id.clone(),
        reply,
    };
    let sent = call
        .referrals
        .get()
        .is_some_and(|sink| sink.send(referral).is_ok());
    let new_call = match (sent, placed.await) {
        (true, Ok(Ok(c))) => c,
        (_, Ok(Err(e))) => {
            tracing::info!(call_id = %call.id, error = %e, "the referred call could not be placed");
            return (503, "Service Unavailable".into());
        }
        _ => return (500, "Server Internal Error".into()),
    };
    let mut state = new_call.state.subscribe();
    let outcome = state
        .wait_for(|s| matches!(s, CallState::Confirmed | CallState::Disconnected))
        .await
        .map(|s| *s);
    match outcome {
        Ok(CallState::Confirmed) => (200, "OK".into()),
        _ => {
            let code = match new_call.final_code.load(Ordering::SeqCst) {
                0 => 500,
                c => c,
            };
            (code, StatusCode::from(code).text().to_string())
        }
    }
}

/// One NOTIFY of the `refer` event: the sipfrag status line, the subscription still active
/// for a provisional status, terminated with the final one.
async fn notify_progress(call: &Call, code: u16, reason: &str) {
    let Some(dialog) = call.dialog() else {
        return;
    };
    let headers = vec![
        Header::Other("Event".into(), "refer".into()),
        Header::Other(
            "Subscription-State".into(),
            sipfrag::subscription_state(code >= 200, REFER_SUBSCRIPTION_S),
        ),
        content_type("message/sipfrag"),
    ];
    let body = sipfrag::format_status_line(code, reason).into_bytes();
    match dialog
        .request(Method::Notify, Some(headers), Some(body))
        .await
    {
        Ok(Some(resp)) if resp.status_code.code() < 300 => {}
        Ok(other) => tracing::info!(
            call_id = %call.id,
            status = other.map(|r| r.status_code.code()),
            "the transferor did not take our NOTIFY"
        ),
        Err(e) => tracing::info!(call_id = %call.id, error = %e, "NOTIFY not sent"),
    }
}
