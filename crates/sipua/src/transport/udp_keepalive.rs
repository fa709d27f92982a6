//! When to send the UDP keep-alive (a CRLF datagram, RFC 5626 §3.5.1's ping, which servers
//! ignore or answer with CRLF): every interval while registered, so the NAT binding of our SIP
//! socket outlives the gaps between REGISTER refreshes (Linux keeps an idle UDP mapping 30 s to
//! 180 s, home routers often less). Pure: time is passed in.

use std::time::{Duration, Instant};

/// The keep-alive datagram.
pub(crate) const PING: &[u8] = b"\r\n\r\n";

/// The keep-alive timer of one registration.
#[derive(Debug)]
pub(crate) struct KeepAliveSchedule {
    interval: Duration,
    next: Instant,
}

impl KeepAliveSchedule {
    /// The first keep-alive one interval after `now` (the REGISTER just sent kept the binding).
    pub(crate) fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            next: now + interval,
        }
    }

    /// When the next keep-alive is due.
    pub(crate) fn next(&self) -> Instant {
        self.next
    }

    /// Whether one is due at `now`; if so the next one is one interval after `now` (ticks
    /// missed while the process was suspended are not sent in a burst).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.interval;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interval_and_no_burst_after_a_stall() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut k = KeepAliveSchedule::new(s(15), t0);
        assert_eq!(k.next(), t0 + s(15));
        assert!(!k.due(t0));
        assert!(!k.due(t0 + s(14)));
        assert!(k.due(t0 + s(15)));
        assert!(!k.due(t0 + s(16)), "one per interval");
        assert!(k.due(t0 + s(30)));
        // stalled for two minutes: one ping, then the rhythm again
        assert!(k.due(t0 + s(150)));
        assert!(!k.due(t0 + s(151)));
        assert_eq!(k.next(), t0 + s(165));
    }
}
