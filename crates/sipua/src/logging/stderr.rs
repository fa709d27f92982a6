//! The stderr writer: one line per record, `time LEVEL target: message call_id=… key=value…`.

use super::{registry, Filter, Record, Sink};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

struct Stderr;

/// One record as a line (masked already, like every record).
pub(super) fn format_line(record: &Record, time: &str) -> String {
    let mut line = format!(
        "{time} {:>5} {}: {}",
        record.level, record.target, record.message
    );
    if let Some(id) = &record.call_id {
        let _ = write!(line, " call_id={id}");
    }
    for (name, value) in &record.fields {
        let _ = write!(line, " {name}={value}");
    }
    line.push('\n');
    line
}

impl Sink for Stderr {
    fn record(&self, record: &Record) {
        let mut time = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut time));
        let _ = std::io::stderr().write_all(format_line(record, &time).as_bytes());
    }
}

/// Attaches the stderr writer for the rest of the process, the first time only.
pub(super) fn install(filter: Filter) {
    static ATTACHED: OnceLock<registry::Attached> = OnceLock::new();
    ATTACHED.get_or_init(|| {
        super::layer::install();
        registry::attach(filter, Arc::new(Stderr), false)
    });
}
