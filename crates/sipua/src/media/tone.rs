//! Tone generation and measurement: a phase-continuous one- or two-frequency generator (test
//! tones, DTMF pairs, ringback), the Goertzel filter, a dominant-frequency scan and an RMS level
//! meter. Pure functions over `i16` PCM; nothing here allocates.
//!
//! Levels are in dBFS **relative to a full-scale sine**: a sine whose peak is `i16::MAX`
//! (32767) measures 0 dBFS, so its RMS (peak/√2) is the 0 dB reference. A full-scale square
//! wave therefore measures about +3 dBFS.

use std::f64::consts::TAU;

/// Peak value of a 0 dBFS sine.
pub const FULL_SCALE: f64 = i16::MAX as f64;

/// Converts a level in dBFS (relative to a full-scale sine) to a linear peak amplitude, where
/// 1.0 is full scale.
pub fn dbfs_to_linear(dbfs: f64) -> f64 {
    10f64.powf(dbfs / 20.0)
}

/// Converts a linear peak amplitude (1.0 = full scale) to dBFS relative to a full-scale sine.
pub fn linear_to_dbfs(linear: f64) -> f64 {
    20.0 * linear.log10()
}

/// The level of each component of a [`ToneGenerator`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amplitude {
    /// dBFS relative to a full-scale sine (0.0 = peak 32767; -6.0 ≈ half scale).
    Dbfs(f64),
    /// Linear peak amplitude, 1.0 = full scale (peak 32767).
    Linear(f64),
}

impl Amplitude {
    /// The peak amplitude as a fraction of full scale.
    pub fn linear(self) -> f64 {
        match self {
            Amplitude::Dbfs(db) => dbfs_to_linear(db),
            Amplitude::Linear(l) => l,
        }
    }
}

/// A sine generator of one or two frequencies (a DTMF digit is two), each at the same level,
/// whose phase carries over from one [`fill`](Self::fill) to the next so consecutive frames join
/// without clicks. The sum of two components is saturated to the `i16` range.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    sample_rate: u32,
    /// Each component is a unit phasor (cos, sin) turned by a fixed rotation per sample: two
    /// multiplications instead of a `sin()` per sample (the pacing clock plays tones to
    /// thousands of calls). Renormalised after every fill so rounding cannot drift the level.
    phasor: [(f64, f64); 2],
    rotation: [(f64, f64); 2],
    freqs: [f64; 2],
    components: usize,
    /// Peak amplitude of each component, in sample units.
    peak: f64,
}

impl ToneGenerator {
    /// One frequency.
    pub fn new(sample_rate: u32, freq: f64, amplitude: Amplitude) -> Self {
        Self::build(sample_rate, [freq, 0.0], 1, amplitude)
    }

    /// Two frequencies summed, each at `amplitude` (e.g. DTMF: 697 Hz + 1209 Hz for "1").
    pub fn dual(sample_rate: u32, f1: f64, f2: f64, amplitude: Amplitude) -> Self {
        Self::build(sample_rate, [f1, f2], 2, amplitude)
    }

    fn build(sample_rate: u32, freqs: [f64; 2], components: usize, amplitude: Amplitude) -> Self {
        let rate = f64::from(sample_rate.max(1));
        let rotation = |f: f64| {
            let w = TAU * f / rate;
            (w.cos(), w.sin())
        };
        Self {
            sample_rate,
            phasor: [(1.0, 0.0); 2],
            rotation: [rotation(freqs[0]), rotation(freqs[1])],
            freqs,
            components,
            peak: amplitude.linear() * FULL_SCALE,
        }
    }

    /// The rate it generates samples at.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The frequencies generated (one or two).
    pub fn frequencies(&self) -> &[f64] {
        &self.freqs[..self.components]
    }

    /// Changes the level from the next sample on; the phase is kept.
    pub fn set_amplitude(&mut self, amplitude: Amplitude) {
        self.peak = amplitude.linear() * FULL_SCALE;
    }

