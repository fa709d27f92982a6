//! Metrics: the counters that the call and account layers bump as things happen, and the
//! snapshot of everything an endpoint counts ([`Metrics`]), with its Prometheus text
//! ([`Metrics::to_prometheus`]).
//!
//! Cheap by construction: calls and registrations bump atomics (a mutex only for the counts by
//! status code, once per failed call or REGISTER); gauges (calls and accounts by state, open
//! connections, live RTP sessions) are read from the tables that hold them when a snapshot is
//! taken; RTP counters come from the media engine, which folds a session's figures into its
//! totals when the session ends.

mod prometheus;

use crate::event::{CallState, Direction, RegistrationState};
use crate::media::engine::RtpFigures;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One figure for each call direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerDirection<T> {
    /// Calls we placed.
    pub outgoing: T,
    /// Calls the peers placed.
    pub incoming: T,
}

impl<T> PerDirection<T> {
    fn get(&self, direction: Direction) -> &T {
        match direction {
            Direction::Outgoing => &self.outgoing,
            Direction::Incoming => &self.incoming,
        }
    }

    fn get_mut(&mut self, direction: Direction) -> &mut T {
        match direction {
            Direction::Outgoing => &mut self.outgoing,
            Direction::Incoming => &mut self.incoming,
        }
    }

    /// `(label, figure)` for both directions, outgoing first.
    pub fn iter(&self) -> [(&'static str, &T); 2] {
        [("outgoing", &self.outgoing), ("incoming", &self.incoming)]
    }
}

/// Accounts by registration state (the accounts that register).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrationGauges {
    /// A REGISTER is on its way.
    pub registering: u64,
    /// The registrar holds the binding.
    pub registered: u64,
    /// The un-REGISTER of `stop()` is on its way.
    pub unregistering: u64,
    /// Not registered (not yet, or no more).
    pub unregistered: u64,
    /// Refused or unanswered; a retry follows.
    pub failed: u64,
}

impl RegistrationGauges {
    /// Counts one account in `state`.
    pub fn count(&mut self, state: RegistrationState) {
        *match state {
            RegistrationState::Registering => &mut self.registering,
            RegistrationState::Registered => &mut self.registered,
            RegistrationState::Unregistering => &mut self.unregistering,
            RegistrationState::Unregistered => &mut self.unregistered,
            RegistrationState::Failed => &mut self.failed,
        } += 1;
    }

    /// `(state, accounts)` for every state.
    pub fn iter(&self) -> [(&'static str, u64); 5] {
        [
            (RegistrationState::Registering.as_str(), self.registering),
            (RegistrationState::Registered.as_str(), self.registered),
            (
                RegistrationState::Unregistering.as_str(),
                self.unregistering,
            ),
            (RegistrationState::Unregistered.as_str(), self.unregistered),
            (RegistrationState::Failed.as_str(), self.failed),
        ]
    }
}

/// Live calls of one direction by state (disconnected calls are not live).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallGauges {
    /// INVITE sent, no answer yet.
    pub calling: u64,
    /// Offered to the application, ringing.
    pub incoming: u64,
    /// 180 received.
    pub ringing: u64,
    /// 183 received (early media).
    pub early: u64,
    /// Answered by us, waiting for the ACK.
    pub connecting: u64,
    /// Established.
    pub confirmed: u64,
}

impl CallGauges {
    /// Counts one call in `state` (a disconnected one is not counted).
    pub fn count(&mut self, state: CallState) {
        let slot = match state {
            CallState::Calling => &mut self.calling,
            CallState::Incoming => &mut self.incoming,
            CallState::Ringing => &mut self.ringing,
            CallState::Early => &mut self.early,
            CallState::Connecting => &mut self.connecting,
            CallState::Confirmed => &mut self.confirmed,
            CallState::Disconnected => return,
        };
        *slot += 1;
    }

    /// `(state, calls)` for every live state.
    pub fn iter(&self) -> [(&'static str, u64); 6] {
        [
            (CallState::Calling.as_str(), self.calling),
            (CallState::Incoming.as_str(), self.incoming),
            (CallState::Ringing.as_str(), self.ringing),
            (CallState::Early.as_str(), self.early),
            (CallState::Connecting.as_str(), self.connecting),
            (CallState::Confirmed.as_str(), self.confirmed),
        ]
    }
}

/// The SIP transports' figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportFigures {
    /// Stream connections (TCP, TLS, WS, WSS; dialled or accepted) open now.
    pub connections: u64,
    /// Stream connections opened.
    pub connects: u64,
    /// Stream connections closed (by either side, or by `stop()`).
    pub disconnects: u64,
    /// Malformed messages dropped: UDP datagrams, stream and WebSocket messages, unframeable
    /// streams.
    pub malformed_messages: u64,
    /// 400 answers sent to malformed requests.
    pub bad_requests_sent: u64,
}

