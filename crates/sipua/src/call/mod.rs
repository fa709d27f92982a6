//! Calls: one [`Call`] per dialog, shared by its task and the API. The state machine is pure
//! ([`state`]); the outgoing and incoming flows, the in-dialog requests and the call's media
//! each have their module. A call never touches the endpoint's call table: the endpoint
//! inserts it, awaits its task and removes it.

mod hold;
mod in_dialog;
mod incoming;
mod intercept;
mod media;
mod outgoing;
mod reoffer;
mod state;

pub use hold::HoldState;
pub(crate) use incoming::accept;
pub(crate) use intercept::intercept;
pub(crate) use outgoing::place;

use crate::context::UaContext;
use crate::error::{Error, Result};
use crate::event::{CallState, Direction, Event};
use crate::media::session::MediaSession;
use crate::media::MediaDirection;
use crate::sdp;
use crate::sip::message::{content_type, reason_of, sdp_content_type};
use media::{CallMedia, CallPorts};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use state::Input;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The span a call's tasks run in: their log records carry the call's id (`callId`). ERROR
/// level so that it exists whenever any log output is on, whatever the threshold.
pub(crate) fn span(call_id: &str) -> tracing::Span {
    tracing::error_span!("call", call_id = call_id)
}

/// A snapshot of one call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallInfo {
    /// Our id of the call (`out-…` or `in-…`), the `callId` of its events.
    pub id: String,
    /// The SIP Call-ID of its dialog.
    pub sip_call_id: String,
    /// Who placed the call.
    pub direction: Direction,
    /// The caller's URI.
    pub from: String,
    /// The called URI.
    pub to: String,
    /// Where the call is now.
    pub state: CallState,
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
}

impl Call {
    fn new(
        ctx: &Arc<UaContext>,
        direction: Direction,
        sip_call_id: String,
        from: String,
        to: String,
        ports: CallPorts,
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
            media: CallMedia::new(ports),
            remote_offer: Mutex::new(None),
            hangup_requested: AtomicBool::new(false),
            cancel_requested: Notify::new(),
            teardown: CancellationToken::new(),
            final_code: AtomicU16::new(0),
            local_hold: AtomicBool::new(false),
            remote_hold: AtomicBool::new(false),
            music_on_hold: AtomicBool::new(false),
            reoffer_pending: AtomicBool::new(false),
            offered_in_200: AtomicBool::new(false),
            ctx: ctx.clone(),
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

    pub(crate) fn info(&self) -> CallInfo {
        CallInfo {
            id: self.id.clone(),
            sip_call_id: self.sip_call_id.clone(),
            direction: self.direction,
            from: self.from.clone(),
            to: self.to.clone(),
            state: self.state(),
        }
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
                    change = Some((*state, n));
                    *state = n;
                    true
                }
                _ => false,
            });
        let Some((previous, next)) = change else {
            return false;
        };
        match next {
            CallState::Confirmed => self.ctx.signalling.call_established(self.direction),
            CallState::Disconnected if previous != CallState::Confirmed => {
                self.ctx.signalling.call_failed(self.direction, code)
            }
            _ => {}
        }
        // Media stops before the event goes out: a `stopRecording()` called from the
        // `disconnected` listener must find the finished recording.
        if next == CallState::Disconnected {
            self.media.stop(&self.ctx, &self.id);
            if let Some(d) = self.dialog() {
                self.ctx.dialogs.remove_dialog(&d.id());
            }
        }
        tracing::info!(call_id = %self.id, code, reason, "call {}", next.as_str());
        self.ctx.emit(Event::CallState {
            call_id: self.id.clone(),
            state: next,
            direction: self.direction,
            code,
            reason: reason.to_string(),
        });
        true
    }

    fn end(&self, code: u16, reason: &str) {
        self.apply(Input::End, code, reason);
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
    pub(crate) async fn answer(&self) -> Result<()> {
        self.expect(CallState::Incoming, "answer")?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        let offer = self.remote_offer.lock().ok().and_then(|o| o.clone());
        let body = match &offer {
            Some(neg) => self.media.answer(&self.ctx, neg),
            None => self.media.offer(&self.ctx, MediaDirection::SendRecv),
        };
        // Media first: the peer may send RTP as soon as it sees the 200.
        if let Some(neg) = &offer {
            self.media.start(&self.ctx, &self.id, neg);
        }
        dialog.accept(Some(vec![sdp_content_type()]), Some(body.into_bytes()))?;
        self.apply(Input::LocalAnswer, 200, "OK");
        Ok(())
    }

    /// Rejects an incoming call that is not answered yet.
    pub(crate) fn reject(&self, code: u16, reason: Option<String>) -> Result<()> {
        self.expect(CallState::Incoming, "reject")?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        self.final_code.store(code, Ordering::SeqCst);
        dialog.reject(Some(StatusCode::from(code)), reason)?;
        Ok(())
    }

    /// Ends the call whatever its state and resolves once it is over for the application:
    /// at once after a BYE (which may still be retried in the background) or a 603, after
    /// the 487 to our CANCEL, or at the latest 64·T1 after a CANCEL the peer never answers
    /// (RFC 3261 §9.1). A silent peer never makes it fail.
    pub(crate) async fn hangup(&self) -> Result<()> {
        self.request_hangup();
        self.ended().await;
        Ok(())
    }

    /// Starts ending the call without waiting for the peer: a CANCEL (sent by the INVITE
    /// task), a BYE in the background, or a 603 for an incoming call not answered yet.
    pub(crate) fn request_hangup(&self) {
        self.hangup_requested.store(true, Ordering::SeqCst);
        match (self.direction, self.state()) {
            (_, CallState::Disconnected) => {}
            (Direction::Incoming, CallState::Incoming) => {
                if let Err(e) = self.reject(603, None) {
                    tracing::debug!(call_id = %self.id, error = %e, "603 not sent");
                }
            }
            (Direction::Outgoing, CallState::Calling | CallState::Ringing | CallState::Early) => {
                // A stored permit: the task sends the CANCEL even if its dialog is not there yet.
                self.cancel_requested.notify_one();
            }
            (_, _) => {
                // Connecting (our 200 not ACKed yet) or confirmed: the session ends with our
                // BYE (RFC 3261 §15), whatever the peer does with it.
                let dialog = self.dialog();
                self.end(200, "local hangup");
                if let Some(d) = dialog {
                    tokio::spawn(send_bye(d, None, self.id.clone()).instrument(span(&self.id)));
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

/// Sends the BYE of a call that is already over for the application: a peer that does not
/// answer it only shows in the log (the transaction gives up after 64·T1).
async fn send_bye(dialog: InviteDialog, reason: Option<String>, call_id: String) {
    let headers = reason.map(|r| vec![Header::Reason(r.into())]);
    if let Err(e) = dialog.bye_with_headers(headers).await {
        tracing::info!(call_id = %call_id, error = %e, "BYE failed or not answered");
    }
}
