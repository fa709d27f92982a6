//! What a session sends when no DTMF replaces it: silence, samples (a file), a tone, PCM
//! written by JS, or what a bridged call receives. One source at a time; choosing one
//! replaces the last, whose promise then resolves.

use super::frame::{resample_into, Frame};
use super::{MediaSession, PTIME_MS};
use crate::media::tone::ToneGenerator;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use tokio::sync::oneshot;

/// Frames a PCM writer may queue ahead (200 ms) before its writes wait.
pub(super) const PCM_IN_FRAMES: usize = 10;

/// The session's current source.
pub(super) enum Source {
    /// Nothing to say.
    Silence,
    /// Samples at the session's rate (a decoded file), once or looped.
    Samples {
        data: Arc<[i16]>,
        pos: usize,
        looped: bool,
        done: Option<oneshot::Sender<()>>,
    },
    /// A generated tone.
    Tone {
        generator: ToneGenerator,
        /// Frames left; `None` = until stopped.
        remaining: Option<u32>,
        done: Option<oneshot::Sender<()>>,
    },
    /// PCM written by JS (`call.audio.writable`).
    Stream,
    /// The received audio of another call.
    Bridge(Weak<MediaSession>),
}

/// What producing a frame did besides writing it.
pub(super) enum Produced {
    /// The frame is written.
    Ready,
    /// The frame is written and the source has nothing more: it is to be replaced by silence
    /// and its promise resolved.
    Finished(oneshot::Sender<()>),
    /// The frame came from the PCM queue, which has room again for the writer.
    TookPcm,
    /// The frame is what this partner received; the caller fetches it, since taking the
    /// partner's lock under ours could deadlock against the partner doing the same.
    FromPartner(Arc<MediaSession>),
}

impl Source {
    /// Writes this tick's frame into `tx` (its `len` already set). A file or tone advances
    /// even while DTMF replaces the audio, so it keeps its timing.
    pub(super) fn produce(&mut self, tx: &mut Frame, pcm_in: &mut PcmIn) -> Produced {
        let len = tx.len;
        match self {
            Source::Silence => tx.clear(),
            Source::Samples {
                data,
                pos,
                looped,
                done,
            } => {
                let n = len.min(data.len().saturating_sub(*pos));
                tx.samples[..n].copy_from_slice(&data[*pos..*pos + n]);
                tx.samples[n..len].fill(0);
                *pos += n;
                if *pos >= data.len() {
                    if *looped && !data.is_empty() {
                        *pos = 0;
                    } else {
                        return finished(done);
                    }
                }
            }
            Source::Tone {
                generator,
                remaining,
                done,
            } => {
                generator.fill(&mut tx.samples[..len]);
                if let Some(r) = remaining {
                    *r = r.saturating_sub(1);
                    if *r == 0 {
                        return finished(done);
                    }
                }
            }
            Source::Stream => match pcm_in.pop() {
                Some(f) => {
                    resample_into(f.pcm(), tx);
                    return Produced::TookPcm;
                }
                None => tx.clear(),
            },
            Source::Bridge(peer) => {
                // A partner gone leaves the last frame in `tx` (its end unbridges us anyway).
                if let Some(peer) = peer.upgrade() {
                    return Produced::FromPartner(peer);
                }
            }
        }
        Produced::Ready
    }
}

fn finished(done: &mut Option<oneshot::Sender<()>>) -> Produced {
    match done.take() {
        Some(tx) => Produced::Finished(tx),
        None => Produced::Ready,
    }
}

/// PCM written by JS, cut into frames, bounded to [`PCM_IN_FRAMES`].
pub(super) struct PcmIn {
    frames: VecDeque<Frame>,
    /// The frame being filled.
    partial: Frame,
}

impl PcmIn {
    pub(super) fn new() -> Self {
        Self {
            frames: VecDeque::with_capacity(PCM_IN_FRAMES),
            partial: Frame::silent(0),
        }
    }

