//! Calls: the state machine (pure, see [`next_state`]) and the tasks that drive rsipstack's
//! INVITE dialogs for outgoing and incoming calls, turning dialog states into [`Event`]s.

use crate::auth::Authenticator;
use crate::call_media;
use crate::endpoint::{reason_of, CallInfo, Shared};
use crate::error::{Error, Result};
use crate::event::{CallState, Direction, Event};
use crate::media::session::MediaSession;
use crate::media::MediaDirection;
use crate::rtp_ports::{PortLease, RtpPortPair};
use crate::sdp;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self, Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// What can happen to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A provisional response to our INVITE (100, 180, 183...).
    Provisional(u16),
    /// A 2xx to our INVITE (ACK sent by the stack).
    Answered,
    /// We sent 200 to an incoming INVITE.
    LocalAnswer,
    /// The ACK for our 200 arrived.
    Ack,
    /// The call ended (final non-2xx, BYE, CANCEL, timeout).
    End,
}

/// The call state machine: the state after `input`, or `None` when the input does not apply
/// in `state` (e.g. a late 180 after the call was answered) and must be ignored.
pub fn next_state(state: CallState, input: Input) -> Option<CallState> {
    use CallState::*;
    match (state, input) {
        (Disconnected, _) => None,
        (_, Input::End) => Some(Disconnected),
        (Calling | Ringing | Early, Input::Provisional(code)) => match code {
            180..=182 => Some(Ringing),
            183 => Some(Early),
            _ => None,
        },
        (Calling | Ringing | Early, Input::Answered) => Some(Confirmed),
        (Incoming, Input::LocalAnswer) => Some(Connecting),
        (Connecting, Input::Ack) => Some(Confirmed),
        _ => None,
    }
}

/// One call, shared by its task and the API.
pub(crate) struct Call {
    pub id: String,
    pub sip_call_id: String,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    /// The state; `hangup()` waits on it for `Disconnected`.
    state: watch::Sender<CallState>,
    dialog: Mutex<Option<InviteDialog>>,
    /// Our even RTP port and its reservation, held for the call's life.
    rtp_port: u16,
    lease: Mutex<Option<PortLease>>,
    /// The RTP and RTCP sockets until the media session takes them.
    sockets: Mutex<Option<(std::net::UdpSocket, std::net::UdpSocket)>>,
    media: Mutex<Option<Arc<MediaSession>>>,
    /// Version of our SDP (o= line), bumped for each new offer or answer.
    sdp_version: std::sync::atomic::AtomicU64,
    /// The SDP offer of an incoming call, answered on `answer()`.
    remote_offer: Mutex<Option<sdp::Negotiated>>,
    hangup_requested: AtomicBool,
    /// Wakes the outgoing INVITE task to send its CANCEL.
    cancel_requested: Notify,
    /// Cancelled by `stop()` after its grace period: the call's tasks give up at once.
    teardown: CancellationToken,
    /// Final status we chose (reject) or received; 0 until known.
    final_code: AtomicU16,
    shared: Arc<Shared>,
}

