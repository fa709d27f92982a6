//! The bridge from the engine's log sink to the application's logger: each record becomes a
//! plain object queued to a ThreadsafeFunction. The queue is bounded (napi's own queue): when
//! JS falls behind, records are dropped and counted instead of piling up in memory.

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use serde_json::{Map, Value};
use sipua::logging::{self, Attached, FieldValue, Filter, Record, Sink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Records queued for JS at most; more are dropped (and counted) until JS catches up.
pub const QUEUE: usize = 4096;

/// What the logger gets (`level` may be `trace` only at `logLevel: 'trace'`).
#[napi(object)]
pub struct LogOptions {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Also every SIP message sent and received, at debug, target `sip_native::trace`.
    pub sip_trace: bool,
}

/// One engine log record as the facade receives it; it spreads `fields` into the object
/// handed to the logger.
#[napi(object)]
pub struct LogRecord {
    pub level: String,
    pub target: String,
    pub message: String,
    pub call_id: Option<String>,
    /// The event's other fields, camelCased: numbers, booleans, strings (all masked).
    #[napi(ts_type = "Record<string, string | number | boolean>")]
    pub fields: Map<String, Value>,
}

/// The logger callback: weak (the event callback keeps Node alive while the service runs),
/// bounded at [`QUEUE`].
pub type LogCallback = ThreadsafeFunction<LogRecord, (), LogRecord, Status, false, true, QUEUE>;

/// `sip_message` → `sipMessage`.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn to_js(record: &Record) -> LogRecord {
    let fields = record
        .fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                FieldValue::Str(s) => Value::String(s.clone()),
                FieldValue::I64(v) => Value::from(*v),
                FieldValue::U64(v) => Value::from(*v),
                FieldValue::F64(v) => {
                    serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)
                }
                FieldValue::Bool(v) => Value::Bool(*v),
            };
            (camel(name), value)
        })
        .collect();
    LogRecord {
        level: record.level.as_str().to_ascii_lowercase(),
        target: record.target.to_string(),
        message: record.message.clone(),
        call_id: record.call_id.clone(),
        fields,
    }
}

struct JsSink {
    callback: LogCallback,
    dropped: Arc<AtomicU64>,
}

impl Sink for JsSink {
    fn record(&self, record: &Record) {
        if self
            .callback
            .call(to_js(record), ThreadsafeFunctionCallMode::NonBlocking)
            != Status::Ok
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A logger attached for one endpoint: its records go to JS until this is dropped.
pub struct JsLogger {
    pub attached: Attached,
    /// Records dropped because the queue to JS was full (or JS was gone).
    pub dropped: Arc<AtomicU64>,
}

/// Attaches `callback` as the sink of the endpoint to be started in `attached.span()`.
pub fn attach(options: &LogOptions, callback: LogCallback) -> napi::Result<JsLogger> {
    let level = logging::parse_level("logLevel", &options.level)
        .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))?;
    let dropped = Arc::new(AtomicU64::new(0));
    let sink = JsSink {
        callback,
        dropped: dropped.clone(),
    };
    let filter = Filter {
        level,
        sip_trace: options.sip_trace,
    };
    Ok(JsLogger {
        attached: logging::attach(filter, Arc::new(sink)),
        dropped,
    })
}
