//! Incoming calls: a new INVITE gets 100 Trying at once, is matched to an account, its offer
//! checked, the call limits and ports reserved (or it is refused: 404, 488, 480, 486, 503),
//! then it rings as an
//! `incoming_call` until the application answers or rejects it, the caller cancels, or
//! `incomingCallTimeoutMs` passes (480).

use super::in_dialog::watch_confirmed;
use super::reliable::{uas_mode_of, UasMode};
use super::state::termination_code;
use super::Call;
use crate::account::AccountTable;
use crate::context::UaContext;
use crate::error::Result;
use crate::event::{CallState, Direction, Event};
use crate::sdp;
use crate::sip::hangup_headers::reason_value;
use crate::sip::mask::masked_headers;
use crate::sip::message::header_pairs;
use crate::sip::uri::strip_uri;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// An accepted INVITE: its call (for the endpoint's table) and what [`IncomingCall::run`]
/// needs to offer and follow it.
pub(crate) struct IncomingCall {
    pub call: Arc<Call>,
    dialog: InviteDialog,
    state_rx: DialogStateReceiver,
    event: Event,
    /// The call an INVITE with Replaces takes over (call/replaces.rs): this one is answered
    /// at once and that one ends.
    replaced: Option<Arc<Call>>,
}

/// A new INVITE: 100 Trying, then the checks. `None` when it was refused (the response is
/// sent); else the call, not offered to the application yet.
pub(crate) async fn accept(
    ctx: &Arc<UaContext>,
    accounts: &AccountTable,
    tx: &mut Transaction,
) -> Result<Option<IncomingCall>> {
    // 100 Trying first, before any work (RFC 3261 §17.2.1): it stops the peer's retransmissions.
    tx.send_trying().await?;
    ctx.signalling.call_attempted(Direction::Incoming);
    let req = tx.original.clone();
    let user = req
        .uri
        .auth
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_default();
    let account = if accounts.is_empty() {
        None
    } else {
        match accounts.find(&user) {
            Some(a) => Some(a),
            None => {
                ctx.signalling.call_failed(Direction::Incoming, 404);
                tx.reply(StatusCode::NotFound).await?;
                return Ok(None);
            }
        }
    };
    let offer = match offer_of(&req, ctx.config.srtp) {
        Ok(offer) => offer,
        Err(e) => {
            tracing::info!(error = %e, "rejecting INVITE: unusable SDP offer");
            ctx.signalling.call_failed(Direction::Incoming, 488);
            tx.reply(StatusCode::NotAcceptableHere).await?;
            return Ok(None);
        }
    };
    // RFC 4028 §9: a Session-Expires below our Min-SE gets 422, a caller without timer
    // support 421 when we require it.
    let timer = super::session_timer::decide_as_uas(&ctx.config.session_timer(), &req.headers);
    if let Some((code, headers)) = timer.rejection() {
        ctx.signalling.call_failed(Direction::Incoming, code.code());
        tx.reply_with(code, headers, None).await?;
        return Ok(None);
    }
    let reliability = uas_mode_of(ctx.config.prack, &req);
    let refusal = match reliability {
        UasMode::Refuse => Some((StatusCode::BadExtension, "Unsupported")),
        UasMode::Required => Some((StatusCode::ExtensionRequired, "Require")),
        _ => None,
    };
    if let Some((status, header)) = refusal {
        ctx.signalling
            .call_failed(Direction::Incoming, status.code());
        let header = sip::Header::Other(header.into(), "100rel".into());
        tx.reply_with(status, vec![header], None).await?;
        return Ok(None);
    }
    if !ctx.has_incoming_handler() {
        // Nobody to ring: refuse at once rather than let the caller wait for a timeout.
        ctx.signalling.call_failed(Direction::Incoming, 480);
        tx.reply_with(
            StatusCode::TemporarilyUnavailable,
            vec![sip::Header::Reason(
                reason_value(480, Some("no handler")).into(),
            )],
            None,
        )
        .await?;
        return Ok(None);
    }
    // Over a call limit: busy, before it rings (and before it takes RTP ports).
    let slot = match accounts.call_limits.claim(account.as_ref()) {
        Ok(slot) => slot,
        Err(hit) => {
            let why = hit.describe();
            tracing::info!(limit = %why, "rejecting INVITE: call limit");
            ctx.signalling.call_failed(Direction::Incoming, 486);
            let reason = reason_value(486, Some(&why));
            tx.reply_with(
                StatusCode::BusyHere,
                vec![sip::Header::Reason(reason.into())],
                None,
            )
            .await?;
            return Ok(None);
        }
    };
    let ports = match super::media::reserve_ports(ctx).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "rejecting INVITE");
            ctx.signalling.call_failed(Direction::Incoming, 503);
            tx.reply(StatusCode::ServiceUnavailable).await?;
            return Ok(None);
        }
    };
    let from = req.from_header()?.typed()?;
    let to = req.to_header()?.typed()?;
    let sip_call_id = req.call_id_header()?.value().to_string();
    let extension = account
        .as_ref()
        .map(|a| a.config.extension.clone())
        .unwrap_or(user);
    let (state_tx, state_rx) = ctx.dialogs.new_dialog_state_channel();
    let contact: sip::Uri = ctx.contact_uri(&extension).as_str().try_into()?;
    let dialog = ctx
        .dialogs
        .get_or_create_server_invite(tx, state_tx, None, Some(contact))?;
    let from_uri = strip_uri(&from.uri.to_string());
    let call = Call::new(
        ctx,
        Direction::Incoming,
        sip_call_id.clone(),
        from_uri.clone(),
        strip_uri(&to.uri.to_string()),
        ports,
        slot,
    );
    call.set_dialog(&dialog);
    call.provisional.set_mode(reliability);
    if let Ok(mut o) = call.remote_offer.lock() {
        *o = offer;
    }
    let event = Event::IncomingCall {
        call_id: call.id.clone(),
        sip_call_id,
        account: extension,
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
        headers: masked_headers(header_pairs(&req.headers).into_iter()),
    };
    Ok(Some(IncomingCall {
        call,
        dialog,
        state_rx,
        event,
        replaced: None,
    }))
}

