//! Transports under the SIP stack and our addressing: the guarded UDP socket (which also
//! carries our STUN transactions and UDP keep-alives); the stream transports (TCP, TLS, WS,
//! WSS) that we dial, frame and keep alive ourselves and hand to the stack as channel
//! connections; the public address NAT learning updates and the Via rewrite that follows it;
//! and where requests go: the RFC 3263 resolver, the failover between its targets and the
//! locator that holds both.

mod address;
pub(crate) mod admission;
mod counters;
mod dial;
mod dns;
pub(crate) mod family;
mod flow;
pub(crate) mod framing;
mod icmp;
mod keepalive;
mod listener;
mod locator;
mod peer;
mod resolve;
mod stream;
pub(crate) mod stun;
mod targets;
mod tls;
mod udp;
pub(crate) mod udp_keepalive;
mod via_rewrite;
mod websocket;

pub(crate) use address::Addressing;
pub(crate) use admission::Admission;
pub(crate) use counters::TransportCounters;
pub(crate) use dial::DialTarget;
pub(crate) use flow::{FlowSetup, PbxFlow};
pub(crate) use icmp::reported as unreachable_reported;
pub(crate) use listener::{advertise, bind_tcp, serve as serve_tcp};
pub(crate) use locator::{Locator, StackResolver};
pub(crate) use peer::PeerDialer;
pub(crate) use resolve::{NextHop, Target};
pub(crate) use stream::Inbound;
pub(crate) use targets::{failover_timeout, Attempt};
pub(crate) use tls::{server_config as tls_server_config, TlsClient};
pub(crate) use udp::GuardedUdpSocket;
pub(crate) use via_rewrite::ViaRewrite;

/// The stream side of an endpoint: the flow to the PBX and the dialer of other peers.
pub(crate) struct StreamTransports {
    pub pbx: Option<std::sync::Arc<PbxFlow>>,
    pub peers: Option<PeerDialer>,
}
