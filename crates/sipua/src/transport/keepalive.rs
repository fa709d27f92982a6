//! CRLF keep-alive of a stream flow (RFC 5626 §4.4.1), sans-IO: the connection task asks what
//! to do at a given instant and reports the pongs it reads.
//!
//! A ping is `CRLF CRLF`, its pong a lone `CRLF`. A peer that never answered a ping may simply
//! not implement them (RFC 5626 lets the client ping only servers that do), so a missing pong
//! is taken as a dead flow only once the peer has shown that it answers.

use std::time::Duration;
use tokio::time::Instant;

/// RFC 5626 §4.4.1: a pong later than this means the flow has failed.
const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// What the connection task must do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeepAliveAction {
    /// Nothing until this instant.
    WaitUntil(Instant),
    /// Write a ping now.
    SendPing,
    /// The pong did not come: close the flow.
    Dead,
}

/// The keep-alive state of one flow.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    interval: Duration,
    pong_timeout: Duration,
    next_ping: Instant,
    /// When the unanswered ping went out.
    waiting_since: Option<Instant>,
    /// Whether this peer has answered a ping on this flow.
    answers: bool,
}

impl KeepAlive {
    /// Pings every `interval` from `now`; the pong timeout is 10 s, or the interval if shorter.
    pub(crate) fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            pong_timeout: PONG_TIMEOUT.min(interval),
            next_ping: now + interval,
            waiting_since: None,
            answers: false,
        }
    }

    /// A pong arrived.
    pub(crate) fn on_pong(&mut self) {
        self.waiting_since = None;
        self.answers = true;
    }

    /// What to do at `now`; call again at the instant of [`KeepAliveAction::WaitUntil`] and
    /// after every [`KeepAliveAction::SendPing`].
    pub(crate) fn poll(&mut self, now: Instant) -> KeepAliveAction {
        if let Some(sent) = self.waiting_since {
            let deadline = sent + self.pong_timeout;
            if now >= deadline {
                if self.answers {
                    return KeepAliveAction::Dead;
                }
                // Never answered: a peer without pongs, not a dead one.
                self.waiting_since = None;
            } else if deadline < self.next_ping {
                return KeepAliveAction::WaitUntil(deadline);
            }
        }
        if now >= self.next_ping {
            self.next_ping = now + self.interval;
            self.waiting_since = Some(now);
            return KeepAliveAction::SendPing;
        }
        KeepAliveAction::WaitUntil(self.next_ping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_on_the_interval_and_dies_on_a_missing_pong_once_the_peer_answers() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(90 * S, t0);
        assert_eq!(ka.poll(t0), KeepAliveAction::WaitUntil(t0 + 90 * S));
        assert_eq!(ka.poll(t0 + 90 * S), KeepAliveAction::SendPing);
        assert_eq!(
            ka.poll(t0 + 90 * S),
            KeepAliveAction::WaitUntil(t0 + 100 * S)
        );
        ka.on_pong();
        assert_eq!(
            ka.poll(t0 + 91 * S),
            KeepAliveAction::WaitUntil(t0 + 180 * S)
        );
        assert_eq!(ka.poll(t0 + 180 * S), KeepAliveAction::SendPing);
        assert_eq!(
            ka.poll(t0 + 189 * S),
            KeepAliveAction::WaitUntil(t0 + 190 * S)
        );
        assert_eq!(ka.poll(t0 + 190 * S), KeepAliveAction::Dead);
    }

    #[test]
    fn a_peer_that_never_answers_is_not_declared_dead() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(2 * S, t0);
        for round in 1..5u32 {
            assert_eq!(ka.poll(t0 + 2 * round * S), KeepAliveAction::SendPing);
        }
        assert_eq!(ka.poll(t0 + 9 * S), KeepAliveAction::WaitUntil(t0 + 10 * S));
    }

    #[test]
    fn short_intervals_shorten_the_pong_timeout() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(3 * S, t0);
        ka.on_pong();
        assert_eq!(ka.poll(t0 + 3 * S), KeepAliveAction::SendPing);
        assert_eq!(ka.poll(t0 + 4 * S), KeepAliveAction::WaitUntil(t0 + 6 * S));
        assert_eq!(ka.poll(t0 + 6 * S), KeepAliveAction::Dead);
    }
}
