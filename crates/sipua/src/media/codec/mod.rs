//! Audio codecs of the RTP/AVP profile (RFC 3551) that every SIP peer speaks: G.711 µ-law
//! (PCMU, payload type 0), G.711 A-law (PCMA, 8) and G.722 (9), all written here (`g711.rs` and
//! `g722.rs` hold the algorithms). [`AudioCodec`] is the one place that knows each codec's
//! payload type, encoding name and rates, so SDP and RTP cannot disagree about them;
//! [`Encoder`] and [`Decoder`] dispatch one stream to its algorithm.
//!
//! Nothing here allocates per frame: the slice functions write into caller buffers, and the
//! `Vec` variants only grow a buffer whose capacity is then reused.

mod g711;
mod g722;

pub use g711::{
    alaw_decode, alaw_decode_into, alaw_encode, alaw_encode_into, ulaw_decode, ulaw_decode_into,
    ulaw_encode, ulaw_encode_into,
};
#[doc(hidden)]
pub use g711::{alaw_encode_computed, ulaw_encode_computed};
pub use g722::{G722Decoder, G722Encoder};

/// The codecs we negotiate: the one list of their payload types, names and rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 at 64 kbit/s.
    G722,
}

impl AudioCodec {
    /// Every codec, in our default order of preference for an offer.
    pub const ALL: [AudioCodec; 3] = [AudioCodec::Pcmu, AudioCodec::Pcma, AudioCodec::G722];

    /// The static RTP payload type (RFC 3551 table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
            AudioCodec::G722 => 9,
        }
    }

    /// The codec of a static payload type, if it is one of ours.
    pub fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(AudioCodec::Pcmu),
            8 => Some(AudioCodec::Pcma),
            9 => Some(AudioCodec::G722),
            _ => None,
        }
    }

    /// The encoding name of an SDP `a=rtpmap` line.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::G722 => "G722",
        }
    }

    /// The codec of an `a=rtpmap` encoding name (case-insensitive, as SDP requires).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The rate of the PCM the codec consumes and produces: 8000, or 16000 for G.722.
    pub fn sample_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8000,
            AudioCodec::G722 => 16000,
        }
    }

    /// The RTP timestamp clock rate, as written in `a=rtpmap`: 8000 for all three (for G.722
    /// by a historical error kept by RFC 3551, half its sample rate).
    pub fn rtp_clock_rate(self) -> u32 {
        8000
    }

    /// PCM samples (at [`sample_rate`](Self::sample_rate)) in a frame of `ptime_ms`
    /// milliseconds: 160 for G.711 at 20 ms, 320 for G.722.
    pub fn samples_per_frame(self, ptime_ms: u32) -> usize {
        (u64::from(self.sample_rate()) * u64::from(ptime_ms) / 1000) as usize
    }

    /// RTP timestamp advance per frame of `ptime_ms` milliseconds: 160 at 20 ms for all three.
    pub fn timestamp_increment(self, ptime_ms: u32) -> u32 {
        (u64::from(self.rtp_clock_rate()) * u64::from(ptime_ms) / 1000) as u32
    }

    /// Payload bytes for `samples` PCM samples (G.722: one byte per two samples, rounded up).
    pub fn encoded_len(self, samples: usize) -> usize {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => samples,
            AudioCodec::G722 => samples.div_ceil(2),
        }
    }

    /// PCM samples decoded from `bytes` payload bytes.
    pub fn decoded_len(self, bytes: usize) -> usize {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => bytes,
            AudioCodec::G722 => bytes * 2,
        }
    }
}

// Encoder and Decoder mirror each other on purpose: folded into one generic `Coder<G>`, the
// PCMA encoder measured 4 ns (6 %) slower per frame in benches/codec.rs (code layout).

#[derive(Debug, Clone)]
enum EncoderState {
    Pcmu,
    Pcma,
    G722(Box<G722Encoder>),
}

#[derive(Debug, Clone)]
enum DecoderState {
    Pcmu,
    Pcma,
    G722(Box<G722Decoder>),
}

/// The encoder of one outgoing stream. Created once per stream (G.722 state is boxed then);
/// encoding allocates nothing.
#[derive(Debug, Clone)]
pub struct Encoder {
    codec: AudioCodec,
    state: EncoderState,
}

impl Encoder {
    /// An encoder in its initial state.
    pub fn new(codec: AudioCodec) -> Self {
        let state = match codec {
            AudioCodec::Pcmu => EncoderState::Pcmu,
            AudioCodec::Pcma => EncoderState::Pcma,
            AudioCodec::G722 => EncoderState::G722(Box::default()),
        };
        Self { codec, state }
    }

    /// Its codec.
    pub fn codec(&self) -> AudioCodec {
        self.codec
    }

    /// Encodes PCM at [`AudioCodec::sample_rate`] into `out`, as far as it has room; returns
    /// the bytes written. Size `out` with [`AudioCodec::encoded_len`].
    pub fn encode_into(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match &mut self.state {
            EncoderState::Pcmu => ulaw_encode_into(pcm, out),
            EncoderState::Pcma => alaw_encode_into(pcm, out),
            EncoderState::G722(g) => g.encode_into(pcm, out),
        }
    }

