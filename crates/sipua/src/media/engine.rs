//! The pacing clock: one thread ticks every 20 ms for all calls of an endpoint, first taking
//! each call's received frame out of its jitter buffer, then producing and sending each call's
//! frame (two phases, so a bridged call always forwards the frame its partner received in the
//! same tick). A dedicated thread keeps packet timing independent of SIP work on tokio.

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

/// The sessions of one endpoint and their clock.
pub struct MediaEngine {
    sessions: Mutex<Vec<Arc<MediaSession>>>,
    running: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    ticks: Mutex<TickHistogram>,
}

impl MediaEngine {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            sessions: Mutex::new(Vec::new()),
            running: AtomicBool::new(false),
            thread: Mutex::new(None),
            ticks: Mutex::new(TickHistogram::new()),
        })
    }

    /// Adds a session and makes sure the clock runs.
    pub fn add(self: &Arc<Self>, session: Arc<MediaSession>) {
        if let Ok(mut s) = self.sessions.lock() {
            s.push(session);
        }
        if !self.running.swap(true, Ordering::SeqCst) {
            let engine = Arc::downgrade(self);
            let handle = std::thread::Builder::new()
                .name("sip-native-media-clock".into())
                .spawn(move || run_clock(engine));
            match handle {
                Ok(h) => {
                    if let Ok(mut t) = self.thread.lock() {
                        *t = Some(h);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the media clock");
                    self.running.store(false, Ordering::SeqCst);
                }
            }
        }
    }

    pub fn remove(&self, call_id: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.retain(|x| x.call_id != call_id);
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tick interval quantiles (p50, p99) in ms since start: the send-interval jitter.
    pub fn tick_intervals(&self) -> (f64, f64) {
        self.ticks
            .lock()
            .map(|t| (t.quantile_ms(0.5), t.quantile_ms(0.99)))
            .unwrap_or((0.0, 0.0))
    }

    /// Stops the clock thread (sessions are closed by their calls).
    pub fn shutdown(&self) {
        self.running.store(false, Ordering::SeqCst);
        if let Ok(mut s) = self.sessions.lock() {
            s.clear();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn run_clock(engine: std::sync::Weak<MediaEngine>) {
    let period = Duration::from_millis(u64::from(PTIME_MS));
    let mut next = Instant::now() + period;
    let mut last_tick: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > period * 5 {
            // Stalled (machine suspended, debugger): resynchronise instead of bursting.
            next = now;
        }
        let Some(engine) = engine.upgrade() else {
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
        let sessions: Vec<Arc<MediaSession>> = engine
            .sessions
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        for s in &sessions {
            s.tick_receive(tick);
        }
        for s in &sessions {
            s.tick_send(tick);
        }
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
