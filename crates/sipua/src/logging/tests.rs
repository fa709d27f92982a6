//! The subscriber is process-wide and tests run in parallel: each test attaches its own sinks
//! and logs inside their spans, and looks only at the records with its own messages.

use super::*;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Memory(Mutex<Vec<Record>>);

impl Sink for Memory {
    fn record(&self, record: &Record) {
        self.0.lock().unwrap().push(record.clone());
    }
}

impl Memory {
    fn with(&self, message_part: &str) -> Vec<Record> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|r| r.message.contains(message_part))
            .cloned()
            .collect()
    }
}

fn sink(level: Level, sip_trace: bool) -> (Arc<Memory>, Attached) {
    let memory = Arc::new(Memory::default());
    let attached = attach(Filter { level, sip_trace }, memory.clone());
    (memory, attached)
}

fn field<'a>(r: &'a Record, name: &str) -> Option<&'a FieldValue> {
    r.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

const RESPONSE: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn events_become_masked_records_with_typed_fields() {
    let (memory, attached) = sink(Level::DEBUG, false);
    attached.span().in_scope(|| {
        tracing::info!(
            account = "7779",
            code = 401u64,
            retry = true,
            password = "secret",
            "rec-fields REGISTER\r\nAuthorization: Digest username=\"7779\", response=\"{RESPONSE}\"\r\n"
        );
    });
    let got = memory.with("rec-fields");
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.level, Level::INFO);
    assert_eq!(r.target, "sipua::logging::tests");
    assert!(!r.message.contains(RESPONSE), "{}", r.message);
    assert!(r.message.contains("username=\"7779\""), "{}", r.message);
    assert_eq!(field(r, "account"), Some(&FieldValue::Str("7779".into())));
    assert_eq!(field(r, "code"), Some(&FieldValue::U64(401)));
    assert_eq!(field(r, "retry"), Some(&FieldValue::Bool(true)));
    assert_eq!(field(r, "password"), Some(&FieldValue::Str("***".into())));
    assert_eq!(r.call_id, None);
}

#[test]
fn records_go_to_their_endpoint_sink_and_unattributed_ones_to_all() {
    let (a, attached_a) = sink(Level::INFO, false);
    let (b, _attached_b) = sink(Level::INFO, false);
    attached_a
        .span()
        .in_scope(|| tracing::info!("route-mine for a only"));
    tracing::info!("route-nobody's for everyone");
    assert_eq!(a.with("route-mine").len(), 1);
    assert!(b.with("route-mine").is_empty(), "b got a's record");
    assert_eq!(a.with("route-nobody").len(), 1);
    assert_eq!(b.with("route-nobody").len(), 1);
}

#[test]
fn the_call_id_comes_from_the_span_or_the_event() {
    let (memory, attached) = sink(Level::INFO, false);
    attached.span().in_scope(|| {
        let call = tracing::error_span!("call", call_id = "out-7");
        call.in_scope(|| {
            let inner = tracing::error_span!("media");
            inner.in_scope(|| tracing::info!("callid-span nested"));
        });
        tracing::info!(call_id = %"in-3", "callid-field given");
    });
    assert_eq!(
        memory.with("callid-span")[0].call_id.as_deref(),
        Some("out-7")
    );
    let field = &memory.with("callid-field")[0];
    assert_eq!(field.call_id.as_deref(), Some("in-3"));
    assert!(
        field.fields.is_empty(),
        "call_id is not repeated as a field"
    );
}

#[test]
fn thresholds_and_the_sip_trace_are_per_sink() {
    let (warn, attached_warn) = sink(Level::WARN, true);
    let (debug, attached_debug) = sink(Level::DEBUG, false);
    let register = format!(
        "REGISTER sip:pbx SIP/2.0\r\nAuthorization: Digest username=\"7779\", response=\"{RESPONSE}\"\r\nCSeq: 2 REGISTER\r\n\r\n"
    );
    for attached in [&attached_warn, &attached_debug] {
        attached.span().in_scope(|| {
            tracing::info!("level-info");
            tracing::warn!("level-warn");
            crate::sip::trace::message(
                crate::sip::trace::Direction::Sent,
                "UDP",
                "127.0.0.1:5060",
                register.as_bytes(),
            );
        });
    }
    assert!(warn.with("level-info").is_empty());
    assert_eq!(warn.with("level-warn").len(), 1);
    assert_eq!(debug.with("level-info").len(), 1);
    let traced = warn.with("sent REGISTER sip:pbx SIP/2.0");
    assert_eq!(traced.len(), 1, "the trace sink got its own message only");
    let t = &traced[0];
    assert_eq!((t.level, t.target), (Level::DEBUG, TRACE_TARGET));
    assert_eq!(
        t.message,
        "sent REGISTER sip:pbx SIP/2.0 (udp to 127.0.0.1:5060)"
    );
    assert_eq!(field(t, "direction"), Some(&FieldValue::Str("sent".into())));
    assert_eq!(field(t, "transport"), Some(&FieldValue::Str("udp".into())));
    let Some(FieldValue::Str(text)) = field(t, "sip_message") else {
        panic!("no sip_message: {t:?}")
    };
    assert!(text.contains("CSeq: 2 REGISTER") && text.contains("Authorization: Digest"));
    assert!(!text.contains(RESPONSE), "{text}");
    assert!(
        debug.with("sent REGISTER").is_empty(),
        "no trace without sip_trace, even at DEBUG"
    );
}

