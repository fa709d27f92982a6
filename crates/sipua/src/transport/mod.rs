//! Transports under the SIP stack and our addressing. Today the guarded UDP socket; TCP, TLS,
//! WebSocket, the resolver, keep-alives and STUN come beside it.

mod address;
mod framing;
mod udp;

pub(crate) use address::Addressing;
pub(crate) use udp::{GuardedUdpSocket, TransportCounters};