impl Call {
    fn new(
        shared: &Arc<Shared>,
        direction: Direction,
        sip_call_id: String,
        from: String,
        to: String,
        ports: RtpPortPair,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: format!(
                "{}-{}",
                match direction {
                    Direction::Outgoing => "out",
                    Direction::Incoming => "in",
                },
                crate::ids::random_token(12)
            ),
            sip_call_id,
            direction,
            from,
            to,
            state: watch::Sender::new(match direction {
                Direction::Outgoing => CallState::Calling,
                Direction::Incoming => CallState::Incoming,
            }),
            dialog: Mutex::new(None),
            rtp_port: ports.rtp_port,
            lease: Mutex::new(Some(ports.lease)),
            sockets: Mutex::new(Some((ports.rtp, ports.rtcp))),
            media: Mutex::new(None),
            sdp_version: std::sync::atomic::AtomicU64::new(1),
            remote_offer: Mutex::new(None),
            hangup_requested: AtomicBool::new(false),
            cancel_requested: Notify::new(),
            teardown: CancellationToken::new(),
            final_code: AtomicU16::new(0),
            shared: shared.clone(),
        })
    }

    pub fn state(&self) -> CallState {
        *self.state.borrow()
    }

    /// Resolves once the call is `Disconnected`.
    async fn ended(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| *s == CallState::Disconnected).await;
    }

    pub fn info(&self) -> CallInfo {
        CallInfo {
            id: self.id.clone(),
            sip_call_id: self.sip_call_id.clone(),
            direction: self.direction,
            from: self.from.clone(),
            to: self.to.clone(),
            state: self.state(),
        }
    }

    pub(crate) fn media(&self) -> Option<Arc<MediaSession>> {
        self.media.lock().ok().and_then(|m| m.clone())
    }

    pub(crate) fn set_media(&self, session: Arc<MediaSession>) {
        if let Ok(mut m) = self.media.lock() {
            *m = Some(session);
        }
    }

    pub(crate) fn take_media(&self) -> Option<Arc<MediaSession>> {
        self.media.lock().ok().and_then(|mut m| m.take())
    }

    pub(crate) fn take_sockets(&self) -> Option<(std::net::UdpSocket, std::net::UdpSocket)> {
        self.sockets.lock().ok().and_then(|mut s| s.take())
    }

    pub(crate) fn next_sdp_version(&self) -> u64 {
        self.sdp_version.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Sends an INFO in the call's dialog (DTMF as `application/dtmf-relay`).
    pub(crate) async fn send_info(&self, content_type: &str, body: Vec<u8>) -> Result<()> {
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        if self.state() != CallState::Confirmed {
            return Err(Error::InvalidState {
                call_id: self.id.clone(),
                state: format!("{:?}", self.state()).to_lowercase(),
                operation: "send INFO".into(),
            });
        }
        match dialog
            .info(
                Some(vec![call_media::content_type(content_type)]),
                Some(body),
            )
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

    fn dialog(&self) -> Option<InviteDialog> {
        self.dialog.lock().ok().and_then(|d| d.clone())
    }

    /// Applies `input`; emits a `call_state` event when the state changed. Returns whether it did.
    fn apply(&self, input: Input, code: u16, reason: &str) -> bool {
        let mut next = None;
        self.state
            .send_if_modified(|state| match next_state(*state, input) {
                Some(n) if n != *state => {
                    *state = n;
                    next = Some(n);
                    true
                }
                _ => false,
            });
        let Some(next) = next else {
            return false;
        };
        self.shared.emit(Event::CallState {
            call_id: self.id.clone(),
            state: next,
            direction: self.direction,
            code,
            reason: reason.to_string(),
        });
        if next == CallState::Disconnected {
            self.shared.remove_call(&self.id);
            call_media::stop_media(&self.shared, self);
            if let Ok(mut s) = self.sockets.lock() {
                s.take();
            }
            if let Ok(mut l) = self.lease.lock() {
                l.take();
            }
            if let Some(d) = self.dialog() {
                self.shared.dialogs.remove_dialog(&d.id());
            }
        }
        true
    }

    fn end(&self, code: u16, reason: &str) {
        self.apply(Input::End, code, reason);
    }

    /// Answers an incoming call: 200 OK with the SDP answer.
    pub async fn answer(&self) -> Result<()> {
        self.expect(CallState::Incoming, "answer")?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        let offer = self.remote_offer.lock().ok().and_then(|o| o.clone());
        let version = self.next_sdp_version();
        let body = match &offer {
            Some(neg) => sdp::build_answer(
                session_id(),
                version,
                self.shared.advertised,
                self.rtp_port,
                neg,
            ),
            // No offer in the INVITE: ours goes in the 200, the answer comes in the ACK.
            None => sdp::build_offer(session_id(), version, self.shared.advertised, self.rtp_port),
        };
        // Media first: the peer may send RTP as soon as it sees the 200.
        if let Some(neg) = &offer {
            call_media::start_media(&self.shared, self, neg);
        }
        dialog.accept(
            Some(vec![Header::ContentType("application/sdp".into())]),
            Some(body.into_bytes()),
        )?;
        self.apply(Input::LocalAnswer, 200, "OK");
        Ok(())
    }

    /// Rejects an incoming call that is not answered yet.
    pub fn reject(&self, code: u16, reason: Option<String>) -> Result<()> {
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
    pub async fn hangup(&self) -> Result<()> {
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
                    tracing::debug!(call = %self.id, error = %e, "603 not sent");
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
                    tokio::spawn(send_bye(d, None, self.id.clone()));
                }
            }
        }
    }

    /// Holds (`sendonly`) or resumes (`sendrecv`) a confirmed call by re-INVITE. A peer that
    /// refuses or never answers (64·T1) leaves the call and its media as they were; that is
    /// a `request_failed` event and the error of this call.
    pub async fn set_hold(&self, hold: bool) -> Result<()> {
        let purpose = if hold { "hold" } else { "unhold" };
        self.expect(CallState::Confirmed, purpose)?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        let direction = if hold {
            MediaDirection::SendOnly
        } else {
            MediaDirection::SendRecv
        };
        let offer = sdp::build_offer_with(
            session_id(),
            self.next_sdp_version(),
            self.shared.advertised,
            self.rtp_port,
            direction,
        );
        let outcome = dialog
            .reinvite(
                Some(vec![Header::ContentType("application/sdp".into())]),
                Some(offer.into_bytes()),
            )
            .await;
        let (code, reason) = match outcome {
            Ok(Some(resp)) if resp.status_code.kind() == sip::StatusCodeKind::Successful => {
                match call_media::follow_answer(self, &resp.body) {
                    Ok(()) => {
                        self.shared.emit(Event::Hold {
                            call_id: self.id.clone(),
                            by: "local".into(),
                            held: hold,
                        });
                        return Ok(());
                    }
                    Err(e) => (
                        488,
                        format!("Not Acceptable Here: unusable SDP answer ({e})"),
                    ),
                }
            }
            Ok(Some(resp)) => (resp.status_code.code(), reason_of(&resp)),
            Ok(None) => (408, "Request Timeout".to_string()),
            Err(e) => (500, e.to_string()),
        };
        self.shared.emit(Event::RequestFailed {
            call_id: self.id.clone(),
            method: "INVITE".into(),
            purpose: purpose.into(),
            code,
            reason: reason.clone(),
        });
        Err(Error::Sip(format!(
            "{purpose}: the re-INVITE of call {} got {code} {reason}; the call keeps its media",
            self.id
        )))
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

    fn expect(&self, wanted: CallState, operation: &str) -> Result<()> {
        let state = self.state();
        if state != wanted {
            return Err(Error::InvalidState {
                call_id: self.id.clone(),
                state: format!("{state:?}").to_lowercase(),
                operation: operation.to_string(),
            });
        }
        Ok(())
    }
}

