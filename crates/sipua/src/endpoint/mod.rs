//! One user agent: the UDP transport and the stream transports, the SIP stack (rsipstack's
//! transaction and dialog layers), the registration tasks of its accounts and the table of its
//! calls. The top of the engine:
//! public entry points validate their arguments and return [`crate::Error`]; nothing here
//! panics on network input.

mod accounts;
mod calls;
mod dispatch;
mod media_api;
mod metrics;
mod options;
mod progress;
mod reoffer;
mod streams;
mod transfer;

pub use accounts::AccountInfo;
pub use media_api::DtmfMethod;
pub use options::OptionsReply;

use crate::account::AccountTable;
use crate::call::{self, CallInfo};
use crate::config::{EndpointConfig, TransportKind};
use crate::context::{Network, UaContext};
use crate::error::{Error, Result};
use crate::event::{AddressSource, Event};
use crate::sip::guard::MAX_DATAGRAM;
use crate::sip::hangup_headers::HangupHeaders;
use crate::sip::inspect::Inspectors;
use crate::sip::late_answer::LateAnswers;
use crate::sip::message::extra_headers;
use crate::sip::remote_target::RemoteTargets;
use crate::sip::rfc2543::Rfc2543Tags;
use crate::sip::via_received::ViaReceived;
use crate::transport::{
    family, Addressing, Admission, GuardedUdpSocket, Locator, NextHop, StackResolver,
    TransportCounters, ViaRewrite,
};
use calls::CallTable;
use dispatch::Dispatcher;
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Where the endpoint listens, as reported to the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocalAddress {
    /// The bound IP address.
    pub address: String,
    /// The bound port.
    pub port: u16,
    /// `udp`, `tcp`, `tls`, `ws` or `wss`.
    pub transport: &'static str,
}

/// Live counts, for leak checks and monitoring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Calls not yet disconnected.
    pub live_calls: usize,
    /// SIP transactions the stack is running.
    pub live_transactions: usize,
    /// Messages the guards dropped: bad UDP datagrams, bad stream messages (answered 400
    /// when routable), streams that could not be framed (closed).
    pub malformed_messages: u64,
    /// Requests the guards answered by RFC 3261 §8.2 (505, 416, 420, 415, 406, 405, 501...).
    pub refused_requests: u64,
}

/// A running user agent.
pub struct Endpoint {
    ctx: Arc<UaContext>,
    accounts: Arc<AccountTable>,
    calls: CallTable,
    stack: rsipstack::transaction::endpoint::Endpoint,
    registrations: CancellationToken,
    /// The SIP stack's serve loop and our request dispatcher: aborted after the stack shuts down.
    stack_tasks: Mutex<Vec<JoinHandle<()>>>,
    /// One per registered account: they end by themselves (bounded un-REGISTER) on cancel.
    registration_tasks: Mutex<Vec<accounts::RegistrationTask>>,
    socket: Arc<GuardedUdpSocket>,
    /// The TCP or TLS listener's address, when there is one.
    tcp_listener: Option<SocketAddr>,
    /// Set by `stop()`: the metrics' gauges read zero from then on.
    stopped: AtomicBool,
    /// The runtime `start` ran on, for its task count in the metrics (which are read from
    /// threads outside it).
    runtime: tokio::runtime::Handle,
    /// The span `start` ran in: the endpoint's tasks and API calls run in it, so a log
    /// subscriber can tell endpoints apart (see [`crate::logging`]).
    span: tracing::Span,
}

/// Binds the SIP socket from the config.
async fn bind_udp(config: &EndpointConfig) -> Result<tokio::net::UdpSocket> {
    let bind_ip: IpAddr = config.bind_address.parse().map_err(|_| {
        Error::Config(format!(
            "bindAddress: not an IP address: {:?}",
            config.bind_address
        ))
    })?;
    let bind = SocketAddr::new(bind_ip, config.local_port);
    let socket = family::bind_udp(bind)
        .and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        })
        .map_err(|e| Error::Transport(format!("cannot bind UDP {bind}: {e}")))?;
    Ok(socket)
}

/// The stack's timers from T1 (RFC 3261 §17): 64·T1 for B, F, H; T2 at least T1.
fn stack_timers(config: &EndpointConfig) -> EndpointOption {
    let t1 = Duration::from_millis(config.timer_t1_ms);
    EndpointOption {
        t1,
        t2: EndpointOption::default().t2.max(t1),
        t1x64: config.t1x64(),
        ..EndpointOption::default()
    }
}

