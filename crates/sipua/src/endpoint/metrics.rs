//! The endpoint's metrics snapshot: gauges read from the tables that hold them (accounts,
//! calls, the stack's transactions, the media engine's sessions, open connections), counters
//! from where the layers below bump them.

use super::Endpoint;
use crate::metrics::{Metrics, TransportFigures};
use std::sync::atomic::Ordering;

impl Endpoint {
    /// Everything the endpoint counts, now. After [`Endpoint::stop`] the counters keep their
    /// last values and the gauges are zero.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics {
            running: true,
            transactions: self.ctx.sip.get_stats().running_transactions as u64,
            dialogs: self.ctx.dialogs.len() as u64,
            tasks_alive: self.runtime.metrics().num_alive_tasks() as u64,
            rtp: self.ctx.media.rtp_figures(),
            ..Metrics::default()
        };
        if self.ctx.config.server.is_some() {
            self.accounts
                .list()
                .iter()
                .filter(|acc| acc.config.register.unwrap_or(true))
                .for_each(|acc| m.registrations.count(acc.registration_state()));
        }
        for call in self.calls.live() {
            let gauges = match call.direction {
                crate::event::Direction::Outgoing => &mut m.calls.outgoing,
                crate::event::Direction::Incoming => &mut m.calls.incoming,
            };
            gauges.count(call.state());
        }
        self.ctx.signalling.read_into(&mut m);
        let c = &self.ctx.counters;
        let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        m.transport = TransportFigures {
            connections: load(&c.open_streams),
            connects: load(&c.streams_opened),
            disconnects: load(&c.streams_closed),
            malformed_messages: load(&c.malformed),
            bad_requests_sent: load(&c.bad_request_sent),
        };
        if self.stopped.load(Ordering::SeqCst) {
            m = m.stopped();
        }
        m
    }
}
