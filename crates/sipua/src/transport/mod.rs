//! Transports under the SIP stack and our addressing: the guarded UDP socket, and the stream
//! transports (TCP, TLS, WS, WSS) that we dial, frame and keep alive ourselves and hand to the stack as
//! channel connections.

mod address;
mod dial;
mod flow;
mod framing;
mod keepalive;
mod listener;
mod peer;
mod stream;
mod tls;
mod udp;
mod websocket;

pub(crate) use address::Addressing;
pub(crate) use dial::DialTarget;
pub(crate) use flow::{FlowSetup, PbxFlow};
pub(crate) use listener::{advertise, bind_tcp, serve as serve_tcp};
pub(crate) use peer::PeerDialer;
pub(crate) use tls::{server_config as tls_server_config, TlsClient};
pub(crate) use udp::{GuardedUdpSocket, TransportCounters};

/// The stream side of an endpoint: the flow to the PBX and the dialer of other peers.
pub(crate) struct StreamTransports {
    pub pbx: Option<std::sync::Arc<PbxFlow>>,
    pub peers: Option<PeerDialer>,
}
