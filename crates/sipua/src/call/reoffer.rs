//! Re-INVITE and UPDATE, ours and the peer's, with or without an offer (RFC 3261 §14, RFC
//! 3311, RFC 3264 §8). Ours: an offer is answered in the 2xx; a re-INVITE without one gets
//! the peer's offer in the 2xx and our answer in the ACK (`sip::late_answer`); a 491 (glare)
//! is retried after the §14.1 random delay. The peer's: an offer is answered in our 200, or
//! 491 while ours is pending, or 488 when unusable (the media stays as it was); a re-INVITE
//! without one gets our offer in the 200 and its answer in the ACK.

use super::direction::{answer_direction, offer_holds_us};
use super::Call;
use crate::error::{Error, Result};
use crate::event::{CallState, Direction, Event};
use crate::sdp;
use crate::sip::message::{reason_of, sdp_content_type};
use rand::RngExt;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{self, Header, Method, Request, StatusCode};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How many times a re-offer that meets glare is sent again before giving up.
const GLARE_RETRIES: u32 = 3;

/// What our re-INVITE/UPDATE carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// An SDP offer; `true`: we hold the peer (its direction also follows the peer's hold).
    Sdp { local_hold: bool },
    /// No body: a re-INVITE then asks the peer to offer (in its 2xx).
    None,
}

/// RFC 3261 §14.1: after a 491, the owner of the Call-ID (the side that placed the call)
/// waits 2.1 to 4 s, the other side 0 to 2 s, in units of 10 ms. `random` is in [0, 1).
pub(crate) fn glare_delay(owns_call_id: bool, random: f64) -> Duration {
    let (base, span): (u64, u32) = if owns_call_id { (210, 190) } else { (0, 200) };
    let steps = (random.clamp(0.0, 1.0) * f64::from(span)).floor() as u64;
    Duration::from_millis((base + steps.min(u64::from(span))) * 10)
}

impl Call {
    /// Sends a re-INVITE (or UPDATE) with `offer`, retrying after glare; follows the answer.
    /// A failure leaves the media as it was and is a `request_failed` event and the error.
    pub(super) async fn send_reoffer(
        self: &Arc<Self>,
        method: Method,
        offer: Offer,
        purpose: &str,
    ) -> Result<()> {
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        let mut attempt = 0;
        let (code, reason) = loop {
            let body = match offer {
                Offer::Sdp { local_hold } => Some(
                    self.media
                        .offer(&self.ctx, self.our_offer_direction(local_hold)),
                ),
                Offer::None => None,
            };
            let _armed = (body.is_none() && method == Method::Invite).then(|| {
                let call = self.clone();
                self.ctx.late_answers.arm(
                    &self.sip_call_id,
                    Box::new(move |offer| call.answer_offer(offer).ok()),
                )
            });
            // RFC 4028 §7.4: while a session timer runs, every re-INVITE/UPDATE refreshes it.
            let mut headers = self.session_timer_refresh_headers();
            if body.is_some() {
                headers.push(sdp_content_type());
            }
            let headers = Some(headers);
            let bytes = body.clone().map(String::into_bytes);
            self.reoffer_pending.store(true, Ordering::SeqCst);
            let request = async {
                if method == Method::Invite {
                    dialog.reinvite(headers, bytes).await
                } else {
                    dialog.update(headers, bytes).await
                }
            };
            // The call ending (BYE, stop()) ends the wait: once the stack stops, the
            // transaction's timers no longer run and its answer would never come.
            let outcome = tokio::select! {
                outcome = request => Some(outcome),
                _ = self.ended() => None,
                _ = self.teardown.cancelled() => None,
            };
            self.reoffer_pending.store(false, Ordering::SeqCst);
            let Some(outcome) = outcome else {
                return Err(Error::Sip(format!(
                    "{purpose}: call {} ended before its {method} was answered",
                    self.id
                )));
            };
            match outcome {
                Ok(Some(resp)) if resp.status_code == StatusCode::RequestPending => {
                    if attempt == GLARE_RETRIES {
                        break (491, reason_of(&resp));
                    }
                    attempt += 1;
                    let owner = self.direction == Direction::Outgoing;
                    let delay = glare_delay(owner, rand::rng().random_range(0.0..1.0));
                    tracing::info!(call_id = %self.id, ?delay, "{method} met glare (491); retrying");
                    tokio::time::sleep(delay).await;
                }
                Ok(Some(resp)) if resp.status_code.kind() == sip::StatusCodeKind::Successful => {
                    self.note_refresh_answer(&resp);
                    if body.is_none() {
                        // The 2xx offer (a re-INVITE) was answered in the ACK already.
                        return Ok(());
                    }
                    match self.media.follow_answer(&resp.body) {
                        Ok(()) => return Ok(()),
                        Err(e) => {
                            break (
                                488,
                                format!("Not Acceptable Here: unusable SDP answer ({e})"),
                            )
                        }
                    }
                }
                Ok(Some(resp)) => break (resp.status_code.code(), reason_of(&resp)),
                Ok(None) => break (408, "Request Timeout".to_string()),
                Err(e) => break (500, e.to_string()),
            }
        };
        self.ctx.emit(Event::RequestFailed {
            call_id: self.id.clone(),
            method: method.to_string(),
            purpose: purpose.into(),
            code,
            reason: reason.clone(),
        });
        Err(Error::Sip(format!(
            "{purpose}: the {method} of call {} got {code} {reason}; the call keeps its media",
            self.id
        )))
    }

