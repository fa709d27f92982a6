//! In-dialog requests that rsipstack's dialog would mishandle, answered before it sees them.
//!
//! rsipstack answers nothing to an UPDATE, INFO or NOTIFY on an early (unconfirmed) dialog
//! (`InviteDialog::handle` returns without a response), and its dialog layer does not even find
//! an early dialog of ours as UAC (it is registered under a key without the callee's tag), so
//! those requests would get 481. Here the call answers them itself while it is not confirmed.

use super::in_dialog::info_status;
use super::Call;
use crate::error::Result;
use crate::event::CallState;
use crate::sdp;
use crate::sip::message::sdp_content_type;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::sync::Arc;

/// Answers `tx` when the call is early and the request is one the dialog would leave
/// unanswered; `Ok(false)`: the dialog handles it.
pub(crate) async fn intercept(call: &Arc<Call>, tx: &mut Transaction) -> Result<bool> {
    let early = matches!(
        call.state(),
        CallState::Incoming | CallState::Calling | CallState::Ringing | CallState::Early
    );
    if !early {
        return Ok(false);
    }
    match tx.original.method {
        Method::Update => early_update(call, tx).await?,
        Method::Info => {
            let status = info_status(call, &tx.original);
            tx.reply(status).await?;
        }
        // RFC 6665 §4.1.3: a NOTIFY for no subscription of ours gets 481 (we subscribe to
        // nothing before a call is confirmed: REFER needs a confirmed dialog).
        Method::Notify => tx.reply(StatusCode::CallTransactionDoesNotExist).await?,
        Method::Options | Method::Message => tx.reply(StatusCode::OK).await?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// An UPDATE before the call is answered (RFC 3311 §5.1). Without SDP: 200. With an offer:
/// for an incoming call it replaces the INVITE's offer (our 200 to the INVITE answers it);
/// for our outgoing call, the media (if early media runs) follows it. 488 when unusable.
async fn early_update(call: &Arc<Call>, tx: &mut Transaction) -> Result<()> {
    if tx.original.body.is_empty() {
        return Ok(tx.reply(StatusCode::OK).await?);
    }
    let negotiated = match sdp::parse(&String::from_utf8_lossy(&tx.original.body))
        .and_then(|s| sdp::negotiate(&s, call.ctx.config.srtp))
    {
        Ok(n) => n,
        Err(e) => {
            tracing::info!(call_id = %call.id, error = %e, "488 to an early UPDATE");
            return Ok(tx.reply(StatusCode::NotAcceptableHere).await?);
        }
    };
    let answer = match call.media.answer_reoffer(&call.ctx, &negotiated) {
        Some(answer) => answer,
        None => call.media.answer(&call.ctx, &negotiated),
    };
    if call.state() == CallState::Incoming {
        if let Ok(mut offer) = call.remote_offer.lock() {
            *offer = Some(negotiated);
        }
    }
    // A 2xx to UPDATE carries our Contact (RFC 3311 §5.2: UPDATE is a target refresh).
    let mut headers = vec![sdp_content_type()];
    if let Some(contact) = call.dialog().and_then(|d| d.snapshot().local_contact) {
        headers.push(Header::Contact(format!("<{contact}>").into()));
    }
    tx.reply_with(StatusCode::OK, headers, Some(answer.into_bytes()))
        .await?;
    Ok(())
}
