//! WAV files for players and recorders, on `hound`.
//!
//! [`read_wav_mono`] loads a whole prompt: any PCM WAV that `hound` reads (8/16/24/32-bit
//! integer, 32-bit float, plain or WAVE_FORMAT_EXTENSIBLE), any channel count (averaged to
//! mono), any sample rate (converted by [`resample`]). [`WavWriter`] streams 16-bit mono or
//! stereo to disk, one frame at a time, without allocating once its first frame is written.
//!
//! Resampling is written here rather than taken from `rubato`: we only convert whole files
//! once, off the media path, and a windowed-sinc filter bank of 60 lines does that at
//! telephony quality (flat to 0.9 of the lower Nyquist frequency, aliases below about -70 dB)
//! without rubato's seven extra crates and its newer minimum Rust (1.87 against our 1.85).

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

/// Why a WAV file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file could not be opened or read (missing, no permission, truncated, ...).
    #[error("cannot read {}: {reason}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file is not a RIFF/WAVE file at all.
    #[error("cannot read {}: not a WAV file", .path.display())]
    NotWav {
        /// The file.
        path: PathBuf,
    },
    /// A WAV file whose headers are broken.
    #[error("cannot read {}: malformed WAV file ({reason})", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A WAV file in an encoding we do not read (A-law, µ-law, ADPCM, 64-bit float, ...).
    #[error("cannot read {}: unsupported WAV format ({reason})", .path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file could not be created or written.
    #[error("cannot write {}: {reason}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A caller error: bad channel count, rate, or a frame not made of whole sample frames.
    #[error("{}: {reason}", .path.display())]
    InvalidArgument {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl WavError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            WavError::Read { path, .. }
            | WavError::NotWav { path }
            | WavError::Malformed { path, .. }
            | WavError::Unsupported { path, .. }
            | WavError::Write { path, .. }
            | WavError::InvalidArgument { path, .. } => path,
        }
    }
}

/// Whether an I/O error means the file ended early (hound reports it as `Other`).
fn is_eof(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof || e.to_string() == "Failed to read enough bytes."
}

/// An I/O error's message without the " (os error N)" suffix: "No such file or directory".
fn io_reason(e: &io::Error) -> String {
    if is_eof(e) {
        return "truncated WAV data".to_owned();
    }
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Maps a `hound` error met while opening or reading `path`.
fn read_error(path: &Path, e: hound::Error, opening: bool) -> WavError {
    let path = path.to_path_buf();
    match e {
        // A file shorter than the RIFF/WAVE preamble is no WAV file; a longer one that ends
        // inside the headers is a broken one.
        hound::Error::IoError(e) if opening && is_eof(&e) => {
            if std::fs::metadata(&path).map_or(true, |m| m.len() < 12) {
                WavError::NotWav { path }
            } else {
                WavError::Malformed {
                    path,
                    reason: "truncated header".to_owned(),
                }
            }
        }
        hound::Error::IoError(e) => WavError::Read {
            path,
            reason: io_reason(&e),
        },
        hound::Error::FormatError("no RIFF tag found" | "no WAVE tag found") => {
            WavError::NotWav { path }
        }
        hound::Error::FormatError(reason) => WavError::Malformed {
            path,
            reason: reason.to_owned(),
        },
        hound::Error::UnfinishedSample => WavError::Read {
            path,
            reason: "truncated WAV data".to_owned(),
        },
        hound::Error::Unsupported => WavError::Unsupported {
            path,
            reason: "only PCM integer and 32-bit float WAV files are read".to_owned(),
        },
        other @ (hound::Error::TooWide | hound::Error::InvalidSampleFormat) => {
            WavError::Unsupported {
                path,
                reason: other.to_string(),
            }
        }
    }
}

/// Reads a whole WAV file as mono 16-bit PCM at `target_rate`: channels are averaged, the rate
/// is converted with [`resample`], wider samples are rounded to 16 bits (float beyond ±1.0
/// clipped). A 16-bit mono file already at `target_rate` comes back sample for sample.
pub fn read_wav_mono(path: impl AsRef<Path>, target_rate: u32) -> Result<Vec<i16>, WavError> {
    let path = path.as_ref();
    if target_rate == 0 {
        return Err(WavError::InvalidArgument {
            path: path.to_path_buf(),
            reason: "target sample rate must be positive".to_owned(),
        });
    }
    let mut reader = hound::WavReader::open(path).map_err(|e| read_error(path, e, true))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let unsupported = |reason: String| WavError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    if spec.sample_rate == 0 {
        return Err(unsupported("sample rate 0".to_owned()));
    }
    let file_len = std::fs::metadata(path).map_or(0, |m| m.len());

    // Mono frames as f32 in [-1, 1].
    let mut mono = Vec::with_capacity(frame_capacity(reader.duration(), file_len));
    let inv_channels = 1.0 / channels as f32;
    let mut push = |acc: &mut f32, i: usize, v: f32| {
        *acc += v;
        if i % channels == channels - 1 {
            mono.push(*acc * inv_channels);
            *acc = 0.0;
        }
    };
    let mut acc = 0.0f32;
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            for (i, s) in reader.samples::<f32>().enumerate() {
                let v = s.map_err(|e| read_error(path, e, false))?;
                push(&mut acc, i, if v.is_finite() { v } else { 0.0 });
            }
        }
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for (i, s) in reader.samples::<i32>().enumerate() {
                let v = s.map_err(|e| read_error(path, e, false))?;
                push(&mut acc, i, v as f32 * scale);
            }
        }
        (format, bits) => {
            return Err(unsupported(format!("{bits}-bit {format:?}")));
        }
    }

    let mono = if spec.sample_rate == target_rate {
        mono
    } else {
        resample(&mono, spec.sample_rate, target_rate)
    };
    Ok(mono.iter().map(|&v| to_i16(v)).collect())
}