    /// Restarts both components at phase zero.
    pub fn reset(&mut self) {
        self.phasor = [(1.0, 0.0); 2];
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            *s = saturate(self.next_value());
        }
        self.renormalise();
    }

    fn renormalise(&mut self) {
        for p in &mut self.phasor[..self.components] {
            let norm = (p.0 * p.0 + p.1 * p.1).sqrt();
            if norm > 0.0 {
                *p = (p.0 / norm, p.1 / norm);
            }
        }
    }

    /// Adds the next `out.len()` samples to what `out` holds (saturating), e.g. to mix a tone
    /// under speech.
    pub fn mix_into(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            *s = saturate(f64::from(*s) + self.next_value());
        }
        self.renormalise();
    }

    fn next_value(&mut self) -> f64 {
        let mut v = 0.0;
        for i in 0..self.components {
            let (c, s) = self.phasor[i];
            let (rc, rs) = self.rotation[i];
            v += s;
            self.phasor[i] = (c * rc - s * rs, c * rs + s * rc);
        }
        v * self.peak
    }
}

fn saturate(v: f64) -> i16 {
    // `as` saturates and maps NaN to 0.
    v.round() as i16
}

/// Goertzel power of `samples` at `freq` (any frequency, not only a DFT bin), normalised so a
/// sine of peak amplitude `A` (as a fraction of full scale) at exactly `freq` gives about `A²`
/// (a full-scale sine ≈ 1.0), independent of the number of samples. No window is applied:
/// leakage from strong neighbours falls off as 1/(N·Δf), so use blocks of at least
/// `sample_rate / resolution` samples. Returns 0.0 for an empty slice.
pub fn goertzel_power(samples: &[i16], sample_rate: u32, freq: f64) -> f64 {
    if samples.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let w = TAU * freq / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / FULL_SCALE + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let half = samples.len() as f64 / 2.0;
    power.max(0.0) / (half * half)
}

/// The frequency in `lo..=hi` with the largest Goertzel power, scanned every `step` Hz and
/// refined by a parabola through the best point and its two neighbours (never by more than half
/// a step). Returns `lo` when the range is empty or `step` is not positive.
pub fn dominant_frequency(samples: &[i16], sample_rate: u32, lo: f64, hi: f64, step: f64) -> f64 {
    let valid = step > 0.0 && hi >= lo;
    if !valid {
        return lo;
    }
    let n = ((hi - lo) / step).floor() as usize;
    let at = |i: usize| goertzel_power(samples, sample_rate, lo + i as f64 * step);
    let (mut best_i, mut best_p) = (0usize, f64::MIN);
    for i in 0..=n {
        let p = at(i);
        if p > best_p {
            best_i = i;
            best_p = p;
        }
    }
    let mut f = lo + best_i as f64 * step;
    if best_i > 0 && best_i < n {
        let (pl, pr) = (at(best_i - 1), at(best_i + 1));
        let denom = pl - 2.0 * best_p + pr;
        if denom < 0.0 {
            let delta = (0.5 * (pl - pr) / denom).clamp(-0.5, 0.5);
            f += delta * step;
        }
    }
    f
}