    /// Takes 16-bit little-endian samples into frames of `frame_len` while there is room;
    /// returns the bytes taken.
    fn push(&mut self, bytes: &[u8], frame_len: usize) -> usize {
        // A codec change (re-INVITE) can shrink the frame under a partial one: its samples
        // are of the old rate anyway, so they go, rather than run past the frame's end.
        if self.partial.len >= frame_len {
            self.partial.len = 0;
        }
        let mut taken = 0;
        for pair in bytes.chunks_exact(2) {
            if self.frames.len() >= PCM_IN_FRAMES {
                break;
            }
            let i = self.partial.len;
            self.partial.samples[i] = i16::from_le_bytes([pair[0], pair[1]]);
            self.partial.len += 1;
            taken += 2;
            if self.partial.len == frame_len {
                self.frames.push_back(self.partial);
                self.partial.len = 0;
            }
        }
        taken
    }

    fn pop(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }
}

impl MediaSession {
    /// Plays `samples` (already at the session's rate); resolves when done or replaced.
    pub(crate) fn play_samples(&self, data: Arc<[i16]>, looped: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.state().source = Source::Samples {
            data,
            pos: 0,
            looped,
            done: Some(tx),
        };
        rx
    }

    /// Plays a tone for `duration_ms` (0: until stopped); resolves when done or replaced.
    pub(crate) fn play_tone(
        &self,
        generator: ToneGenerator,
        duration_ms: u32,
    ) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let remaining = (duration_ms > 0).then(|| duration_ms.div_ceil(PTIME_MS));
        self.state().source = Source::Tone {
            generator,
            remaining,
            done: Some(tx),
        };
        rx
    }

    /// Stops file/tone/stream playback (their promises resolve: dropping the sender).
    pub(crate) fn stop_playback(&self) {
        let mut st = self.state();
        if !matches!(st.source, Source::Bridge(_)) {
            st.source = Source::Silence;
        }
    }

    /// Sends what `peer` receives (one way; the caller bridges the other way too).
    pub(crate) fn bridge_to(&self, peer: &Arc<MediaSession>) {
        self.state().source = Source::Bridge(Arc::downgrade(peer));
    }

    /// Back to silence if bridged.
    pub(crate) fn unbridge(&self) {
        let mut st = self.state();
        if matches!(st.source, Source::Bridge(_)) {
            st.source = Source::Silence;
        }
    }

    /// The partner whose audio we send, if bridged to one still there.
    pub(crate) fn bridged_to(&self) -> Option<Arc<MediaSession>> {
        match &self.state().source {
            Source::Bridge(p) => p.upgrade(),
            _ => None,
        }
    }

    /// Queues PCM from JS (16-bit LE at the session's rate). Returns how many bytes were taken;
    /// fewer than given when the queue is full (the caller waits on `pcm_in_room`).
    pub(crate) fn push_pcm_in(&self, bytes: &[u8]) -> usize {
        let mut guard = self.state();
        let st = &mut *guard;
        if !matches!(st.source, Source::Stream) {
            st.source = Source::Stream;
        }
        let frame_len = st.params.codec.samples_per_frame(PTIME_MS);
        st.pcm_in.push(bytes, frame_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_frame_survives_no_codec_change_that_shrinks_the_frame() {
        let mut pcm = PcmIn::new();
        // 200 samples of a G.722 frame (320), then G.711 frames (160) after a re-INVITE
        assert_eq!(pcm.push(&[0u8; 400], 320), 400);
        assert_eq!(pcm.push(&[1u8; 2 * 480], 160), 2 * 480);
        let frames: Vec<Frame> = std::iter::from_fn(|| pcm.pop()).collect();
        assert_eq!(frames.len(), 3);
        assert!(frames
            .iter()
            .all(|f| f.len == 160 && f.samples[..160].iter().all(|&s| s == 0x0101)));
    }
}
