//! The engine's log, as records handed to sinks: the application's logger (through the
//! binding) or the stderr writer.
//!
//! tracing is process-global: one subscriber, installed on first use, turns every event into a
//! [`Record`] (level, target, message, fields, the call's id) and routes it to the attached
//! sinks. An endpoint runs in the span it was started in, and its tasks carry that span, so
//! a record knows which endpoint produced it:
//! - a sink attached with [`attach`] gets the records of the endpoint started inside
//!   [`Attached::span`], and the records nobody can attribute (the SIP stack's own tasks);
//! - the stderr writer ([`init`]) gets every record.
//!
//! Every record is masked before any sink sees it: rsipstack and our SIP trace carry whole
//! messages with `Authorization` headers, and a field named like a password is replaced.
//! rsipstack's own per-message logs (`raw_message`, at INFO) are dropped: the SIP trace
//! ([`Filter::sip_trace`], target [`TRACE_TARGET`]) is the one place messages are logged.

mod calls;
mod layer;
mod record;
mod registry;
mod stderr;

pub use calls::{tag_call, CallTag};
pub use record::{FieldValue, Record};
pub use registry::Attached;

use crate::error::{Error, Result};
pub use tracing::Level;

/// The target of the SIP message trace records.
pub const TRACE_TARGET: &str = crate::sip::trace::TARGET;

/// What a sink receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// Records at this level and the more severe ones.
    pub level: Level,
    /// Also every SIP message sent and received (DEBUG records, target [`TRACE_TARGET`]),
    /// whatever `level` is.
    pub sip_trace: bool,
}

/// Where records go. Called on the thread that logged (a tokio worker, a media thread): it
/// must not block.
pub trait Sink: Send + Sync + 'static {
    /// Takes one record (already masked).
    fn record(&self, record: &Record);
}

/// `error`, `warn`, `info`, `debug` or `trace` (any case); the error names `field`.
pub fn parse_level(field: &str, level: &str) -> Result<Level> {
    level.parse().map_err(|_| {
        Error::InvalidArgument(format!(
            "{field}: expected error, warn, info, debug or trace, got {level:?}"
        ))
    })
}

/// Attaches `sink`: it gets the records of the endpoint started inside the returned handle's
/// [`Attached::span`] (and the unattributed ones) until the handle is dropped.
pub fn attach(filter: Filter, sink: std::sync::Arc<dyn Sink>) -> Attached {
    layer::install();
    registry::attach(filter, sink, true)
}

/// Writes every record (masked) to stderr at `level` (`error` … `trace`), with the SIP trace
/// when `sip_trace`. Per process: the first call's settings hold, later calls are no-ops.
pub fn init(level: &str, sip_trace: bool) -> Result<()> {
    let level = parse_level("logLevel", level)?;
    stderr::install(Filter { level, sip_trace });
    Ok(())
}

/// Masks a log text in which a SIP message may appear raw or Debug-escaped (`\r\n` as text).
pub fn mask_line(line: &str) -> String {
    const ESCAPED: &str = "\\r\\n";
    if line.contains(ESCAPED) {
        let unescaped = line.replace(ESCAPED, "\r\n");
        crate::sip::mask::mask_sip_message(&unescaped).replace("\r\n", ESCAPED)
    } else {
        crate::sip::mask::mask_sip_message(line).into_owned()
    }
}

#[cfg(test)]
mod tests;