/// RMS level in dBFS relative to a full-scale sine (see the module docs): a full-scale sine is
/// 0.0, a -6 dBFS sine is -6.0. Silence (or an empty slice) is `f64::NEG_INFINITY`.
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms == 0.0 {
        return f64::NEG_INFINITY;
    }
    20.0 * (rms / (FULL_SCALE / std::f64::consts::SQRT_2)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, amp: Amplitude, len: usize) -> Vec<i16> {
        let mut g = ToneGenerator::new(rate, freq, amp);
        let mut v = vec![0i16; len];
        g.fill(&mut v);
        v
    }

    #[test]
    fn detects_1000_and_440_hz_within_one_percent() {
        for (rate, freq) in [
            (8000u32, 1000.0),
            (8000, 440.0),
            (16000, 1000.0),
            (44100, 440.0),
        ] {
            let v = tone(rate, freq, Amplitude::Dbfs(-10.0), rate as usize / 2);
            let f = dominant_frequency(&v, rate, 100.0, 3000.0, 5.0);
            assert!(
                (f - freq).abs() / freq < 0.01,
                "{rate} Hz: {freq} measured as {f}"
            );
        }
    }

    #[test]
    fn level_of_minus_6_dbfs_tone() {
        for rate in [8000u32, 16000, 48000] {
            let v = tone(rate, 1000.0, Amplitude::Dbfs(-6.0), rate as usize);
            let db = rms_dbfs(&v);
            assert!((db + 6.0).abs() <= 0.2, "{rate}: {db}");
        }
        // Linear 0.5 is -6.02 dBFS.
        let v = tone(8000, 440.0, Amplitude::Linear(0.5), 8000);
        assert!((rms_dbfs(&v) - linear_to_dbfs(0.5)).abs() < 0.05);
        let full = tone(8000, 1000.0, Amplitude::Dbfs(0.0), 8000);
        assert!(rms_dbfs(&full).abs() < 0.05);
        assert_eq!(*full.iter().max().unwrap(), i16::MAX);
    }

    #[test]
    fn silence_is_minus_infinity() {
        assert_eq!(rms_dbfs(&[0; 160]), f64::NEG_INFINITY);
        assert_eq!(rms_dbfs(&[]), f64::NEG_INFINITY);
        assert_eq!(goertzel_power(&[], 8000, 1000.0), 0.0);
    }

    #[test]
    fn phase_continues_across_frames() {
        // 160-sample frames must concatenate into exactly the one-shot signal.
        let mut g = ToneGenerator::dual(8000, 697.0, 1209.0, Amplitude::Dbfs(-10.0));
        let mut framed = vec![0i16; 1600];
        for chunk in framed.chunks_mut(160) {
            g.fill(chunk);
        }
        let mut g2 = ToneGenerator::dual(8000, 697.0, 1209.0, Amplitude::Dbfs(-10.0));
        let mut whole = vec![0i16; 1600];
        g2.fill(&mut whole);
        assert_eq!(framed, whole);
        // And odd-sized frames, too.
        let mut g3 = ToneGenerator::dual(8000, 697.0, 1209.0, Amplitude::Dbfs(-10.0));
        let mut odd = vec![0i16; 1600];
        let (a, b) = odd.split_at_mut(333);
        g3.fill(a);
        g3.fill(b);
        assert_eq!(odd, whole);
    }

    #[test]
    fn dtmf_pair_has_both_components() {
        let mut g = ToneGenerator::dual(8000, 770.0, 1336.0, Amplitude::Dbfs(-10.0));
        assert_eq!(g.frequencies(), &[770.0, 1336.0]);
        let mut v = vec![0i16; 800];
        g.fill(&mut v);
        let expect = dbfs_to_linear(-10.0).powi(2);
        for f in [770.0, 1336.0] {
            let p = goertzel_power(&v, 8000, f);
            assert!((p / expect - 1.0).abs() < 0.05, "{f}: {p} vs {expect}");
        }
        for f in [697.0, 852.0, 941.0, 1209.0, 1477.0] {
            assert!(goertzel_power(&v, 8000, f) < expect / 100.0, "{f}");
        }
    }

    #[test]
    fn two_full_scale_components_saturate_instead_of_wrapping() {
        let mut g = ToneGenerator::dual(8000, 1000.0, 1000.0, Amplitude::Dbfs(0.0));
        let mut v = vec![0i16; 80];
        g.fill(&mut v);
        assert!(v.contains(&i16::MAX));
        assert!(v.iter().all(|&s| s > i16::MIN + 1 || s == i16::MIN));
        // Sign follows the sine: the second sample of a 1 kHz tone at 8 kHz is positive.
        assert!(v[1] > 0 && v[5] < 0);
    }

    #[test]
    fn mix_into_adds() {
        let mut g = ToneGenerator::new(8000, 1000.0, Amplitude::Linear(0.25));
        let mut v = vec![1000i16; 8];
        g.mix_into(&mut v);
        let mut t = vec![0i16; 8];
        ToneGenerator::new(8000, 1000.0, Amplitude::Linear(0.25)).fill(&mut t);
        for (m, t) in v.iter().zip(&t) {
            assert!((i32::from(*m) - i32::from(*t) - 1000).abs() <= 1);
        }
    }

    #[test]
    fn goertzel_normalisation_and_scan_edges() {
        let v = tone(8000, 1000.0, Amplitude::Linear(0.5), 8000);
        let p = goertzel_power(&v, 8000, 1000.0);
        assert!((p - 0.25).abs() < 0.01, "{p}");
        assert_eq!(dominant_frequency(&v, 8000, 500.0, 400.0, 10.0), 500.0);
        assert_eq!(dominant_frequency(&v, 8000, 500.0, 1500.0, 0.0), 500.0);
        let f = dominant_frequency(&v, 8000, 1000.0, 1000.0, 10.0);
        assert_eq!(f, 1000.0);
    }
}
