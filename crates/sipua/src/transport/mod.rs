//! Transports under the SIP stack and our addressing: the guarded UDP socket (which also
//! carries our STUN transactions and UDP keep-alives), the public address NAT learning updates
//! and the Via rewrite that follows it; and where requests go: the RFC 3263 resolver, the
//! failover between its targets and the locator that holds both.

mod address;
mod dns;
pub(crate) mod family;
mod icmp;
mod locator;
mod resolve;
pub(crate) mod stun;
mod targets;
mod udp;
pub(crate) mod udp_keepalive;
mod via_rewrite;

pub(crate) use address::Addressing;
pub(crate) use icmp::reported as unreachable_reported;
pub(crate) use locator::{Locator, StackResolver};
pub(crate) use resolve::{NextHop, Target};
pub(crate) use targets::{failover_timeout, Attempt};
pub(crate) use udp::{GuardedUdpSocket, TransportCounters};
pub(crate) use via_rewrite::ViaRewrite;
