//! Media: RTP/RTCP sessions, codecs, DTMF, jitter buffer, players, recorders, PCM streams and
//! bridges. Pure pieces (codecs, jitter buffer, DTMF, statistics) have no sockets or clocks.

pub mod codec;
pub mod dtmf;
pub mod jitter;
pub mod rtp;
pub mod stats;
pub mod tone;
pub mod wav;
