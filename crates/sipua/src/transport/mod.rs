//! Transports under the SIP stack and our addressing. Today the guarded UDP socket; TCP, TLS,
//! WebSocket, keep-alives and STUN come beside it. Also where requests go: the RFC 3263
//! resolver, the failover between its targets and the locator that holds both.

mod address;
mod dns;
mod icmp;
mod locator;
mod resolve;
mod targets;
mod udp;

pub(crate) use address::Addressing;
pub(crate) use icmp::reported as unreachable_reported;
pub(crate) use locator::{Locator, StackResolver};
pub(crate) use resolve::{NextHop, Target};
pub(crate) use targets::{failover_timeout, Attempt};
pub(crate) use udp::{GuardedUdpSocket, TransportCounters};
