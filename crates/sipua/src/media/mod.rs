//! Media: RTP/RTCP sessions, codecs, DTMF, jitter buffer, players, recorders, PCM streams and
//! bridges. Pure pieces (codecs, jitter buffer, DTMF, statistics, RTP header) have no sockets
//! or clocks; `session` and `engine` put them on sockets and the pacing clock.

pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod jitter;
mod params;
pub mod recorder;
pub mod rtp;
pub mod session;
pub mod stats;
pub mod tone;
pub mod wav;

pub use params::{MediaDirection, MediaParams};
pub use session::{MediaEvent, MediaEvents};
