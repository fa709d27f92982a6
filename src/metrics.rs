//! The binding's metrics types: the engine's [`sipua::Metrics`] as a plain JS object (counts as
//! numbers, status codes as the keys of records), and back, so that the Prometheus text is
//! always written by the engine from the very object the application sees.

use napi::bindgen_prelude::{Error, Result, Status};
use napi_derive::napi;
use sipua::media::engine::RtpFigures;
use sipua::metrics::{CallGauges, PerDirection, RegistrationGauges, TransportFigures};
use std::collections::BTreeMap;

/// Accounts by registration state (accounts that register with a server).
#[napi(object)]
pub struct RegistrationCounts {
    pub registering: f64,
    pub registered: f64,
    pub unregistering: f64,
    pub unregistered: f64,
    pub failed: f64,
}

/// Live calls of one direction by state.
#[napi(object)]
pub struct CallStateCounts {
    pub calling: f64,
    pub incoming: f64,
    pub ringing: f64,
    pub early: f64,
    pub connecting: f64,
    pub confirmed: f64,
}

/// Live calls by direction, then state.
#[napi(object)]
pub struct CallsByDirection {
    pub outgoing: CallStateCounts,
    pub incoming: CallStateCounts,
}

/// One count per call direction.
#[napi(object)]
pub struct DirectionCounts {
    pub outgoing: f64,
    pub incoming: f64,
}

/// Calls that ended before they were established, by direction, then final status code
/// (`{ outgoing: { '486': 1 } }`).
#[napi(object)]
pub struct CallFailures {
    pub outgoing: BTreeMap<String, f64>,
    pub incoming: BTreeMap<String, f64>,
}

/// RTP over every call: counters over live and ended sessions, gauges over live ones.
#[napi(object)]
pub struct RtpMetrics {
    /// RTP sessions running (answered calls).
    pub sessions: f64,
    pub packets_sent: f64,
    pub packets_received: f64,
    pub bytes_sent: f64,
    pub bytes_received: f64,
    /// Packets of the peers' streams that never arrived (RFC 3550 cumulative loss).
    pub packets_lost: f64,
    /// Datagrams not used (strangers, wrong payload type, late, duplicate) or not sent.
    pub packets_dropped: f64,
    /// The highest interarrival jitter among the running sessions, ms.
    pub jitter_max_ms: f64,
    /// The mean interarrival jitter of the running sessions that receive packets, ms.
    pub jitter_mean_ms: f64,
    /// Sessions that ended.
    pub ended_sessions: f64,
    /// The sum of each ended session's jitter at its end, ms.
    pub ended_jitter_ms_sum: f64,
}

/// The SIP transports.
#[napi(object)]
pub struct TransportMetrics {
    /// Stream connections (TCP, TLS, WS, WSS; dialled or accepted) open now.
    pub connections: f64,
    /// Stream connections opened.
    pub connects: f64,
    /// Stream connections closed.
    pub disconnects: f64,
    /// Malformed SIP messages dropped.
    pub malformed_messages: f64,
    /// 400 answers sent to malformed requests.
    pub bad_requests_sent: f64,
}

/// Everything the service counts, at one moment (`service.metrics()`).
#[napi(object)]
pub struct SipMetrics {
    /// Whether the endpoint runs (false before `start()` and after `stop()`).
    pub running: bool,
    /// Accounts by registration state (gauges).
    pub registrations: RegistrationCounts,
    /// REGISTERs that failed, by final status code.
    pub registration_failures: BTreeMap<String, f64>,
    /// Live calls by direction and state (gauges).
    pub calls: CallsByDirection,
    /// Calls placed, and calls offered (refused ones included).
    pub call_attempts: DirectionCounts,
    /// Calls that reached `confirmed`.
    pub calls_established: DirectionCounts,
    /// Calls that ended before they were established, by final status code.
    pub call_failures: CallFailures,
    /// SIP transactions running (gauge).
    pub transactions: f64,
    /// SIP dialogs held, early ones included (gauge).
    pub dialogs: f64,
    /// Tasks alive on the runtime the service runs on, shared by the process (gauge).
    pub tasks_alive: f64,
    pub rtp: RtpMetrics,
    pub transport: TransportMetrics,
    /// Errors thrown by the application's logger (caught and dropped).
    pub logger_errors: f64,
    /// Log records dropped because the logger fell behind (4096 records queued).
    pub log_records_dropped: f64,
}

fn by_code(counts: &BTreeMap<u16, u64>) -> BTreeMap<String, f64> {
    counts
        .iter()
        .map(|(code, n)| (code.to_string(), *n as f64))
        .collect()
}

fn codes(field: &str, counts: BTreeMap<String, f64>) -> Result<BTreeMap<u16, u64>> {
    counts
        .into_iter()
        .map(|(code, n)| match code.parse::<u16>() {
            Ok(c) => Ok((c, count(n))),
            Err(_) => Err(Error::new(
                Status::InvalidArg,
                format!("{field}: keys are SIP status codes, got {code:?}"),
            )),
        })
        .collect()
}

/// A JS number as a count (negative and NaN read as 0).
fn count(n: f64) -> u64 {
    n as u64
}

