//! The unit the session moves: one 20 ms frame of linear PCM in a fixed array, so producing,
//! forwarding and queueing frames never allocates.

/// Samples in the largest frame: 20 ms at 16 kHz (G.722).
pub(super) const MAX_FRAME: usize = 320;

/// A 20 ms frame of linear PCM at the session's sample rate.
#[derive(Clone, Copy)]
pub(super) struct Frame {
    /// Room for the largest frame; only the first `len` samples count.
    pub(super) samples: [i16; MAX_FRAME],
    /// Samples in the frame: 160 at 8 kHz, 320 at 16 kHz.
    pub(super) len: usize,
}

impl Frame {
    /// `len` samples of silence.
    pub(super) const fn silent(len: usize) -> Self {
        Self {
            samples: [0; MAX_FRAME],
            len,
        }
    }

    /// The samples that count.
    pub(super) fn pcm(&self) -> &[i16] {
        &self.samples[..self.len]
    }

    /// Silences the samples that count.
    pub(super) fn clear(&mut self) {
        self.samples[..self.len].fill(0);
    }
}

/// Copies `input` into `out` (whose `len` is the wanted size), converting 8 <-> 16 kHz frames
/// by sample doubling (with interpolation) or pair averaging: bridged calls and PCM writers
/// may run at another rate than this session's codec.
pub(super) fn resample_into(input: &[i16], out: &mut Frame) {
    let n = out.len;
    if input.len() == n {
        out.samples[..n].copy_from_slice(input);
    } else if input.len() * 2 == n {
        for (i, s) in input.iter().enumerate() {
            let next = input.get(i + 1).copied().unwrap_or(*s);
            out.samples[2 * i] = *s;
            out.samples[2 * i + 1] = ((i32::from(*s) + i32::from(next)) / 2) as i16;
        }
    } else if input.len() == n * 2 {
        for i in 0..n {
            out.samples[i] = ((i32::from(input[2 * i]) + i32::from(input[2 * i + 1])) / 2) as i16;
        }
    } else {
        let m = input.len().min(n);
        out.samples[..m].copy_from_slice(&input[..m]);
        out.samples[m..n].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_frames() {
        let mut out = Frame::silent(320);
        let input: Vec<i16> = (0..160).map(|i| i as i16 * 10).collect();
        resample_into(&input, &mut out);
        assert_eq!(out.samples[0], 0);
        assert_eq!(out.samples[1], 5);
        assert_eq!(out.samples[2], 10);
        let mut down = Frame::silent(160);
        resample_into(out.pcm(), &mut down);
        assert_eq!(down.samples[1], (10 + 15) / 2);
        let mut same = Frame::silent(160);
        resample_into(&input, &mut same);
        assert_eq!(same.pcm(), &input[..]);
    }
}
