//! One user agent: the UDP transport, the SIP stack (rsipstack's transaction and dialog layers),
//! the registration tasks of its accounts and its calls. Public entry points validate their
//! arguments and return [`crate::Error`]; nothing here panics on network input.

use crate::account::Registrar;
use crate::call::{self, Call};
use crate::config::EndpointConfig;
use crate::error::{Error, Result};
use crate::event::{CallState, Direction, Event};
use crate::media::engine::MediaEngine;
use crate::media::recorder::RecordingInfo;
use crate::remote_target::RemoteTargets;
use crate::rtp_ports::PortPool;
use crate::transport::{GuardedUdpSocket, TransportCounters};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{self, Method, StatusCode};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where the endpoint listens, as reported to the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocalAddress {
    pub address: String,
    pub port: u16,
    pub transport: &'static str,
}

/// Live counts, for leak checks and monitoring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub live_calls: usize,
    pub live_transactions: usize,
    pub malformed_messages: u64,
}

/// A snapshot of one call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallInfo {
    pub id: String,
    pub sip_call_id: String,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub state: CallState,
}

/// State shared by the endpoint's tasks.
pub(crate) struct Shared {
    pub config: EndpointConfig,
    pub sip: EndpointInnerRef,
    pub dialogs: Arc<DialogLayer>,
    pub ports: PortPool,
    pub local: SocketAddr,
    /// The address written into Contact, Via and SDP.
    pub advertised: IpAddr,
    pub counters: Arc<TransportCounters>,
    pub calls: Mutex<HashMap<String, Arc<Call>>>,
    /// The pacing clock and RTP sessions of the calls.
    pub media: Arc<MediaEngine>,
    /// The peers' Contact URIs as sent, restored into our in-dialog requests.
    pub remote_targets: RemoteTargets,
    /// Recordings that ended with their call, until `stopRecording` asks for them.
    finished_recordings: Mutex<HashMap<String, RecordingInfo>>,
    events: mpsc::UnboundedSender<Event>,
}

impl Shared {
    pub fn emit(&self, event: Event) {
        // The receiver is gone only after stop(); late events are of no use then.
        let _ = self.events.send(event);
    }

    pub fn event_sender(&self) -> mpsc::UnboundedSender<Event> {
        self.events.clone()
    }

    pub fn all_calls(&self) -> Vec<Arc<Call>> {
        self.calls
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn keep_recording(&self, call_id: &str, info: RecordingInfo) {
        if let Ok(mut r) = self.finished_recordings.lock() {
            // Bounded: a service that never asks must not grow this without limit.
            if r.len() >= 1000 {
                r.clear();
            }
            r.insert(call_id.to_string(), info);
        }
    }

    pub fn take_recording(&self, call_id: &str) -> Option<RecordingInfo> {
        self.finished_recordings
            .lock()
            .ok()
            .and_then(|mut r| r.remove(call_id))
    }

    /// The PBX host and port as a transport target.
    pub fn server_addr(&self) -> Result<SipAddr> {
        let host = self
            .config
            .server
            .as_deref()
            .ok_or_else(|| Error::Config("server: not configured".into()))?;
        let hp =
            sip::HostWithPort::try_from(format!("{}:{}", host, self.config.server_port).as_str())
                .map_err(|e| Error::Config(format!("server: {e}")))?;
        Ok(SipAddr::new(sip::Transport::Udp, hp))
    }

    /// `host` or `host:port` of the PBX, as written into URIs.
    pub fn server_hostport(&self) -> Option<String> {
        let host = self.config.server.as_deref()?;
        Some(if self.config.server_port == 5060 {
            host.to_string()
        } else {
            format!("{host}:{}", self.config.server_port)
        })
    }

    fn domain(&self, account: usize) -> String {
        let acc = &self.config.accounts[account];
        acc.domain
            .clone()
            .or_else(|| self.config.server.clone())
            .unwrap_or_else(|| self.advertised.to_string())
    }

    /// Request-URI of the account's REGISTER.
    pub fn registrar_uri(&self, account: usize) -> String {
        match (
            &self.config.accounts[account].domain,
            self.server_hostport(),
        ) {
            (None, Some(hp)) => format!("sip:{hp}"),
            _ => format!("sip:{}", self.domain(account)),
        }
    }

    /// The account's address of record.
    pub fn aor(&self, account: usize) -> String {
        format!(
            "sip:{}@{}",
            self.config.accounts[account].extension,
            self.domain(account)
        )
    }

    /// Our Contact for `user`.
    pub fn contact_uri(&self, user: &str) -> String {
        match self.advertised {
            IpAddr::V6(ip) => format!("sip:{user}@[{ip}]:{}", self.local.port()),
            IpAddr::V4(ip) => format!("sip:{user}@{ip}:{}", self.local.port()),
        }
    }

    pub fn contact_for(&self, user: &str) -> sip::typed::Contact {
        sip::typed::Contact {
            display_name: None,
            uri: self
                .contact_uri(user)
                .as_str()
                .try_into()
                .unwrap_or_default(),
            params: vec![],
        }
    }

    pub fn call(&self, id: &str) -> Result<Arc<Call>> {
        self.calls
            .lock()
            .map_err(|_| Error::Sip("call table poisoned".into()))?
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoSuchCall(id.to_string()))
    }

