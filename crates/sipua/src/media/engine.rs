//! The pacing clock: threads that tick every 20 ms for the calls of an endpoint (each for its
//! share), first taking each call's received frame out of its jitter buffer, then producing and
//! sending each call's frame (two phases, so a bridged call on the same thread forwards the
//! frame its partner received in the same tick; across threads it is at most one tick older).
//! Dedicated threads keep packet timing independent of SIP work on tokio.

use super::session::{MediaSession, PTIME_MS};
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

/// The sessions of one endpoint and their clocks: one pacing thread per core (at most 4), each
/// driving its share of the calls, so thousands of calls are not serialised on one core.
pub struct MediaEngine {
    shards: Vec<Arc<Shard>>,
    running: AtomicBool,
    ticks: Mutex<TickHistogram>,
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

    /// Stops driving the session of `call_id`.
    pub fn remove(&self, call_id: &str) {
        for shard in &self.shards {
            if let Ok(mut v) = shard.sessions.lock() {
                v.retain(|x| x.call_id != call_id);
            }
        }
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
