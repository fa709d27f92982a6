//! Failover between the targets of one request (RFC 3263 §4.3): which outcomes move on to the
//! next target, how long a target waits when others are left, and the memory of bad targets,
//! tried last for a while. Pure: the caller passes the time in.
//!
//! PJSIP fails over only when a TCP/TLS connect fails and keeps no memory of failed servers
//! (its guide leaves the rest to the application). Desk phones (Snom's "dirty host" cache)
//! remember a failed host for the 503's Retry-After, else 5 minutes; so do we.

use super::resolve::Target;
use rsipstack::sip::Transport;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a target that failed is tried only after the others.
pub(crate) const BAD_FOR: Duration = Duration::from_secs(300);
/// The longest Retry-After of a 503 we honour for that memory.
const MAX_BAD_FOR: Duration = Duration::from_secs(3600);

/// How one attempt on one target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// A final response with this status.
    Response(u16),
    /// No final response in time (Timer B/F, or the failover timeout).
    Timeout,
    /// The transport could not send (connect refused, unreachable).
    TransportError,
}

impl Attempt {
    /// Whether RFC 3263 §4.3 moves on to the next target: a timeout, a transport error or a
    /// 503. Anything else is the server's answer for the whole request.
    pub(crate) fn fails_over(self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::TransportError | Self::Response(503)
        )
    }
}

/// How long to wait for the first response of a target when another one is left: 16·T1 (8 s
/// with the default T1), a quarter of Timer B/F. A dead UDP server only shows by its silence,
/// and 32 s per dead target would outlast most callers' patience; a live one answers (100
/// Trying or a final response) within a few retransmissions. The last target gets the full
/// transaction timeout.
pub(crate) fn failover_timeout(t1: Duration, another_left: bool) -> Option<Duration> {
    another_left.then(|| t1 * 16)
}

/// Targets that failed recently, shared by every request of the endpoint.
#[derive(Default)]
pub(crate) struct BadTargets {
    until: Mutex<HashMap<(Transport, SocketAddr), Instant>>,
}

impl BadTargets {
    /// Remembers `target` as failed at `now`, for a 503's `retry_after` or [`BAD_FOR`].
    pub(crate) fn mark(&self, target: &Target, now: Instant, retry_after: Option<Duration>) {
        let span = retry_after.map_or(BAD_FOR, |r| r.min(MAX_BAD_FOR));
        if let Ok(mut map) = self.until.lock() {
            map.retain(|_, until| *until > now);
            map.insert((target.transport, target.addr), now + span);
        }
    }

    /// Forgets a target that answered.
    pub(crate) fn clear(&self, target: &Target) {
        if let Ok(mut map) = self.until.lock() {
            map.remove(&(target.transport, target.addr));
        }
    }

    /// `targets` with the ones still remembered as bad moved to the end (the soonest to be
    /// forgiven first), the others in their DNS order.
    pub(crate) fn order(&self, targets: Vec<Target>, now: Instant) -> Vec<Target> {
        let Ok(map) = self.until.lock() else {
            return targets;
        };
        let bad_until = |t: &Target| {
            map.get(&(t.transport, t.addr))
                .copied()
                .filter(|until| *until > now)
        };
        let (mut bad, mut good): (Vec<_>, Vec<_>) = targets
            .into_iter()
            .map(|t| (bad_until(&t), t))
            .partition(|(until, _)| until.is_some());
        bad.sort_by_key(|(until, _)| *until);
        good.append(&mut bad);
        good.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(port: u16) -> Target {
        Target {
            transport: Transport::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            host: "pbx.test".into(),
        }
    }

    fn ports(targets: &[Target]) -> Vec<u16> {
        targets.iter().map(|t| t.addr.port()).collect()
    }

    #[test]
    fn what_fails_over() {
        assert!(Attempt::Timeout.fails_over());
        assert!(Attempt::TransportError.fails_over());
        assert!(Attempt::Response(503).fails_over());
        for code in [200, 401, 403, 404, 408, 480, 486, 500, 603] {
            assert!(!Attempt::Response(code).fails_over(), "{code}");
        }
        let t1 = Duration::from_millis(500);
        assert_eq!(failover_timeout(t1, true), Some(Duration::from_secs(8)));
        assert_eq!(failover_timeout(t1, false), None);
    }

    #[test]
    fn bad_targets_go_last_until_forgiven() {
        let bad = BadTargets::default();
        let t0 = Instant::now();
        let all = vec![target(1), target(2), target(3)];
        assert_eq!(ports(&bad.order(all.clone(), t0)), [1, 2, 3]);
        bad.mark(&target(1), t0, None);
        bad.mark(&target(2), t0, Some(Duration::from_secs(10)));
        assert_eq!(ports(&bad.order(all.clone(), t0)), [3, 2, 1]);
        // 2's Retry-After is over: back in its DNS place; 1 is still bad.
        let later = t0 + Duration::from_secs(11);
        assert_eq!(ports(&bad.order(all.clone(), later)), [2, 3, 1]);
        assert_eq!(ports(&bad.order(all.clone(), t0 + BAD_FOR)), [1, 2, 3]);
        bad.mark(&target(3), t0, None);
        bad.clear(&target(3));
        assert_eq!(ports(&bad.order(all.clone(), later)), [2, 3, 1]);
        // A huge Retry-After is capped.
        bad.mark(&target(2), t0, Some(Duration::from_secs(1 << 30)));
        assert_eq!(ports(&bad.order(all, t0 + MAX_BAD_FOR)), [1, 2, 3]);
    }
}
