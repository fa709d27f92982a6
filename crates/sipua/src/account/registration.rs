//! Registration of one account: REGISTER with digest auth, refresh before expiry, back-off retry
//! after failure, un-REGISTER on stop. Timing decisions are pure functions, tested without
//! sockets; the loop itself runs on the endpoint's SIP stack.

use super::Account;
use crate::context::UaContext;
use crate::event::{Event, RegistrationState};
use crate::sip::auth::{is_challenge, Authenticator, ChallengeLoop};
use crate::sip::message::reason_of;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self, Header, SipMessage};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{SipAddr, SipConnection};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Resolves when a new connection to the PBX is up; never without a stream transport.
async fn next_flow(flows: &mut Option<watch::Receiver<u64>>) {
    let changed = match flows {
        Some(rx) => rx.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

/// When to refresh a registration the registrar granted for `granted` seconds: well before
/// expiry (like pjsua's 5 s margin, but proportional for long grants), never below 1 s.
pub(super) fn refresh_after(granted: u32) -> Duration {
    let secs = if granted > 60 {
        granted - (granted / 10).clamp(5, 60)
    } else {
        (granted / 2).max(1)
    };
    Duration::from_secs(u64::from(secs))
}

/// Back-off before retry number `failures` (1-based): 2, 4, 8, ... seconds, at most 5 minutes.
pub(super) fn retry_after(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs((2u64 << exp).min(300))
}

/// Outcome of one REGISTER exchange (including its auth round trips).
#[derive(Debug)]
struct RegisterOutcome {
    pub code: u16,
    pub reason: String,
    /// Seconds granted (from Contact `expires` or `Expires`), when 2xx.
    pub granted: u32,
}

/// The REGISTER client of one account (RFC 3261 §10.2), owned by its task.
pub(crate) struct Registration {
    ctx: Arc<UaContext>,
    account: Arc<Account>,
    /// The Call-ID of all this account's REGISTERs (RFC 3261 §10.2.4: the same for refreshes).
    register_call_id: String,
    from_tag: String,
    cseq: u32,
    auth: Authenticator,
}

impl Registration {
    pub(crate) fn new(ctx: Arc<UaContext>, account: Arc<Account>) -> Self {
        let auth = Authenticator::new(account.config.auth_username(), &account.config.password);
        Self {
            register_call_id: format!("reg-{}", crate::ids::random_token(16)),
            from_tag: crate::ids::random_token(10),
            ctx,
            account,
            cseq: 0,
            auth,
        }
    }

    fn emit(&self, state: RegistrationState, code: u16, reason: &str, expires: u32) {
        self.ctx.emit(Event::Registration {
            account: self.account.config.extension.clone(),
            state,
            code,
            reason: reason.to_string(),
            expires,
        });
    }

    /// Runs until `stop` is cancelled, then unregisters if registered.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let expires = self.ctx.config.register_expires;
        let mut failures = 0u32;
        let mut registered = false;
        let mut new_flows = self.ctx.flow.as_ref().map(|f| f.generations());
        loop {
            self.emit(RegistrationState::Registering, 0, "", 0);
            let outcome = tokio::select! {
                _ = stop.cancelled() => break,
                o = self.register(expires) => o,
            };
            // The connection this REGISTER used (or failed to get) is accounted for.
            if let Some(rx) = new_flows.as_mut() {
                rx.borrow_and_update();
            }
            let wait = if (200..300).contains(&outcome.code) {
                failures = 0;
                registered = true;
                self.emit(
                    RegistrationState::Registered,
                    outcome.code,
                    &outcome.reason,
                    outcome.granted,
                );
                refresh_after(outcome.granted)
            } else {
                failures += 1;
                registered = false;
                self.emit(RegistrationState::Failed, outcome.code, &outcome.reason, 0);
                retry_after(failures)
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                // A new connection to the PBX: our binding on the old one is unreachable.
                _ = next_flow(&mut new_flows) => {
                    tracing::info!(account = %self.account.config.extension, "re-registering over the new connection");
                }
            }
        }
        if registered {
            self.emit(RegistrationState::Unregistering, 0, "", 0);
            // Bounded by stop()'s grace: it must not hang on a registrar that went away.
            let grace = Duration::from_millis(self.ctx.config.stop_grace_ms);
            let outcome = tokio::time::timeout(grace, self.register(0)).await;
            let (code, reason) = match outcome {
                Ok(o) => (o.code, o.reason),
                Err(_) => (408, "Request Timeout".to_string()),
            };
            self.emit(RegistrationState::Unregistered, code, &reason, 0);
        } else {
            self.emit(RegistrationState::Unregistered, 0, "stopped", 0);
        }
    }

    /// One REGISTER, answering up to two challenges (a second one only when the first answer's
    /// nonce was stale). Transport failures and timeouts come back as 408/503 outcomes.
    async fn register(&mut self, expires: u32) -> RegisterOutcome {
        match self.try_register(expires).await {
            Ok(o) => o,
            Err(e) => RegisterOutcome {
                code: 503,
                reason: e.to_string(),
                granted: 0,
            },
        }
    }

    async fn try_register(&mut self, expires: u32) -> crate::Result<RegisterOutcome> {
        self.auth.new_request();
        let uri = self.account.registrar_uri.clone();
        // On a stream transport the REGISTER is pinned to our connection: if it is down the
        // attempt fails now with the cause, instead of the stack dialling on its own.
        let (destination, connection) = match &self.ctx.flow {
            Some(flow) => {
                let flow = flow.connection().await.map_err(crate::Error::Transport)?;
                (
                    flow.remote.clone(),
                    Some(SipConnection::Channel(flow.conn.clone())),
                )
            }
            None => (self.ctx.server_addr()?, None),
        };
        let mut credentials = self.auth.preemptive("REGISTER", &uri);
        let mut auth = std::mem::replace(&mut self.auth, Authenticator::new("", ""));
        let mut challenges = ChallengeLoop::new(Some(&mut auth), "REGISTER", &uri);
        let result = loop {
            let resp = match self
                .exchange(
                    expires,
                    credentials.take(),
                    &destination,
                    connection.clone(),
                )
                .await
            {
                Ok(Some(resp)) if is_challenge(&resp) => resp,
                other => break Ok(other),
            };
            match challenges.answer(&resp) {
                Ok(header) => credentials = Some(header),
                Err(refused) => break Err(refused),
            }
        };
        self.auth = auth;
        let resp = match result {
            Ok(Ok(Some(resp))) => resp,
            Ok(Ok(None)) => {
                return Ok(RegisterOutcome {
                    code: 408,
                    reason: "Request Timeout".into(),
                    granted: 0,
                })
            }
            Ok(Err(e)) => return Err(e),
            Err(refused) => {
                return Ok(RegisterOutcome {
                    code: refused.code,
                    reason: refused.reason,
                    granted: 0,
                })
            }
        };
        let code = resp.status_code.code();
        let granted = if (200..300).contains(&code) {
            granted_expires(&resp, expires)
        } else {
            0
        };
        Ok(RegisterOutcome {
            code,
            reason: reason_of(&resp),
            granted,
        })
    }

    /// One REGISTER transaction: its final response, `None` when it timed out (Timer F).
    async fn exchange(
        &mut self,
        expires: u32,
        authorization: Option<Header>,
        destination: &SipAddr,
        connection: Option<SipConnection>,
    ) -> crate::Result<Option<sip::Response>> {
        let request = self.build(expires, authorization)?;
        let key = TransactionKey::from_request(&request, TransactionRole::Client)?;
        let mut tx = Transaction::new_client(key, request, self.ctx.sip.clone(), connection);
        tx.destination = Some(destination.clone());
        tx.send().await?;
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(resp) = msg {
                if resp.status_code.kind() != sip::StatusCodeKind::Provisional {
                    return Ok(Some(resp));
                }
            }
        }
        Ok(None)
    }

    fn build(
        &mut self,
        expires: u32,
        authorization: Option<Header>,
    ) -> crate::Result<sip::Request> {
        self.cseq += 1;
        let ctx = &self.ctx;
        let acc = &self.account.config;
        let registrar: sip::Uri = self.account.registrar_uri.as_str().try_into()?;
        let aor_uri: sip::Uri = self.account.aor.as_str().try_into()?;
        let from = sip::typed::From {
            display_name: acc.display_name.clone(),
            uri: aor_uri.clone(),
            params: vec![sip::Param::Tag(self.from_tag.clone().into())],
        };
        let to = sip::typed::To {
            display_name: None,
            uri: aor_uri,
            params: vec![],
        };
        let via = ctx.sip.get_via(Some(ctx.via_addr()), None)?;
        let mut req = ctx.sip.make_request(
            sip::Method::Register,
            registrar,
            via,
            from,
            to,
            self.cseq,
            Some(self.register_call_id.clone().into()),
        );
        req.headers
            .unique_push(Header::Contact(ctx.contact_for(&acc.extension).into()));
        req.headers.unique_push(Header::Expires(expires.into()));
        if let Some(h) = authorization {
            req.headers.push(h);
        }
        Ok(req)
    }
}