/// Sends the BYE of a call that is already over for the application: a peer that does not
/// answer it only shows in the log (the transaction gives up after 64·T1).
async fn send_bye(dialog: InviteDialog, reason: Option<String>, call_id: String) {
    let headers = reason.map(|r| vec![Header::Reason(r.into())]);
    if let Err(e) = dialog.bye_with_headers(headers).await {
        tracing::info!(call = %call_id, error = %e, "BYE failed or not answered");
    }
}

/// Sends our CANCEL in the background (its own transaction may time out: RFC 3261 §9.1 ends
/// the call by the INVITE's side) and returns when to give up on the INVITE: 64·T1 from now.
fn send_cancel(dialog: &InviteDialog, call: &Call) -> tokio::time::Instant {
    let d = dialog.clone();
    let call_id = call.id.clone();
    tokio::spawn(async move {
        if let Err(e) = d.cancel().await {
            tracing::info!(call = %call_id, error = %e, "CANCEL failed or not answered");
        }
    });
    tokio::time::Instant::now() + call.shared.config.t1x64()
}

pub(crate) fn session_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Code and reason for a dialog that terminated without a final response telling us why.
fn termination_code(reason: &TerminatedReason) -> (u16, &'static str) {
    match reason {
        TerminatedReason::Timeout => (408, "Request Timeout"),
        TerminatedReason::UacCancel => (487, "Request Terminated"),
        TerminatedReason::UacBye | TerminatedReason::UasBye => (200, "Normal call clearing"),
        TerminatedReason::UacBusy | TerminatedReason::UasBusy => (486, "Busy Here"),
        TerminatedReason::UasDecline => (603, "Decline"),
        TerminatedReason::ProxyAuthRequired => (407, "Proxy Authentication Required"),
        TerminatedReason::ProxyError(c)
        | TerminatedReason::UacOther(c)
        | TerminatedReason::UasOther(c) => (c.code(), "Call failed"),
    }
}

