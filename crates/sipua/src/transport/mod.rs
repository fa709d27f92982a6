//! Transports under the SIP stack and our addressing: the guarded UDP socket (which also
//! carries our STUN transactions and UDP keep-alives), the public address NAT learning
//! updates, and the Via rewrite that follows it.

mod address;
pub(crate) mod stun;
mod udp;
pub(crate) mod udp_keepalive;
mod via_rewrite;

pub(crate) use address::Addressing;
pub(crate) use udp::{GuardedUdpSocket, TransportCounters};
pub(crate) use via_rewrite::ViaRewrite;
