//! Adaptive jitter buffer for fixed-duration audio frames (one frame per RTP packet).
//!
//! A pure state machine: no sockets, no clocks. The caller passes every time in as a `u64`
//! count of microseconds on one monotonic clock of its choice (for instance
//! `Instant::duration_since(call_start).as_micros()`), both as the arrival time of a packet
//! ([`JitterBuffer::push`]) and as the playout time ([`JitterBuffer::pop`], called once per frame
//! period by the pacing clock).
//!
//! # Model
//!
//! Frames are stored by extended sequence number in a fixed ring of preallocated slots (no
//! allocation per packet) and played in sequence order, one per `pop`. The timing uses the RTP
//! timestamps: for each packet the *transit* `arrival - timestamp` is measured, and its smallest
//! value over the last one to two seconds is the fastest path through the network. The
//! *buffering delay* of the frame at the playout cursor is `now - timestamp - min_transit`: how
//! long after the fastest possible arrival it is being played. A packet that took `dev` longer
//! than the fastest path is still on time if the buffering delay is at least `dev`.
//!
//! The *target delay* is `max(peak deviation, 3 × RFC 3550 jitter) + frame/4`, clamped to
//! `[min_delay, max_delay]`. The peak deviation jumps up at once when a packet is slower than any
//! recent one (grow quickly on spikes) and decays towards the current deviation with a time
//! constant of 256 packets, about five seconds at 20 ms (shrink slowly). At each `pop`:
//!
//! * the frame at the cursor is present and its buffering delay is below the target: the cursor
//!   holds and [`Playout::Conceal`] / [`Playout::Silence`] is returned (the buffer grows by one
//!   frame; counted as `inserted` once audio has started);
//! * the buffering delay is more than 1.5 frames above the target and the next frame is present:
//!   the cursor frame is discarded (counted as `dropped`) and the next one is played (shrink);
//! * the frame is missing but later frames are buffered: once it is due it is counted `lost` and
//!   skipped (a whole run of overdue missing frames is skipped at once, so a burst loss that
//!   coincides with an empty buffer does not add delay);
//! * nothing at all is buffered: an underrun; the cursor waits (so a silence-suppressed pause,
//!   in which the sender consumes no sequence numbers, needs no special handling).
//!
//! The first missing frame after audio yields [`Playout::Conceal`] (the caller repeats or fades
//! the last frame, up to [`JitterBuffer::set_max_conceal`] frames in a row, default 1); any further
//! ones yield [`Playout::Silence`].
//!
//! Packets behind the cursor are dropped as late (or as duplicates, if the slot still remembers
//! having played that very sequence number). The buffer resynchronises (flushes and starts over
//! from the packet in hand) when a packet is too far ahead to fit in the ring, when two
//! consecutive packets lie far behind the cursor (a sender restart), when a packet not behind the
//! cursor has a transit that differs from the baseline by more than `max(2 × max_delay, 1 s)` (a
//! timestamp jump, e.g. a PBX switching media sources inside one SSRC; a straggler behind the
//! cursor is only late), and on [`JitterBuffer::reset`] (SSRC change). A resync discards the
//! frames still buffered from before the jump.
//! The RTP marker bit is not needed: a new talkspurt after silence suppression keeps consecutive
//! sequence numbers and its timestamps advance with real time, which the model above handles.

/// Largest payload a slot holds: 20 ms of 16-bit linear PCM at 8 kHz (G.711 needs 160).
pub const MAX_PAYLOAD: usize = 320;

/// Decay of the peak deviation towards the current deviation, per packet (1/N of the gap).
const PEAK_DECAY: f64 = 256.0;
/// Length of one window of the windowed minimum transit.
const MIN_WINDOW_US: u64 = 1_000_000;
/// Smallest transit deviation treated as a timestamp jump.
const MIN_RESYNC_US: i64 = 1_000_000;

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// Stored for playout.
    Accepted,
    /// Stored after flushing the buffer: a sequence or timestamp jump started a new stream.
    Resynced,
    /// Already stored or already played; dropped.
    Duplicate,
    /// Arrived after its playout time; dropped.
    TooLate,
    /// Payload longer than [`MAX_PAYLOAD`]; dropped.
    TooLarge,
}

/// What to play for the current frame period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The payload of the next frame.
    Frame(&'a [u8]),
    /// A missing frame right after audio: repeat or fade out the last decoded frame.
    Conceal,
    /// Nothing to play: before the start, while (re)filling, or a gap longer than concealment.
    Silence,
}