/// Turns `to` into a request URI: a SIP URI as given, else `number@pbx`.
fn target_uri(shared: &Shared, to: &str) -> Result<String> {
    let to = to.trim();
    if to.is_empty() {
        return Err(Error::InvalidArgument("to: empty".into()));
    }
    if to.starts_with("sip:") || to.starts_with("sips:") {
        let _: sip::Uri = to
            .try_into()
            .map_err(|e| Error::InvalidArgument(format!("to: not a SIP URI: {to:?} ({e})")))?;
        return Ok(to.to_string());
    }
    if to.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"') {
        return Err(Error::InvalidArgument(format!(
            "to: not a number, extension or SIP URI: {to:?}"
        )));
    }
    if to.contains('@') {
        return Ok(format!("sip:{to}"));
    }
    match shared.server_hostport() {
        Some(hp) => Ok(format!("sip:{to}@{hp}")),
        None => Err(Error::InvalidArgument(format!(
            "to: {to:?} is a number but no server is configured; use a SIP URI such as sip:{to}@host:port"
        ))),
    }
}

/// Whether an INVITE to `target` goes to the configured PBX: numbers and URIs of the PBX's own
/// domain do; a SIP URI naming another host goes where it says (as pjsua does without a proxy).
fn routes_via_server(shared: &Shared, target: &str) -> bool {
    let Some(server) = shared.config.server.as_deref() else {
        return false;
    };
    let host = target.split_once('@').map(|(_, h)| h).unwrap_or_else(|| {
        target
            .trim_start_matches("sips:")
            .trim_start_matches("sip:")
    });
    let host = host.split([';', '>', '?']).next().unwrap_or(host);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => {
            if port.parse::<u16>().ok() != Some(shared.config.server_port) {
                return false;
            }
            h
        }
        _ => host,
    };
    host.trim_matches(['[', ']'])
        .eq_ignore_ascii_case(server.trim_matches(['[', ']']))
}

/// Places an outgoing call from the account `from` to `to`; returns once the INVITE task runs.
pub(crate) async fn place(
    shared: &Arc<Shared>,
    from: &str,
    to: &str,
    headers: Vec<(String, String)>,
) -> Result<CallInfo> {
    let target = target_uri(shared, to)?;
    let account = shared.config.find_account(from);
    let (user, display_name, aor, auth) = match account {
        Some(i) => {
            let acc = &shared.config.accounts[i];
            (
                acc.extension.clone(),
                acc.display_name.clone(),
                shared.aor(i),
                Some(Authenticator::new(acc.auth_username(), &acc.password)),
            )
        }
        None if shared.config.server.is_none()
            && !from.trim().is_empty()
            && !from.contains(char::is_whitespace) =>
        {
            // Peer-to-peer use without accounts: `from` is just our user name.
            let user = from
                .trim()
                .trim_start_matches("sip:")
                .split('@')
                .next()
                .unwrap_or("")
                .to_string();
            (
                user.clone(),
                None,
                format!("sip:{user}@{}", shared.advertised),
                None,
            )
        }
        None => {
            return Err(Error::InvalidArgument(format!(
                "from: no account with extension, username or URI {from:?}"
            )))
        }
    };
    for (name, _) in &headers {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::InvalidArgument(format!(
                "headers: not a header name: {name:?}"
            )));
        }
    }
    let ports = shared.ports.allocate()?;
    let offer = sdp::build_offer(session_id(), 1, shared.advertised, ports.rtp_port);
    let sip_call_id = format!("{}@sip-native", crate::ids::random_token(20));
    let call = Call::new(
        shared,
        Direction::Outgoing,
        sip_call_id.clone(),
        aor.clone(),
        target.clone(),
        ports,
    );
    let extra: Vec<Header> = headers
        .into_iter()
        .map(|(n, v)| Header::Other(n, v))
        .collect();
    let option = InviteOption {
        caller_display_name: display_name,
        caller: aor
            .as_str()
            .try_into()
            .map_err(|e| Error::InvalidArgument(format!("from: {e}")))?,
        callee: target
            .as_str()
            .try_into()
            .map_err(|e| Error::InvalidArgument(format!("to: {e}")))?,
        destination: if routes_via_server(shared, &target) {
            Some(shared.server_addr()?)
        } else {
            None
        },
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        contact: shared
            .contact_uri(&user)
            .as_str()
            .try_into()
            .map_err(|e| Error::Sip(format!("contact: {e}")))?,
        credential: None,
        headers: Some(extra),
        call_id: Some(sip_call_id),
        ..Default::default()
    };
    shared.insert_call(call.clone());
    shared.emit(Event::CallState {
        call_id: call.id.clone(),
        state: CallState::Calling,
        direction: Direction::Outgoing,
        code: 0,
        reason: String::new(),
    });
    let info = call.info();
    let shared = shared.clone();
    tokio::spawn(async move {
        run_outgoing(shared.clone(), call.clone(), option, auth).await;
        // Only now: a BYE sent after the call ended still needs the peer's Contact.
        shared.remote_targets.forget(&call.sip_call_id);
    });
    Ok(info)
}

