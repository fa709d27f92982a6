//! A confirmed call until it ends: the ACK (with a late answer), the peer's BYE, and one
//! handler per in-dialog request the dialog hands us (re-INVITE/UPDATE, INFO, REFER and NOTIFY
//! of a transfer, the ones we only acknowledge, the ones we do not implement), plus the
//! `rtpTimeoutMs` watch.

use super::media::dtmf_from_info;
use super::reoffer::on_reoffer;
use super::state::{termination_code, Input};
use super::Call;
use crate::event::{CallState, Event};
use crate::sdp;
use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Request, StatusCode};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Follows a confirmed call until it ends; answers in-dialog requests the dialog hands us.
pub(super) async fn watch_confirmed(call: &Arc<Call>, mut state_rx: DialogStateReceiver) {
    call.spawn_session_timer();
    let rtp_timeout = Duration::from_millis(call.ctx.config.rtp_timeout_ms);
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
                if peer_went_silent(call, rtp_timeout) {
                    return call.end_with_bye(408, "RTP timeout").await;
                }
                continue;
            }
            _ = call.teardown.cancelled() => return,
        };
        match st {
            // The dialog reports each in-dialog request it answered as Confirmed again.
            DialogState::Confirmed(_, resp) if super::transfer::answers_refer(&resp) => {
                call.refer_answered.notify_one()
            }
            DialogState::Confirmed(..) => on_ack(call),
            DialogState::Terminated(_, reason) => return on_terminated(call, &reason),
            DialogState::Updated(_, req, handle) => on_reoffer(call, &req, handle).await,
            DialogState::Info(_, req, handle) => on_info(call, &req, handle).await,
            DialogState::Notify(_, req, handle) => {
                super::transfer::on_notify(call, &req, handle).await
            }
            // Spawned: the application's decision must not hold up the call's other requests.
            DialogState::Refer(_, req, handle) => {
                let refer = super::transfer::on_refer(call.clone(), req, handle);
                tokio::spawn(refer.in_current_span());
            }
            DialogState::Options(_, _, handle) | DialogState::Message(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
            }
            _ => {}
        }
    }
    call.end(500, "dialog ended without a reason");
}

/// The ACK for our 200. With a late offer (we offered in our 200) the answer is in the ACK.
fn on_ack(call: &Call) {
    call.on_reoffer_ack();
    if !call.apply(Input::Ack, 200, "OK") || call.media.session().is_some() {
        return;
    }
    let ack_sdp = call
        .dialog()
        .and_then(|d| d.last_remote_ack())
        .map(|ack| String::from_utf8_lossy(&ack.body).into_owned());
    if let Some(Ok(n)) =
        ack_sdp.map(|b| sdp::parse(&b).and_then(|a| sdp::negotiate(&a, call.ctx.config.srtp)))
    {
        call.media.start(&call.ctx, &call.id, &n);
    }
}

/// The dialog ended: a BYE (ours or the peer's), a timeout, or a final answer we chose.
fn on_terminated(call: &Call, reason: &TerminatedReason) {
    let (code, text) = termination_code(reason);
    let known = call.final_code.load(Ordering::SeqCst);
    let by_bye = matches!(reason, TerminatedReason::UacBye | TerminatedReason::UasBye);
    let code = if known != 0 && !by_bye { known } else { code };
    let text = match (code, call.hangup_requested.load(Ordering::SeqCst)) {
        (200, true) => "local hangup",
        (200, false) => "remote hangup",
        _ => text,
    };
    call.end(code, text);
}

/// An INFO: DTMF (`application/dtmf-relay`) becomes a `dtmf` event; other bodies get 415.
async fn on_info(call: &Call, req: &Request, handle: TransactionHandle) {
    let _ = handle.reply(info_status(call, req)).await;
}

/// What an INFO gets, confirmed or early: 200 for DTMF (a `dtmf` event), 415 otherwise.
pub(super) fn info_status(call: &Call, req: &Request) -> StatusCode {
    let content_type = req.header_value("Content-Type");
    match dtmf_from_info(content_type.as_deref(), &req.body) {
        Some((digit, duration_ms)) => {
            call.ctx.emit(Event::Dtmf {
                call_id: call.id.clone(),
                digit: digit.to_string(),
                method: "info".into(),
                duration_ms,
            });
            StatusCode::OK
        }
        None => StatusCode::UnsupportedMediaType,
    }
}

/// Whether a confirmed call's peer has sent no RTP or RTCP for `timeout` while it should.
fn peer_went_silent(call: &Call, timeout: Duration) -> bool {
    let silent = call
        .media
        .session()
        .and_then(|m| m.silent_for(std::time::Instant::now()));
    silent.is_some_and(|d| d >= timeout) && call.state() == CallState::Confirmed
}
