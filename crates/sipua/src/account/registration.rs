//! Registration of one account: REGISTER with digest auth, refresh before expiry, back-off retry
//! after failure, un-REGISTER on stop. Behind NAT: the registrar's Via `received`/`rport`
//! (RFC 3581) rewrites our Contact and we re-register at once, removing the old binding in the
//! same REGISTER (PJSIP's default contact rewrite), and a CRLF keep-alive to the registrar
//! holds the NAT binding between refreshes. Timing and rewrite decisions are pure functions,
//! tested without sockets; the loop itself runs on the endpoint's SIP stack.

use super::binding::{contacts, granted_expires};
use super::Account;
use crate::context::UaContext;
use crate::event::{AddressSource, Event, RegistrationState};
use crate::sip::auth::{is_challenge, Authenticator, ChallengeLoop};
use crate::sip::message::{reason_of, retry_after_of};
use crate::sip::rport;
use crate::transport::udp_keepalive::{self, KeepAliveSchedule};
use crate::transport::{failover_timeout, unreachable_reported, Attempt, Target};
use rsipstack::sip::{self, Header};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipConnection;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Immediate re-REGISTERs for a changed public address before waiting the normal refresh: a
/// registrar that reports a different address each time must not make us loop.
const MAX_REWRITES_IN_A_ROW: u32 = 3;

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

/// The longest registrar `Retry-After` we wait for; a longer one is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait before retry number `failures`: the back-off shortened by up to a quarter, by
/// `jitter` in [0, 1) (so that operators refused together by a restarting PBX do not all come
/// back in the same second, as pjsua's `reg_retry_random_interval`), and never shorter than
/// the registrar's `Retry-After` (RFC 3261 §21.5.4: do not retry before it).
pub(super) fn retry_wait(failures: u32, registrar_asks: Option<Duration>, jitter: f64) -> Duration {
    let backoff = retry_after(failures).mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0));
    backoff.max(registrar_asks.unwrap_or_default().min(MAX_RETRY_AFTER))
}

/// Outcome of one REGISTER exchange (including its auth round trips).
#[derive(Debug)]
struct RegisterOutcome {
    pub code: u16,
    pub reason: String,
    /// Seconds granted (from Contact `expires` or `Expires`), when 2xx.
    pub granted: u32,
    /// A 503's Retry-After: how long that target is tried last.
    pub retry_after: Option<Duration>,
    /// The public address changed while this REGISTER ran: the registrar holds an old
    /// Contact, re-register now.
    pub contact_stale: bool,
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
    /// The Contact URI the registrar holds for us (last 2xx), removed (`expires=0`) by the
    /// next REGISTER once our public address changed.
    bound: Option<String>,
    /// The Contact URI of the REGISTER in flight.
    sent_contact: String,
    /// Changes of the public address (ours, another account's, STUN's).
    public: watch::Receiver<Option<SocketAddr>>,
    /// The registrar target that answered last: where UDP keep-alives go.
    registrar: Option<Target>,
}

impl Registration {
    pub(crate) fn new(ctx: Arc<UaContext>, account: Arc<Account>) -> Self {
        let auth = Authenticator::new(account.config.auth_username(), &account.config.password);
        Self {
            register_call_id: format!("reg-{}", crate::ids::random_token(16)),
            from_tag: crate::ids::random_token(10),
            public: ctx.addressing.watch(),
            ctx,
            account,
            cseq: 0,
            auth,
            bound: None,
            sent_contact: String::new(),
            registrar: None,
        }
    }