    pub fn insert_call(&self, call: Arc<Call>) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(call.id.clone(), call);
        }
    }

    pub fn remove_call(&self, id: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.remove(id);
        }
    }
}

/// The reason phrase of a response: the one on the wire, else the standard text.
pub(crate) fn reason_of(resp: &sip::Response) -> String {
    resp.reason_phrase().map(str::to_string).unwrap_or_else(|| {
        resp.status_code
            .to_string()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ')
            .to_string()
    })
}

/// A running user agent.
pub struct Endpoint {
    shared: Arc<Shared>,
    stack: rsipstack::transaction::endpoint::Endpoint,
    registrations: CancellationToken,
    /// The SIP stack's serve loop and our request dispatcher: aborted after the stack shuts down.
    stack_tasks: Mutex<Vec<JoinHandle<()>>>,
    /// One per registered account: they end by themselves (bounded un-REGISTER) on cancel.
    registration_tasks: Mutex<Vec<JoinHandle<()>>>,
    socket: Arc<GuardedUdpSocket>,
}

impl Endpoint {
    /// Binds the transport, starts the SIP stack and the registrations. Events go to `events`;
    /// the sender is dropped by [`Endpoint::stop`], which ends the receiver's stream.
    pub async fn start(
        config: EndpointConfig,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<Self> {
        config.validate()?;
        let bind_ip: IpAddr = config.bind_address.parse().map_err(|_| {
            Error::Config(format!(
                "bindAddress: not an IP address: {:?}",
                config.bind_address
            ))
        })?;
        let bind = SocketAddr::new(bind_ip, config.local_port);
        let socket = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| Error::Transport(format!("cannot bind UDP {bind}: {e}")))?;
        let local = socket.local_addr()?;
        let advertised = advertised_ip(&config, bind_ip);
        let counters = Arc::new(TransportCounters::default());

        let cancel = CancellationToken::new();
        let guarded = Arc::new(GuardedUdpSocket::new(socket, counters.clone()));
        let udp = UdpConnection::from_socket(
            guarded.clone(),
            Some(SocketAddr::new(advertised, local.port())),
            Some(cancel.child_token()),
        )
        .await?;
        let transport_layer = TransportLayer::new(cancel.clone());
        transport_layer.add_transport(udp.into());
        let t1 = Duration::from_millis(config.timer_t1_ms);
        let timers = EndpointOption {
            t1,
            t2: EndpointOption::default().t2.max(t1),
            t1x64: config.t1x64(),
            ..EndpointOption::default()
        };
        let remote_targets = RemoteTargets::default();
        let stack = rsipstack::EndpointBuilder::new()
            .with_option(timers)
            .with_inspector(Box::new(remote_targets.clone()))
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.clone())
            .with_user_agent(&config.user_agent)
            .build();
        let incoming = stack.incoming_transactions()?;
        let dialogs = Arc::new(DialogLayer::new(stack.inner.clone()));
        let ports = PortPool::new(config.rtp_port_min, config.rtp_port_max, bind_ip);

        let shared = Arc::new(Shared {
            sip: stack.inner.clone(),
            dialogs,
            ports,
            local,
            advertised,
            counters,
            calls: Mutex::new(HashMap::new()),
            media: MediaEngine::new(),
            remote_targets,
            finished_recordings: Mutex::new(HashMap::new()),
            events,
            config,
        });

        let sip = stack.inner.clone();
        let stack_tasks = vec![
            tokio::spawn(async move {
                if let Err(e) = sip.serve().await {
                    tracing::error!(error = %e, "SIP stack stopped");
                }
            }),
            tokio::spawn(serve_incoming(shared.clone(), incoming)),
        ];

