//! Media: RTP/RTCP sessions, codecs, DTMF, jitter buffer, players, recorders, PCM streams and
//! bridges. Pure pieces (codecs, jitter buffer, DTMF, statistics, RTP header) have no sockets
//! or clocks; `session` and `engine` put them on sockets and the pacing clock.
//!
//! A leaf of the engine: media knows neither SDP nor the user's events. Negotiation reaches it
//! as [`MediaParams`], and it reports through the [`MediaEvents`] callback it is given, so the
//! call layer decides what the user sees.

pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod jitter;
mod params;
pub mod recorder;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod stats;
pub mod tone;
pub mod wav;

pub use params::{MediaDirection, MediaParams};
pub use session::{MediaEvent, MediaEvents};
