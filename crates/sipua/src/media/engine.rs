//! The pacing clock: threads that tick every 20 ms for the calls of an endpoint (each for its
//! share), first taking each call's received frame out of its jitter buffer, then producing and
//! sending each call's frame (two phases, so a bridged call on the same thread forwards the
//! frame its partner received in the same tick; across threads it is at most one tick older).
//! Dedicated threads keep packet timing independent of SIP work on tokio.
//!
//! The engine also sums its sessions' statistics for the endpoint's metrics: a session's
//! figures are folded into the totals of ended sessions when it is removed, under the lock
//! that [`MediaEngine::rtp_figures`] holds, so the summed counters never go backwards.

use super::session::{MediaSession, SessionStats, PTIME_MS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Histogram of intervals between consecutive ticks, in 0.1 ms buckets up to 100 ms.
#[derive(Clone)]
pub struct TickHistogram {
    buckets: Vec<u64>,
}

impl TickHistogram {
    fn new() -> Self {
        Self {
            buckets: vec![0; 1001],
        }
    }

    fn record(&mut self, interval: Duration) {
        let i = ((interval.as_micros() / 100) as usize).min(1000);
        self.buckets[i] += 1;
    }

    /// The `q` quantile (0..1) in ms, 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let target = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return i as f64 / 10.0;
            }
        }
        100.0
    }
}

/// One pacing thread and the sessions it drives.
struct Shard {
    sessions: Mutex<Vec<Arc<MediaSession>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// RTP figures of an endpoint: counters over every session it ran (the live ones and those
/// that ended), gauges over the live ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RtpFigures {
    /// Sessions running now.
    pub sessions: u64,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// RTP payload bytes sent.
    pub bytes_sent: u64,
    /// RTP payload bytes received.
    pub bytes_received: u64,
    /// Packets of the peers' streams that never came (RFC 3550 cumulative loss).
    pub packets_lost: u64,
    /// Datagrams not used (strangers, wrong payload type, late, duplicate) or not sent.
    pub packets_dropped: u64,
    /// The highest interarrival jitter of the live sessions, ms.
    pub jitter_max_ms: f64,
    /// The mean interarrival jitter of the live sessions that received packets, ms.
    pub jitter_mean_ms: f64,
    /// Sessions that ended.
    pub ended_sessions: u64,
    /// The sum of the jitter each ended session had at its end, ms.
    pub ended_jitter_ms_sum: f64,
}

impl RtpFigures {
    /// Adds one session's counters (not its jitter: that is a gauge or an ended-session sum).
    fn add_counters(&mut self, s: &SessionStats) {
        self.packets_sent += s.packets_sent;
        self.packets_received += s.packets_received;
        self.bytes_sent += s.bytes_sent;
        self.bytes_received += s.bytes_received;
        self.packets_lost += s.packets_lost;
        self.packets_dropped += s.packets_dropped;
    }
}

/// The sessions of one endpoint and their clocks: one pacing thread per core (at most 4), each
/// driving its share of the calls, so thousands of calls are not serialised on one core.
pub struct MediaEngine {
    shards: Vec<Arc<Shard>>,
    running: AtomicBool,
    ticks: Mutex<TickHistogram>,
    /// The figures of the sessions that ended (`sessions` and the gauges stay 0).
    ended: Mutex<RtpFigures>,
}

impl MediaEngine {
    /// An engine with one (not yet started) pacing thread per core, at most 4.
    pub fn new() -> Arc<Self> {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        Arc::new(Self {
            shards: (0..n)
                .map(|_| {
                    Arc::new(Shard {
                        sessions: Mutex::new(Vec::new()),
                        thread: Mutex::new(None),
                    })
                })
                .collect(),
            running: AtomicBool::new(true),
            ticks: Mutex::new(TickHistogram::new()),
            ended: Mutex::new(RtpFigures::default()),
        })
    }

    /// Adds a session to the least loaded pacing thread, starting it if needed.
    pub fn add(self: &Arc<Self>, session: Arc<MediaSession>) {
        let Some(shard) = self
            .shards
            .iter()
            .min_by_key(|s| s.sessions.lock().map(|v| v.len()).unwrap_or(usize::MAX))
        else {
            return;
        };
        if let Ok(mut v) = shard.sessions.lock() {
            v.push(session);
        }
        let Ok(mut thread) = shard.thread.lock() else {
            return;
        };
        if thread.is_none() && self.running.load(Ordering::SeqCst) {
            let engine = Arc::downgrade(self);
            let own = Arc::downgrade(shard);
            match std::thread::Builder::new()
                .name("sip-native-media-clock".into())
                .spawn(move || run_clock(engine, own))
            {
                Ok(h) => *thread = Some(h),
                Err(e) => tracing::error!(error = %e, "cannot start a media clock thread"),
            }
        }
    }

    /// Stops driving the session of `call_id`; its figures go into the ended sessions' totals.
    pub fn remove(&self, call_id: &str) {
        let mut ended = self.ended.lock().ok();
        for shard in &self.shards {
            let removed: Vec<Arc<MediaSession>> = match shard.sessions.lock() {
                Ok(mut v) => {
                    let (gone, kept) = v.drain(..).partition(|x| x.call_id == call_id);
                    *v = kept;
                    gone
                }
                Err(_) => continue,
            };
            for session in removed {
                if let Some(e) = ended.as_deref_mut() {
                    let stats = session.stats();
                    e.add_counters(&stats);
                    e.ended_sessions += 1;
                    e.ended_jitter_ms_sum += stats.jitter_ms;
                }
            }
        }
    }