async fn run_outgoing(
    shared: Arc<Shared>,
    call: Arc<Call>,
    mut option: InviteOption,
    mut auth: Option<Authenticator>,
) {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(shared.config.invite_timeout_ms);
    let base_headers = option.headers.clone().unwrap_or_default();
    let mut timed_out = false;
    for _attempt in 0..3 {
        let (state_tx, mut state_rx) = shared.dialogs.new_dialog_state_channel();
        let (dialog, mut handle) = match shared.dialogs.do_invite_async(option.clone(), state_tx) {
            Ok(v) => v,
            Err(e) => return call.end(500, &format!("cannot send INVITE: {e}")),
        };
        if let Ok(mut d) = call.dialog.lock() {
            *d = Some(dialog.clone());
        }
        // Set once we sent a CANCEL (hangup or inviteTimeoutMs): the INVITE is given up 64·T1
        // later if no final response came (RFC 3261 §9.1).
        let mut give_up: Option<tokio::time::Instant> = None;
        let result = loop {
            tokio::select! {
                r = &mut handle => break Some(r),
                Some(st) = state_rx.recv() => {
                    if let DialogState::Early(_, resp) = st {
                        let code = resp.status_code.code();
                        call.apply(Input::Provisional(code), code, &reason_of(&resp));
                    }
                }
                _ = call.cancel_requested.notified(), if give_up.is_none() => {
                    give_up = Some(send_cancel(&dialog, &call));
                }
                _ = tokio::time::sleep_until(deadline), if give_up.is_none() && !timed_out => {
                    timed_out = true;
                    give_up = Some(send_cancel(&dialog, &call));
                }
                _ = sleep_until_some(give_up) => break None,
                _ = call.teardown.cancelled() => break None,
            }
        };
        let Some(result) = result else {
            // Dropping the INVITE task ends its transaction and the early dialog.
            handle.abort();
            return if timed_out {
                call.end(
                    408,
                    "Request Timeout (no answer, and no final response after CANCEL)",
                )
            } else {
                call.end(487, "Request Terminated (no final response after CANCEL)")
            };
        };
        let cancelled = give_up.is_some();
        let resp = match result {
            Ok(Ok((_, Some(resp)))) => resp,
            Ok(Ok((_, None))) if cancelled && !timed_out => {
                return call.end(487, "Request Terminated (no response to the INVITE)")
            }
            Ok(Ok((_, None))) => return call.end(408, "Request Timeout"),
            Ok(Err(e)) => {
                let text = e.to_string();
                let code = if text.to_ascii_lowercase().contains("timeout") {
                    408
                } else {
                    500
                };
                return call.end(code, &text);
            }
            Err(e) => return call.end(500, &format!("INVITE task failed: {e}")),
        };
        let code = resp.status_code.code();
        if (200..300).contains(&code) {
            if cancelled {
                // A 2xx that crossed our CANCEL: the stack ACKs it and sends BYE (§9.1).
                return if timed_out {
                    call.end(408, "Request Timeout (no answer; the late 2xx got a BYE)")
                } else {
                    call.end(
                        487,
                        "Request Terminated (the 2xx that crossed our CANCEL got a BYE)",
                    )
                };
            }
            match sdp::parse(&String::from_utf8_lossy(&resp.body)).and_then(|a| sdp::negotiate(&a))
            {
                Ok(negotiated) => call_media::start_media(&shared, &call, &negotiated),
                Err(e) => {
                    call.end(
                        488,
                        &format!("Not Acceptable Here: unusable SDP answer ({e})"),
                    );
                    return send_bye(dialog, None, call.id.clone()).await;
                }
            }
            call.apply(Input::Answered, code, &reason_of(&resp));
            return watch_confirmed(&shared, &call, state_rx).await;
        }
        if matches!(
            resp.status_code,
            StatusCode::Unauthorized | StatusCode::ProxyAuthenticationRequired
        ) && !cancelled
            && !call.hangup_requested.load(Ordering::SeqCst)
        {
            let uri = option.callee.to_string();
            if let Some(Ok(Some(header))) = auth.as_mut().map(|a| a.answer(&resp, "INVITE", &uri)) {
                let mut headers = base_headers.clone();
                headers.push(header);
                option.headers = Some(headers);
                continue;
            }
        }
        let (code, reason) = if timed_out && code == 487 {
            (408, "Request Timeout (no answer)".to_string())
        } else {
            (code, reason_of(&resp))
        };
        return call.end(code, &reason);
    }
    call.end(401, "challenged again after authenticating");
}

