//! The process-wide subscriber: tracing events become [`Record`]s routed by
//! [`super::registry`]. Spans matter for two fields only, kept in the span's extensions and
//! inherited by child spans: `log_scope` (the endpoint's sink, set by [`super::Attached::span`])
//! and `call_id` (the call a task drives).

use super::record::Collector;
use super::{calls, registry, Record};
use std::fmt;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Installs the subscriber once per process. When the host application has set a global
/// subscriber of its own first, that one keeps the events and sinks get nothing.
pub(super) fn install() {
    INSTALLED.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(RecordLayer),
        );
    });
}

static INSTALLED: OnceLock<()> = OnceLock::new();

/// The log scope of the current span (`Some(None)`: no endpoint's); `None` while no log output
/// was ever on (nothing to tag).
pub(super) fn current_scope() -> Option<Option<u64>> {
    INSTALLED.get()?;
    let scope = tracing::Span::current().with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let scope = span.extensions().get::<SpanTags>()?.scope;
        scope
    });
    Some(scope.flatten())
}

/// The two span fields records are routed and tagged by.
#[derive(Clone, Default)]
struct SpanTags {
    scope: Option<u64>,
    call_id: Option<String>,
}

impl Visit for SpanTags {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log_scope" {
            self.scope = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "call_id" {
            self.call_id = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "call_id" {
            self.call_id = Some(format!("{value:?}"));
        }
    }
}

pub(super) struct RecordLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RecordLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Sinks come and go: ask `enabled` each time (behind tracing's max-level check).
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        meta.is_span() || registry::wanted(*meta.level(), meta.target())
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(registry::max_level())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut tags = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanTags>().cloned())
            .unwrap_or_default();
        attrs.record(&mut tags);
        span.extensions_mut().insert(tags);
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(tags) = span.extensions_mut().get_mut::<SpanTags>() {
                values.record(tags);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut c = Collector::default();
        event.record(&mut c);
        if c.raw_message && meta.target().starts_with("rsipstack") {
            return;
        }
        let tags = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<SpanTags>().cloned())
            .unwrap_or_default();
        // A traced message of no call's task: its Call-ID tells the call.
        let by_sip_call_id = || {
            c.fields.iter().find_map(|(name, value)| match value {
                super::FieldValue::Str(id) if *name == "sip_call_id" => {
                    calls::call_of(tags.scope, id)
                }
                _ => None,
            })
        };
        let call_id = c.call_id.clone().or(tags.call_id.clone());
        let call_id = call_id.or_else(by_sip_call_id);
        let record = Record {
            level: *meta.level(),
            target: meta.target(),
            message: c.message,
            call_id,
            fields: c.fields,
        };
        registry::dispatch(&record, tags.scope);
    }
}
