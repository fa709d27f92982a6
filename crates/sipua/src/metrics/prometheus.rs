//! The Prometheus text exposition format (version 0.0.4) of a [`Metrics`] snapshot: per
//! family a `# HELP` and a `# TYPE` line, then its samples `name{label="value"} number`.
//! Names carry the `sip_native_` prefix and base units (seconds); counters end in `_total`.
//! A labelled family with no sample yet (no call has failed) is left out, as client
//! libraries do, rather than written as a bare header.

use super::Metrics;
use std::fmt::Write;

/// The metric types we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// One line's number: counts are exact integers, the rest floats.
#[derive(Debug, Clone, Copy)]
enum Value {
    Count(u64),
    Float(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Count(n) => write!(f, "{n}"),
            // Rust writes `inf` and `NaN`; the format wants Go's spelling.
            Value::Float(x) if x.is_nan() => f.write_str("NaN"),
            Value::Float(x) if x == f64::INFINITY => f.write_str("+Inf"),
            Value::Float(x) if x == f64::NEG_INFINITY => f.write_str("-Inf"),
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

struct Sample {
    /// Appended to the family's name: `""`, or `_sum` / `_count` of a summary.
    suffix: &'static str,
    labels: Vec<(&'static str, String)>,
    value: Value,
}

struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    samples: Vec<Sample>,
}

impl Family {
    fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    /// A family of one unlabelled sample.
    fn single(name: &'static str, kind: Kind, help: &'static str, value: Value) -> Self {
        Self::new(name, kind, help).with(&[], value)
    }

    fn with(mut self, labels: &[(&'static str, &str)], value: Value) -> Self {
        self.samples.push(Sample {
            suffix: "",
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        });
        self
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind.as_str());
        for s in &self.samples {
            out.push_str(self.name);
            out.push_str(s.suffix);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", s.value);
        }
    }
}

/// HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values: backslash, double quote and line feed escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(ms: f64) -> Value {
    Value::Float(ms / 1000.0)
}

impl Metrics {
    /// The snapshot in the Prometheus text exposition format 0.0.4 (serve it with
    /// `Content-Type: text/plain; version=0.0.4`).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        for family in self.families() {
            family.write(&mut out);
        }
        out
    }