impl Endpoint {
    /// Binds the transport, starts the SIP stack and the registrations. Events go to `events`;
    /// the sender is dropped by [`Endpoint::stop`], which ends the receiver's stream.
    pub async fn start(
        mut config: EndpointConfig,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<Self> {
        config.resolve_websocket("websocketUrl")?;
        config.validate()?;
        let socket = bind_udp(&config).await?;
        let addressing = Arc::new(Addressing::new(&config, socket.local_addr()?));
        let counters = Arc::new(TransportCounters::default());
        let admission = Arc::new(Admission::from_config(&config)?);
        let cancel = CancellationToken::new();
        let guarded = Arc::new(GuardedUdpSocket::new(
            socket,
            counters.clone(),
            admission.clone(),
            config.max_message_size.map_or(MAX_DATAGRAM, |m| m as usize),
        ));
        let udp = UdpConnection::from_socket(
            guarded.clone(),
            Some(SocketAddr::new(
                addressing.advertised,
                addressing.local.port(),
            )),
            Some(cancel.child_token()),
        )
        .await?;
        let locator = Arc::new(Locator::new(
            &config.dns_server_addrs(),
            vec![config.transport.sip_transport()],
            addressing.local,
            guarded.unreachable().clone(),
            admission.clone(),
        ));
        if let Some(host) = &config.server {
            // the PBX's addresses are admitted from the start, not from its first lookup
            let hop = NextHop {
                host: host.trim_matches(['[', ']']).to_string(),
                port: config.server_port,
                transport: None,
                secure: false,
            };
            let locator = locator.clone();
            tokio::spawn(async move { locator.locate(&hop).await.ok() });
        }
        let transport_layer = TransportLayer::new_with_domain_resolver(
            cancel.clone(),
            Box::new(StackResolver(locator.clone())),
        );
        transport_layer.add_transport(udp.into());
        // The stack's idle timeout (300 s) would close our client flow between refreshes:
        // our own keep-alives decide when a flow is dead.
        transport_layer.set_stream_idle_timeout(Duration::ZERO);
        let listener = streams::bind_listener(&config, &addressing, &transport_layer).await?;
        let tcp_listener = listener.as_ref().map(|l| l.local);
        let remote_targets = RemoteTargets::default();
        let hangup_headers = HangupHeaders::default();
        let late_answers = LateAnswers::default();
        let stack = rsipstack::EndpointBuilder::new()
            .with_option(stack_timers(&config))
            .with_inspector(Box::new(Inspectors(vec![
                Box::new(ViaReceived),
                Box::new(remote_targets.clone()),
                Box::new(hangup_headers.clone()),
                Box::new(late_answers.clone()),
                Box::new(ViaRewrite(addressing.clone())),
                Box::new(Rfc2543Tags),
            ])))
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.clone())
            .with_user_agent(&config.user_agent)
            .build();
        let env = streams::StreamEnv {
            addressing: &addressing,
            locator: &locator,
            counters: &counters,
            admission: &admission,
            events: &events,
            cancel: &cancel,
        };
        let streams = streams::start(&config, env, listener, &stack)?;
        let incoming = stack.incoming_transactions()?;
        let accounts = Arc::new(AccountTable::new(&config, addressing.advertised));
        let ctx = UaContext::new(
            config,
            stack.inner.clone(),
            Network {
                addressing,
                locator,
                sip_socket: guarded.clone(),
                counters,
                streams,
            },
            remote_targets,
            hangup_headers,
            late_answers,
            events,
        );
        let calls = CallTable::default();
        let sip = stack.inner.clone();
        let dispatcher = Dispatcher {
            ctx: ctx.clone(),
            accounts: accounts.clone(),
            calls: calls.clone(),
        };
        let (referral_tx, referral_rx) = mpsc::unbounded_channel();
        calls.set_referral_sink(referral_tx);
        let stack_tasks = vec![
            tokio::spawn(
                async move {
                    if let Err(e) = sip.serve().await {
                        tracing::error!(error = %e, "SIP stack stopped");
                    }
                }
                .in_current_span(),
            ),
            tokio::spawn(dispatcher.serve(incoming).in_current_span()),
            tokio::spawn(
                transfer::serve_referrals(
                    ctx.clone(),
                    accounts.clone(),
                    calls.clone(),
                    referral_rx,
                )
                .in_current_span(),
            ),
        ];
        let endpoint = Self {
            ctx,
            accounts,
            calls,
            stack,
            registrations: CancellationToken::new(),
            stack_tasks: Mutex::new(stack_tasks),
            registration_tasks: Mutex::new(Vec::new()),
            socket: guarded,
            tcp_listener,
            stopped: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
            span: tracing::Span::current(),
        };
        endpoint.check_tls_server().await?;
        endpoint.learn_public_address_by_stun().await;
        endpoint.start_registrations();
        Ok(endpoint)
    }