    /// The RTP figures of every session so far. Holds the ended sessions' lock throughout, so
    /// no session moves from live to ended while it sums.
    pub fn rtp_figures(&self) -> RtpFigures {
        let Ok(ended) = self.ended.lock() else {
            return RtpFigures::default();
        };
        let mut figures = ended.clone();
        let live: Vec<Arc<MediaSession>> = self
            .shards
            .iter()
            .filter_map(|s| s.sessions.lock().ok().map(|v| v.clone()))
            .flatten()
            .collect();
        let (mut jitter_sum, mut receiving) = (0.0, 0u32);
        for session in &live {
            let stats = session.stats();
            figures.add_counters(&stats);
            figures.jitter_max_ms = figures.jitter_max_ms.max(stats.jitter_ms);
            if stats.packets_received > 0 {
                jitter_sum += stats.jitter_ms;
                receiving += 1;
            }
        }
        figures.sessions = live.len() as u64;
        if receiving > 0 {
            figures.jitter_mean_ms = jitter_sum / f64::from(receiving);
        }
        figures
    }

    /// Tick interval quantiles (p50, p99) in ms since start: the send-interval jitter.
    pub fn tick_intervals(&self) -> (f64, f64) {
        self.ticks
            .lock()
            .map(|t| (t.quantile_ms(0.5), t.quantile_ms(0.99)))
            .unwrap_or((0.0, 0.0))
    }

    /// Stops the clock threads (sessions are closed by their calls).
    pub fn shutdown(&self) {
        self.running.store(false, Ordering::SeqCst);
        for shard in &self.shards {
            if let Ok(mut v) = shard.sessions.lock() {
                v.clear();
            }
            let handle = shard.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
    }
}

fn run_clock(engine: std::sync::Weak<MediaEngine>, shard: std::sync::Weak<Shard>) {
    let period = Duration::from_millis(u64::from(PTIME_MS));
    let mut next = Instant::now() + period;
    let mut last_tick: Option<Instant> = None;
    let mut sessions: Vec<Arc<MediaSession>> = Vec::new();
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > period * 5 {
            // Stalled (machine suspended, debugger): resynchronise instead of bursting.
            next = now;
        }
        let (Some(engine), Some(shard)) = (engine.upgrade(), shard.upgrade()) else {
            return;
        };
        if !engine.running.load(Ordering::SeqCst) {
            return;
        }
        let tick = Instant::now();
        if let Some(prev) = last_tick {
            if let Ok(mut h) = engine.ticks.lock() {
                h.record(tick - prev);
            }
        }
        last_tick = Some(tick);
        // Reuse one vector: no allocation per tick once it has grown.
        sessions.clear();
        if let Ok(v) = shard.sessions.lock() {
            sessions.extend(v.iter().cloned());
        }
        for s in &sessions {
            s.tick_receive(tick);
        }
        for s in &sessions {
            s.tick_send(tick);
        }
        sessions.clear();
        next += period;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::AudioCodec;
    use crate::media::{MediaDirection, MediaParams};
    use std::net::UdpSocket;

    fn session(call_id: &str, peer: &UdpSocket) -> Arc<MediaSession> {
        let bind = || UdpSocket::bind("127.0.0.1:0").unwrap();
        let params = MediaParams {
            codec: AudioCodec::Pcmu,
            payload_type: 0,
            telephone_event_pt: None,
            remote: peer.local_addr().unwrap(),
            direction: MediaDirection::SendRecv,
            rtcp_mux: false,
            srtp: None,
        };
        MediaSession::new(call_id.into(), bind(), bind(), params, Box::new(|_| {})).unwrap()
    }

    #[test]
    fn rtp_counters_keep_the_figures_of_ended_sessions() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let engine = MediaEngine::new();
        engine.add(session("a", &peer));
        engine.add(session("b", &peer));
        let deadline = Instant::now() + Duration::from_secs(5);
        while engine.rtp_figures().packets_sent < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let live = engine.rtp_figures();
        assert_eq!((live.sessions, live.ended_sessions), (2, 0));
        assert!(live.packets_sent >= 10, "{live:?}");
        assert_eq!(live.bytes_sent, live.packets_sent * 160, "PCMU, 20 ms");
        engine.remove("a");
        engine.remove("b");
        let ended = engine.rtp_figures();
        assert_eq!((ended.sessions, ended.ended_sessions), (0, 2));
        assert!(
            ended.packets_sent >= live.packets_sent,
            "{ended:?} after {live:?}"
        );
        assert_eq!(ended.jitter_max_ms, 0.0, "no live session, no jitter gauge");
        engine.shutdown();
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = TickHistogram::new();
        for _ in 0..98 {
            h.record(Duration::from_micros(20_000));
        }
        h.record(Duration::from_micros(21_500));
        h.record(Duration::from_micros(35_000));
        assert_eq!(h.quantile_ms(0.5), 20.0);
        assert_eq!(h.quantile_ms(0.99), 21.5);
        assert_eq!(h.quantile_ms(1.0), 35.0);
    }
}
