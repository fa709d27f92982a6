//! Which call a traced SIP message belongs to. Messages the stack sends or receives from its
//! own tasks (an INVITE transaction, a response read by the UDP loop) are in no call's span;
//! the trace gives their SIP Call-ID, and each call registers its Call-ID here, under its
//! endpoint's log scope (two endpoints of one process may share a Call-ID: both ends of a
//! call between them).

use super::layer;
use std::collections::HashMap;
use std::sync::RwLock;

type Key = (Option<u64>, String);

static CALLS: RwLock<Option<HashMap<Key, String>>> = RwLock::new(None);

/// A call's entry, removed when this is dropped (with the call).
pub struct CallTag {
    key: Option<Key>,
}

/// Registers call `call_id` (ours) with SIP Call-ID `sip_call_id` for the endpoint whose span
/// is current. Nothing when no log output is on.
pub fn tag_call(sip_call_id: &str, call_id: &str) -> CallTag {
    let Some(scope) = layer::current_scope() else {
        return CallTag { key: None };
    };
    let key = (scope, sip_call_id.to_string());
    if let Ok(mut calls) = CALLS.write() {
        calls
            .get_or_insert_with(HashMap::new)
            .insert(key.clone(), call_id.to_string());
    }
    CallTag { key: Some(key) }
}

impl Drop for CallTag {
    fn drop(&mut self) {
        if let (Some(key), Ok(mut calls)) = (self.key.take(), CALLS.write()) {
            if let Some(c) = calls.as_mut() {
                c.remove(&key);
            }
        }
    }
}

/// Our id of the call with this SIP Call-ID in endpoint `scope`.
pub(super) fn call_of(scope: Option<u64>, sip_call_id: &str) -> Option<String> {
    let calls = CALLS.read().ok()?;
    calls
        .as_ref()?
        .get(&(scope, sip_call_id.to_string()))
        .cloned()
}