/// Everything an endpoint counts, at one moment. Counters only grow while the endpoint runs;
/// a new endpoint starts from zero (a counter reset, as after a process restart).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Whether the endpoint runs (false before `start()` and after `stop()`).
    pub running: bool,
    /// Accounts by registration state (gauges).
    pub registrations: RegistrationGauges,
    /// REGISTERs that failed, by final status (408 when unanswered, 503 when unreachable).
    pub registration_failures: BTreeMap<u16, u64>,
    /// Live calls by direction and state (gauges).
    pub calls: PerDirection<CallGauges>,
    /// Calls placed (INVITEs sent) and calls offered to us (INVITEs received, refused ones too).
    pub call_attempts: PerDirection<u64>,
    /// Calls that reached `confirmed`.
    pub calls_established: PerDirection<u64>,
    /// Calls that ended without being established, by final status (486, 408, 487...).
    pub call_failures: PerDirection<BTreeMap<u16, u64>>,
    /// SIP transactions running now (gauge).
    pub transactions: u64,
    /// SIP dialogs the stack holds now, early ones included (gauge).
    pub dialogs: u64,
    /// Tasks alive on the tokio runtime the endpoint runs on (gauge): the process's runtime,
    /// shared by every endpoint in it, so a leak of any of them shows here.
    pub tasks_alive: u64,
    /// RTP, over every call's session.
    pub rtp: RtpFigures,
    /// The SIP transports.
    pub transport: TransportFigures,
    /// Errors thrown by the application's logger (counted by the JS facade; 0 here).
    pub logger_errors: u64,
    /// Log records dropped because the logger fell behind (counted by the binding; 0 here).
    pub log_records_dropped: u64,
}

impl Metrics {
    /// The figures once the endpoint has stopped: counters as they ended, gauges at zero.
    pub(crate) fn stopped(self) -> Self {
        Self {
            running: false,
            registrations: RegistrationGauges::default(),
            calls: PerDirection::default(),
            transactions: 0,
            dialogs: 0,
            tasks_alive: 0,
            rtp: RtpFigures {
                sessions: 0,
                jitter_max_ms: 0.0,
                jitter_mean_ms: 0.0,
                ..self.rtp
            },
            transport: TransportFigures {
                connections: 0,
                ..self.transport
            },
            ..self
        }
    }
}

/// The calls' and registrations' counters of one endpoint, bumped by the call and account
/// layers where things happen.
#[derive(Debug, Default)]
pub(crate) struct SignallingCounters {
    call_attempts: PerDirection<AtomicU64>,
    calls_established: PerDirection<AtomicU64>,
    /// Behind a mutex: touched once per failed call, and status codes are few.
    call_failures: Mutex<PerDirection<BTreeMap<u16, u64>>>,
    registration_failures: Mutex<BTreeMap<u16, u64>>,
}

impl SignallingCounters {
    /// A call was placed, or an INVITE offered one to us.
    pub(crate) fn call_attempted(&self, direction: Direction) {
        self.call_attempts
            .get(direction)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A call reached `confirmed`.
    pub(crate) fn call_established(&self, direction: Direction) {
        self.calls_established
            .get(direction)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A call ended with `code` before it was established.
    pub(crate) fn call_failed(&self, direction: Direction, code: u16) {
        if let Ok(mut f) = self.call_failures.lock() {
            *f.get_mut(direction).entry(code).or_default() += 1;
        }
    }

    /// A REGISTER failed with `code`.
    pub(crate) fn registration_failed(&self, code: u16) {
        if let Ok(mut f) = self.registration_failures.lock() {
            *f.entry(code).or_default() += 1;
        }
    }

    /// Copies the counters into `m`.
    pub(crate) fn read_into(&self, m: &mut Metrics) {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        m.call_attempts = PerDirection {
            outgoing: load(&self.call_attempts.outgoing),
            incoming: load(&self.call_attempts.incoming),
        };
        m.calls_established = PerDirection {
            outgoing: load(&self.calls_established.outgoing),
            incoming: load(&self.calls_established.incoming),
        };
        if let Ok(f) = self.call_failures.lock() {
            m.call_failures = f.clone();
        }
        if let Ok(f) = self.registration_failures.lock() {
            m.registration_failures = f.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_by_direction_and_code() {
        let c = SignallingCounters::default();
        c.call_attempted(Direction::Outgoing);
        c.call_established(Direction::Outgoing);
        c.call_failed(Direction::Outgoing, 486);
        c.call_failed(Direction::Outgoing, 486);
        c.call_attempted(Direction::Incoming);
        c.call_failed(Direction::Incoming, 404);
        c.registration_failed(401);
        let mut m = Metrics::default();
        c.read_into(&mut m);
        assert_eq!((m.call_attempts.outgoing, m.call_attempts.incoming), (1, 1));
        assert_eq!(m.calls_established.outgoing, 1);
        assert_eq!(m.call_failures.outgoing, BTreeMap::from([(486, 2)]));
        assert_eq!(m.call_failures.incoming, BTreeMap::from([(404, 1)]));
        assert_eq!(m.registration_failures, BTreeMap::from([(401, 1)]));
    }
}