#[test]
fn the_stacks_whole_message_logs_are_left_to_the_trace() {
    let (memory, attached) = sink(Level::TRACE, true);
    attached.span().in_scope(|| {
        tracing::info!(target: "rsipstack::transport::udp", raw_message = ?"REGISTER ...", "rawmsg udp send");
        tracing::info!(target: "rsipstack::transport::udp", "rawmsg other stack news");
    });
    assert!(memory.with("rawmsg udp send").is_empty());
    assert_eq!(memory.with("rawmsg other").len(), 1);
}

#[test]
fn a_detached_sink_gets_nothing_more() {
    let (memory, attached) = sink(Level::INFO, false);
    let span = attached.span();
    span.in_scope(|| tracing::info!("detach-before"));
    drop(attached);
    span.in_scope(|| tracing::info!("detach-after"));
    tracing::info!("detach-after unattributed");
    assert_eq!(memory.with("detach-before").len(), 1);
    assert!(memory.with("detach-after").is_empty());
}

#[test]
fn a_bad_level_names_the_field() {
    let e = parse_level("logLevel", "loud").unwrap_err().to_string();
    assert!(e.contains("logLevel") && e.contains("loud"), "{e}");
    assert_eq!(parse_level("logLevel", "DEBUG").unwrap(), Level::DEBUG);
}

#[test]
fn stderr_lines_carry_level_target_message_call_and_fields() {
    let record = Record {
        level: Level::WARN,
        target: "sipua::call",
        message: "BYE failed".into(),
        call_id: Some("out-1".into()),
        fields: vec![
            ("code", FieldValue::U64(408)),
            ("peer", FieldValue::Str("a b".into())),
        ],
    };
    assert_eq!(
        stderr::format_line(&record, "T"),
        "T  WARN sipua::call: BYE failed call_id=out-1 code=408 peer=\"a b\"\n"
    );
}

#[test]
fn escaped_raw_messages_are_masked() {
    let line = r#"INFO udp send raw_message="REGISTER sip:pbx SIP/2.0\r\nAuthorization: Digest username=\"7779\", response=\"0123456789abcdef\"\r\nCSeq: 2 REGISTER\r\n""#;
    let masked = mask_line(line);
    assert!(!masked.contains("0123456789abcdef"), "{masked}");
    assert!(masked.contains("CSeq: 2 REGISTER"));
}

#[test]
fn plain_lines_pass() {
    assert_eq!(mask_line("hello world\n"), "hello world\n");
}

#[test]
fn a_traced_message_of_no_call_task_gets_its_call_by_call_id_per_endpoint() {
    let (a, attached_a) = sink(Level::WARN, true);
    let (b, attached_b) = sink(Level::WARN, true);
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nCall-ID: tag-1@x\r\nCSeq: 1 INVITE\r\n\r\n";
    let received = || {
        let dir = crate::sip::trace::Direction::Received;
        crate::sip::trace::message(dir, "udp", "127.0.0.1:5060", ok.as_bytes())
    };
    // both ends of one call in one process: one Call-ID, a call id per endpoint
    let tag_a = attached_a.span().in_scope(|| tag_call("tag-1@x", "out-a"));
    let _tag_b = attached_b.span().in_scope(|| tag_call("tag-1@x", "in-b"));
    attached_a.span().in_scope(received);
    attached_b.span().in_scope(received);
    drop(tag_a);
    attached_a.span().in_scope(received);
    let ids = |m: &Memory| -> Vec<Option<String>> {
        m.with("received SIP/2.0 200 OK")
            .into_iter()
            .map(|r| r.call_id)
            .collect()
    };
    assert_eq!(ids(&a), [Some("out-a".to_string()), None]);
    assert_eq!(ids(&b), [Some("in-b".to_string())]);
}