/// Sleeps until `at`, or forever when it is `None` (a disabled `select!` timer).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Follows a confirmed call until it ends; answers in-dialog requests the dialog hands us.
async fn watch_confirmed(
    shared: &Arc<Shared>,
    call: &Arc<Call>,
    mut state_rx: rsipstack::dialog::dialog::DialogStateReceiver,
) {
    let rtp_timeout = Duration::from_millis(shared.config.rtp_timeout_ms);
    // Checked a few times per timeout period, so the call ends within 1.25 × rtpTimeoutMs.
    let mut rtp_check = tokio::time::interval((rtp_timeout / 4).max(Duration::from_millis(50)));
    rtp_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let st = tokio::select! {
            st = state_rx.recv() => match st {
                Some(st) => st,
                None => break,
            },
            _ = rtp_check.tick(), if !rtp_timeout.is_zero() => {
                let silent = call.media().and_then(|m| m.silent_for(std::time::Instant::now()));
                if silent.is_some_and(|d| d >= rtp_timeout) && call.state() == CallState::Confirmed {
                    let dialog = call.dialog();
                    call.end(408, "RTP timeout");
                    if let Some(d) = dialog {
                        let reason = "SIP;cause=408;text=\"RTP timeout\"".to_string();
                        send_bye(d, Some(reason), call.id.clone()).await;
                    }
                    return;
                }
                continue;
            }
            _ = call.teardown.cancelled() => return,
        };
        match st {
            // Late offer: we offered in our 200, the answer came in the ACK.
            DialogState::Confirmed(..)
                if call.apply(Input::Ack, 200, "OK") && call.media().is_none() =>
            {
                let ack_sdp = call
                    .dialog()
                    .and_then(|d| d.last_remote_ack())
                    .map(|ack| String::from_utf8_lossy(&ack.body).into_owned());
                if let Some(Ok(n)) =
                    ack_sdp.map(|b| sdp::parse(&b).and_then(|a| sdp::negotiate(&a)))
                {
                    call_media::start_media(shared, call, &n);
                }
            }
            DialogState::Terminated(_, reason) => {
                let (code, text) = termination_code(&reason);
                let known = call.final_code.load(Ordering::SeqCst);
                let code = if known != 0
                    && !matches!(reason, TerminatedReason::UacBye | TerminatedReason::UasBye)
                {
                    known
                } else {
                    code
                };
                let text = if code == 200 {
                    if call.hangup_requested.load(Ordering::SeqCst) {
                        "local hangup"
                    } else {
                        "remote hangup"
                    }
                } else {
                    text
                };
                return call.end(code, text);
            }
            DialogState::Updated(_, req, handle) => {
                // A re-INVITE or UPDATE: follow a new offer (hold, new address or codec).
                if req.body.is_empty() {
                    let _ = handle.reply(StatusCode::OK).await;
                    continue;
                }
                match call_media::answer_reoffer(shared, call, &req.body) {
                    Some(answer) => {
                        let _ = handle
                            .respond(
                                StatusCode::OK,
                                Some(vec![Header::ContentType("application/sdp".into())]),
                                Some(answer.into_bytes()),
                            )
                            .await;
                    }
                    None => {
                        let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                    }
                }
            }
            DialogState::Info(_, req, handle) => {
                let content_type = req.header_value("Content-Type");
                match call_media::dtmf_from_info(content_type.as_deref(), &req.body) {
                    Some((digit, duration_ms)) => {
                        shared.emit(Event::Dtmf {
                            call_id: call.id.clone(),
                            digit: digit.to_string(),
                            method: "info".into(),
                            duration_ms,
                        });
                        let _ = handle.reply(StatusCode::OK).await;
                    }
                    None => {
                        let _ = handle.reply(StatusCode::UnsupportedMediaType).await;
                    }
                }
            }
            DialogState::Options(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Message(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Refer(_, _, handle) | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
            }
            _ => {}
        }
    }
    call.end(500, "dialog ended without a reason");
}