impl From<sipua::Metrics> for SipMetrics {
    fn from(m: sipua::Metrics) -> Self {
        let r = &m.registrations;
        let calls = |c: &CallGauges| CallStateCounts {
            calling: c.calling as f64,
            incoming: c.incoming as f64,
            ringing: c.ringing as f64,
            early: c.early as f64,
            connecting: c.connecting as f64,
            confirmed: c.confirmed as f64,
        };
        let directions = |d: &PerDirection<u64>| DirectionCounts {
            outgoing: d.outgoing as f64,
            incoming: d.incoming as f64,
        };
        let (rtp, t) = (&m.rtp, &m.transport);
        Self {
            running: m.running,
            registrations: RegistrationCounts {
                registering: r.registering as f64,
                registered: r.registered as f64,
                unregistering: r.unregistering as f64,
                unregistered: r.unregistered as f64,
                failed: r.failed as f64,
            },
            registration_failures: by_code(&m.registration_failures),
            calls: CallsByDirection {
                outgoing: calls(&m.calls.outgoing),
                incoming: calls(&m.calls.incoming),
            },
            call_attempts: directions(&m.call_attempts),
            calls_established: directions(&m.calls_established),
            call_failures: CallFailures {
                outgoing: by_code(&m.call_failures.outgoing),
                incoming: by_code(&m.call_failures.incoming),
            },
            transactions: m.transactions as f64,
            dialogs: m.dialogs as f64,
            tasks_alive: m.tasks_alive as f64,
            rtp: RtpMetrics {
                sessions: rtp.sessions as f64,
                packets_sent: rtp.packets_sent as f64,
                packets_received: rtp.packets_received as f64,
                bytes_sent: rtp.bytes_sent as f64,
                bytes_received: rtp.bytes_received as f64,
                packets_lost: rtp.packets_lost as f64,
                packets_dropped: rtp.packets_dropped as f64,
                jitter_max_ms: rtp.jitter_max_ms,
                jitter_mean_ms: rtp.jitter_mean_ms,
                ended_sessions: rtp.ended_sessions as f64,
                ended_jitter_ms_sum: rtp.ended_jitter_ms_sum,
            },
            transport: TransportMetrics {
                connections: t.connections as f64,
                connects: t.connects as f64,
                disconnects: t.disconnects as f64,
                malformed_messages: t.malformed_messages as f64,
                bad_requests_sent: t.bad_requests_sent as f64,
            },
            logger_errors: m.logger_errors as f64,
            log_records_dropped: m.log_records_dropped as f64,
        }
    }
}

impl TryFrom<SipMetrics> for sipua::Metrics {
    type Error = Error;

    fn try_from(m: SipMetrics) -> Result<Self> {
        let r = m.registrations;
        let calls = |c: CallStateCounts| CallGauges {
            calling: count(c.calling),
            incoming: count(c.incoming),
            ringing: count(c.ringing),
            early: count(c.early),
            connecting: count(c.connecting),
            confirmed: count(c.confirmed),
        };
        let directions = |d: DirectionCounts| PerDirection {
            outgoing: count(d.outgoing),
            incoming: count(d.incoming),
        };
        let (rtp, t) = (m.rtp, m.transport);
        Ok(Self {
            running: m.running,
            registrations: RegistrationGauges {
                registering: count(r.registering),
                registered: count(r.registered),
                unregistering: count(r.unregistering),
                unregistered: count(r.unregistered),
                failed: count(r.failed),
            },
            registration_failures: codes("registrationFailures", m.registration_failures)?,
            calls: PerDirection {
                outgoing: calls(m.calls.outgoing),
                incoming: calls(m.calls.incoming),
            },
            call_attempts: directions(m.call_attempts),
            calls_established: directions(m.calls_established),
            call_failures: PerDirection {
                outgoing: codes("callFailures.outgoing", m.call_failures.outgoing)?,
                incoming: codes("callFailures.incoming", m.call_failures.incoming)?,
            },
            transactions: count(m.transactions),
            dialogs: count(m.dialogs),
            tasks_alive: count(m.tasks_alive),
            rtp: RtpFigures {
                sessions: count(rtp.sessions),
                packets_sent: count(rtp.packets_sent),
                packets_received: count(rtp.packets_received),
                bytes_sent: count(rtp.bytes_sent),
                bytes_received: count(rtp.bytes_received),
                packets_lost: count(rtp.packets_lost),
                packets_dropped: count(rtp.packets_dropped),
                jitter_max_ms: rtp.jitter_max_ms,
                jitter_mean_ms: rtp.jitter_mean_ms,
                ended_sessions: count(rtp.ended_sessions),
                ended_jitter_ms_sum: rtp.ended_jitter_ms_sum,
            },
            transport: TransportFigures {
                connections: count(t.connections),
                connects: count(t.connects),
                disconnects: count(t.disconnects),
                malformed_messages: count(t.malformed_messages),
                bad_requests_sent: count(t.bad_requests_sent),
            },
            logger_errors: count(m.logger_errors),
            log_records_dropped: count(m.log_records_dropped),
        })
    }
}
