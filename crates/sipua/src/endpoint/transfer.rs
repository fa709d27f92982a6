//! Transfer at the endpoint: `transfer()` (blind to a URI, attended to another of our calls),
//! the application's answer to a peer's REFER, the calls placed for accepted REFERs (the
//! table is ours, so the calls ask us), and which call an INVITE with Replaces takes over.

use super::calls::CallTable;
use super::Endpoint;
use crate::account::AccountTable;
use crate::call::{self, Call, Referral};
use crate::context::UaContext;
use crate::error::{Error, Result};
use crate::sip::message::header_values;
use crate::sip::replaces::{refer_to_with_replaces, Replaces, Verdict};
use crate::sip::uri::dialled_target;
use rsipstack::sip::Request;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::Instrument;

impl Endpoint {
    /// Transfers a confirmed call: to `target` (a number or URI: blind transfer), or, when
    /// `target` is the id of another of our calls, to that call's peer with Replaces
    /// (attended transfer). Resolves once the peer accepted the REFER.
    pub async fn transfer(
        &self,
        call_id: &str,
        target: &str,
        headers: Vec<(String, String)>,
    ) -> Result<()> {
        let call = self.calls.get(call_id)?;
        let refer_to = match self.calls.get(target) {
            Ok(other) if other.id == call.id => {
                return Err(Error::InvalidArgument(format!(
                    "target: call {call_id} cannot be transferred to itself"
                )))
            }
            Ok(other) => other.refer_to_for_replacement()?,
            // The id of a call of ours that is gone: not a number to dial.
            Err(e) if looks_like_call_id(target) => return Err(e),
            Err(_) => {
                let uri = dialled_target(target, self.ctx.server_hostport().as_deref())
                    .map_err(|e| Error::InvalidArgument(e.replacen("to:", "target:", 1)))?;
                format!("<{uri}>")
            }
        };
        call.transfer(refer_to, headers)
            .instrument(self.call_span(call_id))
            .await
    }

    /// The application's answer to the REFER pending on `call_id`: accepted, or refused with
    /// `code` (4xx-6xx).
    pub fn answer_refer(&self, call_id: &str, accept: bool, code: Option<u16>) -> Result<()> {
        // A refusal that names no status is a 603 Decline: the user said no.
        let decision = (!accept).then(|| code.unwrap_or(603));
        if let Some(code) = decision.filter(|c| !(400..700).contains(c)) {
            return Err(Error::InvalidArgument(format!(
                "code: a refused REFER needs a 4xx-6xx status, got {code}"
            )));
        }
        self.calls.get(call_id)?.decide_refer(decision)
    }
}

impl Call {
    /// The Refer-To that has this call's peer called with Replaces naming this call: the
    /// call must be confirmed.
    fn refer_to_for_replacement(&self) -> Result<String> {
        if self.phase() != crate::sip::replaces::DialogPhase::Confirmed {
            return Err(Error::InvalidState {
                operation: "transfer".into(),
                call_id: self.id.clone(),
                state: self.state().as_str().into(),
                expected: "confirmed".into(),
            });
        }
        let (Some(target), Some(replaces)) = (self.remote_target(), self.replaces_for_peer())
        else {
            return Err(Error::NoSuchCall(self.id.clone()));
        };
        Ok(refer_to_with_replaces(&target, &replaces))
    }
}

/// Whether `target` has the shape of our call ids (`out-…`, `in-…`) rather than of a number
/// or URI.
fn looks_like_call_id(target: &str) -> bool {
    (target.starts_with("out-") || target.starts_with("in-")) && !target.contains(['@', ':'])
}

/// Places the calls that accepted REFERs ask for, each an ordinary outgoing call in the table
/// whose `referredFrom` is the transferee's call, until the endpoint stops.
pub(super) async fn serve_referrals(
    ctx: Arc<UaContext>,
    accounts: Arc<AccountTable>,
    calls: CallTable,
    mut referrals: mpsc::UnboundedReceiver<Referral>,
) {
    while let Some(r) = referrals.recv().await {
        let (ctx, accounts, calls) = (ctx.clone(), accounts.clone(), calls.clone());
        // Each on its own: locating one target must not hold up the others.
        tokio::spawn(
            async move {
                match call::place(&ctx, &accounts, &r.from, &r.to, r.headers, None).await {
                    Ok((call, task)) => {
                        call.set_referred_from(&r.referred_from);
                        calls.spawn(call.clone(), task);
                        let _ = r.reply.send(Ok(call));
                    }
                    Err(e) => {
                        let _ = r.reply.send(Err(e));
                    }
                }
            }
            .in_current_span(),
        );
    }
}

/// The call an INVITE's Replaces takes over: `None` without Replaces, `Some(Err(status))`
/// when it must be refused (RFC 3891 §3: 400 unreadable, 481 no such dialog, 486, 603).
pub(super) fn replaced_call(
    calls: &CallTable,
    req: &Request,
) -> Option<std::result::Result<Arc<Call>, u16>> {
    let value = header_values(&req.headers, "Replaces").into_iter().next()?;
    let Some(replaces) = Replaces::parse(&value) else {
        return Some(Err(400));
    };
    let matched = calls.live().into_iter().find(|c| {
        c.dialog_id()
            .is_some_and(|id| replaces.names(&id.call_id, &id.local_tag, &id.remote_tag))
    });
    Some(
        match replaces.verdict(matched.as_ref().map(|c| c.phase())) {
            Verdict::Replace => matched.ok_or(481),
            Verdict::Refuse(code) => Err(code),
        },
    )
}
