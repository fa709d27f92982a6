//! The attached sinks, process-wide, and which records each one gets.
//!
//! The most verbose level any sink wants is kept in atomics, so that the subscriber can tell
//! tracing at once that a DEBUG event nobody wants is off (tracing then skips it at the call
//! site, at the cost of one load).

use super::{Filter, Record, Sink};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tracing::level_filters::LevelFilter;
use tracing::{Level, Span};

struct Entry {
    id: u64,
    filter: Filter,
    sink: Arc<dyn Sink>,
    /// Gets only its own endpoint's records (and the unattributed ones); else every record.
    scoped: bool,
}

static SINKS: RwLock<Vec<Entry>> = RwLock::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The most verbose level of the records (not the trace) some sink wants, as
/// [`level_index`]; 0: none.
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(0);
/// Whether some sink wants the SIP trace.
static TRACE: AtomicBool = AtomicBool::new(false);

/// 1 (ERROR) to 5 (TRACE): larger is more verbose.
fn level_index(level: Level) -> usize {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// A sink attached until this handle is dropped.
pub struct Attached {
    id: u64,
}

impl Attached {
    /// The span to start an endpoint in: its records go to this sink (and not to the sinks of
    /// other endpoints). ERROR level, so that it exists whenever any log output is on.
    pub fn span(&self) -> Span {
        tracing::error_span!("sip_native", log_scope = self.id)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Ok(mut sinks) = SINKS.write() {
            sinks.retain(|e| e.id != self.id);
            recompute(&sinks);
        }
    }
}

pub(super) fn attach(filter: Filter, sink: Arc<dyn Sink>, scoped: bool) -> Attached {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut sinks) = SINKS.write() {
        sinks.push(Entry {
            id,
            filter,
            sink,
            scoped,
        });
        recompute(&sinks);
    }
    Attached { id }
}

fn recompute(sinks: &[Entry]) {
    let max = sinks
        .iter()
        .map(|e| level_index(e.filter.level))
        .max()
        .unwrap_or(0);
    MAX_LEVEL.store(max, Ordering::Relaxed);
    TRACE.store(sinks.iter().any(|e| e.filter.sip_trace), Ordering::Relaxed);
    // Call sites cached tracing's previous answer (the max level): ask again.
    tracing::callsite::rebuild_interest_cache();
}

/// The most verbose level some sink may want, for tracing's call-site filter.
pub(super) fn max_level() -> LevelFilter {
    let records = MAX_LEVEL.load(Ordering::Relaxed);
    let trace = if TRACE.load(Ordering::Relaxed) {
        level_index(Level::DEBUG)
    } else {
        0
    };
    match records.max(trace) {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Whether some sink may want an event of this level and target.
pub(super) fn wanted(level: Level, target: &str) -> bool {
    if target == super::TRACE_TARGET {
        TRACE.load(Ordering::Relaxed)
    } else {
        level_index(level) <= MAX_LEVEL.load(Ordering::Relaxed)
    }
}

fn takes(e: &Entry, record: &Record, scope: Option<u64>) -> bool {
    let mine = !e.scoped || scope.is_none_or(|s| s == e.id);
    let wanted = if record.target == super::TRACE_TARGET {
        e.filter.sip_trace
    } else {
        level_index(record.level) <= level_index(e.filter.level)
    };
    mine && wanted
}

/// Hands `record` (from the endpoint of sink `scope`, if known) to the sinks that take it.
pub(super) fn dispatch(record: &Record, scope: Option<u64>) {
    // Called outside the lock: a sink that logs (through tracing) must not re-enter it.
    let targets: Vec<Arc<dyn Sink>> = match SINKS.read() {
        Ok(sinks) => sinks
            .iter()
            .filter(|e| takes(e, record, scope))
            .map(|e| e.sink.clone())
            .collect(),
        Err(_) => return,
    };
    for sink in targets {
        sink.record(record);
    }
}