    fn emit(&self, state: RegistrationState, code: u16, reason: &str, expires: u32) {
        self.account.set_registration_state(state);
        let account = &self.account.config.extension;
        let what = state.as_str();
        if state == RegistrationState::Failed {
            self.ctx.signalling.registration_failed(code);
            tracing::warn!(%account, code, reason, "registration {what}");
        } else {
            tracing::info!(%account, code, reason, expires, "registration {what}");
        }
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
        let mut rewrites = 0u32;
        let mut registered = false;
        let mut new_flows = self.ctx.flow.as_ref().map(|f| f.generations());
        loop {
            self.emit(RegistrationState::Registering, 0, "", 0);
            let outcome = tokio::select! {
                _ = stop.cancelled() => break,
                o = self.register(expires) => o,
            };
            // what this REGISTER learned is in `contact_stale`; only later changes wake `wait`
            self.public.borrow_and_update();
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
                if outcome.contact_stale && rewrites < MAX_REWRITES_IN_A_ROW {
                    rewrites += 1;
                    continue;
                }
                rewrites = 0;
                refresh_after(outcome.granted)
            } else {
                failures += 1;
                registered = false;
                self.emit(RegistrationState::Failed, outcome.code, &outcome.reason, 0);
                retry_wait(failures, outcome.retry_after, rand::random())
            };
            let woke = tokio::select! {
                _ = stop.cancelled() => break,
                w = self.wait(wait, registered) => w,
                // A new connection to the PBX: our binding on the old one is unreachable.
                _ = next_flow(&mut new_flows) => {
                    tracing::info!(account = %self.account.config.extension, "re-registering over the new connection");
                    Woke::NewFlow
                }
            };
            if woke != Woke::Refresh {
                rewrites = 0;
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

    /// Waits `wait` before the next REGISTER, or less when the public address changes (then
    /// our Contact at the registrar is stale). While registered, pings the registrar on the
    /// SIP socket every keep-alive interval.
    async fn wait(&mut self, wait: Duration, registered: bool) -> Woke {
        let deadline = tokio::time::Instant::now() + wait;
        let interval = self.ctx.config.udp_keep_alive().filter(|_| registered);
        let target = match interval {
            Some(_) => self
                .registrar
                .as_ref()
                .filter(|t| t.transport == sip::Transport::Udp)
                .map(|t| t.addr),
            None => None,
        };
        let mut schedule = interval.map(|i| KeepAliveSchedule::new(i, std::time::Instant::now()));
        let mut watching = true;
        loop {
            let ping_at = schedule
                .as_ref()
                .filter(|_| target.is_some())
                .map(|s| tokio::time::Instant::from_std(s.next()));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Woke::Refresh,
                changed = self.public.changed(), if watching => match changed {
                    Ok(()) => return Woke::AddressChanged,
                    Err(_) => watching = false, // the context is going away
                },
                _ = sleep_until_some(ping_at) => {
                    if let (Some(s), Some(to)) = (schedule.as_mut(), target) {
                        if s.due(std::time::Instant::now()) {
                            if let Err(e) = self.ctx.sip_socket.send_raw(udp_keepalive::PING, to).await {
                                tracing::debug!(%to, error = %e, "UDP keep-alive not sent");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Learns our public address from a registrar's response, when contact rewrite is on.
    fn note_seen_address(&self, resp: &sip::Response) {
        let current = self.ctx.contact_address();
        let seen = rport::seen_address(resp);
        if let Some(public) = rport::rewrite_to(self.ctx.config.contact_rewrite, current, seen) {
            self.ctx.learn_public_address(public, AddressSource::Rport);
        }
    }

    /// One REGISTER, answering up to two challenges (a second one only when the first answer's
    /// nonce was stale). Transport failures and timeouts come back as 408/503 outcomes, a name
    /// that does not resolve as 502.
    async fn register(&mut self, expires: u32) -> RegisterOutcome {
        match self.try_register(expires).await {
            Ok(o) => o,
            Err(e) => RegisterOutcome {
                // As PJSIP: a name that does not resolve is 502 (retrying the same will not
                // help), other local failures 503 (RFC 3261 §8.1.3.1).
                code: if matches!(e, crate::Error::Resolve { .. }) {
                    502
                } else {
                    503
                },
                reason: e.to_string(),
                granted: 0,
                retry_after: None,
                contact_stale: false,
            },
        }
    }

    /// One REGISTER over the PBX's targets (or the outbound proxy's) in RFC 3263 order: a
    /// timeout, a transport error or a 503 moves on to the next target (remembered as bad for
    /// a while), any other answer is the registrar's.
    async fn try_register(&mut self, expires: u32) -> crate::Result<RegisterOutcome> {
        if let Some(flow) = self.ctx.flow.clone() {
            // On a stream transport the REGISTER is pinned to our connection: if it is down
            // the attempt fails now with the cause, instead of the stack dialling on its own.
            // The flow dials the PBX, or the outbound proxy (and reconnects); there is one
            // target, its peer.
            let conn = flow.connection().await.map_err(crate::Error::Transport)?;
            let target = Target::of_connection(&conn.remote)?;
            let connection = Some(SipConnection::Channel(conn.conn.clone()));
            let route = self.ctx.preloaded_route()?;
            let (_, o) = self
                .register_at(expires, &target, route.as_ref(), None, connection)
                .await?;
            self.registrar = Some(target);
            return Ok(o);
        }
        let route = self.ctx.route(&self.ctx.server_hop()?).await?;
        let t1 = Duration::from_millis(self.ctx.config.timer_t1_ms);
        let count = route.targets.len();
        let mut outcome = None;
        for (i, target) in route.targets.iter().enumerate() {
            let limit = failover_timeout(t1, i + 1 < count);
            let (attempt, o) = self
                .register_at(expires, target, route.preloaded.as_ref(), limit, None)
                .await?;
            if attempt.fails_over() {
                self.ctx.locator.failed(target, o.retry_after);
                tracing::info!(account = %self.account.config.extension, target = %target.addr,
                    code = o.code, reason = %o.reason, "REGISTER failed on this target");
                outcome = Some(o);
                continue;
            }
            self.ctx.locator.answered(target);
            self.registrar = Some(target.clone());
            return Ok(o);
        }
        outcome.ok_or_else(|| crate::Error::Transport("REGISTER: no target to send to".into()))
    }

    /// One REGISTER to one target, answering up to two challenges there.
    async fn register_at(
        &mut self,
        expires: u32,
        target: &Target,
        route: Option<&sip::typed::Route>,
        limit: Option<Duration>,
        connection: Option<SipConnection>,
    ) -> crate::Result<(Attempt, RegisterOutcome)> {
        self.auth.new_request();
        let uri = self.account.registrar_uri.clone();
        let mut credentials = self.auth.preemptive("REGISTER", &uri);
        let mut auth = std::mem::replace(&mut self.auth, Authenticator::new("", ""));
        let mut challenges = ChallengeLoop::new(Some(&mut auth), "REGISTER", &uri);
        let result = loop {
            let resp = match self
                .exchange(
                    expires,
                    credentials.take(),
                    target,
                    route,
                    limit,
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
        let failed = |attempt, code, reason: String| {
            Ok((
                attempt,
                RegisterOutcome {
                    code,
                    reason,
                    granted: 0,
                    retry_after: None,
                    contact_stale: false,
                },
            ))
        };
        let resp = match result {
            Ok(Ok(Some(resp))) => resp,
            Ok(Ok(None)) => return failed(Attempt::Timeout, 408, "Request Timeout".into()),
            Ok(Err(e)) => {
                let reason = format!("cannot send to {}: {e}", target.addr);
                return failed(Attempt::TransportError, 503, reason);
            }
            Err(refused) => {
                return failed(
                    Attempt::Response(refused.code),
                    refused.code,
                    refused.reason,
                )
            }
        };
        let code = resp.status_code.code();
        let ok = (200..300).contains(&code);
        let granted = if ok {
            granted_expires(&resp, expires, &self.sent_contact)
        } else {
            0
        };
        if ok {
            self.bound = (expires > 0).then(|| self.sent_contact.clone());
        }
        let current = self.ctx.contact_uri(&self.account.config.extension);
        Ok((
            Attempt::Response(code),
            RegisterOutcome {
                code,
                reason: reason_of(&resp),
                granted,
                retry_after: retry_after_of(&resp),
                contact_stale: ok && expires > 0 && current != self.sent_contact,
            },
        ))
    }

    /// One REGISTER transaction: its final response, `None` when it timed out (Timer F, or
    /// `limit` without a final response when another target is left to try: registrars
    /// answer REGISTER at once, without 100 Trying). An ICMP error for the target is an error.
    async fn exchange(
        &mut self,
        expires: u32,
        authorization: Option<Header>,
        target: &Target,
        route: Option<&sip::typed::Route>,
        limit: Option<Duration>,
        connection: Option<SipConnection>,
    ) -> crate::Result<Option<sip::Response>> {
        let mut request = self.build(expires, authorization)?;
        if let Some(route) = route {
            request.headers.push(Header::Route(route.clone().into()));
        }
        let key = TransactionKey::from_request(&request, TransactionRole::Client)?;
        let mut tx = Transaction::new_client(key, request, self.ctx.sip.clone(), connection);
        tx.destination = Some(target.sip_addr());
        let mut unreachable = self.ctx.locator.watch_unreachable();
        tx.send().await?;
        let final_response = crate::sip::message::final_response(&mut tx);
        let timed = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, final_response)
                    .await
                    .ok()
                    .flatten(),
                None => final_response.await,
            }
        };
        tokio::select! {
            resp = timed => {
                // a 401 tells it as well as a 2xx: the answer to it carries the new Contact
                if let Some(resp) = &resp {
                    self.note_seen_address(resp);
                }
                Ok(resp)
            }
            _ = unreachable_reported(&mut unreachable, target.addr) => Err(crate::Error::Transport(
                "destination unreachable (ICMP)".into(),
            )),
        }
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
        let (contact, stale) = contacts(
            ctx.contact_uri(&acc.extension),
            self.bound.as_deref(),
            expires,
        );
        req.headers
            .unique_push(Header::Contact(format!("<{contact}>").into()));
        if let Some(old) = stale {
            req.headers
                .push(Header::Contact(format!("<{old}>;expires=0").into()));
        }
        self.sent_contact = contact;
        req.headers.unique_push(Header::Expires(expires.into()));
        if let Some(h) = authorization {
            req.headers.push(h);
        }
        Ok(req)
    }
}

/// Why [`Registration::wait`] returned.
#[derive(Debug, PartialEq, Eq)]
enum Woke {
    Refresh,
    AddressChanged,
    NewFlow,
}

/// Sleeps until `at`, or forever when it is `None` (a disabled `select!` timer).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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

    #[test]
    fn the_retry_wait_is_jittered_below_the_backoff_and_honours_retry_after() {
        assert_eq!(retry_wait(1, None, 0.0), Duration::from_secs(2));
        assert_eq!(retry_wait(1, None, 0.5), Duration::from_millis(1750));
        let most = retry_wait(3, None, 0.999_999);
        assert!(
            most > Duration::from_secs(6) && most < Duration::from_secs(8),
            "{most:?}"
        );
        for failures in 1..6 {
            // each retry still waits longer than the one before, whatever the jitter
            assert!(retry_wait(failures + 1, None, 0.999) > retry_wait(failures, None, 0.0));
        }
        let asked = Some(Duration::from_secs(30));
        assert_eq!(retry_wait(1, asked, 0.3), Duration::from_secs(30));
        assert_eq!(
            retry_wait(9, asked, 0.0),
            Duration::from_secs(300),
            "the back-off when longer"
        );
        assert_eq!(
            retry_wait(1, Some(Duration::from_secs(86_400)), 0.0),
            MAX_RETRY_AFTER
        );
    }
}
