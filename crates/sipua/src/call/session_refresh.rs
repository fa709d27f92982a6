//! The session timer of a call (RFC 4028): the headers of our INVITE and 200, starting the
//! timer from what was negotiated, and the task that refreshes (re-INVITE or UPDATE at half
//! the interval) or, when the peer is the refresher and goes quiet, ends the call with a BYE.
//! The arithmetic and the negotiation are [`super::session_timer`]'s.

use super::outgoing::sleep_until_some;
use super::session_timer::{self, Due, Negotiated, Refresher, Timer, UasDecision};
use super::{span, Call};
use crate::config::SessionRefresh;
use crate::event::CallState;
use crate::sip::message::{header_values, reason_of, sdp_content_type};
use rsipstack::sip::{Header, Request, Response, StatusCodeKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument;

/// A call's session timer, shared by its task and the in-dialog request handlers.
#[derive(Default)]
pub(crate) struct SessionTimerSlot {
    /// `None`: no timer (not negotiated, or turned off by a later request).
    timer: Mutex<Option<Timer>>,
    /// Whether the peer's Allow lists UPDATE (from its INVITE, 2xx or refresh).
    peer_allows_update: AtomicBool,
    /// Wakes the task: the timer was started, restarted or stopped.
    changed: Notify,
}

impl SessionTimerSlot {
    fn get(&self) -> Option<Timer> {
        self.timer.lock().ok().and_then(|t| *t)
    }

    fn set(&self, timer: Option<Timer>) {
        if let Ok(mut t) = self.timer.lock() {
            *t = timer;
        }
        self.changed.notify_one();
    }

    /// Follows the peer's Allow; a message without one (a 200 to a refresh) changes nothing.
    fn note_allow(&self, headers: &rsipstack::sip::Headers) {
        if !header_values(headers, "Allow").is_empty() {
            self.peer_allows_update
                .store(session_timer::allows_update(headers), Ordering::SeqCst);
        }
    }
}

impl Call {
    /// The timer headers of our INVITE (what `sessionTimers` says).
    pub(crate) fn session_timer_invite_headers(&self) -> Vec<Header> {
        let cfg = self.ctx.config.session_timer();
        session_timer::request_headers(&cfg, cfg.expires_sec, None)
    }

    /// What we answer, as UAS, to the timer part of `req` (the INVITE, a re-INVITE or an
    /// UPDATE): a 422/421 to send instead of the 2xx, or the 2xx's headers.
    pub(crate) fn session_timer_decision(&self, req: &Request) -> UasDecision {
        session_timer::decide_as_uas(&self.ctx.config.session_timer(), &req.headers)
    }

    /// Our 2xx to `req` went out with `decision`'s headers: the timer (re)starts, or stops.
    pub(crate) fn note_refresh(&self, decision: &UasDecision, req: &Request) {
        self.session.note_allow(&req.headers);
        self.start_session_timer(decision.negotiated());
    }

    /// A 2xx to our INVITE `invite`: the timer it settled starts.
    pub(crate) fn session_timer_answered(&self, invite: &Request, resp: &Response) {
        let cfg = self.ctx.config.session_timer();
        let requested = session_timer::session_expires_of(&invite.headers)
            .map_or(cfg.expires_sec, |se| se.secs);
        self.session.note_allow(&resp.headers);
        self.start_session_timer(session_timer::negotiate_as_uac(
            &cfg,
            requested,
            &resp.headers,
        ));
    }

    /// The timer headers of a re-INVITE or UPDATE of ours while the timer runs (RFC 4028
    /// §7.4: every one is a refresh): `Session-Expires: <interval>;refresher=uac` and
    /// `Supported: timer`. Nothing without a timer. For any in-dialog re-INVITE/UPDATE we send.
    pub(crate) fn session_timer_refresh_headers(&self) -> Vec<Header> {
        match self.session.get() {
            Some(t) => session_timer::request_headers(
                &self.ctx.config.session_timer(),
                t.interval_secs(),
                Some(Refresher::Uac),
            ),
            None => Vec::new(),
        }
    }

    /// A 2xx to a re-INVITE/UPDATE of ours that carried [`Self::session_timer_refresh_headers`]:
    /// the timer restarts with what it says (or stops, when it says nothing).
    pub(crate) fn note_refresh_answer(&self, resp: &Response) {
        let Some(timer) = self.session.get() else {
            return;
        };
        self.session.note_allow(&resp.headers);
        let cfg = self.ctx.config.session_timer();
        self.start_session_timer(session_timer::negotiate_as_uac(
            &cfg,
            timer.interval_secs(),
            &resp.headers,
        ));
    }

    fn start_session_timer(&self, negotiated: Option<Negotiated>) {
        if let Some(n) = negotiated {
            tracing::debug!(
                call_id = %self.id,
                interval = n.interval,
                we_refresh = n.we_refresh,
                "session timer (re)started"
            );
        }
        self.session
            .set(negotiated.map(|n| Timer::new(n, Instant::now())));
    }

    /// Spawns the task that follows the call's session timer until the call ends.
    pub(crate) fn spawn_session_timer(self: &Arc<Self>) {
        tokio::spawn(drive(self.clone()).instrument(span(&self.id)));
    }

    /// Sends our refresh; the 2xx restarts the timer with what it says, a 408/481 (or no
    /// answer) ends the call, a refused UPDATE is retried as re-INVITE, other failures leave
    /// the session to expire unless the peer refreshes.
    async fn refresh_session(&self, timer: Timer) {
        let Some(dialog) = self.dialog() else { return };
        if self.state() != CallState::Confirmed {
            // Not ACKed yet: the ACK timeout ends such a call; we only wait for expiry.
            return self.refresh_failed(timer);
        }
        let cfg = self.ctx.config.session_timer();
        let interval = timer.interval_secs();
        let mut headers = self.session_timer_refresh_headers();
        let allows_update = self.session.peer_allows_update.load(Ordering::SeqCst);
        let method = session_timer::refresh_method(&cfg, allows_update);
        tracing::debug!(call_id = %self.id, ?method, interval, "session refresh");
        let outcome = match method {
            SessionRefresh::Update => dialog.update(Some(headers), None).await,
            SessionRefresh::Invite => {
                // The SDP we last sent, unchanged (RFC 4028 §7.4: a refresh changes nothing).
                let sdp = self.media.last_local_sdp();
                headers.push(sdp_content_type());
                dialog
                    .reinvite(Some(headers), sdp.map(String::into_bytes))
                    .await
            }
        };
        let (code, reason) = match outcome {
            Ok(Some(resp)) if resp.status_code.kind() == StatusCodeKind::Successful => {
                if method == SessionRefresh::Invite && !resp.body.is_empty() {
                    if let Err(e) = self.media.follow_answer(&resp.body) {
                        tracing::info!(call_id = %self.id, error = %e, "refresh answer ignored");
                    }
                }
                return self.note_refresh_answer(&resp);
            }
            Ok(Some(resp)) => (resp.status_code.code(), reason_of(&resp)),
            Ok(None) => (408, "Request Timeout".to_string()),
            Err(e) => (500, e.to_string()),
        };
        tracing::info!(call_id = %self.id, code, %reason, "session refresh failed");
        if method == SessionRefresh::Update && cfg.refresh.is_none() && matches!(code, 405 | 501) {
            // The peer does not take UPDATE after all: the next try (at once) is a re-INVITE.
            self.session
                .peer_allows_update
                .store(false, Ordering::SeqCst);
            return self.session.changed.notify_one();
        }
        if session_timer::refresh_failure_ends_call(code) {
            let text = format!("session refresh failed: {code} {reason}");
            return self.end_with_bye(code, &text).await;
        }
        self.refresh_failed(timer);
    }

    /// Our refresh failed but the dialog lives: from now on we wait for the expiry, unless
    /// the peer restarted the timer meanwhile.
    fn refresh_failed(&self, timer: Timer) {
        if let Ok(mut t) = self.session.timer.lock() {
            if *t == Some(timer) {
                let mut failed = timer;
                failed.refresh_failed();
                *t = Some(failed);
            }
        }
        self.session.changed.notify_one();
    }
}

/// Follows the call's session timer: refreshes when we are the refresher, ends the call when
/// the peer's refresh is overdue. Returns when the call ends.
async fn drive(call: Arc<Call>) {
    let ended = call.ended();
    tokio::pin!(ended);
    loop {
        let deadline = call.session.get().map(|t| t.deadline().0);
        tokio::select! {
            _ = &mut ended => return,
            _ = call.teardown.cancelled() => return,
            _ = call.session.changed.notified() => continue,
            _ = sleep_until_some(deadline) => {}
        }
        // Read again: a refresh may have restarted the timer as the deadline passed.
        let Some(timer) = call.session.get() else {
            continue;
        };
        let (at, due) = timer.deadline();
        if at > Instant::now() {
            continue;
        }
        match due {
            Due::Refresh => call.refresh_session(timer).await,
            Due::Expire => {
                tracing::info!(call_id = %call.id, "no session refresh in time");
                return call.end_with_bye(408, "session timer expired").await;
            }
        }
    }
}
