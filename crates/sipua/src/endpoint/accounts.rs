//! Accounts at run time: `addAccount` puts an operator's account into the table and starts
//! its registration; `removeAccount` takes it out, ends its calls and un-REGISTERs it,
//! bounded as `stop()` is; `accounts()` lists them with their registration state.

use super::Endpoint;
use crate::account::{Account, Registration};
use crate::call::Hangup;
use crate::config::AccountConfig;
use crate::error::{Error, Result};
use crate::event::CallState;
use crate::sip::hangup_headers::reason_value;
use rsipstack::sip::Header;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// One account as `accounts()` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountInfo {
    /// Its extension.
    pub extension: String,
    /// Its digest user name (the extension when none is configured).
    pub username: String,
    /// Where its registration is: `registering`, `registered`, ..., `unregistered`.
    pub state: &'static str,
}

/// The registration task of one account, and what stops it alone.
pub(super) struct RegistrationTask {
    pub extension: String,
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Endpoint {
    /// Starts the registration of `acc` when it registers (and a server is configured).
    pub(super) fn start_registration(&self, acc: &Arc<Account>) {
        if self.ctx.config.server.is_none() || !acc.config.register.unwrap_or(true) {
            return;
        }
        let stop = self.registrations.child_token();
        let registration = Registration::new(self.ctx.clone(), acc.clone());
        let task = tokio::spawn(registration.run(stop.clone()).instrument(self.span.clone()));
        if let Ok(mut t) = self.registration_tasks.lock() {
            t.push(RegistrationTask {
                extension: acc.config.extension.clone(),
                stop,
                task,
            });
        }
    }

    /// Adds an account at run time: checked as the config's accounts are (the error names
    /// the field; a duplicate extension is one). Resolves once it is in the table; its
    /// `registration` events follow.
    pub async fn add_account(&self, config: AccountConfig) -> Result<()> {
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::NotRunning);
        }
        let account = self.accounts.add(config)?;
        tracing::info!(parent: &self.span, account = %account.config.extension, "account added");
        self.start_registration(&account);
        Ok(())
    }

    /// Removes an account at run time: new calls to and from it are refused at once, its
    /// calls end (BYE, CANCEL or 603 with `Reason: SIP;cause=200;text="account removed"`)
    /// and it un-REGISTERs; resolves when both are done, or after `stopGraceMs` (whatever is
    /// left is torn down). An unknown extension is an error.
    pub async fn remove_account(&self, extension: &str) -> Result<()> {
        let account = self.accounts.remove(extension)?;
        async {
            tracing::info!(account = %extension, "removing account");
            let grace = Duration::from_millis(self.ctx.config.stop_grace_ms);
            let deadline = tokio::time::Instant::now() + grace;
            let calls: Vec<_> = self
                .calls
                .live()
                .into_iter()
                .filter(|c| c.account.as_deref() == Some(extension))
                .collect();
            let reason = reason_value(200, Some("account removed"));
            for c in &calls {
                c.request_hangup(Hangup {
                    headers: vec![Header::Reason(reason.clone().into())],
                    ..Hangup::default()
                });
            }
            let registration = self.registration_tasks.lock().ok().and_then(|mut t| {
                let i = t.iter().position(|r| r.extension == extension)?;
                Some(t.remove(i))
            });
            if let Some(mut r) = registration {
                r.stop.cancel();
                // the un-REGISTER is bounded by the grace itself; the margin lets its event out
                let margin = Duration::from_millis(500);
                if tokio::time::timeout_at(deadline + margin, &mut r.task)
                    .await
                    .is_err()
                {
                    r.task.abort();
                }
            }
            while tokio::time::Instant::now() < deadline
                && calls.iter().any(|c| c.state() != CallState::Disconnected)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for c in &calls {
                c.tear_down();
            }
            drop(account);
        }
        .instrument(self.span.clone())
        .await;
        Ok(())
    }

    /// The accounts, in the order they were added, with their registration state.
    pub fn accounts(&self) -> Vec<AccountInfo> {
        self.accounts
            .list()
            .iter()
            .map(|a| AccountInfo {
                extension: a.config.extension.clone(),
                username: a.config.auth_username().to_string(),
                state: a.registration_state().as_str(),
            })
            .collect()
    }
}
