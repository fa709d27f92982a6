//! Calls: one [`Call`] per dialog, shared by its task and the API. The state machine is pure
//! ([`state`]); the outgoing and incoming flows, the in-dialog requests and the call's media
//! each have their module. A call never touches the endpoint's call table: the endpoint
//! inserts it, awaits its task and removes it.

mod direction;
mod hold;
mod in_dialog;
mod incoming;
mod info;
mod intercept;
mod media;
mod outgoing;
pub(crate) mod redirect;
pub(crate) mod reliable;
mod reoffer;
mod replaces;
mod session_refresh;
pub(crate) mod session_timer;
mod state;
mod transfer;

pub use hold::HoldState;
pub(crate) use incoming::accept;
pub use info::CallInfo;
pub(crate) use intercept::intercept;
pub(crate) use outgoing::place;
pub(crate) use reliable::on_prack;
pub(crate) use transfer::Referral;

use crate::account::CallSlot;
use crate::context::UaContext;
use crate::error::{Error, Result};
use crate::event::{CallState, Direction, Event};
use crate::media::session::MediaSession;
use crate::media::MediaDirection;
use crate::sdp;
use crate::sip::hangup_headers::{reason_text, reason_value, Outgoing};
use crate::sip::message::{content_type, reason_of, sdp_content_type};
use media::{CallMedia, CallPorts};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use state::Input;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use transfer::ReferDecision;

/// The span a call's tasks run in: their log records carry the call's id (`callId`). ERROR
/// level so that it exists whenever any log output is on, whatever the threshold.
pub(crate) fn span(call_id: &str) -> tracing::Span {
    tracing::error_span!("call", call_id = call_id)
}

/// One call.
pub(crate) struct Call {
    pub id: String,
    /// Tags the SIP trace of its messages with its id while the call lives.
    _log_tag: crate::logging::CallTag,
    pub sip_call_id: String,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    /// The state; `hangup()` waits on it for `Disconnected`.
    state: watch::Sender<CallState>,
    dialog: Mutex<Option<InviteDialog>>,
    /// Ports, RTP session and SDP of the call.
    media: CallMedia,
    /// The SDP offer of an incoming call, answered on `answer()`.
    remote_offer: Mutex<Option<sdp::Negotiated>>,
    hangup_requested: AtomicBool,
    /// Wakes the outgoing INVITE task to send its CANCEL.
    cancel_requested: Notify,
    /// Cancelled by `stop()` after its grace period: the call's tasks give up at once.
    teardown: CancellationToken,
    /// Final status we chose (reject) or received; 0 until known.
    final_code: AtomicU16,
    /// The session timer (RFC 4028), once negotiated; its task refreshes or expires it.
    session: session_refresh::SessionTimerSlot,
    /// Our reliable 1xx (100rel) of an incoming call, and the SDP answer sent early.
    provisional: reliable::Provisional,
    /// Hold and re-offers (hold.rs, reoffer.rs): whether we hold the peer, whether it holds
    /// us, whether our music on hold plays, whether our re-INVITE/UPDATE is waiting for its
    /// answer (an offer of the peer then gets 491), and whether our 200 to an offerless
    /// re-INVITE offered (its ACK answers).
    local_hold: AtomicBool,
    remote_hold: AtomicBool,
    music_on_hold: AtomicBool,
    reoffer_pending: AtomicBool,
    offered_in_200: AtomicBool,
    ctx: Arc<UaContext>,
    /// The extension of the account the call belongs to (`callInfo`, `removeAccount`).
    pub account: Option<String>,
    /// The call's places in the call limits, given back when it is disconnected.
    slot: Mutex<Option<CallSlot>>,
    /// Created, answered and ended, for `callInfo`.
    times: Mutex<info::CallTimes>,
    /// Transfer (call/transfer.rs): the transferee's call id when this call was placed for a
    /// REFER; the application's answer to the peer's REFER while it is pending; where an
    /// accepted REFER's new call is asked for (the endpoint sets it when it tables the call);
    /// woken once our 2xx to the REFER is on the wire, so the first NOTIFY follows it.
    referred_from: OnceLock<String>,
    refer_decision: Mutex<Option<oneshot::Sender<ReferDecision>>>,
    referrals: OnceLock<mpsc::UnboundedSender<Referral>>,
    refer_answered: Notify,
}

