//! G.722, the ITU-T sub-band ADPCM codec at 64 kbit/s (mode 1): 16 kHz audio, a 24-tap QMF
//! splitting it into two 8 kHz sub-bands, 6 bits of ADPCM for the lower band and 2 for the upper
//! one, so one byte per two input samples. It follows the structure of the public-domain
//! implementation by Steve Underwood (derived from the CMU 1993 code), written anew.

/// QMF coefficients (G.722 table 11); the 24-tap filter uses them mirrored.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
/// Lower band: quantiser decision levels (scaled), and 6-bit codes for negative/positive errors.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [u8; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [u8; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// Lower band: 6-bit inverse quantiser (decoder output), 4-bit one (predictor update).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// Lower band log scale factor: 4-bit code → magnitude class → increment.
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Antilog table of the scale factor.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Higher band: 2-bit inverse quantiser, codes, magnitude class and log scale increments.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const IHN: [u8; 3] = [0, 1, 0];
const IHP: [u8; 3] = [0, 3, 2];
const RH2: [usize; 4] = [2, 1, 2, 1];
const WH: [i32; 3] = [0, -214, 798];

#[inline]
fn sat16(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// Adaptive predictor and scale factor of one sub-band.
#[derive(Debug, Clone)]
struct Band {
    /// Predicted signal, its pole and zero parts.
    s: i32,
    sp: i32,
    sz: i32,
    /// Reconstructed signal, pole coefficients (current and updated), partial reconstruction.
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    /// Quantised differences, zero coefficients (current and updated).
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    /// Log scale factor and linear scale factor.
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Self {
            s: 0,
            sp: 0,
            sz: 0,
            r: [0; 3],
            a: [0; 3],
            ap: [0; 3],
            p: [0; 3],
            d: [0; 7],
            b: [0; 7],
            bp: [0; 7],
            nb: 0,
            det,
        }
    }

    /// Scale factor adaptation (blocks 3L/3H, LOGSCL/LOGSCH then SCALEL/SCALEH): leak the log
    /// factor, add the increment, limit it, and turn it back into a linear factor.
    fn adapt_scale(&mut self, increment: i32, nb_max: i32, shift_base: i32) {
        self.nb = (((self.nb * 127) >> 7) + increment).clamp(0, nb_max);
        let mantissa = ILB[((self.nb >> 6) & 31) as usize];
        let shift = shift_base - (self.nb >> 11);
        let det = if shift < 0 {
            mantissa << -shift
        } else {
            mantissa >> shift
        };
        self.det = det << 2;
    }

    /// Block 4: reconstruction, pole and zero predictor adaptation, next prediction.
    fn update(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = sat16(self.s + d);
        self.p[0] = sat16(self.sz + d);

        // UPPOL2: second pole coefficient.
        let sg0 = self.p[0] >> 15;
        let sg1 = self.p[1] >> 15;
        let sg2 = self.p[2] >> 15;
        let a1x4 = sat16(self.a[1] << 2);
        let f = if sg0 == sg1 { -a1x4 } else { a1x4 }.min(32767);
        let mut a2 = (f >> 7) + if sg0 == sg2 { 128 } else { -128 };
        a2 += (self.a[2] * 32512) >> 15;
        self.ap[2] = a2.clamp(-12288, 12288);

        // UPPOL1: first pole coefficient, limited by the second.
        let step = if sg0 == sg1 { 192 } else { -192 };
        let a1 = sat16(step + ((self.a[1] * 32640) >> 15));
        let lim = sat16(15360 - self.ap[2]);
        self.ap[1] = a1.clamp(-lim, lim);

        // UPZERO: sixth-order zero predictor, sign-sign adaptation with leakage.
        let gain = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for i in 1..7 {
            let g = if (self.d[i] >> 15) == sgd {
                gain
            } else {
                -gain
            };
            self.bp[i] = sat16(g + ((self.b[i] * 32640) >> 15));
        }

        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }

        // FILTEP: pole section.
        let w1 = (self.a[1] * sat16(self.r[1] + self.r[1])) >> 15;
        let w2 = (self.a[2] * sat16(self.r[2] + self.r[2])) >> 15;
        self.sp = sat16(w1 + w2);

        // FILTEZ: zero section.
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * sat16(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = sat16(sz);

        // PREDIC
        self.s = sat16(self.sp + self.sz);
    }
}