/// Frames to reserve for a file whose header declares `declared` frames. The header is a claim:
/// a 50-byte file may declare 1.4 GB of data (found by fuzzing: reserving it made the allocator
/// abort the process), so no more frames than the file has bytes.
fn frame_capacity(declared: u32, file_len: u64) -> usize {
    usize::try_from(u64::from(declared).min(file_len)).unwrap_or(0)
}

fn to_i16(v: f32) -> i16 {
    // `as` saturates; NaN never gets here (filtered on read, and the filter is finite).
    (v * 32768.0).round() as i16
}

/// Zero crossings of the interpolation kernel on each side (at the lower of the two rates).
const ZEROS: f64 = 24.0;
/// Passband edge as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.9;
/// Beyond this many distinct phases the filter bank quantises the phase (error < 1/8192
/// sample) instead of storing one filter per exact phase.
const MAX_PHASES: u64 = 4096;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Converts `input` (one channel, samples in any unit) from `from_rate` to `to_rate` with a
/// Blackman-windowed sinc filter bank: low-pass at 0.9 × the lower Nyquist frequency, so
/// downsampling does not alias, each phase normalised to unit gain at DC. The signal is taken
/// as zero outside `input`. The output has `ceil(len × to / from)` samples. Meant for whole
/// files (it allocates its filter bank and the output), not for the per-packet path.
pub fn resample(input: &[f32], from_rate: u32, to_rate: u32) -> Vec<f32> {
    if from_rate == to_rate || input.is_empty() || from_rate == 0 || to_rate == 0 {
        return input.to_vec();
    }
    let g = gcd(u64::from(from_rate), u64::from(to_rate));
    let (l, m) = (u64::from(to_rate) / g, u64::from(from_rate) / g);
    let phases = l.min(MAX_PHASES) as usize;

    // Cut-off in cycles per input sample, and the kernel half-width in input samples.
    let scale = (f64::from(to_rate) / f64::from(from_rate)).min(1.0);
    let fc = 0.5 * scale * ROLLOFF;
    let half = (ZEROS / (2.0 * fc)).ceil() as usize;
    let taps = 2 * half;

    // bank[p * taps + j] weighs input[i + j + 1 - half] for an output at input time i + p/phases.
    let mut bank = vec![0f32; phases * taps];
    let mut h = Vec::with_capacity(taps);
    for (p, filter) in bank.chunks_exact_mut(taps).enumerate() {
        let frac = p as f64 / phases as f64;
        let mut sum = 0.0;
        h.clear();
        for j in 0..taps {
            let x = (j as f64 + 1.0 - half as f64) - frac;
            let arg = 2.0 * fc * x;
            let sinc = if arg == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
            };
            let w = x / half as f64; // in (-1, 1)
            let blackman = 0.42
                + 0.5 * (std::f64::consts::PI * w).cos()
                + 0.08 * (2.0 * std::f64::consts::PI * w).cos();
            let v = 2.0 * fc * sinc * blackman;
            sum += v;
            h.push(v);
        }
        for (f, v) in filter.iter_mut().zip(&h) {
            *f = (v / sum) as f32;
        }
    }

    let len = input.len() as u64;
    let out_len = (len * l).div_ceil(m) as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        let pos = n * m;
        let mut i = (pos / l) as usize;
        let rem = pos % l;
        let mut p = if phases as u64 == l {
            rem as usize
        } else {
            ((rem * phases as u64 + l / 2) / l) as usize
        };
        if p == phases {
            p = 0;
            i += 1;
        }
        let filter = &bank[p * taps..(p + 1) * taps];
        // input index of filter[0] is i + 1 - half; clip the window to the input.
        let first = (i + 1) as isize - half as isize;
        let j0 = (-first).max(0) as usize;
        let j1 = ((input.len() as isize - first).max(0) as usize).min(taps);
        let mut acc = 0f32;
        if j0 < j1 {
            let start = (first + j0 as isize) as usize;
            for (x, f) in input[start..start + (j1 - j0)].iter().zip(&filter[j0..j1]) {
                acc += x * f;
            }
        }
        out.push(acc);
    }
    out
}

