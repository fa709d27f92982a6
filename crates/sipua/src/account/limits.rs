//! Limits on concurrent calls: the endpoint's (`maxCalls`) and each account's
//! (`accounts[].maxCalls`). A call holds a [`CallSlot`] from before it rings or its INVITE goes
//! out until it is disconnected; the slot gives its places back when dropped.

use super::Account;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Takes a place in `count` unless `max` (0: no limit) are taken.
fn claim(count: &AtomicU32, max: u32) -> bool {
    count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (max == 0 || n < max).then_some(n + 1)
        })
        .is_ok()
}

fn release(count: &AtomicU32) {
    let _ = count.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
}

/// Which limit a new call hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitHit {
    /// The endpoint's `maxCalls`.
    Endpoint(u32),
    /// The account's (extension, `maxCalls`).
    Account(String, u32),
}

impl LimitHit {
    /// What the error of `makeCall` and the log say.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Endpoint(max) => {
                format!("the service has {max} calls, its limit (maxCalls {max})")
            }
            Self::Account(ext, max) => {
                format!("account {ext} has {max} calls, its limit (accounts[].maxCalls {max})")
            }
        }
    }
}

/// The endpoint's count of calls, against its `maxCalls`.
pub(crate) struct EndpointCalls {
    count: Arc<AtomicU32>,
    max: u32,
}

impl EndpointCalls {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            count: Arc::new(AtomicU32::new(0)),
            max,
        }
    }

    /// A place for a new call of `account` (none: a call without an account), or the limit
    /// it would exceed.
    pub(crate) fn claim(
        &self,
        account: Option<&Arc<Account>>,
    ) -> std::result::Result<CallSlot, LimitHit> {
        if !claim(&self.count, self.max) {
            return Err(LimitHit::Endpoint(self.max));
        }
        if let Some(acc) = account {
            let max = acc.config.max_calls.unwrap_or(0);
            if !claim(&acc.calls, max) {
                release(&self.count);
                return Err(LimitHit::Account(acc.config.extension.clone(), max));
            }
        }
        Ok(CallSlot {
            endpoint: self.count.clone(),
            account: account.cloned(),
        })
    }
}

/// One call's places in the counts; given back on drop.
pub(crate) struct CallSlot {
    endpoint: Arc<AtomicU32>,
    account: Option<Arc<Account>>,
}

impl CallSlot {
    /// The extension of the call's account, if it has one.
    pub(crate) fn account(&self) -> Option<&str> {
        self.account.as_deref().map(|a| a.config.extension.as_str())
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        release(&self.endpoint);
        if let Some(acc) = &self.account {
            release(&acc.calls);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountConfig;

    fn account(ext: &str, max: Option<u32>) -> Arc<Account> {
        Arc::new(Account::new(
            AccountConfig {
                extension: ext.into(),
                max_calls: max,
                ..AccountConfig::default()
            },
            "h".into(),
            "sip:h".into(),
        ))
    }

    #[test]
    fn limits_count_until_the_slot_is_dropped() {
        let calls = EndpointCalls::new(3);
        let a = account("2001", Some(1));
        let b = account("2002", None);
        let first = calls.claim(Some(&a)).unwrap();
        assert_eq!(first.account(), Some("2001"));
        assert_eq!(
            calls.claim(Some(&a)).err(),
            Some(LimitHit::Account("2001".into(), 1))
        );
        let _b1 = calls.claim(Some(&b)).unwrap();
        let _none = calls.claim(None).unwrap();
        assert_eq!(calls.claim(Some(&b)).err(), Some(LimitHit::Endpoint(3)));
        drop(first);
        // the account's refusal gave its endpoint place back: there is one again
        let again = calls.claim(Some(&a)).unwrap();
        drop(again);
        assert!(calls.claim(Some(&b)).is_ok());
        assert!(LimitHit::Account("2001".into(), 1)
            .describe()
            .contains("account 2001 has 1 calls"));
    }

    #[test]
    fn zero_means_no_limit() {
        let calls = EndpointCalls::new(0);
        let a = account("2001", Some(0));
        let slots: Vec<_> = (0..100).map(|_| calls.claim(Some(&a)).unwrap()).collect();
        assert_eq!(slots.len(), 100);
    }
}