/// Counters of a [`JitterBuffer`], cumulative since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct JitterStats {
    /// Packets pushed (all outcomes but [`PushOutcome::TooLarge`]).
    pub received: u64,
    /// Packets that arrived after their frame had been played or skipped.
    pub late: u64,
    /// Frames skipped because they never arrived in time.
    pub lost: u64,
    /// Duplicate packets dropped.
    pub duplicate: u64,
    /// [`Playout::Conceal`] results returned.
    pub concealed: u64,
    /// Frames discarded to shrink the delay.
    pub dropped: u64,
    /// Frame periods inserted (cursor held) to grow the delay after audio started.
    pub inserted: u64,
    /// Times the buffer ran empty while audio was playing.
    pub underruns: u64,
    /// Resynchronisations (jumps, [`JitterBuffer::reset`] excluded).
    pub resyncs: u64,
    /// Packets dropped for a payload longer than [`MAX_PAYLOAD`].
    pub too_large: u64,
    /// Current target delay, milliseconds.
    pub target_delay_ms: f64,
    /// Buffering delay of the last frame played, milliseconds.
    pub current_delay_ms: f64,
    /// RFC 3550 interarrival jitter estimate, milliseconds.
    pub jitter_ms: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Empty,
    Filled,
    Played,
}

struct Slot {
    state: SlotState,
    seq: i64,
    ts: i64,
    len: u16,
    data: [u8; MAX_PAYLOAD],
}

/// Adaptive jitter buffer; see the [module documentation](self) for the model.
pub struct JitterBuffer {
    clock_rate: u32,
    frame_samples: u32,
    frame_us: i64,
    min_delay_us: i64,
    max_delay_us: i64,
    max_conceal: u32,
    slots: Box<[Slot]>,

    synced: bool,
    /// Extended sequence number of the next frame to play.
    cursor: i64,
    /// Highest extended sequence number stored since the last sync.
    highest: i64,
    /// Reference for timestamp extension: the highest timestamp seen, raw and extended.
    ref_ts: u32,
    ref_ext_ts: i64,
    last_played: Option<(i64, i64)>,
    played_any: bool,
    missing_run: u32,
    in_underrun: bool,
    jump_candidate: Option<u16>,

    min_cur: i64,
    min_prev: i64,
    window_start: u64,
    last_transit: Option<i64>,
    jitter_us: f64,
    peak_dev_us: f64,
    target_us: i64,
    current_delay_us: i64,

    stats: JitterStats,
}