    /// With a STUN server configured, asks it for the SIP socket's public address before the
    /// first REGISTER, bounded (a dead server delays `start()` by at most that much; the
    /// registrar's rport corrects the Contact anyway).
    async fn learn_public_address_by_stun(&self) {
        let ctx = &self.ctx;
        // the UDP socket's mapping says nothing of a TCP/TLS connection's (rport tells that)
        if ctx.config.transport != crate::config::TransportKind::Udp {
            return;
        }
        let Some(server) = ctx.stun_server(ctx.addressing.local).await else {
            return;
        };
        let budget = Duration::from_millis(1000);
        let learned = match server {
            Ok(server) => ctx
                .sip_socket
                .stun_binding(server, budget)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match learned {
            Ok(public) => {
                ctx.learn_public_address(public, AddressSource::Stun);
            }
            Err(why) => ctx.emit(Event::Error {
                message: format!(
                    "stunServer {}: {why}; Contact keeps the local address",
                    ctx.config.stun_server.as_deref().unwrap_or_default()
                ),
            }),
        }
    }

    /// Over TLS and WSS, waits for the first connection: a server certificate that does not verify
    /// fails `start()` (and each account's registration, as an event) with the reason, since
    /// retrying cannot fix it. A server that is merely down is retried in the background.
    async fn check_tls_server(&self) -> Result<()> {
        let tls = matches!(
            self.ctx.config.transport,
            TransportKind::Tls | TransportKind::Wss
        );
        let Some(flow) = self.ctx.flow.as_ref().filter(|_| tls) else {
            return Ok(());
        };
        let refused = match flow.first_outcome().await {
            Err(e) if e.tls_refused => e.message,
            _ => return Ok(()),
        };
        for acc in self.accounts.list() {
            if acc.config.register.unwrap_or(true) {
                self.ctx.emit(Event::Registration {
                    account: acc.config.extension.clone(),
                    state: crate::event::RegistrationState::Failed,
                    code: 503,
                    reason: refused.clone(),
                    expires: 0,
                });
            }
        }
        self.stop().await;
        Err(Error::Transport(refused))
    }

    /// One registration task per account that registers (when a server is configured).
    fn start_registrations(&self) {
        for acc in self.accounts.list() {
            self.start_registration(&acc);
        }
    }

    /// The listener of the transport in use.
    pub fn local_address(&self) -> LocalAddress {
        let transport = self.ctx.config.transport;
        self.local_addresses()
            .into_iter()
            .find(|a| a.transport == transport.as_str())
            .unwrap_or_else(|| {
                // WS and TLS flows have no listener of their own: the port is the SIP one.
                let local = self.ctx.addressing.local;
                LocalAddress {
                    address: local.ip().to_string(),
                    port: local.port(),
                    transport: transport.as_str(),
                }
            })
    }

    /// Every listener: UDP, and TCP (or TLS, with a certificate) on those transports.
    pub fn local_addresses(&self) -> Vec<LocalAddress> {
        let entry = |local: SocketAddr, transport: &'static str| LocalAddress {
            address: local.ip().to_string(),
            port: local.port(),
            transport,
        };
        let mut all = vec![entry(self.ctx.addressing.local, "udp")];
        let stream = self.ctx.config.transport.as_str();
        all.extend(self.tcp_listener.map(|l| entry(l, stream)));
        all
    }

    /// Live calls, transactions and dropped messages.
    pub fn counters(&self) -> Counters {
        Counters {
            live_calls: self.calls.live().len(),
            live_transactions: self.ctx.sip.get_stats().running_transactions,
            malformed_messages: self.ctx.counters.malformed.load(Ordering::Relaxed),
            refused_requests: self.ctx.counters.refused.load(Ordering::Relaxed),
        }
    }

    /// Snapshots of the calls not yet disconnected.
    pub fn calls(&self) -> Vec<CallInfo> {
        self.calls.live().iter().map(|c| c.info()).collect()
    }

    /// A snapshot of one call (also of a disconnected one whose task is still finishing).
    pub fn call(&self, call_id: &str) -> Result<CallInfo> {
        Ok(self.calls.get(call_id)?.info())
    }

    /// `callInfo`: a snapshot of a live call or of one of the last 256 ended ones.
    pub fn call_info(&self, call_id: &str) -> Result<CallInfo> {
        self.calls.info(call_id)
    }

    /// Whether the application listens for incoming calls; without a listener an incoming
    /// call is refused at once with 480 instead of ringing until `incomingCallTimeoutMs`.
    pub fn set_incoming_handler(&self, listening: bool) {
        self.ctx.set_incoming_handler(listening);
    }

