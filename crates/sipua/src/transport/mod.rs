//! Transports under the SIP stack and our addressing. Today the guarded UDP socket; TCP, TLS,
//! WebSocket, the resolver, keep-alives and STUN come beside it.

mod address;
// Dialled by the TCP/TLS/WS stream transport that lands beside it (issue #7); until then
// only its tests use it.
#[allow(dead_code)]
mod tls;
mod udp;

pub(crate) use address::Addressing;
pub(crate) use udp::{GuardedUdpSocket, TransportCounters};