impl std::fmt::Debug for JitterBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitterBuffer")
            .field("clock_rate", &self.clock_rate)
            .field("frame_samples", &self.frame_samples)
            .field("capacity", &self.slots.len())
            .field("buffered", &self.buffered())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl JitterBuffer {
    /// A buffer for frames of `frame_samples` samples at `clock_rate` Hz (160 at 8000 Hz for
    /// 20 ms), keeping the playout delay between `min_delay_ms` and `max_delay_ms`.
    ///
    /// Zero rates are raised to 1, and `max_delay_ms` to at least `min_delay_ms`. The ring holds
    /// `max(32, 2 × max_delay / frame + 16)` slots of [`MAX_PAYLOAD`] bytes, allocated here once.
    pub fn new(clock_rate: u32, frame_samples: u32, min_delay_ms: u32, max_delay_ms: u32) -> Self {
        let clock_rate = clock_rate.max(1);
        let frame_samples = frame_samples.max(1);
        let frame_us = (i64::from(frame_samples) * 1_000_000 / i64::from(clock_rate)).max(1);
        let min_delay_us = i64::from(min_delay_ms) * 1000;
        let max_delay_us = (i64::from(max_delay_ms) * 1000).max(min_delay_us);
        let max_frames = (max_delay_us + frame_us - 1) / frame_us;
        let capacity = usize::try_from(2 * max_frames + 16)
            .unwrap_or(usize::MAX)
            .max(32);
        let slots = (0..capacity)
            .map(|_| Slot {
                state: SlotState::Empty,
                seq: 0,
                ts: 0,
                len: 0,
                data: [0; MAX_PAYLOAD],
            })
            .collect();
        JitterBuffer {
            clock_rate,
            frame_samples,
            frame_us,
            min_delay_us,
            max_delay_us,
            max_conceal: 1,
            slots,
            synced: false,
            cursor: 0,
            highest: 0,
            ref_ts: 0,
            ref_ext_ts: 0,
            last_played: None,
            played_any: false,
            missing_run: 0,
            in_underrun: false,
            jump_candidate: None,
            min_cur: 0,
            min_prev: 0,
            window_start: 0,
            last_transit: None,
            jitter_us: 0.0,
            peak_dev_us: 0.0,
            target_us: min_delay_us,
            current_delay_us: 0,
            stats: JitterStats {
                target_delay_ms: min_delay_us as f64 / 1000.0,
                ..JitterStats::default()
            },
        }
    }

    /// How many missing frames in a row yield [`Playout::Conceal`] before [`Playout::Silence`]
    /// (default 1: a single lost packet is concealed, longer gaps are silent).
    pub fn set_max_conceal(&mut self, frames: u32) {
        self.max_conceal = frames;
    }

    /// Counters and current delays.
    pub fn stats(&self) -> JitterStats {
        let mut s = self.stats;
        s.target_delay_ms = self.target_us as f64 / 1000.0;
        s.current_delay_ms = self.current_delay_us as f64 / 1000.0;
        s.jitter_ms = self.jitter_us / 1000.0;
        s
    }

    /// Current target delay.
    pub fn target_delay_ms(&self) -> f64 {
        self.target_us as f64 / 1000.0
    }

    /// Number of frame positions from the cursor to the newest stored frame (0 when empty).
    pub fn buffered(&self) -> usize {
        if self.synced && self.highest >= self.cursor {
            usize::try_from(self.highest - self.cursor + 1).unwrap_or(0)
        } else {
            0
        }
    }

    /// Number of slots in the ring.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Forgets the stream (call on an SSRC change): the next packet starts a new one. Counters
    /// and the learned network delay (target) are kept.
    pub fn reset(&mut self) {
        for slot in self.slots.iter_mut() {
            slot.state = SlotState::Empty;
        }
        self.synced = false;
        self.last_played = None;
        self.played_any = false;
        self.missing_run = 0;
        self.in_underrun = false;
        self.jump_candidate = None;
        self.last_transit = None;
    }

    /// Offers one received packet, `arrival_us` on the caller's monotonic microsecond clock.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        payload: &[u8],
        arrival_us: u64,
    ) -> PushOutcome {
        if payload.len() > MAX_PAYLOAD {
            self.stats.too_large += 1;
            return PushOutcome::TooLarge;
        }
        self.stats.received += 1;
        if !self.synced {
            self.sync(seq, timestamp, payload, arrival_us);
            return PushOutcome::Accepted;
        }
        let n = self.slots.len() as i64;
        let delta = i64::from(seq.wrapping_sub(self.cursor as u16) as i16);
        let ext_seq = self.cursor + delta;
        let ext_ts = self.extend_ts(timestamp);
        let transit = arrival_us as i64 - self.ts_us(ext_ts);

        if delta < 0 {
            let idx = self.index(ext_seq);
            let slot = &self.slots[idx];
            if slot.seq == ext_seq && slot.state != SlotState::Empty {
                self.stats.duplicate += 1;
                return PushOutcome::Duplicate;
            }
            if -delta > n {
                // Far behind: a stale packet, or the sender restarted its numbering. Two
                // consecutive ones mean the latter (RFC 3550 A.1 does the same).
                if self.jump_candidate == Some(seq.wrapping_sub(1)) {
                    return self.resync(seq, timestamp, payload, arrival_us);
                }
                self.jump_candidate = Some(seq);
                self.stats.late += 1;
                return PushOutcome::TooLate;
            }
            self.jump_candidate = None;
            self.observe(transit, arrival_us);
            if !self.played_any && self.highest - ext_seq < n {
                // Still priming: an earlier packet overtaken by a later one becomes the start.
                self.cursor = ext_seq;
                self.store(ext_seq, ext_ts, payload);
                return PushOutcome::Accepted;
            }
            self.stats.late += 1;
            return PushOutcome::TooLate;
        }
        // Only packets ahead of the cursor may signal a jump: a straggler is merely late.
        if delta >= n || (transit - self.min_transit()).abs() > self.resync_threshold_us() {
            return self.resync(seq, timestamp, payload, arrival_us);
        }
        self.jump_candidate = None;
        let idx = self.index(ext_seq);
        if self.slots[idx].state == SlotState::Filled && self.slots[idx].seq == ext_seq {
            self.stats.duplicate += 1;
            return PushOutcome::Duplicate;
        }
        self.observe(transit, arrival_us);
        self.store(ext_seq, ext_ts, payload);
        PushOutcome::Accepted
    }

    /// What to play for the frame period starting at `now_us`. Call once per frame period.
    pub fn pop(&mut self, now_us: u64) -> Playout<'_> {
        if !self.synced {
            return Playout::Silence;
        }
        let now = now_us as i64;
        let frame = i64::from(self.frame_samples);
        let min_transit = self.min_transit();
        let expected_ts = |jb: &Self, seq: i64| match jb.last_played {
            Some((pseq, pts)) => pts + (seq - pseq) * frame,
            None => {
                let h = &jb.slots[jb.index(jb.highest)];
                h.ts - (jb.highest - seq) * frame
            }
        };
        let mut idx = self.index(self.cursor);
        while !self.is_present(idx, self.cursor) {
            if self.highest <= self.cursor {
                // Nothing buffered at all.
                if self.played_any && !self.in_underrun {
                    self.in_underrun = true;
                    self.stats.underruns += 1;
                }
                return self.fill();
            }
            let delay = now - self.ts_us(expected_ts(self, self.cursor)) - min_transit;
            if delay < self.target_us {
                return self.fill();
            }
            self.stats.lost += 1;
            self.cursor += 1;
            if delay < self.target_us + self.frame_us {
                // This period was the missing frame's.
                return self.fill();
            }
            // Overdue by more than a period: its time was already filled during an underrun.
            idx = self.index(self.cursor);
        }

        let delay = now - self.ts_us(self.slots[idx].ts) - min_transit;
        if delay < self.target_us {
            if self.played_any {
                self.stats.inserted += 1;
            }
            return self.fill();
        }
        let next = self.index(self.cursor + 1);
        let mut played_delay = delay;
        if delay > self.target_us + self.frame_us * 3 / 2 && self.is_present(next, self.cursor + 1)
        {
            self.slots[idx].state = SlotState::Empty;
            self.stats.dropped += 1;
            self.cursor += 1;
            idx = next;
            played_delay = now - self.ts_us(self.slots[idx].ts) - min_transit;
        }
        self.current_delay_us = played_delay;
        self.cursor += 1;
        self.played_any = true;
        self.missing_run = 0;
        self.in_underrun = false;
        let slot = &mut self.slots[idx];
        slot.state = SlotState::Played;
        self.last_played = Some((slot.seq, slot.ts));
        Playout::Frame(&slot.data[..usize::from(slot.len)])
    }

    fn fill(&mut self) -> Playout<'static> {
        if self.played_any && self.missing_run < self.max_conceal {
            self.missing_run += 1;
            self.stats.concealed += 1;
            Playout::Conceal
        } else {
            Playout::Silence
        }
    }

    fn is_present(&self, idx: usize, seq: i64) -> bool {
        let slot = &self.slots[idx];
        slot.state == SlotState::Filled && slot.seq == seq
    }

    fn index(&self, ext_seq: i64) -> usize {
        ext_seq.rem_euclid(self.slots.len() as i64) as usize
    }

    fn ts_us(&self, ext_ts: i64) -> i64 {
        (i128::from(ext_ts) * 1_000_000).div_euclid(i128::from(self.clock_rate)) as i64
    }

    fn extend_ts(&mut self, ts: u32) -> i64 {
        let ext = self.ref_ext_ts + i64::from(ts.wrapping_sub(self.ref_ts) as i32);
        if ext > self.ref_ext_ts {
            self.ref_ext_ts = ext;
            self.ref_ts = ts;
        }
        ext
    }

    fn min_transit(&self) -> i64 {
        self.min_cur.min(self.min_prev)
    }

    fn resync_threshold_us(&self) -> i64 {
        (2 * self.max_delay_us).max(MIN_RESYNC_US)
    }

    fn store(&mut self, ext_seq: i64, ext_ts: i64, payload: &[u8]) {
        let idx = self.index(ext_seq);
        let slot = &mut self.slots[idx];
        slot.state = SlotState::Filled;
        slot.seq = ext_seq;
        slot.ts = ext_ts;
        slot.len = payload.len() as u16;
        slot.data[..payload.len()].copy_from_slice(payload);
        self.highest = self.highest.max(ext_seq);
    }

    fn sync(&mut self, seq: u16, timestamp: u32, payload: &[u8], arrival_us: u64) {
        for slot in self.slots.iter_mut() {
            slot.state = SlotState::Empty;
        }
        self.synced = true;
        // Start the extended sequence high enough that reordering before the start stays
        // positive; only differences matter.
        self.cursor = (1 << 32) | i64::from(seq);
        self.highest = self.cursor;
        self.ref_ts = timestamp;
        self.ref_ext_ts = 1 << 32;
        self.last_played = None;
        self.played_any = false;
        self.missing_run = 0;
        self.in_underrun = false;
        self.jump_candidate = None;
        let transit = arrival_us as i64 - self.ts_us(self.ref_ext_ts);
        self.min_cur = transit;
        self.min_prev = transit;
        self.window_start = arrival_us;
        self.last_transit = None;
        self.observe(transit, arrival_us);
        self.store(self.cursor, self.ref_ext_ts, payload);
    }

    fn resync(&mut self, seq: u16, timestamp: u32, payload: &[u8], arrival_us: u64) -> PushOutcome {
        self.stats.resyncs += 1;
        self.sync(seq, timestamp, payload, arrival_us);
        PushOutcome::Resynced
    }

    /// Updates the transit baseline, the RFC 3550 jitter, the peak deviation and the target.
    fn observe(&mut self, transit: i64, arrival_us: u64) {
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.last_transit = Some(transit);
        if arrival_us.saturating_sub(self.window_start) >= MIN_WINDOW_US {
            self.min_prev = self.min_cur;
            self.min_cur = transit;
            self.window_start = arrival_us;
        } else {
            self.min_cur = self.min_cur.min(transit);
        }
        let dev = (transit - self.min_transit()).max(0) as f64;
        if dev > self.peak_dev_us {
            self.peak_dev_us = dev;
        } else {
            self.peak_dev_us += (dev - self.peak_dev_us) / PEAK_DECAY;
        }
        let want = self.peak_dev_us.max(3.0 * self.jitter_us) as i64 + self.frame_us / 4;
        self.target_us = want.clamp(self.min_delay_us, self.max_delay_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 20_000;
    const FS: u32 = 160;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        F(u16),
        C,
        S,
    }

    fn payload(seq: u16) -> [u8; 160] {
        let mut p = [0x55u8; 160];
        p[..2].copy_from_slice(&seq.to_be_bytes());
        p
    }

    /// A packet `(arrival_us, seq, timestamp)`.
    type Arrival = (u64, u16, u32);

    struct Run {
        out: Vec<Out>,
        outcomes: Vec<(u16, PushOutcome)>,
        max_buffered: usize,
    }

    /// Plays `pops` frame periods starting at `pop_start`; before each pop, pushes every packet
    /// that has arrived by then.
    fn run(jb: &mut JitterBuffer, mut arrivals: Vec<Arrival>, pop_start: u64, pops: usize) -> Run {
        arrivals.sort_by_key(|a| a.0);
        let mut it = arrivals.into_iter().peekable();
        let mut r = Run {
            out: Vec::new(),
            outcomes: Vec::new(),
            max_buffered: 0,
        };
        for i in 0..pops as u64 {
            let t = pop_start + i * F;
            while let Some(&(at, seq, ts)) = it.peek() {
                if at > t {
                    break;
                }
                it.next();
                let o = jb.push(seq, ts, &payload(seq), at);
                r.outcomes.push((seq, o));
            }
            r.max_buffered = r.max_buffered.max(jb.buffered());
            let o = match jb.pop(t) {
                Playout::Frame(p) => {
                    assert_eq!(p.len(), 160);
                    Out::F(u16::from_be_bytes([p[0], p[1]]))
                }
                Playout::Conceal => Out::C,
                Playout::Silence => Out::S,
            };
            r.out.push(o);
        }
        r
    }

    /// Steady stream: packet k sent at k·20 ms, arriving `transit` later.
    fn steady(seq0: u16, ts0: u32, count: usize, transit: u64) -> Vec<Arrival> {
        (0..count as u64)
            .map(|k| {
                (
                    transit + k * F,
                    seq0.wrapping_add(k as u16),
                    ts0.wrapping_add(k as u32 * FS),
                )
            })
            .collect()
    }

    fn frames(out: &[Out]) -> Vec<u16> {
        out.iter()
            .filter_map(|o| match o {
                Out::F(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    fn assert_consecutive(seqs: &[u16]) {
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1), "not consecutive: {w:?}");
        }
    }

    /// The outputs between the first and the last frame.
    fn body(out: &[Out]) -> &[Out] {
        let first = out.iter().position(|o| matches!(o, Out::F(_))).unwrap();
        let last = out.iter().rposition(|o| matches!(o, Out::F(_))).unwrap();
        &out[first..=last]
    }

    fn jb() -> JitterBuffer {
        JitterBuffer::new(8000, 160, 40, 400)
    }

    #[test]
    fn silence_before_any_packet() {
        let mut jb = jb();
        assert_eq!(jb.pop(0), Playout::Silence);
        assert_eq!(jb.pop(20_000), Playout::Silence);
        assert_eq!(jb.stats().received, 0);
        assert_eq!(jb.buffered(), 0);
    }

    #[test]
    fn in_order_steady_stream_plays_every_frame_after_the_target_delay() {
        let mut jb = jb();
        let r = run(&mut jb, steady(1000, 5000, 500, 30_000), 31_000, 500);
        let played = frames(&r.out);
        assert_eq!(played.first(), Some(&1000));
        assert_consecutive(&played);
        assert!(body(&r.out).iter().all(|o| matches!(o, Out::F(_))));
        // Priming: silence until the first frame has waited the 40 ms minimum delay.
        let lead = r.out.iter().position(|o| *o != Out::S).unwrap();
        assert!((2..=3).contains(&lead), "lead {lead}");
        assert!(played.len() >= 495);
        let s = jb.stats();
        assert_eq!((s.lost, s.late, s.duplicate, s.concealed), (0, 0, 0, 0));
        assert_eq!((s.dropped, s.inserted, s.resyncs), (0, 0, 0));
        assert_eq!(s.received, 500);
        assert!(s.jitter_ms < 0.01);
        assert_eq!(s.target_delay_ms, 40.0);
        assert!(s.current_delay_ms >= 40.0 && s.current_delay_ms < 70.0);
        assert!(r.outcomes.iter().all(|(_, o)| *o == PushOutcome::Accepted));
    }

    #[test]
    fn reordering_of_two_and_three_packets_is_undone() {
        let mut a = steady(0, 0, 300, 30_000);
        // Swap pairs: 10 arrives after 11.
        a[10].0 = a[11].0 + 1;
        // Rotate three: 50, 51, 52 arrive as 52, 50, 51.
        a[50].0 = a[52].0 + 1;
        a[51].0 = a[52].0 + 2;
        // 100 overtaken by 101 and 102 (30 ms late, within the 40 ms delay).
        a[100].0 = a[102].0 - 10;
        // A three-packet rotation is 40 ms of jitter: give it more than that.
        let mut jb = JitterBuffer::new(8000, 160, 60, 400);
        let r = run(&mut jb, a, 31_000, 300);
        let played = frames(&r.out);
        assert_eq!(played.first(), Some(&0));
        assert_consecutive(&played);
        assert!(
            body(&r.out).iter().all(|o| matches!(o, Out::F(_))),
            "{:?}",
            r.out
        );
        let s = jb.stats();
        assert_eq!((s.lost, s.late, s.concealed), (0, 0, 0));
    }

    #[test]
    fn reordering_before_the_first_frame_moves_the_start_back() {
        let mut a = steady(7, 0, 50, 10_000);
        a[0].0 = a[1].0 + 1;
        let mut jb = jb();
        let r = run(&mut jb, a, 11_000, 50);
        assert_eq!(frames(&r.out).first(), Some(&7));
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn a_single_loss_is_concealed() {
        let mut a = steady(0, 0, 300, 30_000);
        a.remove(100);
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, 300);
        let b = body(&r.out);
        let i = b.iter().position(|o| *o == Out::F(99)).unwrap();
        assert_eq!(&b[i..i + 3], &[Out::F(99), Out::C, Out::F(101)]);
        assert_eq!(b.iter().filter(|o| !matches!(o, Out::F(_))).count(), 1);
        let s = jb.stats();
        assert_eq!(
            (s.lost, s.concealed, s.late, s.dropped, s.inserted),
            (1, 1, 0, 0, 0)
        );
    }

    #[test]
    fn a_burst_loss_is_concealed_once_then_silent_without_adding_delay() {
        let mut a = steady(0, 0, 300, 30_000);
        a.drain(100..105);
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, 300);
        let b = body(&r.out);
        let i = b.iter().position(|o| *o == Out::F(99)).unwrap();
        assert_eq!(
            &b[i..i + 7],
            &[
                Out::F(99),
                Out::C,
                Out::S,
                Out::S,
                Out::S,
                Out::S,
                Out::F(105)
            ]
        );
        let s = jb.stats();
        assert_eq!((s.lost, s.concealed, s.late), (5, 1, 0));
        assert_eq!((s.dropped, s.inserted), (0, 0));
        assert_consecutive(&frames(&r.out)[100..]);
    }

    #[test]
    fn a_longer_concealment_can_be_configured() {
        let mut a = steady(0, 0, 200, 30_000);
        a.drain(100..104);
        let mut jb = jb();
        jb.set_max_conceal(2);
        let r = run(&mut jb, a, 31_000, 200);
        let b = body(&r.out);
        let i = b.iter().position(|o| *o == Out::F(99)).unwrap();
        assert_eq!(
            &b[i..i + 6],
            &[Out::F(99), Out::C, Out::C, Out::S, Out::S, Out::F(104)]
        );
    }

    #[test]
    fn a_jitter_spike_grows_the_delay_at_once_and_it_shrinks_back_slowly() {
        // A 200 ms stall at packet 200, then the queued packets arrive back to back.
        let mut a = steady(0, 0, 5000, 30_000);
        let release = a[200].0 + 200_000;
        for p in a.iter_mut().skip(200) {
            if p.0 < release {
                p.0 = release + u64::from(p.1 - 200) * 100;
            }
        }
        let mut jb = jb();
        let r = run(&mut jb, a.clone(), 31_000, 230);
        let s = jb.stats();
        assert!(s.target_delay_ms > 180.0, "target {}", s.target_delay_ms);
        assert!(s.current_delay_ms > 150.0, "current {}", s.current_delay_ms);
        assert_eq!((s.lost, s.late), (0, 0));
        assert_consecutive(&frames(&r.out));

        let jb = jb_after(a);
        let s = jb.stats();
        assert!(s.target_delay_ms < 45.0, "target {}", s.target_delay_ms);
        assert!(s.current_delay_ms < 80.0, "current {}", s.current_delay_ms);
        assert_eq!((s.lost, s.late), (0, 0));
        assert!(s.dropped >= 5, "dropped {}", s.dropped);
    }

    fn jb_after(a: Vec<Arrival>) -> JitterBuffer {
        let mut jb = jb();
        let n = a.len();
        let r = run(&mut jb, a, 31_000, n);
        // The frames after the spike are in order; the shrink only skips some.
        let played = frames(&r.out);
        assert!(played.windows(2).all(|w| w[1] > w[0]));
        jb
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let mut a = steady(65_500, u32::MAX - 20 * FS, 200, 30_000);
        a.swap(35, 36);
        a[35].0 += 5_000;
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, 200);
        let played = frames(&r.out);
        assert_eq!(played.first(), Some(&65_500));
        assert!(played.contains(&65_535) && played.contains(&0) && played.contains(&100));
        assert_consecutive(&played);
        assert!(body(&r.out).iter().all(|o| matches!(o, Out::F(_))));
        let s = jb.stats();
        assert_eq!((s.lost, s.late, s.resyncs), (0, 0, 0));
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut a = steady(0, 0, 200, 30_000);
        let mut extra: Vec<Arrival> = a
            .iter()
            .step_by(10)
            .map(|&(t, s, ts)| (t + 1, s, ts))
            .collect();
        // A retransmission long after the original was played.
        extra.push((a[50].0 + 200_000, 50, a[50].2));
        let dups = extra.len() as u64;
        a.extend(extra);
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, 200);
        assert_consecutive(&frames(&r.out));
        assert!(body(&r.out).iter().all(|o| matches!(o, Out::F(_))));
        let s = jb.stats();
        assert_eq!(s.duplicate, dups);
        assert_eq!((s.late, s.lost), (0, 0));
        let last = r.outcomes.iter().rev().find(|(s, _)| *s == 50).unwrap();
        assert_eq!(last.1, PushOutcome::Duplicate);
    }

    #[test]
    fn a_packet_after_its_playout_time_is_late_and_its_frame_concealed() {
        let mut a = steady(0, 0, 300, 30_000);
        a[100].0 += 150_000;
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, 300);
        let outcome = r.outcomes.iter().find(|(s, _)| *s == 100).unwrap();
        assert_eq!(outcome.1, PushOutcome::TooLate);
        let b = body(&r.out);
        let i = b.iter().position(|o| *o == Out::F(99)).unwrap();
        assert_eq!(&b[i..i + 3], &[Out::F(99), Out::C, Out::F(101)]);
        let s = jb.stats();
        assert_eq!((s.late, s.lost), (1, 1));
        // The late arrival taught the buffer a larger delay, reached by holding the cursor.
        assert!(s.inserted >= 5, "inserted {}", s.inserted);
        // The late arrival taught the buffer a larger delay.
        // (decaying since: 155 ms when it arrived, about 75 ms 190 packets later)
        assert!(s.target_delay_ms > 60.0, "target {}", s.target_delay_ms);
    }

    #[test]
    fn a_straggler_seconds_late_does_not_resync() {
        let mut a = steady(0, 0, 300, 30_000);
        a[100].0 += 1_500_000;
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, 300);
        let o = r.outcomes.iter().find(|(s, _)| *s == 100).unwrap();
        assert_eq!(o.1, PushOutcome::TooLate);
        let s = jb.stats();
        assert_eq!((s.resyncs, s.late, s.lost), (0, 1, 1));
    }

    /// Ten minutes of a sender whose clock runs `ppm` parts per million fast (positive) or slow,
    /// with 0-15 ms of random network jitter.
    fn drift(ppm: i64) -> (JitterStats, Run) {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let n = 30_000u64;
        let period = (F as i64 * 1_000_000 / (1_000_000 + ppm)) as u64;
        let a: Vec<Arrival> = (0..n)
            .map(|k| {
                (
                    30_000 + k * period + rand() % 15_000,
                    k as u16,
                    (k as u32) * FS,
                )
            })
            .collect();
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, n as usize);
        (jb.stats(), r)
    }

    #[test]
    fn a_fast_sender_clock_neither_grows_the_buffer_nor_underruns() {
        let (s, r) = drift(5000);
        // 0.5 % of 30 000 frames: about 150 surplus frames to discard.
        assert!((120..=260).contains(&s.dropped), "dropped {}", s.dropped);
        assert!(r.max_buffered <= 10, "max buffered {}", r.max_buffered);
        assert!(s.underruns <= 2, "underruns {}", s.underruns);
        assert!(s.late <= 10, "late {}", s.late);
        assert!(s.current_delay_ms < 100.0);
    }

    #[test]
    fn a_slow_sender_clock_neither_grows_the_buffer_nor_underruns() {
        let (s, r) = drift(-5000);
        assert!((120..=260).contains(&s.inserted), "inserted {}", s.inserted);
        assert!(r.max_buffered <= 10, "max buffered {}", r.max_buffered);
        assert!(s.underruns <= 2, "underruns {}", s.underruns);
        assert!(s.late <= 10, "late {}", s.late);
        assert!(s.current_delay_ms < 100.0);
    }

    #[test]
    fn a_sequence_jump_resyncs() {
        let mut jb = jb();
        let mut a = steady(100, 0, 50, 30_000);
        a.extend(steady(30_000, 50 * FS, 50, 30_000 + 50 * F));
        let r = run(&mut jb, a, 31_000, 100);
        let played = frames(&r.out);
        assert!(played.contains(&147) && played.contains(&30_000) && played.contains(&30_040));
        let o = r.outcomes.iter().find(|(s, _)| *s == 30_000).unwrap();
        assert_eq!(o.1, PushOutcome::Resynced);
        assert_eq!(jb.stats().resyncs, 1);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn a_backward_sequence_jump_resyncs_on_the_second_consecutive_packet() {
        let mut jb = jb();
        let mut a = steady(40_000, 0, 50, 30_000);
        a.extend(steady(39_000, 50 * FS, 50, 30_000 + 50 * F));
        let r = run(&mut jb, a, 31_000, 100);
        let o: Vec<_> = r
            .outcomes
            .iter()
            .filter(|(s, _)| (39_000..=39_002).contains(s))
            .collect();
        assert_eq!(o[0].1, PushOutcome::TooLate);
        assert_eq!(o[1].1, PushOutcome::Resynced);
        assert_eq!(o[2].1, PushOutcome::Accepted);
        assert!(frames(&r.out).contains(&39_040));
    }

    #[test]
    fn a_timestamp_jump_resyncs() {
        let mut jb = jb();
        let mut a = steady(0, 0, 50, 30_000);
        a.extend(steady(50, 900_000_000, 50, 30_000 + 50 * F));
        let r = run(&mut jb, a, 31_000, 100);
        let o = r.outcomes.iter().find(|(s, _)| *s == 50).unwrap();
        assert_eq!(o.1, PushOutcome::Resynced);
        let played = frames(&r.out);
        assert!(played.contains(&47) && played.contains(&90));
        assert_eq!(jb.stats().dropped, 0);
    }

    #[test]
    fn silence_suppression_pause_needs_no_resync() {
        // Talkspurt, 2 s pause (sequence continues, timestamp advances), talkspurt.
        let mut a = steady(0, 0, 50, 30_000);
        a.extend(steady(50, 150 * FS, 50, 30_000 + 150 * F));
        let mut jb = jb();
        let r = run(&mut jb, a, 31_000, 220);
        assert_consecutive(&frames(&r.out));
        assert_eq!(frames(&r.out).len(), 100);
        let s = jb.stats();
        assert_eq!((s.lost, s.late, s.resyncs, s.dropped), (0, 0, 0, 0));
        // The pause, and the end of the stream.
        assert_eq!(s.underruns, 2);
        // The second talkspurt is played with the same delay as the first.
        assert!(s.current_delay_ms >= 40.0 && s.current_delay_ms < 70.0);
    }

    #[test]
    fn reset_starts_a_new_stream() {
        let mut jb = jb();
        let r = run(&mut jb, steady(10, 0, 20, 30_000), 31_000, 20);
        assert!(frames(&r.out).contains(&15));
        jb.reset();
        assert_eq!(jb.pop(500_000), Playout::Silence);
        assert_eq!(
            jb.push(9, 12345, &payload(9), 500_000),
            PushOutcome::Accepted
        );
        assert_eq!(jb.pop(520_000), Playout::Silence);
        assert!(matches!(jb.pop(540_000), Playout::Frame(p) if p[1] == 9));
        assert_eq!(jb.stats().resyncs, 0);
    }

    #[test]
    fn oversized_payloads_are_refused_and_sizes_are_preserved() {
        let mut jb = jb();
        assert_eq!(
            jb.push(1, 0, &[0; MAX_PAYLOAD + 1], 0),
            PushOutcome::TooLarge
        );
        assert_eq!(jb.stats().too_large, 1);
        assert_eq!(jb.stats().received, 0);
        assert_eq!(jb.push(1, 0, &[7; MAX_PAYLOAD], 0), PushOutcome::Accepted);
        assert_eq!(jb.push(2, 160, &[8; 3], 20_000), PushOutcome::Accepted);
        assert_eq!(jb.pop(40_000), Playout::Frame(&[7; MAX_PAYLOAD]));
        assert_eq!(jb.pop(60_000), Playout::Frame(&[8; 3]));
        assert!(jb.capacity() >= 32);
    }

    #[test]
    fn garbage_never_panics() {
        let mut jb = JitterBuffer::new(0, 0, 0, 0);
        let mut x = 0x1234_5678_9abc_def0u64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 400) as usize;
            let _ = jb.push(x as u16, (x >> 16) as u32, &[0; 400][..len], x >> 40);
            let _ = jb.pop(i * 20_000 + (x >> 50));
        }
    }
}