    fn families(&self) -> Vec<Family> {
        use Kind::{Counter, Gauge, Summary};
        use Value::Count;
        let mut registrations = Family::new(
            "sip_native_registrations",
            Gauge,
            "Accounts by registration state.",
        );
        for (state, n) in self.registrations.iter() {
            registrations = registrations.with(&[("state", state)], Count(n));
        }
        let mut registration_failures = Family::new(
            "sip_native_registration_failures_total",
            Counter,
            "REGISTER attempts that failed, by final status code (408: no answer, 503: unreachable).",
        );
        for (code, n) in &self.registration_failures {
            registration_failures =
                registration_failures.with(&[("code", &code.to_string())], Count(*n));
        }
        let mut calls = Family::new(
            "sip_native_calls",
            Gauge,
            "Calls not yet disconnected, by direction and state.",
        );
        for (direction, gauges) in self.calls.iter() {
            for (state, n) in gauges.iter() {
                calls = calls.with(&[("direction", direction), ("state", state)], Count(n));
            }
        }
        let per_direction = |name, help, figures: &super::PerDirection<u64>| {
            figures
                .iter()
                .into_iter()
                .fold(Family::new(name, Counter, help), |f, (direction, n)| {
                    f.with(&[("direction", direction)], Count(*n))
                })
        };
        let mut call_failures = Family::new(
            "sip_native_call_failures_total",
            Counter,
            "Calls that ended before they were established, by direction and final status code (486 busy, 487 cancelled, 408 no answer, ...).",
        );
        for (direction, codes) in self.call_failures.iter() {
            for (code, n) in codes {
                call_failures = call_failures.with(
                    &[("direction", direction), ("code", &code.to_string())],
                    Count(*n),
                );
            }
        }
        let rtp = &self.rtp;
        let mut jitter = Family::new(
            "sip_native_rtp_call_jitter_seconds",
            Summary,
            "Interarrival jitter (RFC 3550) of each ended call's received RTP stream, at its end.",
        );
        jitter.samples = vec![
            Sample {
                suffix: "_sum",
                labels: Vec::new(),
                value: seconds(rtp.ended_jitter_ms_sum),
            },
            Sample {
                suffix: "_count",
                labels: Vec::new(),
                value: Count(rtp.ended_sessions),
            },
        ];
        let t = &self.transport;
        vec![
            Family::single(
                "sip_native_running",
                Gauge,
                "1 while the endpoint runs, 0 before start() and after stop().",
                Count(u64::from(self.running)),
            ),
            registrations,
            registration_failures,
            calls,
            per_direction(
                "sip_native_call_attempts_total",
                "Calls placed (outgoing INVITEs) and calls offered (incoming INVITEs, refused ones included).",
                &self.call_attempts,
            ),
            per_direction(
                "sip_native_calls_established_total",
                "Calls that reached the confirmed state.",
                &self.calls_established,
            ),
            call_failures,
            Family::single(
                "sip_native_transactions",
                Gauge,
                "SIP transactions running.",
                Count(self.transactions),
            ),
            Family::single(
                "sip_native_dialogs",
                Gauge,
                "SIP dialogs held, early ones included.",
                Count(self.dialogs),
            ),
            Family::single(
                "sip_native_tasks_alive",
                Gauge,
                "Tasks alive on the runtime the endpoint runs on (shared by the process).",
                Count(self.tasks_alive),
            ),
            Family::single(
                "sip_native_rtp_sessions",
                Gauge,
                "RTP sessions running (answered calls).",
                Count(rtp.sessions),
            ),
            Family::single(
                "sip_native_rtp_packets_sent_total",
                Counter,
                "RTP packets sent.",
                Count(rtp.packets_sent),
            ),
            Family::single(
                "sip_native_rtp_packets_received_total",
                Counter,
                "RTP packets received.",
                Count(rtp.packets_received),
            ),
            Family::single(
                "sip_native_rtp_bytes_sent_total",
                Counter,
                "RTP payload bytes sent.",
                Count(rtp.bytes_sent),
            ),
            Family::single(
                "sip_native_rtp_bytes_received_total",
                Counter,
                "RTP payload bytes received.",
                Count(rtp.bytes_received),
            ),
            Family::single(
                "sip_native_rtp_packets_lost_total",
                Counter,
                "RTP packets of the peers' streams that never arrived (RFC 3550 cumulative loss).",
                Count(rtp.packets_lost),
            ),
            Family::single(
                "sip_native_rtp_packets_dropped_total",
                Counter,
                "RTP datagrams not used (strangers, wrong payload type, late, duplicate) or not sent.",
                Count(rtp.packets_dropped),
            ),
            Family::single(
                "sip_native_rtp_jitter_max_seconds",
                Gauge,
                "The highest interarrival jitter among the running RTP sessions.",
                seconds(rtp.jitter_max_ms),
            ),
            Family::single(
                "sip_native_rtp_jitter_mean_seconds",
                Gauge,
                "The mean interarrival jitter of the running RTP sessions that receive packets.",
                seconds(rtp.jitter_mean_ms),
            ),
            jitter,
            Family::single(
                "sip_native_transport_connections",
                Gauge,
                "SIP stream connections (TCP, TLS, WS, WSS; dialled or accepted) open.",
                Count(t.connections),
            ),
            Family::single(
                "sip_native_transport_connects_total",
                Counter,
                "SIP stream connections opened.",
                Count(t.connects),
            ),
            Family::single(
                "sip_native_transport_disconnects_total",
                Counter,
                "SIP stream connections closed, by either side.",
                Count(t.disconnects),
            ),
            Family::single(
                "sip_native_malformed_messages_total",
                Counter,
                "Malformed SIP messages dropped (UDP datagrams, stream and WebSocket messages, unframeable streams).",
                Count(t.malformed_messages),
            ),
            Family::single(
                "sip_native_bad_requests_sent_total",
                Counter,
                "400 Bad Request answers sent to malformed requests.",
                Count(t.bad_requests_sent),
            ),
            Family::single(
                "sip_native_logger_errors_total",
                Counter,
                "Errors thrown by the application's logger (caught and dropped).",
                Count(self.logger_errors),
            ),
            Family::single(
                "sip_native_log_records_dropped_total",
                Counter,
                "Log records dropped because the application's logger fell behind.",
                Count(self.log_records_dropped),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CallState, RegistrationState};
    use std::collections::{BTreeMap, HashSet};

    /// A strict reading of one exposition: every line a HELP, a TYPE or a sample of the family
    /// they announced, names and label names of the allowed characters, label values quoted
    /// with only the three escapes, numbers Go's ParseFloat would take. Returns the samples as
    /// `(name{labels}, value)`.
    fn parse_strictly(text: &str) -> Vec<(String, f64)> {
        assert!(text.ends_with('\n'), "the exposition ends with a line feed");
        let name_ok = |n: &str| {
            !n.is_empty()
                && !n.starts_with(|c: char| c.is_ascii_digit())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        let mut seen = HashSet::new();
        let mut current: Option<(String, String)> = None;
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP has a text");
                assert!(name_ok(name) && !help.is_empty(), "{line}");
                assert!(seen.insert(name.to_string()), "family {name} written twice");
                assert!(!help.replace("\\\\", "").replace("\\n", "").contains('\\'));
                current = Some((name.to_string(), String::new()));
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
                let family = current.as_mut().expect("TYPE after its HELP");
                assert_eq!(family.0, name, "TYPE of the family HELP announced");
                assert!(["counter", "gauge", "summary"].contains(&kind), "{line}");
                assert!(kind != "counter" || name.ends_with("_total"), "{line}");
                family.1 = kind.to_string();
                continue;
            }
            assert!(
                !line.starts_with('#'),
                "only HELP and TYPE comments: {line}"
            );
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').expect("labels closed")),
                None => (series, ""),
            };
            let (family, kind) = current.as_ref().expect("a sample after its TYPE");
            let base = match kind.as_str() {
                "summary" => name
                    .strip_suffix("_sum")
                    .or_else(|| name.strip_suffix("_count"))
                    .expect("a summary has _sum and _count samples"),
                _ => name,
            };
            assert_eq!(base, family, "sample {name} in family {family}");
            let mut rest = labels;
            while !rest.is_empty() {
                let (label, after) = rest.split_once("=\"").expect("label=\"value\"");
                assert!(name_ok(label) && !label.contains(':'), "label name {label}");
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("label value closed") {
                        (_, '\\') => {
                            let (_, c) = chars.next().expect("escape completed");
                            assert!(['\\', '"', 'n'].contains(&c), "escape \\{c}");
                        }
                        (i, '"') => break i,
                        (_, '\n') => panic!("raw line feed in a label value"),
                        _ => {}
                    }
                };
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
            let number = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => {
                    assert!(!v.contains("inf") && !v.contains("nan"), "{line}");
                    v.parse().unwrap_or_else(|_| panic!("a number: {line}"))
                }
            };
            samples.push((series.to_string(), number));
        }
        samples
    }

    fn value(samples: &[(String, f64)], series: &str) -> f64 {
        samples
            .iter()
            .find(|(s, _)| s == series)
            .unwrap_or_else(|| panic!("{series} missing"))
            .1
    }

    fn busy_endpoint() -> Metrics {
        let mut m = Metrics {
            running: true,
            transactions: 3,
            dialogs: 2,
            tasks_alive: 40,
            ..Metrics::default()
        };
        m.registrations.count(RegistrationState::Registered);
        m.registrations.count(RegistrationState::Failed);
        m.registration_failures.insert(403, 2);
        m.calls.outgoing.count(CallState::Confirmed);
        m.calls.incoming.count(CallState::Incoming);
        m.calls.incoming.count(CallState::Disconnected);
        m.call_attempts = super::super::PerDirection {
            outgoing: 5,
            incoming: 2,
        };
        m.calls_established.outgoing = 3;
        m.call_failures.outgoing = BTreeMap::from([(486, 1), (408, 1)]);
        m.rtp.packets_sent = 250;
        m.rtp.jitter_max_ms = 12.5;
        m.rtp.ended_sessions = 2;
        m.rtp.ended_jitter_ms_sum = 3.0;
        m.transport.connections = 1;
        m.logger_errors = 4;
        m.log_records_dropped = 7;
        m
    }

    #[test]
    fn a_snapshot_is_valid_exposition_with_its_figures() {
        let text = busy_endpoint().to_prometheus();
        let samples = parse_strictly(&text);
        for (series, n) in [
            ("sip_native_running", 1.0),
            ("sip_native_registrations{state=\"registered\"}", 1.0),
            ("sip_native_registrations{state=\"failed\"}", 1.0),
            ("sip_native_registrations{state=\"registering\"}", 0.0),
            ("sip_native_registration_failures_total{code=\"403\"}", 2.0),
            (
                "sip_native_calls{direction=\"outgoing\",state=\"confirmed\"}",
                1.0,
            ),
            (
                "sip_native_calls{direction=\"incoming\",state=\"incoming\"}",
                1.0,
            ),
            (
                "sip_native_call_attempts_total{direction=\"outgoing\"}",
                5.0,
            ),
            (
                "sip_native_calls_established_total{direction=\"incoming\"}",
                0.0,
            ),
            (
                "sip_native_call_failures_total{direction=\"outgoing\",code=\"486\"}",
                1.0,
            ),
            ("sip_native_transactions", 3.0),
            ("sip_native_dialogs", 2.0),
            ("sip_native_tasks_alive", 40.0),
            ("sip_native_rtp_packets_sent_total", 250.0),
            ("sip_native_rtp_jitter_max_seconds", 0.0125),
            ("sip_native_rtp_call_jitter_seconds_sum", 0.003),
            ("sip_native_rtp_call_jitter_seconds_count", 2.0),
            ("sip_native_transport_connections", 1.0),
            ("sip_native_logger_errors_total", 4.0),
            ("sip_native_log_records_dropped_total", 7.0),
        ] {
            assert_eq!(value(&samples, series), n, "{series}\n{text}");
        }
        // 6 live states for each direction, disconnected calls not among them
        assert_eq!(
            samples
                .iter()
                .filter(|(s, _)| s.starts_with("sip_native_calls{"))
                .count(),
            12
        );
        assert!(!text.contains("state=\"disconnected\""));
    }

    #[test]
    fn families_without_samples_are_left_out() {
        let text = Metrics::default().to_prometheus();
        parse_strictly(&text);
        assert!(!text.contains("sip_native_call_failures_total"), "{text}");
        assert!(!text.contains("sip_native_registration_failures_total"));
        assert!(text.contains("sip_native_running 0\n"));
        assert!(text.contains("# TYPE sip_native_rtp_packets_lost_total counter\n"));
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = String::new();
        Family::new("x_total", Kind::Counter, "a \\ b\nc")
            .with(&[("v", "say \"hi\"\\\n")], Value::Count(1))
            .write(&mut out);
        assert_eq!(
            out,
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{v=\"say \\\"hi\\\"\\\\\\n\"} 1\n"
        );
        parse_strictly(&out);
    }

    #[test]
    fn floats_are_written_as_the_format_spells_them() {
        let spelled = |x: f64| Value::Float(x).to_string();
        assert_eq!(spelled(f64::NAN), "NaN");
        assert_eq!(spelled(f64::INFINITY), "+Inf");
        assert_eq!(spelled(f64::NEG_INFINITY), "-Inf");
        assert_eq!(spelled(0.0125), "0.0125");
        assert_eq!(spelled(2.0), "2");
        assert_eq!(Value::Count(u64::MAX).to_string(), "18446744073709551615");
    }

    #[test]
    fn a_stopped_endpoint_keeps_its_counters_and_zeroes_its_gauges() {
        let m = busy_endpoint().stopped();
        assert!(!m.running);
        assert_eq!(m.registrations.registered, 0);
        assert_eq!(m.calls.outgoing.confirmed, 0);
        assert_eq!((m.transactions, m.transport.connections), (0, 0));
        assert_eq!(m.rtp.jitter_max_ms, 0.0);
        assert_eq!(m.call_attempts.outgoing, 5);
        assert_eq!(m.call_failures.outgoing.get(&486), Some(&1));
        assert_eq!(m.rtp.packets_sent, 250);
        assert_eq!(m.logger_errors, 4);
    }
}
