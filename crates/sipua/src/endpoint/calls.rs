//! The endpoint's call table. A call's task is spawned through it: the call is inserted
//! before its task runs and removed when the task ends, so no call ever removes itself.

use crate::call::Call;
use crate::error::{Error, Result};
use crate::event::CallState;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

/// The calls whose tasks are running, by our call id.
#[derive(Clone, Default)]
pub(crate) struct CallTable {
    calls: Arc<Mutex<HashMap<String, Arc<Call>>>>,
}

impl CallTable {
    /// Inserts `call`, runs `task` on tokio and removes the call when the task ends.
    pub(super) fn spawn(&self, call: Arc<Call>, task: impl Future<Output = ()> + Send + 'static) {
        let id = call.id.clone();
        self.insert(call);
        let table = self.clone();
        let span = crate::call::span(&id);
        tokio::spawn(
            async move {
                task.await;
                table.remove(&id);
            }
            .instrument(span),
        );
    }

    /// Inserts a call whose task the caller runs itself (then calls [`CallTable::remove`]).
    pub(super) fn insert(&self, call: Arc<Call>) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(call.id.clone(), call);
        }
    }

    pub(super) fn remove(&self, id: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.remove(id);
        }
    }

    pub(super) fn get(&self, id: &str) -> Result<Arc<Call>> {
        self.calls
            .lock()
            .map_err(|_| Error::Sip("call table poisoned".into()))?
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoSuchCall(id.to_string()))
    }

    /// The live call of a SIP dialog, by its Call-ID (an in-dialog request names no call id).
    pub(crate) fn by_sip_call_id(&self, sip_call_id: &str) -> Option<Arc<Call>> {
        self.calls
            .lock()
            .ok()?
            .values()
            .find(|c| c.sip_call_id == sip_call_id && c.state() != CallState::Disconnected)
            .cloned()
    }

    /// The calls not yet disconnected (a call's task may outlive the call: a BYE the peer
    /// never answers is retried in the background).
    pub(super) fn live(&self) -> Vec<Arc<Call>> {
        self.calls
            .lock()
            .map(|c| {
                c.values()
                    .filter(|call| call.state() != CallState::Disconnected)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}