/// G.722 64 kbit/s encoder: 16 kHz PCM in, one byte per two samples out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    low: Band,
    high: Band,
    /// Transmit QMF delay line.
    x: [i32; 24],
    /// An odd trailing sample of the previous call, waiting for its pair.
    pending: Option<i16>,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// An encoder in the initial state of G.722 (its reset values).
    pub fn new() -> Self {
        Self {
            low: Band::new(32),
            high: Band::new(8),
            x: [0; 24],
            pending: None,
        }
    }

    /// Encodes as many sample pairs as `out` holds; returns the bytes written. An odd last
    /// sample is kept and paired with the first sample of the next call.
    pub fn encode_into(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let mut written = 0;
        let mut rest = pcm;
        if let Some(first) = self.pending {
            let Some((&second, tail)) = rest.split_first() else {
                return 0;
            };
            if out.is_empty() {
                return 0;
            }
            out[0] = self.encode_pair(first, second);
            self.pending = None;
            written = 1;
            rest = tail;
        }
        let pairs = rest.chunks_exact(2);
        let odd = pairs.remainder();
        let mut encoded = 0;
        for (o, pair) in out[written..].iter_mut().zip(pairs) {
            *o = self.encode_pair(pair[0], pair[1]);
            encoded += 1;
        }
        // Keep the odd sample only if every pair before it was encoded.
        if let [last] = odd {
            if encoded == rest.len() / 2 {
                self.pending = Some(*last);
            }
        }
        written + encoded
    }

    /// Resets to the initial state (e.g. on a new RTP stream).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    fn encode_pair(&mut self, s0: i16, s1: i16) -> u8 {
        // Transmit QMF: shift two samples in, keep one output of each sub-band.
        self.x.copy_within(2.., 0);
        self.x[22] = i32::from(s0);
        self.x[23] = i32::from(s1);
        let (mut even, mut odd) = (0i32, 0i32);
        for i in 0..12 {
            odd += self.x[2 * i] * QMF[i];
            even += self.x[2 * i + 1] * QMF[11 - i];
        }
        let xlow = (even + odd) >> 14;
        let xhigh = (even - odd) >> 14;

        // Lower band: SUBTRA, QUANTL (6 bits).
        let el = sat16(xlow - self.low.s);
        let mag = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && mag >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // INVQAL with the 4 most significant bits, LOGSCL/SCALEL, then block 4.
        let ril = usize::from(ilow >> 2);
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril]], 18432, 8);
        self.low.update(dlow);

        // Higher band: SUBTRA, QUANTH (2 bits).
        let eh = sat16(xhigh - self.high.s);
        let mag = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if mag >= (564 * self.high.det) >> 12 {
            2
        } else {
            1
        };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        // INVQAH, LOGSCH/SCALEH, block 4.
        let dhigh = (self.high.det * QM2[usize::from(ihigh)]) >> 15;
        self.high
            .adapt_scale(WH[RH2[usize::from(ihigh)]], 22528, 10);
        self.high.update(dhigh);

        (ihigh << 6) | ilow
    }
}