impl Call {
    fn new(
        ctx: &Arc<UaContext>,
        direction: Direction,
        sip_call_id: String,
        from: String,
        to: String,
        ports: CallPorts,
        slot: CallSlot,
    ) -> Arc<Self> {
        let (prefix, first_state) = match direction {
            Direction::Outgoing => ("out", CallState::Calling),
            Direction::Incoming => ("in", CallState::Incoming),
        };
        let id = format!("{prefix}-{}", crate::ids::random_token(12));
        Arc::new(Self {
            _log_tag: crate::logging::tag_call(&sip_call_id, &id),
            id,
            sip_call_id,
            direction,
            from,
            to,
            state: watch::Sender::new(first_state),
            dialog: Mutex::new(None),
            media: CallMedia::new(ports, ctx.config.srtp),
            remote_offer: Mutex::new(None),
            hangup_requested: AtomicBool::new(false),
            cancel_requested: Notify::new(),
            teardown: CancellationToken::new(),
            final_code: AtomicU16::new(0),
            session: Default::default(),
            provisional: reliable::Provisional::default(),
            local_hold: AtomicBool::new(false),
            remote_hold: AtomicBool::new(false),
            music_on_hold: AtomicBool::new(false),
            reoffer_pending: AtomicBool::new(false),
            offered_in_200: AtomicBool::new(false),
            ctx: ctx.clone(),
            account: slot.account().map(str::to_string),
            slot: Mutex::new(Some(slot)),
            times: Mutex::new(info::CallTimes::new(info::now_ms())),
            referred_from: OnceLock::new(),
            refer_decision: Mutex::new(None),
            referrals: OnceLock::new(),
            refer_answered: Notify::new(),
        })
    }

    pub(crate) fn state(&self) -> CallState {
        *self.state.borrow()
    }

