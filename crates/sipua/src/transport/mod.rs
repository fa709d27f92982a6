//! Transports under the SIP stack and our addressing: the guarded UDP socket, and the stream
//! transports (TCP, TLS) that we dial, frame and keep alive ourselves and hand to the stack as
//! channel connections.

mod address;
mod dial;
mod flow;
mod framing;
mod keepalive;
mod listener;
mod stream;
// Its server half (a TLS listener) and the rustls config for WSS are not wired yet.
#[allow(dead_code)]
mod tls;
mod udp;

pub(crate) use address::Addressing;
pub(crate) use dial::DialTarget;
pub(crate) use flow::{FlowSetup, PbxFlow};
pub(crate) use listener::{advertise, bind_tcp, serve as serve_tcp};
pub(crate) use tls::TlsClient;
pub(crate) use udp::{GuardedUdpSocket, TransportCounters};
