//! Requests that start a server transaction: a new INVITE becomes a call in the table, an
//! in-dialog request goes to its dialog, the rest is answered here.

use super::calls::CallTable;
use crate::account::AccountTable;
use crate::call;
use crate::context::UaContext;
use crate::error::Result;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use std::sync::Arc;
use tracing::Instrument;

/// What the dispatcher needs: the context, the accounts and the call table.
#[derive(Clone)]
pub(super) struct Dispatcher {
    pub ctx: Arc<UaContext>,
    pub accounts: Arc<AccountTable>,
    pub calls: CallTable,
}

impl Dispatcher {
    /// Serves the stack's new server transactions until the stack stops.
    pub(super) async fn serve(self, mut incoming: TransactionReceiver) {
        while let Some(mut tx) = incoming.recv().await {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.dispatch(&mut tx).await {
                    tracing::warn!(method = %tx.original.method, error = %e, "request handling failed");
                }
            }.in_current_span());
        }
    }

    async fn dispatch(&self, tx: &mut Transaction) -> Result<()> {
        let in_dialog = tx
            .original
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some();
        match tx.original.method {
            Method::Invite if !in_dialog => {
                let result = self.new_call(tx).await;
                // The call's tasks are over (or none started): its Contact is of no more use,
                // nor what was left for its messages (the final response is out by now).
                if let Ok(id) = tx.original.call_id_header() {
                    self.ctx.remote_targets.forget(id.value());
                    self.ctx.hangup_headers.forget(id.value());
                }
                result
            }
            Method::Ack => Ok(()),
            // rsipstack's own PRACK handler answers 200 to any RAck (RFC 3262 callee side).
            Method::PRack if in_dialog => {
                let call = tx
                    .original
                    .call_id_header()
                    .ok()
                    .and_then(|id| self.calls.by_sip_call_id(id.value()));
                call::on_prack(call, tx).await
            }
            _ if in_dialog => self.in_dialog(tx).await,
            Method::Options => Ok(tx.reply(StatusCode::OK).await?),
            Method::Bye | Method::Cancel => {
                Ok(tx.reply(StatusCode::CallTransactionDoesNotExist).await?)
            }
            _ => Ok(tx.reply(StatusCode::MethodNotAllowed).await?),
        }
    }

    /// A request in a dialog: what the call answers itself (`call::intercept`), else the
    /// dialog's.
    async fn in_dialog(&self, tx: &mut Transaction) -> Result<()> {
        let call = tx
            .original
            .call_id_header()
            .ok()
            .and_then(|id| self.calls.by_sip_call_id(id.value()));
        if let Some(call) = call {
            if call::intercept(&call, tx).await? {
                return Ok(());
            }
        }
        match self.ctx.dialogs.match_dialog(tx) {
            Some(rsipstack::dialog::dialog::Dialog::Invite(mut d)) => Ok(d.handle(tx).await?),
            _ => Ok(tx.reply(StatusCode::CallTransactionDoesNotExist).await?),
        }
    }

    /// A new INVITE: accepted calls are in the table while they last.
    async fn new_call(&self, tx: &mut Transaction) -> Result<()> {
        // An INVITE with Replaces (RFC 3891) takes a call of ours over, or is refused here.
        let replaced = match super::transfer::replaced_call(&self.calls, &tx.original) {
            Some(Err(code)) => return Ok(tx.reply(StatusCode::from(code)).await?),
            Some(Ok(old)) => Some(old),
            None => None,
        };
        let Some(mut incoming) = call::accept(&self.ctx, &self.accounts, tx).await? else {
            return Ok(());
        };
        if let Some(old) = replaced {
            incoming.replaces(old);
        }
        let id = incoming.call.id.clone();
        self.calls.insert(incoming.call.clone());
        incoming.run(tx).instrument(call::span(&id)).await;
        self.calls.remove(&id);
        Ok(())
    }
}