/// The lifetime granted in a 2xx: our Contact's `expires` param, else the Expires header,
/// else what we asked for.
fn granted_expires(resp: &sip::Response, asked: u32) -> u32 {
    for contact in resp.contact_headers() {
        if let Ok(typed) = contact.typed() {
            for p in &typed.params {
                if let sip::Param::Expires(e) = p {
                    if let Ok(v) = e.value().parse::<u32>() {
                        return v;
                    }
                }
            }
        }
    }
    resp.header_value("Expires")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_before_expiry() {
        assert_eq!(refresh_after(3600), Duration::from_secs(3540));
        assert_eq!(refresh_after(300), Duration::from_secs(270));
        assert_eq!(refresh_after(120), Duration::from_secs(108));
        assert_eq!(refresh_after(60), Duration::from_secs(30));
        assert_eq!(refresh_after(1), Duration::from_secs(1));
        assert_eq!(refresh_after(0), Duration::from_secs(1));
        for g in 1..5000 {
            assert!(refresh_after(g).as_secs() < u64::from(g.max(2)));
        }
    }

    #[test]
    fn retry_backs_off_and_caps() {
        assert_eq!(retry_after(1), Duration::from_secs(2));
        assert_eq!(retry_after(2), Duration::from_secs(4));
        assert_eq!(retry_after(5), Duration::from_secs(32));
        assert_eq!(retry_after(9), Duration::from_secs(300));
        assert_eq!(retry_after(u32::MAX), Duration::from_secs(300));
    }
}
