//! One log record, built from a tracing event's fields and masked on the way.

use super::mask_line;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::Level;

/// A log record as sinks get it: every text in it is masked.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// How severe.
    pub level: Level,
    /// The module (or [`super::TRACE_TARGET`]) that logged it.
    pub target: &'static str,
    /// What happened.
    pub message: String,
    /// Our id of the call it is about (the `call_id` field or span), when there is one.
    pub call_id: Option<String>,
    /// The event's other fields, in their order.
    pub fields: Vec<(&'static str, FieldValue)>,
}

/// A field's value, typed as it was logged (text for `%` Display and `?` Debug values).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Text.
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => write!(f, "{s:?}"),
            FieldValue::I64(v) => write!(f, "{v}"),
            FieldValue::U64(v) => write!(f, "{v}"),
            FieldValue::F64(v) => write!(f, "{v}"),
            FieldValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// What replaces a secret field's value.
const MASKED: &str = "***";

/// Field names whose value is a secret whatever it looks like.
fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password") || n.contains("secret") || n.ends_with("authorization")
}

/// Collects an event's fields into a record under construction.
#[derive(Default)]
pub(super) struct Collector {
    pub message: String,
    pub call_id: Option<String>,
    pub fields: Vec<(&'static str, FieldValue)>,
    /// rsipstack's whole-message logs carry this field: the SIP trace replaces them.
    pub raw_message: bool,
}

impl Collector {
    fn put(&mut self, field: &Field, value: FieldValue) {
        match field.name() {
            "message" => {
                if let FieldValue::Str(s) = value {
                    self.message = mask_line(&s);
                }
            }
            "call_id" => {
                if let FieldValue::Str(s) = value {
                    self.call_id = Some(s);
                }
            }
            name => {
                if name == "raw_message" {
                    self.raw_message = true;
                }
                let value = match value {
                    _ if is_secret(name) => FieldValue::Str(MASKED.into()),
                    FieldValue::Str(s) => FieldValue::Str(mask_line(&s)),
                    other => other,
                };
                self.fields.push((name, value));
            }
        }
    }
}

impl Visit for Collector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, FieldValue::Str(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here as Display wrapped in Debug, the message as `format_args!`.
        self.put(field, FieldValue::Str(format!("{value:?}")));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, FieldValue::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, FieldValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, FieldValue::Str(value.to_string()));
    }
}
