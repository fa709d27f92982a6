//! `sipua`: the SIP/RTP user agent engine behind the `sip-native` Node.js addon.
//!
//! Plain Rust on tokio, with no knowledge of Node: the binding crate at the repository root
//! only converts values and forwards [`event::Event`]s. Modules depend on each other one way,
//! leaves first: `config` → `sip` → `transport` → `media` → `sdp` → `metrics` → `context` →
//! `account`, `call` → `endpoint`. Protocol pieces that can be pure (digest, SDP, the call state machine,
//! the RTP port pool, log masking) have no sockets or clocks in them and are unit-tested
//! exhaustively.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod error;
pub mod event;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
pub mod media;
pub mod metrics;
mod rtp_ports;
mod sdes;
mod sdp;
mod sip;

mod account;
mod call;
mod context;
mod endpoint;
mod ids;
#[cfg(test)]
mod test_support;
mod transport;

pub use call::{CallInfo, HoldState};
pub use config::{AccountConfig, EndpointConfig, PrackMode, TransportKind};
pub use endpoint::{AccountInfo, Counters, DtmfMethod, Endpoint, LocalAddress, OptionsReply};
pub use error::{Error, Result};
pub use event::Event;
pub use metrics::Metrics;