/// Streams 16-bit PCM to a WAV file, mono or two interleaved channels, at any rate. The header
/// is completed by [`finalize`](Self::finalize) (or, ignoring errors, on drop).
pub struct WavWriter {
    inner: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    channels: u16,
    sample_rate: u32,
    frames: u64,
}

impl std::fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavWriter")
            .field("path", &self.path)
            .field("channels", &self.channels)
            .field("sample_rate", &self.sample_rate)
            .field("frames", &self.frames)
            .finish()
    }
}

impl WavWriter {
    /// Creates (or truncates) `path`. `channels` is 1 or 2; `sample_rate` any positive rate.
    pub fn create(
        path: impl AsRef<Path>,
        channels: u16,
        sample_rate: u32,
    ) -> Result<Self, WavError> {
        let path = path.as_ref().to_path_buf();
        if !(1..=2).contains(&channels) || sample_rate == 0 {
            return Err(WavError::InvalidArgument {
                path,
                reason: format!(
                    "cannot record {channels} channel(s) at {sample_rate} Hz: 1 or 2 channels at a \
                     positive rate"
                ),
            });
        }
        let spec = hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let inner = hound::WavWriter::create(&path, spec).map_err(|e| write_error(&path, e))?;
        Ok(Self {
            inner,
            path,
            channels,
            sample_rate,
            frames: 0,
        })
    }

    /// Appends samples, interleaved L R L R ... for two channels; the length must be a whole
    /// number of sample frames.
    pub fn write_frame(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let ch = usize::from(self.channels);
        // (not `is_multiple_of`: that needs Rust 1.87, the workspace supports 1.85)
        if samples.len() / ch * ch != samples.len() {
            return Err(WavError::InvalidArgument {
                path: self.path.clone(),
                reason: format!(
                    "{} samples is not a whole number of {ch}-channel frames",
                    samples.len()
                ),
            });
        }
        self.check_size(samples.len())?;
        let mut w = self.inner.get_i16_writer(samples.len() as u32);
        for &s in samples {
            w.write_sample(s);
        }
        w.flush().map_err(|e| write_error(&self.path, e))?;
        self.frames += (samples.len() / ch) as u64;
        Ok(())
    }