    /// Appends the encoding of `pcm` to `out`; returns the bytes appended. Allocates only if
    /// `out` lacks capacity, so a reused buffer costs nothing per frame.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.resize(start + self.codec.encoded_len(pcm.len()), 0);
        let n = self.encode_into(pcm, &mut out[start..]);
        out.truncate(start + n);
        n
    }

    /// Back to the initial state (a new stream).
    pub fn reset(&mut self) {
        if let EncoderState::G722(g) = &mut self.state {
            g.reset();
        }
    }
}

/// The decoder of one incoming stream; see [`Encoder`].
#[derive(Debug, Clone)]
pub struct Decoder {
    codec: AudioCodec,
    state: DecoderState,
}

impl Decoder {
    /// A decoder in its initial state.
    pub fn new(codec: AudioCodec) -> Self {
        let state = match codec {
            AudioCodec::Pcmu => DecoderState::Pcmu,
            AudioCodec::Pcma => DecoderState::Pcma,
            AudioCodec::G722 => DecoderState::G722(Box::default()),
        };
        Self { codec, state }
    }

    /// Its codec.
    pub fn codec(&self) -> AudioCodec {
        self.codec
    }

    /// Decodes `payload` into `out`, as far as it has room; returns the samples written (at
    /// [`AudioCodec::sample_rate`]). Size `out` with [`AudioCodec::decoded_len`].
    pub fn decode_into(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        match &mut self.state {
            DecoderState::Pcmu => ulaw_decode_into(payload, out),
            DecoderState::Pcma => alaw_decode_into(payload, out),
            DecoderState::G722(g) => g.decode_into(payload, out),
        }
    }

    /// Appends the decoding of `payload` to `out`; returns the samples appended.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> usize {
        let start = out.len();
        out.resize(start + self.codec.decoded_len(payload.len()), 0);
        let n = self.decode_into(payload, &mut out[start..]);
        out.truncate(start + n);
        n
    }

    /// Back to the initial state (a new stream).
    pub fn reset(&mut self) {
        if let DecoderState::G722(g) = &mut self.state {
            g.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{Amplitude, ToneGenerator};

    #[test]
    fn codec_properties() {
        use AudioCodec::*;
        assert_eq!([Pcmu, Pcma, G722].map(AudioCodec::payload_type), [0, 8, 9]);
        assert_eq!(
            [Pcmu, Pcma, G722].map(AudioCodec::sample_rate),
            [8000, 8000, 16000]
        );
        assert_eq!(
            [Pcmu, Pcma, G722].map(AudioCodec::rtp_clock_rate),
            [8000; 3]
        );
        assert_eq!(Pcmu.samples_per_frame(20), 160);
        assert_eq!(Pcma.samples_per_frame(30), 240);
        assert_eq!(G722.samples_per_frame(20), 320);
        assert_eq!(G722.timestamp_increment(20), 160);
        assert_eq!(G722.encoded_len(320), 160);
        assert_eq!(G722.decoded_len(160), 320);
        assert_eq!(Pcmu.encoded_len(160), 160);
        for c in AudioCodec::ALL {
            assert_eq!(AudioCodec::from_payload_type(c.payload_type()), Some(c));
            assert_eq!(AudioCodec::from_name(&c.name().to_lowercase()), Some(c));
        }
        assert_eq!(AudioCodec::from_payload_type(18), None);
        assert_eq!(AudioCodec::from_name("opus"), None);
    }

    #[test]
    fn encoder_decoder_g711_round_trip_and_reuse_buffers() {
        for codec in [AudioCodec::Pcmu, AudioCodec::Pcma] {
            let mut enc = Encoder::new(codec);
            let mut dec = Decoder::new(codec);
            let mut tone = ToneGenerator::new(8000, 1000.0, Amplitude::Dbfs(-6.0));
            let mut pcm = vec![0i16; 160];
            let mut payload = Vec::with_capacity(160);
            let mut out = Vec::with_capacity(160);
            for _ in 0..10 {
                tone.fill(&mut pcm);
                payload.clear();
                out.clear();
                assert_eq!(enc.encode(&pcm, &mut payload), 160);
                assert_eq!(dec.decode(&payload, &mut out), 160);
                assert_eq!(payload.capacity(), 160);
                assert_eq!(out.capacity(), 160);
                // G.711 keeps about 38 dB SNR over its range.
                assert!(snr_db(&pcm, &out) > 30.0, "{codec:?}");
            }
        }
    }

    /// Signal-to-noise ratio of `test` against `reference`, in dB.
    pub(super) fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
        let (mut sig, mut noise) = (0f64, 0f64);
        for (&r, &t) in reference.iter().zip(test) {
            sig += f64::from(r).powi(2);
            noise += (f64::from(r) - f64::from(t)).powi(2);
        }
        10.0 * (sig / noise.max(1e-9)).log10()
    }
}