    /// `reinvite()` / `update()` of the API: the same media, re-offered (or asked for).
    pub(crate) async fn reoffer(self: &Arc<Self>, method: Method, with_offer: bool) -> Result<()> {
        let purpose = if method == Method::Invite {
            "reinvite"
        } else {
            "update"
        };
        self.expect(CallState::Confirmed, purpose)?;
        let offer = if with_offer {
            Offer::Sdp {
                local_hold: self.local_hold.load(Ordering::SeqCst),
            }
        } else {
            Offer::None
        };
        self.send_reoffer(method, offer, purpose).await
    }

    /// Answers an offer of the peer (re-INVITE, UPDATE, or the 2xx to our offerless
    /// re-INVITE): the media follows it and the peer's hold is noted. Unusable: the media
    /// stays as it was.
    pub(super) fn answer_offer(&self, offer: &[u8]) -> std::result::Result<String, String> {
        let mut negotiated = sdp::parse(&String::from_utf8_lossy(offer))
            .and_then(|s| sdp::negotiate(&s, self.ctx.config.srtp))
            .map_err(|e| e.to_string())?;
        let held = offer_holds_us(
            negotiated.direction,
            negotiated.remote.ip().is_unspecified(),
        );
        negotiated.direction =
            answer_direction(negotiated.direction, self.local_hold.load(Ordering::SeqCst));
        let answer = self
            .media
            .answer_reoffer(&self.ctx, &negotiated)
            .ok_or("the call has no media session")?;
        self.peer_hold(held);
        Ok(answer)
    }

    /// The ACK of a re-INVITE we answered with our offer: its body is the answer.
    pub(super) fn on_reoffer_ack(&self) {
        if !self.offered_in_200.swap(false, Ordering::SeqCst) {
            return;
        }
        let Some(ack) = self.dialog().and_then(|d| d.last_remote_ack()) else {
            return;
        };
        if let Err(e) = self.media.follow_answer(&ack.body) {
            tracing::warn!(call_id = %self.id, error = %e, "the ACK has no usable answer; the media stays as it was");
        }
    }
}

/// A re-INVITE or UPDATE of the peer.
pub(super) async fn on_reoffer(call: &Call, req: &Request, handle: TransactionHandle) {
    // As a session refresh (RFC 4028) it restarts the session timer, or gets 422 when too brief.
    let timer = call.session_timer_decision(req);
    if let Some((code, headers)) = timer.rejection() {
        let _ = handle.respond(code, Some(headers), None).await;
        return;
    }
    if req.body.is_empty() {
        if req.method == Method::Invite {
            // It asks for our offer: in the 200, its answer in the ACK (`on_reoffer_ack`).
            let direction = call.our_offer_direction(call.local_hold.load(Ordering::SeqCst));
            let offer = call.media.offer(&call.ctx, direction);
            call.offered_in_200.store(true, Ordering::SeqCst);
            respond_sdp(handle, offer, timer.response_headers()).await;
        } else {
            let _ = handle
                .respond(StatusCode::OK, Some(timer.response_headers()), None)
                .await;
        }
        call.note_refresh(&timer, req);
        return;
    }
    if call.reoffer_pending.load(Ordering::SeqCst) {
        // RFC 3261 §14.2 / RFC 3311 §5.2: an offer while ours is pending is glare.
        tracing::info!(call_id = %call.id, method = %req.method, "glare: 491 to the peer's offer");
        let _ = handle.reply(StatusCode::RequestPending).await;
        return;
    }
    match call.answer_offer(&req.body) {
        Ok(answer) => {
            respond_sdp(handle, answer, timer.response_headers()).await;
            call.note_refresh(&timer, req);
        }
        Err(why) => {
            tracing::info!(call_id = %call.id, error = %why, "488 to the peer's offer; the media stays as it was");
            let _ = handle.reply(StatusCode::NotAcceptableHere).await;
        }
    }
}

/// A 200 with `sdp` and `headers` (the session timer's).
async fn respond_sdp(handle: TransactionHandle, sdp: String, headers: Vec<Header>) {
    let mut all = vec![sdp_content_type()];
    all.extend(headers);
    let _ = handle
        .respond(StatusCode::OK, Some(all), Some(sdp.into_bytes()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_the_call_id_waits_longer() {
        assert_eq!(glare_delay(true, 0.0), Duration::from_millis(2100));
        assert_eq!(glare_delay(true, 0.999_999), Duration::from_millis(3990));
        assert_eq!(glare_delay(false, 0.0), Duration::ZERO);
        assert_eq!(glare_delay(false, 0.5), Duration::from_millis(1000));
        assert_eq!(glare_delay(false, 0.999_999), Duration::from_millis(1990));
        // Out-of-range randomness stays within the bounds.
        assert!(glare_delay(true, 7.0) <= Duration::from_millis(4000));
        assert_eq!(glare_delay(false, -1.0), Duration::ZERO);
    }
}
