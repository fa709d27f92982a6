//! The endpoint's call table. A call's task is spawned through it: the call is inserted
//! before its task runs and removed when the task ends, so no call ever removes itself.

use crate::call::{Call, CallInfo, Referral};
use crate::error::{Error, Result};
use crate::event::CallState;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Snapshots of ended calls kept for `callInfo` (their end time, how they ended), newest last.
const KEPT_ENDED: usize = 256;

/// The calls whose tasks are running, by our call id, and the last ended ones' snapshots.
#[derive(Clone, Default)]
pub(crate) struct CallTable {
    calls: Arc<Mutex<HashMap<String, Arc<Call>>>>,
    ended: Arc<Mutex<VecDeque<CallInfo>>>,
    /// Where a tabled call asks for the new call of a REFER it accepted (endpoint/transfer.rs).
    referrals: Arc<OnceLock<mpsc::UnboundedSender<Referral>>>,
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
        if let Some(sink) = self.referrals.get() {
            call.set_referral_sink(sink.clone());
        }
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(call.id.clone(), call);
        }
    }

    /// Sets where the tabled calls send their referrals; the first call holds.
    pub(super) fn set_referral_sink(&self, sink: mpsc::UnboundedSender<Referral>) {
        let _ = self.referrals.set(sink);
    }

    pub(super) fn remove(&self, id: &str) {
        let removed = self
            .calls
            .lock()
            .ok()
            .and_then(|mut calls| calls.remove(id));
        if let (Some(call), Ok(mut ended)) = (removed, self.ended.lock()) {
            if ended.len() >= KEPT_ENDED {
                ended.pop_front();
            }
            ended.push_back(call.info());
        }
    }

    /// The snapshot of a call: live, or among the last ended ones.
    pub(super) fn info(&self, id: &str) -> Result<CallInfo> {
        if let Ok(call) = self.get(id) {
            return Ok(call.info());
        }
        self.ended
            .lock()
            .ok()
            .and_then(|e| e.iter().rev().find(|i| i.id == id).cloned())
            .ok_or_else(|| Error::NoSuchCall(id.to_string()))
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