    /// Appends two channels given separately (e.g. the two legs of a call), interleaving them;
    /// the shorter one is padded with silence. The writer must have 2 channels.
    pub fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> Result<(), WavError> {
        if self.channels != 2 {
            return Err(WavError::InvalidArgument {
                path: self.path.clone(),
                reason: "write_stereo on a mono file".to_owned(),
            });
        }
        let n = left.len().max(right.len());
        self.check_size(2 * n)?;
        let mut w = self.inner.get_i16_writer(2 * n as u32);
        for i in 0..n {
            w.write_sample(left.get(i).copied().unwrap_or(0));
            w.write_sample(right.get(i).copied().unwrap_or(0));
        }
        w.flush().map_err(|e| write_error(&self.path, e))?;
        self.frames += n as u64;
        Ok(())
    }

    /// WAV sizes are 32-bit: refuse to write past 4 GiB rather than corrupt the header.
    fn check_size(&self, samples: usize) -> Result<(), WavError> {
        let bytes = (self.frames * u64::from(self.channels) + samples as u64) * 2;
        if bytes > u64::from(u32::MAX) - 64 {
            return Err(WavError::Write {
                path: self.path.clone(),
                reason: "WAV file would exceed 4 GiB".to_owned(),
            });
        }
        Ok(())
    }

    /// Completes the header and closes the file.
    pub fn finalize(self) -> Result<(), WavError> {
        let path = self.path;
        self.inner.finalize().map_err(|e| write_error(&path, e))
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Channels per sample frame.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Sample frames per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Sample frames written so far (samples per channel).
    pub fn frames_written(&self) -> u64 {
        self.frames
    }
}

fn write_error(path: &Path, e: hound::Error) -> WavError {
    let reason = match e {
        hound::Error::IoError(e) => io_reason(&e),
        other => other.to_string(),
    };
    WavError::Write {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{dominant_frequency, rms_dbfs, Amplitude, ToneGenerator};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A unique path in the temp dir, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            TempPath(std::env::temp_dir().join(format!(
                "sipua-wav-{}-{n}-{nanos}-{name}",
                std::process::id()
            )))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn tone(rate: u32, freq: f64, dbfs: f64, len: usize) -> Vec<i16> {
        let mut v = vec![0i16; len];
        ToneGenerator::new(rate, freq, Amplitude::Dbfs(dbfs)).fill(&mut v);
        v
    }

    #[test]
    fn round_trip_mono_16_bit() {
        let tmp = TempPath::new("mono.wav");
        let pcm = tone(8000, 440.0, -3.0, 8000);
        let mut w = WavWriter::create(&tmp.0, 1, 8000).unwrap();
        for frame in pcm.chunks(160) {
            w.write_frame(frame).unwrap();
        }
        assert_eq!(w.frames_written(), 8000);
        w.finalize().unwrap();
        assert_eq!(read_wav_mono(&tmp.0, 8000).unwrap(), pcm);
        let spec = hound::WavReader::open(&tmp.0).unwrap().spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 8000, 16)
        );
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let tmp = TempPath::new("stereo.wav");
        let mut w = WavWriter::create(&tmp.0, 2, 16000).unwrap();
        // Averages round half away from zero: (-100 - 301) / 2 = -200.5 -> -201.
        w.write_frame(&[100, 300, -100, -301, 32767, 32767])
            .unwrap();
        w.write_stereo(&[10, 20, 30], &[30]).unwrap();
        assert!(w.write_frame(&[1, 2, 3]).is_err());
        assert_eq!(w.frames_written(), 6);
        w.finalize().unwrap();
        assert_eq!(
            read_wav_mono(&tmp.0, 16000).unwrap(),
            vec![200, -201, 32767, 20, 10, 15]
        );
    }

    #[test]
    fn stereo_44k1_tone_read_at_8k_keeps_frequency_and_level() {
        let tmp = TempPath::new("cd.wav");
        let left = tone(44100, 1000.0, -6.0, 44100);
        let mut w = WavWriter::create(&tmp.0, 2, 44100).unwrap();
        w.write_stereo(&left, &left).unwrap();
        w.finalize().unwrap();
        let pcm = read_wav_mono(&tmp.0, 8000).unwrap();
        assert_eq!(pcm.len(), 8000);
        let body = &pcm[400..7600]; // away from the zero-padded edges
        let f = dominant_frequency(body, 8000, 100.0, 3900.0, 5.0);
        assert!((f - 1000.0).abs() <= 20.0, "{f}");
        let level = rms_dbfs(body);
        assert!((level + 6.0).abs() <= 1.0, "{level}");
    }