/// G.722 64 kbit/s decoder: one byte in, two 16 kHz samples out.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    low: Band,
    high: Band,
    /// Receive QMF delay line.
    x: [i32; 24],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A decoder in the initial state of G.722 (its reset values).
    pub fn new() -> Self {
        Self {
            low: Band::new(32),
            high: Band::new(8),
            x: [0; 24],
        }
    }

    /// Decodes as many bytes as `out` has room for (two samples each); returns the samples
    /// written.
    pub fn decode_into(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        let mut written = 0;
        for (o, &code) in out.chunks_exact_mut(2).zip(payload) {
            let (a, b) = self.decode_byte(code);
            o[0] = a;
            o[1] = b;
            written += 2;
        }
        written
    }

    /// Resets to the initial state.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    fn decode_byte(&mut self, code: u8) -> (i16, i16) {
        let ilow = usize::from(code & 0x3F);
        let ihigh = usize::from(code >> 6);

        // Lower band: INVQBL (6 bits) and RECONS/LIMIT for the output.
        let dl6 = (self.low.det * QM6[ilow]) >> 15;
        let rlow = (self.low.s + dl6).clamp(-16384, 16383);
        // INVQAL (4 bits) for the predictor, LOGSCL/SCALEL, block 4.
        let ril = ilow >> 2;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril]], 18432, 8);
        self.low.update(dlow);

        // Higher band: INVQAH, RECONS/LIMIT, LOGSCH/SCALEH, block 4.
        let dhigh = (self.high.det * QM2[ihigh]) >> 15;
        let rhigh = (self.high.s + dhigh).clamp(-16384, 16383);
        self.high.adapt_scale(WH[RH2[ihigh]], 22528, 10);
        self.high.update(dhigh);

        // Receive QMF: two sub-band samples in, two 16 kHz samples out.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let (mut out1, mut out2) = (0i32, 0i32);
        for i in 0..12 {
            out2 += self.x[2 * i] * QMF[i];
            out1 += self.x[2 * i + 1] * QMF[11 - i];
        }
        (sat16(out1 >> 11) as i16, sat16(out2 >> 11) as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::tests::snr_db;
    use crate::media::codec::{AudioCodec, Decoder, Encoder};
    use crate::media::tone::{dominant_frequency, rms_dbfs, Amplitude, ToneGenerator};

    fn g722_round_trip(pcm: &[i16]) -> Vec<i16> {
        let mut enc = Encoder::new(AudioCodec::G722);
        let mut dec = Decoder::new(AudioCodec::G722);
        let mut payload = Vec::new();
        let mut out = Vec::new();
        for frame in pcm.chunks(320) {
            payload.clear();
            enc.encode(frame, &mut payload);
            dec.decode(&payload, &mut out);
        }
        out
    }

    /// Best SNR over the codec delays 0..64, and that delay.
    fn aligned_snr(input: &[i16], output: &[i16]) -> (f64, usize) {
        let skip = 800; // let the ADPCM adapt
        (0..64)
            .map(|delay| {
                let n = output.len() - delay - skip;
                let snr = snr_db(&input[skip..skip + n], &output[skip + delay..]);
                (snr, delay)
            })
            .fold((f64::MIN, 0), |a, b| if b.0 > a.0 { b } else { a })
    }

    #[test]
    fn g722_keeps_a_1khz_tone() {
        for level in [-6.0, -20.0] {
            let mut pcm = vec![0i16; 16000];
            ToneGenerator::new(16000, 1000.0, Amplitude::Dbfs(level)).fill(&mut pcm);
            let out = g722_round_trip(&pcm);
            assert_eq!(out.len(), pcm.len());
            let f = dominant_frequency(&out[1600..], 16000, 200.0, 7000.0, 10.0);
            assert!((f - 1000.0).abs() < 10.0, "{f}");
            let (snr, delay) = aligned_snr(&pcm, &out);
            assert!(
                snr > 20.0,
                "level {level}: SNR {snr:.1} dB at delay {delay}"
            );
            assert!((rms_dbfs(&out[1600..]) - level).abs() < 1.0);
        }
    }

    #[test]
    fn g722_keeps_a_high_band_tone() {
        // 5 kHz lies in the upper sub-band (4-8 kHz), coded with 2 bits only.
        let mut pcm = vec![0i16; 16000];
        ToneGenerator::new(16000, 5000.0, Amplitude::Dbfs(-10.0)).fill(&mut pcm);
        let out = g722_round_trip(&pcm);
        let f = dominant_frequency(&out[1600..], 16000, 200.0, 7500.0, 10.0);
        assert!((f - 5000.0).abs() < 50.0, "{f}");
    }

    #[test]
    fn g722_silence_stays_silent() {
        let out = g722_round_trip(&[0i16; 3200]);
        assert!(out.iter().all(|&s| s.abs() <= 8), "{:?}", &out[..40]);
        assert!(rms_dbfs(&out) < -70.0);
    }

    #[test]
    fn g722_frame_splits_do_not_change_the_stream() {
        let mut pcm = vec![0i16; 3200];
        ToneGenerator::dual(16000, 697.0, 1477.0, Amplitude::Dbfs(-12.0)).fill(&mut pcm);
        let mut whole = vec![0u8; 1600];
        assert_eq!(G722Encoder::new().encode_into(&pcm, &mut whole), 1600);

        // Odd-sized pieces: the odd sample waits for its pair.
        let mut enc = Encoder::new(AudioCodec::G722);
        let mut pieces = Vec::new();
        let mut at = 0;
        for len in [1usize, 159, 320, 7, 333, 1, 1, 2378].iter().copied() {
            enc.encode(&pcm[at..at + len], &mut pieces);
            at += len;
        }
        assert_eq!(at, 3200);
        assert_eq!(pieces, whole);

        let mut dec = G722Decoder::new();
        let mut a = vec![0i16; 3200];
        assert_eq!(dec.decode_into(&whole, &mut a), 3200);
        let mut dec2 = Decoder::new(AudioCodec::G722);
        let mut b = Vec::new();
        for chunk in whole.chunks(160) {
            dec2.decode(chunk, &mut b);
        }
        assert_eq!(a, b);

        // Too small an output buffer: only what fits is written.
        let mut small = [0i16; 5];
        assert_eq!(G722Decoder::new().decode_into(&whole, &mut small), 4);
        let mut small = [0u8; 3];
        assert_eq!(G722Encoder::new().encode_into(&pcm[..20], &mut small), 3);

        enc.reset();
        let mut again = Vec::new();
        enc.encode(&pcm, &mut again);
        assert_eq!(again, whole);
    }

    #[test]
    fn g722_survives_full_scale_and_noise() {
        // Saturation paths: full-scale square wave and pseudo-random noise must not panic
        // (debug builds check overflow) and must come out bounded.
        let mut pcm: Vec<i16> = (0..4000)
            .map(|i| if (i / 8) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let mut seed = 0x1234_5678u32;
        pcm.extend((0..4000).map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 16) as i16
        }));
        let out = g722_round_trip(&pcm);
        assert_eq!(out.len(), pcm.len());
        let mut dec = G722Decoder::new();
        let all: Vec<u8> = (0..=255).collect();
        let mut o = vec![0i16; 512];
        assert_eq!(dec.decode_into(&all, &mut o), 512);
    }
}