/// A new INVITE: 100 Trying, match the account, check the offer, 180, report `incoming_call`.
pub(crate) async fn on_invite(shared: &Arc<Shared>, tx: &mut Transaction) -> Result<()> {
    // 100 Trying first, before any work (RFC 3261 §17.2.1): it stops the peer's retransmissions.
    tx.send_trying().await?;
    let req = tx.original.clone();
    let user = req
        .uri
        .auth
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_default();
    let account = if shared.config.accounts.is_empty() {
        None
    } else {
        match shared.config.find_account(&user) {
            Some(i) => Some(i),
            None => {
                tx.reply(StatusCode::NotFound).await?;
                return Ok(());
            }
        }
    };
    let offer = if req.body.is_empty() {
        None
    } else {
        let parsed =
            sdp::parse(&String::from_utf8_lossy(&req.body)).and_then(|s| sdp::negotiate(&s));
        match parsed {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::info!(error = %e, "rejecting INVITE: unusable SDP offer");
                tx.reply(StatusCode::NotAcceptableHere).await?;
                return Ok(());
            }
        }
    };
    let ports = match shared.ports.allocate() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "rejecting INVITE");
            tx.reply(StatusCode::ServiceUnavailable).await?;
            return Ok(());
        }
    };
    let from = req.from_header()?.typed()?;
    let to = req.to_header()?.typed()?;
    let sip_call_id = req.call_id_header()?.value().to_string();
    let contact_user = account
        .map(|i| shared.config.accounts[i].extension.clone())
        .unwrap_or(user.clone());
    let (state_tx, state_rx) = shared.dialogs.new_dialog_state_channel();
    let contact: sip::Uri = shared.contact_uri(&contact_user).as_str().try_into()?;
    let dialog = shared
        .dialogs
        .get_or_create_server_invite(tx, state_tx, None, Some(contact))?;
    let from_uri = strip_uri(&from.uri.to_string());
    let call = Call::new(
        shared,
        Direction::Incoming,
        sip_call_id,
        from_uri.clone(),
        strip_uri(&to.uri.to_string()),
        ports,
    );
    if let Ok(mut d) = call.dialog.lock() {
        *d = Some(dialog.clone());
    }
    if let Ok(mut o) = call.remote_offer.lock() {
        *o = offer;
    }
    shared.insert_call(call.clone());
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (n, v) = text.split_once(':')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    shared.emit(Event::IncomingCall {
        call_id: call.id.clone(),
        account: account
            .map(|i| shared.config.accounts[i].extension.clone())
            .unwrap_or(user),
        from: from_uri,
        to: call.to.clone(),
        display_name: from
            .display_name
            .clone()
            .map(|d| d.trim_matches('"').to_string())
            .filter(|d| !d.is_empty()),
        from_user: from
            .uri
            .auth
            .as_ref()
            .map(|a| a.user.clone())
            .unwrap_or_default(),
        headers: crate::mask::masked_headers(headers.into_iter()),
    });
    let _ = dialog.ringing(None, None);
    let watcher = tokio::spawn(watch_incoming(shared.clone(), call.clone(), state_rx));
    // Drive the INVITE server transaction (100 Trying, retransmissions, ACK, CANCEL).
    let mut d = dialog.clone();
    let result = d.handle(tx).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "INVITE transaction ended with an error");
    }
    let _ = watcher.await;
    Ok(())
}