    #[test]
    fn resampler_rejects_aliases_and_passes_the_band() {
        // 6 kHz at 48 kHz would alias to 2 kHz at 8 kHz: it must be filtered out.
        let alias: Vec<f32> = tone(48000, 6000.0, 0.0, 48000)
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let out: Vec<i16> = resample(&alias, 48000, 8000)
            .iter()
            .map(|&v| to_i16(v))
            .collect();
        assert!(
            rms_dbfs(&out[400..7600]) < -60.0,
            "{}",
            rms_dbfs(&out[400..7600])
        );
        // 3 kHz passes 8 kHz → 16 kHz → 8 kHz (upsampling too) within 0.5 dB.
        let src: Vec<f32> = tone(8000, 3000.0, -6.0, 8000)
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let up = resample(&src, 8000, 16000);
        assert_eq!(up.len(), 16000);
        let down = resample(&up, 16000, 8000);
        let pcm: Vec<i16> = down.iter().map(|&v| to_i16(v)).collect();
        assert!((rms_dbfs(&pcm[400..7600]) + 6.0).abs() < 0.5);
        let f = dominant_frequency(&pcm[400..7600], 8000, 2500.0, 3500.0, 5.0);
        assert!((f - 3000.0).abs() < 10.0, "{f}");
        // An odd ratio with more phases than the filter bank holds still works.
        let odd = resample(&src, 8000, 44101);
        assert_eq!(odd.len(), (8000u64 * 44101).div_ceil(8000) as usize);
        assert!(resample(&[], 8000, 16000).is_empty());
    }

