//! What every task of a running user agent shares: the configuration, the SIP stack and its
//! dialog layer, the RTP ports, our addressing, the media engine and the event sink. It holds
//! no calls and no accounts: those tables belong to the endpoint and the account module, so a
//! call or a registration never reaches into the endpoint.

use crate::config::EndpointConfig;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::media::engine::MediaEngine;
use crate::media::recorder::RecordingInfo;
use crate::rtp_ports::PortPool;
use crate::sip::remote_target::RemoteTargets;
use crate::sip::uri::{host_port, host_port_unless_default};
use crate::transport::{Addressing, PbxFlow, PeerDialer, StreamTransports, TransportCounters};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
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
    pub addressing: Addressing,
    pub counters: Arc<TransportCounters>,
    /// The connection to the PBX, on a stream transport with a server configured.
    pub flow: Option<Arc<PbxFlow>>,
    /// Dials peers other than the PBX, on the TCP and TLS transports.
    pub peers: Option<PeerDialer>,
    /// The pacing clock and RTP sessions of the calls.
    pub media: Arc<MediaEngine>,
    /// The peers' Contact URIs as sent, restored into our in-dialog requests.
    pub remote_targets: RemoteTargets,
    /// Recordings that ended with their call, until `stopRecording` asks for them.
    finished_recordings: Mutex<HashMap<String, RecordingInfo>>,
    /// Whether the application listens for incoming calls (else they get 480 at once).
    incoming_handler: AtomicBool,
    events: mpsc::UnboundedSender<Event>,
}

impl UaContext {
    /// The context over a started stack: its dialog layer and the RTP port pool (bound on
    /// the SIP socket's address) are made here; the rest is what `Endpoint::start` built.
    pub(crate) fn new(
        config: EndpointConfig,
        sip: EndpointInnerRef,
        addressing: Addressing,
        counters: Arc<TransportCounters>,
        streams: StreamTransports,
        remote_targets: RemoteTargets,
        events: mpsc::UnboundedSender<Event>,
    ) -> Arc<Self> {
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
            counters,
            flow: streams.pbx,
            peers: streams.peers,
            media: MediaEngine::new(),
            remote_targets,
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

    /// The PBX as a transport target. On a stream transport, the address of our connection
    /// to it (the key the stack finds that connection under); an error naming the server and
    /// the cause while it is down, rather than letting the stack dial on its own.
    pub(crate) fn server_addr(&self) -> Result<SipAddr> {
        if let Some(flow) = &self.flow {
            return flow
                .current()
                .map(|f| f.remote.clone())
                .ok_or_else(|| Error::Transport(flow.down_reason()));
        }
        let host = self
            .config
            .server
            .as_deref()
            .ok_or_else(|| Error::Config("server: not configured".into()))?;
        let hp = sip::HostWithPort::try_from(host_port(host, self.config.server_port).as_str())
            .map_err(|e| Error::Config(format!("server: {e}")))?;
        Ok(SipAddr::new(sip::Transport::Udp, hp))
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

    /// Our Contact URI for `user`.
    pub(crate) fn contact_uri(&self, user: &str) -> String {
        self.addressing.contact_uri(user, self.contact_port())
    }

    /// Our Contact header value for `user`.
    pub(crate) fn contact_for(&self, user: &str) -> sip::typed::Contact {
        self.addressing.contact_for(user, self.contact_port())
    }

    /// The sent-by of the Via of our out-of-dialog requests.
    pub(crate) fn via_addr(&self) -> SipAddr {
        self.addressing.via_addr(self.contact_port())
    }

    /// `host` or `host:port` of the PBX, as written into URIs.
    pub(crate) fn server_hostport(&self) -> Option<String> {
        let host = self.config.server.as_deref()?;
        Some(host_port_unless_default(host, self.config.server_port))
    }
}