    /// Resolves once the call is `Disconnected`.
    async fn ended(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| *s == CallState::Disconnected).await;
    }

    /// The call's RTP session, once answered.
    pub(crate) fn media_session(&self) -> Option<Arc<MediaSession>> {
        self.media.session()
    }

    fn dialog(&self) -> Option<InviteDialog> {
        self.dialog.lock().ok().and_then(|d| d.clone())
    }

    fn set_dialog(&self, dialog: &InviteDialog) {
        if let Ok(mut d) = self.dialog.lock() {
            *d = Some(dialog.clone());
        }
    }

    /// Applies `input`; emits a `call_state` event when the state changed, and counts an
    /// established call, or a call that ended without being established. Returns whether it
    /// changed.
    fn apply(&self, input: Input, code: u16, reason: &str) -> bool {
        let mut change = None;
        self.state
            .send_if_modified(|state| match state::next_state(*state, input) {
                Some(n) if n != *state => {
                    if n == CallState::Disconnected {
                        // The status the call ended with, for the NOTIFY of a REFER that
                        // placed it: known before a watcher of the state sees the end.
                        let _ = self.final_code.compare_exchange(
                            0,
                            code,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                    }
                    change = Some((*state, n));
                    *state = n;
                    true
                }
                _ => false,
            });
        let Some((previous, next)) = change else {
            return false;
        };
        if let Ok(mut t) = self.times.lock() {
            t.entered(next, info::now_ms());
        }
        match next {
            CallState::Confirmed => self.ctx.signalling.call_established(self.direction),
            CallState::Disconnected if previous != CallState::Confirmed => {
                self.ctx.signalling.call_failed(self.direction, code)
            }
            _ => {}
        }
        // Media stops before the event goes out: a `stopRecording()` called from the
        // `disconnected` listener must find the finished recording.
        let mut reason_header = None;
        let mut reason = reason.to_string();
        if next == CallState::Disconnected {
            self.media.stop(&self.ctx, &self.id);
            if let Some(d) = self.dialog() {
                self.ctx.dialogs.remove_dialog(&d.id());
            }
            // Its place in the call limits is free for the next call.
            self.slot.lock().ok().and_then(|mut s| s.take());
            // The peer's RFC 3326 Reason on its BYE or CANCEL says why, in its words.
            reason_header = self.ctx.hangup_headers.take_peer_reason(&self.sip_call_id);
            if let Some(text) = reason_header.as_deref().and_then(reason_text) {
                reason = text;
            }
        }
        tracing::info!(call_id = %self.id, code, reason, "call {}", next.as_str());
        self.ctx.emit(Event::CallState {
            call_id: self.id.clone(),
            state: next,
            direction: self.direction,
            code,
            reason,
            reason_header,
        });
        true
    }

    fn end(&self, code: u16, reason: &str) {
        self.apply(Input::End, code, reason);
    }

    /// Ends the call for a cause of ours (no RTP, session timer expired): `disconnected` with
    /// `code` and `text` first, then a BYE whose RFC 3326 Reason says the same.
    async fn end_with_bye(&self, code: u16, text: &str) {
        let dialog = self.dialog();
        self.end(code, text);
        if let Some(d) = dialog {
            let reason = reason_value(code, Some(text));
            send_bye(d, vec![Header::Reason(reason.into())], self.id.clone()).await;
        }
    }

    fn expect(&self, wanted: CallState, operation: &str) -> Result<()> {
        let state = self.state();
        if state != wanted {
            return Err(Error::InvalidState {
                call_id: self.id.clone(),
                state: state.as_str().to_string(),
                operation: operation.to_string(),
                expected: wanted.as_str().to_string(),
            });
        }
        Ok(())
    }

    /// Answers an incoming call: 200 OK with the SDP answer (or our offer, when the INVITE had
    /// none: the answer then comes in the ACK).
    pub(crate) async fn answer(&self, headers: Vec<Header>) -> Result<()> {
        self.expect(CallState::Incoming, "answer")?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        let offer = self.remote_offer.lock().ok().and_then(|o| o.clone());
        // After progress() the 200 repeats the answer of the 183 (the same session).
        let body = match (&offer, self.provisional.early_answer()) {
            (_, Some(early)) => early,
            (Some(neg), None) => self.media.answer(&self.ctx, neg),
            (None, None) => self.media.offer(&self.ctx, MediaDirection::SendRecv),
        };
        // RFC 3262 §3: no 2xx while a reliable 1xx waits for its PRACK.
        if !self.provisional.acknowledged(self.ctx.config.t1x64()).await {
            return Err(Error::Sip(format!(
                "answer: call {} got no PRACK for our reliable 1xx",
                self.id
            )));
        }
        self.expect(CallState::Incoming, "answer")?;
        // Media first: the peer may send RTP as soon as it sees the 200.
        if let Some(neg) = &offer {
            self.media.start(&self.ctx, &self.id, neg);
        }
        let invite = dialog.initial_request();
        let timer = self.session_timer_decision(&invite);
        let mut all = vec![sdp_content_type()];
        all.extend(timer.response_headers());
        all.extend(headers);
        dialog.accept(Some(all), Some(body.into_bytes()))?;
        self.note_refresh(&timer, &invite);
        self.apply(Input::LocalAnswer, 200, "OK");
        Ok(())
    }

    /// Rejects an incoming call that is not answered yet; `headers` go on the response.
    pub(crate) fn reject(
        &self,
        code: u16,
        reason: Option<String>,
        headers: Vec<Header>,
    ) -> Result<()> {
        self.expect(CallState::Incoming, "reject")?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        self.final_code.store(code, Ordering::SeqCst);
        self.ctx
            .hangup_headers
            .add(&self.sip_call_id, Outgoing::Rejection, headers);
        // rsipstack puts `reason` into a Reason header as it is: give it RFC 3326's form.
        let reason = reason.map(|r| reason_value(code, Some(&r)));
        dialog.reject(Some(StatusCode::from(code)), reason)?;
        Ok(())
    }

    /// Ends the call whatever its state and resolves once it is over for the application:
    /// at once after a BYE (which may still be retried in the background) or a 603, after
    /// the 487 to our CANCEL, or at the latest 64·T1 after a CANCEL the peer never answers
    /// (RFC 3261 §9.1). A silent peer never makes it fail.
    pub(crate) async fn hangup(&self, how: Hangup) -> Result<()> {
        self.request_hangup(how);
        self.ended().await;
        Ok(())
    }

    /// Starts ending the call without waiting for the peer: a CANCEL (sent by the INVITE
    /// task), a BYE in the background, or a 603 for an incoming call not answered yet; each
    /// with `how`'s headers and RFC 3326 Reason.
    pub(crate) fn request_hangup(&self, how: Hangup) {
        self.hangup_requested.store(true, Ordering::SeqCst);
        let state = self.state();
        let default_cause = match (self.direction, state) {
            (Direction::Incoming, CallState::Incoming) => 603,
            (Direction::Outgoing, CallState::Calling | CallState::Ringing | CallState::Early) => {
                487
            }
            _ => 200,
        };
        let headers = how.headers(default_cause);
        match (self.direction, state) {
            (_, CallState::Disconnected) => {}
            (Direction::Incoming, CallState::Incoming) => {
                if let Err(e) = self.reject(603, None, headers) {
                    tracing::debug!(call_id = %self.id, error = %e, "603 not sent");
                }
            }
            (Direction::Outgoing, CallState::Calling | CallState::Ringing | CallState::Early) => {
                self.ctx
                    .hangup_headers
                    .add(&self.sip_call_id, Outgoing::Cancel, headers);
                // A stored permit: the task sends the CANCEL even if its dialog is not there yet.
                self.cancel_requested.notify_one();
            }
            (_, _) => {
                // Connecting (our 200 not ACKed yet) or confirmed: the session ends with our
                // BYE (RFC 3261 §15), whatever the peer does with it.
                let dialog = self.dialog();
                self.end(200, "local hangup");
                if let Some(d) = dialog {
                    tokio::spawn(send_bye(d, headers, self.id.clone()).instrument(span(&self.id)));
                }
            }
        }
    }

    /// `stop()`'s grace period is over: the call ends now and its tasks stop waiting.
    pub(crate) fn tear_down(&self) {
        self.teardown.cancel();
        let code = match self.state() {
            CallState::Confirmed | CallState::Connecting => 200,
            _ => 487,
        };
        self.end(code, "endpoint stopped");
    }

    /// Sends an INFO in the call's dialog (DTMF as `application/dtmf-relay`).
    pub(crate) async fn send_info(&self, mime: &str, body: Vec<u8>) -> Result<()> {
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        self.expect(CallState::Confirmed, "sendDtmf")?;
        match dialog
            .info(Some(vec![content_type(mime)]), Some(body))
            .await?
        {
            Some(resp) if !(200..300).contains(&resp.status_code.code()) => {
                Err(Error::Sip(format!(
                    "INFO answered {} {}",
                    resp.status_code.code(),
                    reason_of(&resp)
                )))
            }
            _ => Ok(()),
        }
    }
}

/// How the application ends a call: an RFC 3326 Reason (`cause` the code, `text` the
/// reason) and extra headers, on the BYE, CANCEL or 603.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hangup {
    pub code: Option<u16>,
    pub reason: Option<String>,
    /// Checked with `sip::message::extra_headers`.
    pub headers: Vec<Header>,
}

impl Hangup {
    /// The headers to send: the extra ones, then the Reason when a code or reason was given
    /// (`default_cause` when only the reason was).
    fn headers(self, default_cause: u16) -> Vec<Header> {
        let mut headers = self.headers;
        if self.code.is_some() || self.reason.is_some() {
            let value = reason_value(self.code.unwrap_or(default_cause), self.reason.as_deref());
            headers.push(Header::Reason(value.into()));
        }
        headers
    }
}

/// Sends the BYE of a call that is already over for the application: a peer that does not
/// answer it only shows in the log (the transaction gives up after 64·T1).
async fn send_bye(dialog: InviteDialog, headers: Vec<Header>, call_id: String) {
    let headers = (!headers.is_empty()).then_some(headers);
    if let Err(e) = dialog.bye_with_headers(headers).await {
        tracing::info!(call_id = %call_id, error = %e, "BYE failed or not answered");
    }
}