/// The SDP offer of an INVITE, `None` without a body (we offer in our 200 then).
fn offer_of(
    req: &sip::Request,
    srtp: crate::config::SrtpMode,
) -> std::result::Result<Option<sdp::Negotiated>, sdp::SdpError> {
    if req.body.is_empty() {
        return Ok(None);
    }
    sdp::parse(&String::from_utf8_lossy(&req.body))
        .and_then(|s| sdp::negotiate(&s, srtp))
        .map(Some)
}

impl IncomingCall {
    /// This call takes `old` over (its INVITE's Replaces named it).
    pub(crate) fn replaces(&mut self, old: Arc<Call>) {
        self.replaced = Some(old);
    }

    /// Offers the call (`incoming_call`, 180 Ringing) and follows it to its end, driving the
    /// INVITE server transaction (retransmissions, ACK, CANCEL). The endpoint has put the
    /// call in its table before, so the application can answer it from the event.
    pub(crate) async fn run(self, tx: &mut Transaction) {
        let IncomingCall {
            call,
            dialog,
            state_rx,
            event,
            replaced,
        } = self;
        match replaced {
            // Not offered: it is answered already (an application answering every
            // `incoming_call` would fail); `call_replaced` names it.
            Some(old) => {
                drop(event);
                match call.answer(Vec::new()).await {
                    Ok(()) => old.replaced_by(&call.id),
                    Err(e) => tracing::info!(error = %e, "the replacing call was not answered"),
                }
            }
            None => {
                // 180 before the event: an application that answers at once must not overtake it.
                if let Err(e) = call.send_provisional(&dialog, Vec::new(), None).await {
                    tracing::info!(error = %e, "180 not sent");
                }
                call.ctx.emit(event);
            }
        }
        let watcher = tokio::spawn(watch_incoming(call, state_rx).in_current_span());
        let mut d = dialog.clone();
        if let Err(e) = d.handle(tx).await {
            tracing::debug!(error = %e, "INVITE transaction ended with an error");
        }
        let _ = watcher.await;
    }
}

/// Follows an incoming call: rings until answered, rejected, cancelled or timed out, then as
/// [`watch_confirmed`].
async fn watch_incoming(call: Arc<Call>, mut state_rx: DialogStateReceiver) {
    let ring_deadline = tokio::time::Instant::now()
        + Duration::from_millis(call.ctx.config.incoming_call_timeout_ms);
    let mut state = call.state.subscribe();
    let mut rang_out = false;
    loop {
        if *state.borrow_and_update() != CallState::Incoming {
            // Answered (or ended): the rest is the confirmed-call watcher's job.
            return watch_confirmed(&call, state_rx).await;
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
                let _ = call.reject(480, Some("no answer".into()), Vec::new());
            }
            // answer() changed the state: the loop's check hands over.
            _ = state.changed() => {}
            _ = call.teardown.cancelled() => return,
        }
    }
}
