//! What every task of a running user agent shares: the configuration, the SIP stack and its
//! dialog layer, the RTP ports, our addressing, the media engine and the event sink. It holds
//! no calls and no accounts: those tables belong to the endpoint and the account module, so a
//! call or a registration never reaches into the endpoint.

use crate::config::EndpointConfig;
use crate::error::{Error, Result};
use crate::event::{AddressSource, Event};
use crate::media::engine::MediaEngine;
use crate::media::recorder::RecordingInfo;
use crate::metrics::SignallingCounters;
use crate::rtp_ports::PortPool;
use crate::sip::hangup_headers::HangupHeaders;
use crate::sip::late_answer::LateAnswers;
use crate::sip::remote_target::RemoteTargets;
use crate::sip::uri::host_port_unless_default;
use crate::transport::stun::StunError;
use crate::transport::{
    Addressing, GuardedUdpSocket, Locator, NextHop, PbxFlow, PeerDialer, StreamTransports, Target,
    TransportCounters,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Recordings kept at most once their call ended, until `stopRecording` asks for them.
const KEPT_RECORDINGS: usize = 1000;

/// The shared state of one running user agent.
pub(crate) struct UaContext {
    pub config: EndpointConfig,
    pub sip: EndpointInnerRef,
    pub dialogs: Arc<DialogLayer>,
    pub ports: PortPool,
    /// Shared with the Via rewrite inspector, which reads the public address on every request.
    pub addressing: Arc<Addressing>,
    /// Where requests go: RFC 3263 resolution and the bad-target memory.
    pub locator: Arc<Locator>,
    /// The SIP socket, for what is not a SIP message: keep-alives and STUN.
    pub sip_socket: Arc<GuardedUdpSocket>,
    pub counters: Arc<TransportCounters>,
    /// What calls and registrations count for the metrics.
    pub signalling: SignallingCounters,
    /// The connection to the PBX, on a stream transport with a server configured.
    pub flow: Option<Arc<PbxFlow>>,
    /// Dials peers other than the PBX, on the TCP and TLS transports.
    pub peers: Option<PeerDialer>,
    /// The pacing clock and RTP sessions of the calls.
    pub media: Arc<MediaEngine>,
    /// The peers' Contact URIs as sent, restored into our in-dialog requests.
    pub remote_targets: RemoteTargets,
    /// Our headers for the CANCELs and rejections the stack builds, and the peers' Reasons.
    pub hangup_headers: HangupHeaders,
    /// The answers our ACKs carry to the offer in a 2xx to our offerless re-INVITE.
    pub late_answers: LateAnswers,
    /// Recordings that ended with their call, until `stopRecording` asks for them.
    finished_recordings: Mutex<HashMap<String, RecordingInfo>>,
    /// Whether the application listens for incoming calls (else they get 480 at once).
    incoming_handler: AtomicBool,
    events: mpsc::UnboundedSender<Event>,
}

/// What `Endpoint::start` built below the SIP stack, handed to the context in one piece.
pub(crate) struct Network {
    pub addressing: Arc<Addressing>,
    pub locator: Arc<Locator>,
    pub sip_socket: Arc<GuardedUdpSocket>,
    pub counters: Arc<TransportCounters>,
    pub streams: StreamTransports,
}

impl UaContext {
    /// The context over a started stack: its dialog layer and the RTP port pool (bound on
    /// the SIP socket's address) are made here; the rest is what `Endpoint::start` built.
    pub(crate) fn new(
        config: EndpointConfig,
        sip: EndpointInnerRef,
        network: Network,
        remote_targets: RemoteTargets,
        hangup_headers: HangupHeaders,
        late_answers: LateAnswers,
        events: mpsc::UnboundedSender<Event>,
    ) -> Arc<Self> {
        let Network {
            addressing,
            locator,
            sip_socket,
            counters,
            streams,
        } = network;
        Arc::new(Self {
            dialogs: Arc::new(DialogLayer::new(sip.clone())),
            ports: PortPool::new(
                config.rtp_port_min,
                config.rtp_port_max,
                addressing.local.ip(),
            ),
            config,
            sip,
            addressing,
            locator,
            sip_socket,
            counters,
            signalling: SignallingCounters::default(),
            flow: streams.pbx,
            peers: streams.peers,
            media: MediaEngine::new(),
            remote_targets,
            hangup_headers,
            late_answers,
            finished_recordings: Mutex::new(HashMap::new()),
            incoming_handler: AtomicBool::new(true),
            events,
        })
    }

    pub(crate) fn emit(&self, event: Event) {
        // The receiver is gone only after stop(); late events are of no use then.
        let _ = self.events.send(event);
    }

    pub(crate) fn event_sender(&self) -> mpsc::UnboundedSender<Event> {
        self.events.clone()
    }

    pub(crate) fn set_incoming_handler(&self, listening: bool) {
        self.incoming_handler.store(listening, Ordering::Relaxed);
    }

    pub(crate) fn has_incoming_handler(&self) -> bool {
        self.incoming_handler.load(Ordering::Relaxed)
    }

    pub(crate) fn keep_recording(&self, call_id: &str, info: RecordingInfo) {
        if let Ok(mut r) = self.finished_recordings.lock() {
            // Bounded: a service that never asks must not grow this without limit.
            if r.len() >= KEPT_RECORDINGS {
                r.clear();
            }
            r.insert(call_id.to_string(), info);
        }
    }

    pub(crate) fn take_recording(&self, call_id: &str) -> Option<RecordingInfo> {
        self.finished_recordings
            .lock()
            .ok()
            .and_then(|mut r| r.remove(call_id))
    }

    /// Where an out-of-dialog request goes: to the outbound proxy when one is configured (with
    /// the Route to preload), else to `next_hop` (the PBX, or the host a dialled URI names).
    /// rsipstack's `TransportLayer.outbound` is not used for the proxy: it redirects every
    /// lookup, in-dialog requests and responses included (so a Record-Route set would be
    /// ignored), and adds no Route header.
    pub(crate) async fn route(&self, next_hop: &NextHop) -> Result<OutOfDialogRoute> {
        if let Some(route) = self.preloaded_route()? {
            return Ok(OutOfDialogRoute {
                targets: self.locator.locate(&NextHop::of_uri(&route.uri)).await?,
                preloaded: Some(route),
            });
        }
        Ok(OutOfDialogRoute {
            targets: self.locator.locate(next_hop).await?,
            preloaded: None,
        })
    }

    /// `Route: <outboundProxy;lr>` (RFC 3261 §8.1.2) when a proxy is configured: preloaded on
    /// every out-of-dialog request, whichever transport carries it.
    pub(crate) fn preloaded_route(&self) -> Result<Option<sip::typed::Route>> {
        let Some(proxy) = self.config.outbound_proxy.as_deref() else {
            return Ok(None);
        };
        let mut uri = sip::Uri::try_from(proxy.trim())
            .map_err(|e| Error::Config(format!("outboundProxy: {e}")))?;
        if !uri.params.iter().any(|p| matches!(p, sip::Param::Lr)) {
            uri.params.push(sip::Param::Lr);
        }
        Ok(Some(sip::typed::Route {
            display_name: None,
            uri,
            params: vec![],
        }))
    }

    /// RFC 5630: a `sips:` target means TLS on every hop, and the stack would send it over
    /// whatever transport it has: refused (naming `field`) unless ours is TLS.
    pub(crate) fn check_secure_target(&self, field: &str, target: &str) -> Result<()> {
        if target.to_ascii_lowercase().starts_with("sips:")
            && self.config.transport != crate::config::TransportKind::Tls
        {
            return Err(Error::InvalidArgument(format!(
                "{field}: {target} is a sips: URI, which needs transport tls (this endpoint uses {})",
                self.config.transport.as_str()
            )));
        }
        Ok(())
    }

    /// The PBX as a next hop: its host, and its port when configured (RFC 3263 §4.2: then no
    /// NAPTR/SRV).
    pub(crate) fn server_hop(&self) -> Result<NextHop> {
        let host = self
            .config
            .server
            .as_deref()
            .ok_or_else(|| Error::Config("server: not configured".into()))?;
        Ok(NextHop {
            host: host.trim_matches(['[', ']']).to_string(),
            port: self.config.server_port,
            transport: None,
            secure: false,
        })
    }

    /// Takes `public` as our SIP address (Contact, Via) and tells the user when it changed.
    pub(crate) fn learn_public_address(&self, public: SocketAddr, source: AddressSource) -> bool {
        let changed = self.addressing.learn(public);
        if changed {
            tracing::info!(%public, ?source, "public address learned");
            self.emit(Event::PublicAddress {
                address: public.ip().to_string(),
                port: public.port(),
                source,
            });
        }
        changed
    }

    /// The configured STUN server, resolved now for a socket bound at `local` (its family);
    /// `None` when none is configured.
    pub(crate) async fn stun_server(
        &self,
        local: SocketAddr,
    ) -> Option<std::result::Result<SocketAddr, StunError>> {
        let (host, port) = self.config.stun_host_port()?;
        Some(crate::transport::stun::resolve(&host, port, local).await)
    }

    /// On a stream transport, the PBX as the one target of a request: the peer of our
    /// connection to it; an error naming the server and the cause while it is down, rather
    /// than letting the stack dial on its own. `None` on UDP.
    pub(crate) fn pbx_flow_target(&self) -> Option<Result<Target>> {
        let flow = self.flow.as_ref()?;
        Some(
            flow.current()
                .ok_or_else(|| Error::Transport(flow.down_reason()))
                .and_then(|f| Target::of_connection(&f.remote)),
        )
    }

    /// The port our Contact and Via carry: the local port of the PBX connection when there is
    /// one, else the SIP port.
    fn contact_port(&self) -> u16 {
        self.flow
            .as_ref()
            .and_then(|f| f.current())
            .map(|f| f.local.port())
            .unwrap_or(self.addressing.local.port())
    }

    /// The address our Contact carries now: the learned public one, else ours at the
    /// contact port.
    pub(crate) fn contact_address(&self) -> SocketAddr {
        self.addressing.public_for(self.contact_port())
    }

    /// Our Contact URI for `user`.
    pub(crate) fn contact_uri(&self, user: &str) -> String {
        self.addressing.contact_uri(user, self.contact_port())
    }

    /// The sent-by of the Via of our out-of-dialog requests.
    pub(crate) fn via_addr(&self) -> SipAddr {
        self.addressing.via_addr(self.contact_port())
    }

    /// `host` or `host:port` of the PBX, as written into URIs.
    pub(crate) fn server_hostport(&self) -> Option<String> {
        let host = self.config.server.as_deref()?;
        Some(host_port_unless_default(
            host,
            self.config.server_port.unwrap_or(5060),
        ))
    }
}

/// The targets of an out-of-dialog request, in order, and the Route header it carries.
pub(crate) struct OutOfDialogRoute {
    pub targets: Vec<Target>,
    /// `Route: <outboundProxy;lr>` (RFC 3261 §8.1.2), when a proxy is configured.
    pub preloaded: Option<sip::typed::Route>,
}
