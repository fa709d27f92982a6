//! `sipua`: the SIP/RTP user agent engine behind the `sip-native` Node.js addon.
//!
//! Plain Rust on tokio, with no knowledge of Node: the binding crate at the repository root
//! only converts values and forwards [`event::Event`]s. Protocol pieces that can be pure
//! (digest, SDP, the RTP port pool, log masking) have no sockets or clocks in them so they
//! are unit-tested exhaustively.

pub mod config;
pub mod digest;
pub mod error;
pub mod event;
pub mod mask;
pub mod rtp_ports;
pub mod sdp;

pub use config::{AccountConfig, EndpointConfig, TransportKind};
pub use error::{Error, Result};
pub use event::Event;
mod account;
mod auth;
pub mod call;
pub mod call_media;
pub mod endpoint;
mod ids;
pub mod logging;
mod remote_target;
mod transport;

pub use endpoint::{CallInfo, Counters, Endpoint, LocalAddress};
pub mod media;