    fn write_raw(
        path: &Path,
        spec: hound::WavSpec,
        samples: impl FnOnce(&mut hound::WavWriter<BufWriter<File>>),
    ) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        samples(&mut w);
        w.finalize().unwrap();
    }

    #[test]
    fn reads_8_24_32_bit_and_float() {
        let src = tone(8000, 500.0, -1.0, 800);
        let cases: [(u16, hound::SampleFormat); 4] = [
            (8, hound::SampleFormat::Int),
            (24, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Float),
        ];
        for (bits, format) in cases {
            let tmp = TempPath::new(&format!("{bits}{format:?}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: bits,
                sample_format: format,
            };
            write_raw(&tmp.0, spec, |w| {
                for &s in &src {
                    match (bits, format) {
                        (8, _) => w.write_sample((s >> 8) as i8).unwrap(),
                        (24, _) => w.write_sample(i32::from(s) << 8).unwrap(),
                        (32, hound::SampleFormat::Int) => {
                            w.write_sample(i32::from(s) << 16).unwrap()
                        }
                        _ => w.write_sample(f32::from(s) / 32768.0).unwrap(),
                    }
                }
            });
            let got = read_wav_mono(&tmp.0, 8000).unwrap();
            assert_eq!(got.len(), src.len());
            let tolerance = if bits == 8 { 256 } else { 0 };
            for (g, s) in got.iter().zip(&src) {
                assert!(
                    (i32::from(*g) - i32::from(*s)).abs() <= tolerance,
                    "{bits}-bit {format:?}: {g} vs {s}"
                );
            }
        }
    }

    #[test]
    fn float_beyond_full_scale_is_clipped() {
        let tmp = TempPath::new("hot.wav");
        let spec = hound::WavSpec {
            channels: 3,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        write_raw(&tmp.0, spec, |w| {
            for v in [2.0f32, 2.0, 2.0, -3.0, -3.0, -3.0, f32::NAN, 0.0, 0.0] {
                w.write_sample(v).unwrap();
            }
        });
        assert_eq!(read_wav_mono(&tmp.0, 8000).unwrap(), vec![32767, -32768, 0]);
    }

    #[test]
    fn a_header_claiming_more_data_than_the_file_holds_allocates_only_the_file() {
        // fuzz/artifacts crash input: float mono 44.1 kHz, data chunk size 0x56000050.
        let tmp = TempPath::new("liar.wav");
        let mut bytes = b"RIFFt\0\0\0WAVEfmt \x10\0\0\0\x03\0\x01\0\x44\xac\0\0".to_vec();
        bytes.extend_from_slice(b"\x10\xb1\x02\0\x04\0\x20\0data\x50\0\0\x56\x45\x66\x05\0\x10");
        std::fs::write(&tmp.0, &bytes).unwrap();
        // The 5 bytes of data hold one float sample; the rest is missing: an error, not an abort.
        assert!(read_wav_mono(&tmp.0, 8000).is_err());
        assert_eq!(
            frame_capacity(0x5600_0050 / 4, bytes.len() as u64),
            bytes.len()
        );
        assert_eq!(frame_capacity(100, 4096), 100);
    }

    #[test]
    fn errors_name_the_path_and_the_reason() {
        let missing = std::env::temp_dir().join("sipua-no-such-dir/x/y.wav");
        let e = read_wav_mono(&missing, 8000).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read {}: No such file or directory",
                missing.display()
            )
        );
        assert_eq!(e.path(), missing);

        let text = TempPath::new("notes.wav");
        std::fs::write(&text.0, "this is not audio, just some text\n").unwrap();
        let e = read_wav_mono(&text.0, 8000).unwrap_err();
        assert!(matches!(e, WavError::NotWav { .. }));
        assert_eq!(
            e.to_string(),
            format!("cannot read {}: not a WAV file", text.0.display())
        );

        let empty = TempPath::new("empty.wav");
        std::fs::write(&empty.0, b"").unwrap();
        let e = read_wav_mono(&empty.0, 8000).unwrap_err();
        assert!(e.to_string().ends_with(": not a WAV file"), "{e}");

        // A µ-law WAV (format tag 7): a valid RIFF file in an encoding we do not read.
        let ulaw = TempPath::new("ulaw.wav");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(4 + 8 + 18 + 8 + 4u32).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&18u32.to_le_bytes());
        for v in [7u16, 1] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(&8000u32.to_le_bytes());
        bytes.extend_from_slice(&8000u32.to_le_bytes());
        for v in [1u16, 8, 0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&[0xFF; 4]);
        std::fs::write(&ulaw.0, &bytes).unwrap();
        let e = read_wav_mono(&ulaw.0, 8000).unwrap_err();
        assert!(matches!(e, WavError::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains(&ulaw.0.display().to_string()));

        // Truncated data: the header promises more than the file holds.
        let short = TempPath::new("short.wav");
        let mut w = WavWriter::create(&short.0, 1, 8000).unwrap();
        w.write_frame(&[1; 100]).unwrap();
        w.finalize().unwrap();
        let full = std::fs::read(&short.0).unwrap();
        std::fs::write(&short.0, &full[..full.len() - 51]).unwrap();
        let e = read_wav_mono(&short.0, 8000).unwrap_err();
        assert!(
            e.to_string().contains(&short.0.display().to_string()),
            "{e}"
        );

        let e = WavWriter::create(&missing, 1, 8000).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot write {}: No such file or directory",
                missing.display()
            )
        );
        let e = WavWriter::create(&text.0, 3, 8000).unwrap_err();
        assert!(e.to_string().contains(&text.0.display().to_string()));
        assert!(matches!(
            read_wav_mono(&text.0, 0),
            Err(WavError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn write_stereo_on_mono_is_refused() {
        let tmp = TempPath::new("m.wav");
        let mut w = WavWriter::create(&tmp.0, 1, 8000).unwrap();
        assert!(w.write_stereo(&[1], &[2]).is_err());
        assert_eq!(w.path(), tmp.0);
        assert_eq!((w.channels(), w.sample_rate()), (1, 8000));
        drop(w); // finalised by drop
        assert_eq!(read_wav_mono(&tmp.0, 8000).unwrap(), Vec::<i16>::new());
    }
}
