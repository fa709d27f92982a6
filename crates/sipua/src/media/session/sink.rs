//! Where a session's audio goes besides the network: the recorder (what we receive and what
//! we send), the PCM queue JS reads (`call.audio.readable`), and a bridged partner, which
//! takes the frame we received this tick.

use super::frame::{resample_into, Frame};
use super::MediaSession;
use crate::media::recorder::{Recorder, RecordingInfo};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// Frames kept for a PCM reader that is not reading (1 s); older ones are dropped and counted.
pub(super) const PCM_OUT_FRAMES: usize = 50;

/// Received PCM frames going to JS, bounded to [`PCM_OUT_FRAMES`].
pub(super) struct PcmOut {
    frames: VecDeque<Frame>,
    /// The session closed: once empty, the reader gets its end.
    closed: bool,
}

impl PcmOut {
    fn new() -> Self {
        Self {
            frames: VecDeque::with_capacity(PCM_OUT_FRAMES),
            closed: false,
        }
    }

    /// Queues a frame; `true` when the oldest had to make room (the reader is behind).
    pub(super) fn push(&mut self, frame: Frame) -> bool {
        let full = self.frames.len() >= PCM_OUT_FRAMES;
        if full {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
        full
    }

    /// No more frames will come.
    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    /// The queued frames as 16-bit little-endian bytes (empty when none); `None` at the end.
    fn take_bytes(&mut self, session_closed: bool) -> Option<Vec<u8>> {
        if self.frames.is_empty() && (self.closed || session_closed) {
            return None;
        }
        let mut bytes = Vec::with_capacity(self.frames.iter().map(|f| f.len * 2).sum());
        for f in self.frames.drain(..) {
            for s in f.pcm() {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
        }
        Some(bytes)
    }
}

impl MediaSession {
    /// Records from now on into `recorder` (replacing a recording going on, unfinished).
    pub(crate) fn start_recording(&self, recorder: Recorder) {
        self.state().recorder = Some(recorder);
    }

    /// Ends the recording and tells what was written; `None` when not recording.
    pub(crate) fn stop_recording(&self) -> Option<RecordingInfo> {
        let rec = self.state().recorder.take();
        rec.map(Recorder::finish)
    }

    /// Turns on the PCM output queue (first read).
    pub(crate) fn open_pcm_out(&self) {
        let mut st = self.state();
        if st.pcm_out.is_none() {
            st.pcm_out = Some(PcmOut::new());
        }
    }

    /// Takes the queued received frames as 16-bit little-endian bytes; `None` once closed.
    pub(crate) fn take_pcm_out(&self) -> Option<Vec<u8>> {
        let mut st = self.state();
        st.pcm_out.as_mut()?.take_bytes(self.is_closed())
    }

    /// Feeds the PCM reader this tick's received frame.
    pub(super) fn feed_pcm_out(&self, pcm_out: &mut PcmOut, rx: Frame) {
        if pcm_out.push(rx) {
            self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.pcm_out_ready.notify_one();
    }

    /// The frame received this tick, for a bridge partner, resampled to `out.len` samples.
    pub(super) fn received_frame(&self, out: &mut Frame) {
        let st = self.state();
        resample_into(st.rx.pcm(), out);
    }
}