/// Follows an incoming call: rings until answered, rejected, cancelled or timed out, then as
/// [`watch_confirmed`].
async fn watch_incoming(
    shared: Arc<Shared>,
    call: Arc<Call>,
    mut state_rx: rsipstack::dialog::dialog::DialogStateReceiver,
) {
    let ring_deadline =
        tokio::time::Instant::now() + Duration::from_millis(shared.config.incoming_call_timeout_ms);
    let mut state = call.state.subscribe();
    let mut rang_out = false;
    loop {
        if *state.borrow_and_update() != CallState::Incoming {
            // Answered (or ended): the rest is the confirmed-call watcher's job.
            return watch_confirmed(&shared, &call, state_rx).await;
        }
        tokio::select! {
            st = state_rx.recv() => match st {
                Some(DialogState::Terminated(_, reason)) => {
                    let (code, text) = termination_code(&reason);
                    let known = call.final_code.load(Ordering::SeqCst);
                    let code = if known != 0 { known } else { code };
                    return call.end(code, if known != 0 { "rejected" } else { text });
                }
                Some(_) => {}
                None => return call.end(500, "dialog ended without a reason"),
            },
            _ = tokio::time::sleep_until(ring_deadline), if !rang_out => {
                rang_out = true;
                let _ = call.reject(480, Some("no answer".into()));
            }
            // answer() changed the state: the loop's check hands over.
            _ = state.changed() => {}
            _ = call.teardown.cancelled() => return,
        }
    }
}

/// `sip:user@host` without display name, brackets or parameters.
fn strip_uri(uri: &str) -> String {
    uri.trim()
        .trim_start_matches('<')
        .split(['>', ';'])
        .next()
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallState::*;

    #[test]
    fn outgoing_call_path() {
        assert_eq!(next_state(Calling, Input::Provisional(100)), None);
        assert_eq!(next_state(Calling, Input::Provisional(180)), Some(Ringing));
        assert_eq!(next_state(Ringing, Input::Provisional(183)), Some(Early));
        assert_eq!(next_state(Early, Input::Answered), Some(Confirmed));
        assert_eq!(next_state(Calling, Input::Answered), Some(Confirmed));
        assert_eq!(next_state(Confirmed, Input::Provisional(180)), None);
        assert_eq!(next_state(Confirmed, Input::End), Some(Disconnected));
    }

    #[test]
    fn incoming_call_path() {
        assert_eq!(next_state(Incoming, Input::LocalAnswer), Some(Connecting));
        assert_eq!(next_state(Connecting, Input::Ack), Some(Confirmed));
        assert_eq!(next_state(Incoming, Input::Ack), None);
        assert_eq!(next_state(Incoming, Input::End), Some(Disconnected));
        assert_eq!(next_state(Incoming, Input::Answered), None);
    }

    #[test]
    fn disconnected_is_final() {
        for input in [
            Input::Provisional(180),
            Input::Answered,
            Input::LocalAnswer,
            Input::Ack,
            Input::End,
        ] {
            assert_eq!(next_state(Disconnected, input), None);
        }
    }

    #[test]
    fn termination_codes() {
        assert_eq!(termination_code(&TerminatedReason::UacCancel).0, 487);
        assert_eq!(termination_code(&TerminatedReason::Timeout).0, 408);
        assert_eq!(
            termination_code(&TerminatedReason::UasOther(StatusCode::from(503))).0,
            503
        );
    }

    #[test]
    fn uri_stripping() {
        assert_eq!(strip_uri("<sip:1000@pbx;transport=udp>"), "sip:1000@pbx");
        assert_eq!(strip_uri("sip:1000@pbx"), "sip:1000@pbx");
    }
}