        let registrations = CancellationToken::new();
        let mut registration_tasks = Vec::new();
        if shared.config.server.is_some() {
            for (i, acc) in shared.config.accounts.iter().enumerate() {
                if acc.register.unwrap_or(true) {
                    let reg = Registrar::new(shared.clone(), i);
                    registration_tasks.push(tokio::spawn(reg.run(registrations.child_token())));
                }
            }
        }
        Ok(Self {
            shared,
            stack,
            registrations,
            stack_tasks: Mutex::new(stack_tasks),
            registration_tasks: Mutex::new(registration_tasks),
            socket: guarded,
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn local_address(&self) -> LocalAddress {
        LocalAddress {
            address: self.shared.local.ip().to_string(),
            port: self.shared.local.port(),
            transport: "udp",
        }
    }

    pub fn counters(&self) -> Counters {
        Counters {
            live_calls: self.shared.calls.lock().map(|c| c.len()).unwrap_or(0),
            live_transactions: self.shared.sip.get_stats().running_transactions,
            malformed_messages: self.shared.counters.malformed.load(Ordering::Relaxed),
        }
    }

    pub fn calls(&self) -> Vec<CallInfo> {
        self.shared.all_calls().iter().map(|c| c.info()).collect()
    }

    /// Places a call; resolves once the INVITE is on its way. See [`call::place`].
    pub async fn make_call(
        &self,
        from: &str,
        to: &str,
        headers: Vec<(String, String)>,
    ) -> Result<CallInfo> {
        call::place(&self.shared, from, to, headers).await
    }

    pub async fn answer(&self, call_id: &str) -> Result<()> {
        self.shared.call(call_id)?.answer().await
    }

    pub async fn reject(&self, call_id: &str, code: u16, reason: Option<String>) -> Result<()> {
        if !(300..700).contains(&code) {
            return Err(Error::InvalidArgument(format!(
                "code: a rejection needs a 3xx-6xx status, got {code}"
            )));
        }
        self.shared.call(call_id)?.reject(code, reason)
    }

    pub async fn hangup(&self, call_id: &str) -> Result<()> {
        self.shared.call(call_id)?.hangup().await
    }

    /// Puts a confirmed call on hold (`true`, re-INVITE with `sendonly`) or resumes it.
    pub async fn set_hold(&self, call_id: &str, hold: bool) -> Result<()> {
        self.shared.call(call_id)?.set_hold(hold).await
    }

    /// Ends every call, unregisters, closes the socket; bounded whatever the peers do. The
    /// CANCELs, BYEs and un-REGISTERs go out together, their answers are awaited for
    /// `stopGraceMs`, then whatever is left is torn down. Idempotent.
    pub async fn stop(&self) {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.shared.config.stop_grace_ms);
        for c in &self.shared.all_calls() {
            c.request_hangup();
        }
        self.registrations.cancel();
        while tokio::time::Instant::now() < deadline && self.counters().live_calls > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let take = |tasks: &Mutex<Vec<JoinHandle<()>>>| -> Vec<JoinHandle<()>> {
            tasks
                .lock()
                .map(|mut t| t.drain(..).collect())
                .unwrap_or_default()
        };
        for mut t in take(&self.registration_tasks) {
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
        for c in &self.shared.all_calls() {
            c.tear_down();
        }
        self.shared.media.shutdown();
        self.stack.shutdown();
        for t in take(&self.stack_tasks) {
            t.abort();
            let _ = t.await;
        }
        self.socket.close();
    }
}

/// The address advertised in Contact/Via/SDP: the configured public address, the bound address,
/// or for a wildcard bind the local address that routes to the PBX (loopback without a PBX).
fn advertised_ip(config: &EndpointConfig, bind_ip: IpAddr) -> IpAddr {
    if let Some(ip) = config
        .public_address
        .as_deref()
        .and_then(|a| a.parse().ok())
    {
        return ip;
    }
    if !bind_ip.is_unspecified() {
        return bind_ip;
    }
    let probe = |target: &str| -> Option<IpAddr> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        s.connect(target).ok()?;
        Some(s.local_addr().ok()?.ip())
    };
    config
        .server
        .as_deref()
        .and_then(|host| probe(&format!("{host}:{}", config.server_port)))
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Dispatches requests that start a transaction at the UAS side.
async fn serve_incoming(
    shared: Arc<Shared>,
    mut incoming: rsipstack::transaction::TransactionReceiver,
) {
    while let Some(mut tx) = incoming.recv().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = dispatch(&shared, &mut tx).await {
                tracing::warn!(method = %tx.original.method, error = %e, "request handling failed");
            }
        });
    }
}

async fn dispatch(shared: &Arc<Shared>, tx: &mut Transaction) -> Result<()> {
    let in_dialog = tx
        .original
        .to_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .is_some();
    match tx.original.method {
        Method::Invite if !in_dialog => {
            let result = call::on_invite(shared, tx).await;
            // The call's tasks are over (or none started): its Contact is of no more use.
            if let Ok(id) = tx.original.call_id_header() {
                shared.remote_targets.forget(id.value());
            }
            result
        }
        Method::Ack => Ok(()),
        _ if in_dialog => match shared.dialogs.match_dialog(tx) {
            Some(rsipstack::dialog::dialog::Dialog::Invite(mut d)) => Ok(d.handle(tx).await?),
            _ => Ok(tx.reply(StatusCode::CallTransactionDoesNotExist).await?),
        },
        Method::Options => Ok(tx.reply(StatusCode::OK).await?),
        Method::Bye | Method::Cancel => {
            Ok(tx.reply(StatusCode::CallTransactionDoesNotExist).await?)
        }
        _ => Ok(tx.reply(StatusCode::MethodNotAllowed).await?),
    }
}
