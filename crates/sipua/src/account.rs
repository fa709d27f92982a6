//! Registration of one account: REGISTER with digest auth, refresh before expiry, back-off retry
//! after failure, un-REGISTER on stop. Timing decisions are pure functions, tested without
//! sockets; the loop itself runs on the endpoint's SIP stack.

use crate::auth::Authenticator;
use crate::endpoint::Shared;
use crate::event::{Event, RegistrationState};
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self, Header, SipMessage, StatusCode};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// When to refresh a registration the registrar granted for `granted` seconds: well before
/// expiry (like pjsua's 5 s margin, but proportional for long grants), never below 1 s.
pub fn refresh_after(granted: u32) -> Duration {
    let secs = if granted > 60 {
        granted - (granted / 10).clamp(5, 60)
    } else {
        (granted / 2).max(1)
    };
    Duration::from_secs(u64::from(secs))
}

/// Back-off before retry number `failures` (1-based): 2, 4, 8, ... seconds, at most 5 minutes.
pub fn retry_after(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs((2u64 << exp).min(300))
}

/// Outcome of one REGISTER exchange (including its auth round trips).
#[derive(Debug)]
pub(crate) struct RegisterOutcome {
    pub code: u16,
    pub reason: String,
    /// Seconds granted (from Contact `expires` or `Expires`), when 2xx.
    pub granted: u32,
}

/// The state of one account's registration, owned by its task.
pub(crate) struct Registrar {
    shared: Arc<Shared>,
    account: usize,
    call_id: String,
    from_tag: String,
    cseq: u32,
    auth: Authenticator,
}

impl Registrar {
    pub fn new(shared: Arc<Shared>, account: usize) -> Self {
        let cfg = &shared.config.accounts[account];
        let auth = Authenticator::new(cfg.auth_username(), &cfg.password);
        Self {
            call_id: format!("reg-{}-{}", account, crate::ids::random_token(16)),
            from_tag: crate::ids::random_token(10),
            shared,
            account,
            cseq: 0,
            auth,
        }
    }

    fn emit(&self, state: RegistrationState, code: u16, reason: &str, expires: u32) {
        self.shared.emit(Event::Registration {
            account: self.shared.config.accounts[self.account].extension.clone(),
            state,
            code,
            reason: reason.to_string(),
            expires,
        });
    }

    /// Runs until `stop` is cancelled, then unregisters if registered.
    pub async fn run(mut self, stop: CancellationToken) {
        let expires = self.shared.config.register_expires;
        let mut failures = 0u32;
        let mut registered = false;
        loop {
            self.emit(RegistrationState::Registering, 0, "", 0);
            let outcome = tokio::select! {
                _ = stop.cancelled() => break,
                o = self.register(expires) => o,
            };
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
            }
        }
        if registered {
            self.emit(RegistrationState::Unregistering, 0, "", 0);
            // Bounded by stop()'s grace: it must not hang on a registrar that went away.
            let grace = Duration::from_millis(self.shared.config.stop_grace_ms);
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
        let uri = self.shared.registrar_uri(self.account);
        let mut authorization: Option<Header> = self.auth.preemptive("REGISTER", &uri);
        for _round in 0..3 {
            let request = self.build(expires, authorization.take())?;
            let key = TransactionKey::from_request(&request, TransactionRole::Client)?;
            let mut tx = Transaction::new_client(key, request, self.shared.sip.clone(), None);
            tx.destination = Some(self.shared.server_addr()?);
            tx.send().await?;
            let mut last = None;
            while let Some(msg) = tx.receive().await {
                if let SipMessage::Response(resp) = msg {
                    if resp.status_code.kind() != sip::StatusCodeKind::Provisional {
                        last = Some(resp);
                        break;
                    }
                }
            }
            let Some(resp) = last else {
                return Ok(RegisterOutcome {
                    code: 408,
                    reason: "Request Timeout".into(),
                    granted: 0,
                });
            };
            let code = resp.status_code.code();
            if matches!(
                resp.status_code,
                StatusCode::Unauthorized | StatusCode::ProxyAuthenticationRequired
            ) {
                if let Some(h) =
                    self.auth
                        .answer(&resp, "REGISTER", &self.shared.registrar_uri(self.account))?
                {
                    authorization = Some(h);
                    continue;
                }
            }
            let granted = if (200..300).contains(&code) {
                granted_expires(&resp, expires)
            } else {
                0
            };
            return Ok(RegisterOutcome {
                code,
                reason: crate::endpoint::reason_of(&resp),
                granted,
            });
        }
        Ok(RegisterOutcome {
            code: 401,
            reason: "challenged again after authenticating".into(),
            granted: 0,
        })
    }

    fn build(
        &mut self,
        expires: u32,
        authorization: Option<Header>,
    ) -> crate::Result<sip::Request> {
        self.cseq += 1;
        let shared = &self.shared;
        let acc = &shared.config.accounts[self.account];
        let registrar: sip::Uri = shared.registrar_uri(self.account).as_str().try_into()?;
        let aor = shared.aor(self.account);
        let aor_uri: sip::Uri = aor.as_str().try_into()?;
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
        let via = shared.sip.get_via(None, None)?;
        let mut req = shared.sip.make_request(
            sip::Method::Register,
            registrar,
            via,
            from,
            to,
            self.cseq,
            Some(self.call_id.clone().into()),
        );
        req.headers
            .unique_push(Header::Contact(shared.contact_for(&acc.extension).into()));
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