    /// Places a call; resolves once the INVITE is on its way. `follow_redirects` overrides
    /// the config's `followRedirects` for this call.
    pub async fn make_call(
        &self,
        from: &str,
        to: &str,
        headers: Vec<(String, String)>,
        follow_redirects: Option<bool>,
    ) -> Result<CallInfo> {
        async {
            let (call, task) = call::place(
                &self.ctx,
                &self.accounts,
                from,
                to,
                headers,
                follow_redirects,
            )
            .await?;
            let info = call.info();
            self.calls.spawn(call, task);
            Ok(info)
        }
        .instrument(self.span.clone())
        .await
    }

    /// The span of an API call on call `id`: in the endpoint's, tagged with the call.
    pub(super) fn call_span(&self, id: &str) -> tracing::Span {
        self.span.in_scope(|| call::span(id))
    }

    /// Answers an incoming call with 200 OK and our SDP answer; `headers` (checked as
    /// `makeCall`'s) go on the 200.
    pub async fn answer(&self, call_id: &str, headers: Vec<(String, String)>) -> Result<()> {
        let headers = extra_headers("headers", headers)?;
        let call = self.calls.get(call_id)?;
        call.answer(headers)
            .instrument(self.call_span(call_id))
            .await
    }

    /// Rejects an incoming call with a 3xx-6xx final response carrying `headers`, and an
    /// RFC 3326 Reason with `reason`.
    pub async fn reject(
        &self,
        call_id: &str,
        code: u16,
        reason: Option<String>,
        headers: Vec<(String, String)>,
    ) -> Result<()> {
        if !(300..700).contains(&code) {
            return Err(Error::InvalidArgument(format!(
                "code: a rejection needs a 3xx-6xx status, got {code}"
            )));
        }
        let headers = extra_headers("headers", headers)?;
        let call = self.calls.get(call_id)?;
        self.call_span(call_id)
            .in_scope(|| call.reject(code, reason, headers))
    }

    /// Ends a call whatever its state; resolves once it is disconnected. With a `code` or
    /// `reason`, the BYE, CANCEL or 603 carries `Reason: SIP;cause=<code>;text="<reason>"`
    /// (RFC 3326); `headers` go on it too.
    pub async fn hangup(
        &self,
        call_id: &str,
        code: Option<u16>,
        reason: Option<String>,
        headers: Vec<(String, String)>,
    ) -> Result<()> {
        if let Some(c) = code.filter(|c| !(100..700).contains(c)) {
            return Err(Error::InvalidArgument(format!(
                "code: a Reason cause is a SIP status 100-699, got {c}"
            )));
        }
        if let Some(r) = reason.as_deref().filter(|r| r.contains(['\r', '\n'])) {
            return Err(Error::InvalidArgument(format!(
                "reason: spans lines: {r:?}"
            )));
        }
        let how = call::Hangup {
            code,
            reason,
            headers: extra_headers("headers", headers)?,
        };
        let call = self.calls.get(call_id)?;
        call.hangup(how).instrument(self.call_span(call_id)).await
    }

    /// Ends every call, unregisters, closes the socket; bounded whatever the peers do. The
    /// CANCELs, BYEs and un-REGISTERs go out together, their answers are awaited for
    /// `stopGraceMs`, then whatever is left is torn down. Idempotent.
    pub async fn stop(&self) {
        self.shut_down().instrument(self.span.clone()).await
    }

    async fn shut_down(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.ctx.config.stop_grace_ms);
        for c in &self.calls.live() {
            c.request_hangup(call::Hangup::default());
        }
        self.registrations.cancel();
        while tokio::time::Instant::now() < deadline && !self.calls.live().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let take = |tasks: &Mutex<Vec<JoinHandle<()>>>| -> Vec<JoinHandle<()>> {
            tasks
                .lock()
                .map(|mut t| t.drain(..).collect())
                .unwrap_or_default()
        };
        let registrations: Vec<_> = self
            .registration_tasks
            .lock()
            .map(|mut t| t.drain(..).map(|r| r.task).collect())
            .unwrap_or_default();
        for mut t in registrations {
            // Each un-REGISTER times out by itself after the grace; the margin lets its last
            // event out before the task would be cut.
            let margin = Duration::from_millis(500);
            if tokio::time::timeout_at(deadline + margin, &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
        for c in &self.calls.live() {
            c.tear_down();
        }
        self.ctx.media.shutdown();
        self.stack.shutdown();
        for t in take(&self.stack_tasks) {
            t.abort();
            let _ = t.await;
        }
        self.socket.close();
    }
}
