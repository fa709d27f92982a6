//! Who may call us: which sources may open dialogs (INVITE, SUBSCRIBE, REFER... outside a
//! dialog), and how fast sources we do not know may send requests at all. Sans-IO: the
//! transports pass the source, what the request is and the time; the decision comes back.
//!
//! With `server` set the default is the PBX's resolved addresses (kept current by the
//! [`super::Locator`], so a DNS change or another RFC 3263 target follows) and the outbound
//! proxy's; `acceptFrom` (CIDRs) replaces that default. A refused source is answered `403`
//! statelessly while its token bucket lasts, then dropped: a scanner flood costs one bucket
//! look-up per datagram and never reaches the stack, the call table or the RTP port pool.

use super::counters::TransportCounters;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

/// An address block (`10.0.0.0/8`, `2001:db8::/32`, or one address without a prefix).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address; the error says what was wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| format!("not an IP address: {addr:?}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix must be 0-{max}, got {p:?}"))?,
        };
        Ok(Self { net, prefix })
    }

    /// Whether `ip` is in the block (an IPv4-mapped IPv6 source counts as its IPv4 address).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), self.prefix, 32)
                    == masked(u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, prefix: u8, width: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - u32::from(prefix))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// How many requests per second an unknown source may send, and how many at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        let c = crate::config::RateLimitConfig::default();
        Self {
            per_second: c.per_second,
            burst: c.burst,
        }
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Hand it to the stack.
    Admit,
    /// Answer `403 Forbidden` statelessly, nothing else.
    Forbid,
    /// Drop it silently (the source exceeded its bucket).
    Drop,
}

/// What a transport does with a message [`Admission::screen`] looked at.
#[derive(Debug, PartialEq)]
pub(crate) enum Screened {
    /// Hand it to the stack.
    Pass,
    /// Send this `403` (statelessly, untraced), then [`Admission::forbidden_sent`].
    Forbidden(String),
    /// Nothing to send: over the rate limit (counted here), or a refusal that cannot be routed.
    Dropped,
}

/// Buckets kept at most: beyond, the full (idle) ones are forgotten, then all, so a flood from
/// spoofed sources cannot grow memory.
const MAX_BUCKETS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// The PBX's and outbound proxy's addresses as last resolved, by host name.
    resolved: HashMap<String, HashSet<IpAddr>>,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The endpoint's admission policy, shared by its transports.
#[derive(Debug)]
pub(crate) struct Admission {
    /// `acceptFrom`; `None`: the PBX's addresses.
    accept_from: Option<Vec<Cidr>>,
    /// The host names whose resolved addresses are trusted (server, outbound proxy).
    trusted_hosts: Vec<String>,
    limit: RateLimit,
    state: Mutex<State>,
}

impl Default for Admission {
    /// Everyone admitted (no `server`).
    fn default() -> Self {
        Self::new(None, Vec::new(), RateLimit::default())
    }
}

impl Admission {
    /// `trusted_hosts` empty and no `accept_from`: no `server`, everyone is admitted.
    pub(crate) fn new(
        accept_from: Option<Vec<Cidr>>,
        trusted_hosts: Vec<String>,
        limit: RateLimit,
    ) -> Self {
        let mut state = State::default();
        for host in &trusted_hosts {
            // a literal address needs no resolution
            if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
                state
                    .resolved
                    .entry(host.clone())
                    .or_default()
                    .insert(canonical(ip));
            }
        }
        Self {
            accept_from,
            trusted_hosts,
            limit,
            state: Mutex::new(state),
        }
    }

    /// The endpoint's policy: `acceptFrom`, `rateLimit`, and the PBX and outbound proxy as
    /// trusted hosts when `server` is set. A bad CIDR is a config error naming its index.
    pub(crate) fn from_config(
        config: &crate::config::EndpointConfig,
    ) -> crate::error::Result<Self> {
        use crate::error::Error;
        let accept_from = match &config.accept_from {
            None => None,
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Cidr::parse(c.trim())
                            .map_err(|e| Error::Config(format!("acceptFrom[{i}]: {e}")))
                    })
                    .collect::<crate::error::Result<Vec<_>>>()?,
            ),
        };
        let r = config.rate_limit;
        if !(r.per_second > 0.0
            && r.per_second.is_finite()
            && r.burst >= 1.0
            && r.burst.is_finite())
        {
            return Err(Error::Config(format!(
                "rateLimit: perSecond must be above 0 and burst at least 1, got {} and {}",
                r.per_second, r.burst
            )));
        }
        let mut trusted = Vec::new();
        if let Some(server) = &config.server {
            trusted.push(server.trim_matches(['[', ']']).to_ascii_lowercase());
            let proxy_host = config.outbound_proxy.as_deref().and_then(|p| {
                let uri = rsipstack::sip::Uri::try_from(p.trim()).ok()?;
                Some(uri.host_with_port.host.to_string())
            });
            trusted.extend(proxy_host.map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()));
        }
        let limit = RateLimit {
            per_second: r.per_second,
            burst: r.burst,
        };
        Ok(Self::new(accept_from, trusted, limit))
    }

    /// Whether anything is filtered at all.
    pub(crate) fn is_open(&self) -> bool {
        self.accept_from.is_none() && self.trusted_hosts.is_empty()
    }

    /// `host` was just resolved to `addrs`: if it is a trusted host, these replace its
    /// addresses (DNS changed, another RFC 3263 target).
    pub(crate) fn resolved(&self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) {
        if !self
            .trusted_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
        {
            return;
        }
        let set: HashSet<IpAddr> = addrs.into_iter().map(canonical).collect();
        if let Ok(mut s) = self.state.lock() {
            s.resolved.insert(host.to_ascii_lowercase(), set);
        }
    }

    fn trusted(&self, state: &State, ip: IpAddr) -> bool {
        match &self.accept_from {
            Some(cidrs) => cidrs.iter().any(|c| c.contains(ip)),
            None => state.resolved.values().any(|s| s.contains(&ip)),
        }
    }

    /// The decision for an out-of-dialog request from `source` at `now`; `creates_dialog`
    /// for INVITE, SUBSCRIBE, REFER and the like (others, such as OPTIONS, are only rate
    /// limited). In-dialog requests and responses are not brought here.
    pub(crate) fn decide(&self, source: IpAddr, creates_dialog: bool, now: Instant) -> Decision {
        if self.is_open() {
            return Decision::Admit;
        }
        let ip = canonical(source);
        let Ok(mut state) = self.state.lock() else {
            return Decision::Admit;
        };
        if self.trusted(&state, ip) {
            return Decision::Admit;
        }
        if !self.take_token(&mut state, ip, now) {
            return Decision::Drop;
        }
        if creates_dialog {
            Decision::Forbid
        } else {
            Decision::Admit
        }
    }

    /// The check every transport (UDP, TCP, TLS, WS) runs on a message the guard passed,
    /// before the stack sees it (responses and in-dialog requests always pass). Drops are
    /// counted here, and logged only at the 1st, 10th, 100th...
    pub(crate) fn screen(
        &self,
        packet: &[u8],
        from: SocketAddr,
        counters: &TransportCounters,
    ) -> Screened {
        let Some(method) = out_of_dialog_method(packet) else {
            return Screened::Pass;
        };
        match self.decide(from.ip(), creates_dialog(method), Instant::now()) {
            Decision::Admit => Screened::Pass,
            Decision::Drop => {
                let n = counters.rate_limited.fetch_add(1, Ordering::Relaxed) + 1;
                if worth_logging(n) {
                    tracing::warn!(src = %from, total = n, "requests dropped by the rate limit for unknown sources");
                }
                Screened::Dropped
            }
            Decision::Forbid => {
                forbidden_for(packet).map_or(Screened::Dropped, Screened::Forbidden)
            }
        }
    }

    /// Counts a `403` from [`Admission::screen`] that went out, logging the 1st, 10th...
    pub(crate) fn forbidden_sent(counters: &TransportCounters, to: SocketAddr) {
        let n = counters.forbidden_sent.fetch_add(1, Ordering::Relaxed) + 1;
        if worth_logging(n) {
            tracing::warn!(src = %to, total = n, "requests from sources outside acceptFrom answered 403");
        }
    }

    fn take_token(&self, state: &mut State, ip: IpAddr, now: Instant) -> bool {
        if state.buckets.len() >= MAX_BUCKETS && !state.buckets.contains_key(&ip) {
            let limit = self.limit;
            state
                .buckets
                .retain(|_, b| refill(b, limit, now).tokens < limit.burst);
            if state.buckets.len() >= MAX_BUCKETS {
                state.buckets.clear();
            }
        }
        let limit = self.limit;
        let bucket = state.buckets.entry(ip).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        *bucket = refill(bucket, limit, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn refill(b: &Bucket, limit: RateLimit, now: Instant) -> Bucket {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket {
        tokens: (b.tokens + elapsed * limit.per_second).min(limit.burst),
        at: now,
    }
}

/// Whether a request with this method, outside a dialog, would create one (RFC 3261 §12,
/// RFC 6665, RFC 3515): the requests that allocate call or subscription state.
pub(crate) fn creates_dialog(method: &str) -> bool {
    matches!(
        method.to_ascii_uppercase().as_str(),
        "INVITE" | "SUBSCRIBE" | "REFER" | "NOTIFY" | "MESSAGE" | "PUBLISH"
    )
}

/// The method of a request outside a dialog (its `To` has no tag), read from the bytes the
/// guard has already accepted; `None` for responses and in-dialog requests, which are never
/// refused here (they belong to dialogs we admitted).
pub(crate) fn out_of_dialog_method(packet: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(packet).ok()?;
    let mut lines = text.split("\r\n");
    let method = lines.next()?.split(' ').next()?;
    if method.is_empty() || method == "SIP/2.0" || method == "ACK" {
        return None;
    }
    let to = lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        matches!(name.trim().to_ascii_lowercase().as_str(), "to" | "t").then_some(value)
    })?;
    let tagged = to
        .to_ascii_lowercase()
        .split(';')
        .skip(1)
        .any(|p| p.trim().starts_with("tag="));
    (!tagged).then_some(method)
}

/// The stateless `403 Forbidden` for a refused request (the guard's reply, with its To tag
/// derived from the request, so a retransmission gets the same one); `None` when it cannot be
/// routed.
pub(crate) fn forbidden_for(packet: &[u8]) -> Option<String> {
    let refusal = crate::sip::conformance::Refusal {
        code: 403,
        reason: "Forbidden",
        headers: Vec::new(),
    };
    crate::sip::guard::reply_for(packet, &refusal)
}

/// Whether the `n`th refusal is worth a log line: the 1st, 10th, 100th... so a flood is
/// summarised in a handful of lines, never one per packet.
pub(crate) fn worth_logging(n: u64) -> bool {
    n > 0 && 10u64.pow(n.ilog10()) == n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match_both_families() {
        let lo = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(lo.contains(ip("127.0.0.5")));
        assert!(
            lo.contains(ip("::ffff:127.0.0.5")),
            "a mapped source is IPv4"
        );
        assert!(!lo.contains(ip("10.0.0.1")));
        assert!(!lo.contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        let one = Cidr::parse("[2001:db8::7]").unwrap();
        assert!(one.contains(ip("2001:db8::7")) && !one.contains(ip("2001:db8::8")));
        assert!(Cidr::parse("2001:db8::/33")
            .unwrap()
            .contains(ip("2001:db8:7fff::1")));
        assert!(!Cidr::parse("2001:db8::/33")
            .unwrap()
            .contains(ip("2001:db8:8000::1")));
        for bad in [
            "",
            "300.1.1.1",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "pbx.example",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_server_everyone_is_admitted() {
        let open = Admission::new(None, vec![], RateLimit::default());
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(open.decide(ip("198.51.100.1"), true, now), Decision::Admit);
        }
    }

    #[test]
    fn the_pbx_is_admitted_others_forbidden_then_dropped() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3.0,
        };
        let gate = Admission::new(None, vec!["pbx.example".into(), "127.0.0.1".into()], limit);
        let now = Instant::now();
        assert_eq!(
            gate.decide(ip("127.0.0.1"), true, now),
            Decision::Admit,
            "literal server"
        );
        let scanner = ip("127.0.0.5");
        let seen: Vec<Decision> = (0..5).map(|_| gate.decide(scanner, true, now)).collect();
        use Decision::*;
        assert_eq!(seen, [Forbid, Forbid, Forbid, Drop, Drop]);
        // half a second later one token is back (2/s)
        assert_eq!(
            gate.decide(scanner, true, now + Duration::from_millis(500)),
            Forbid
        );
        assert_eq!(
            gate.decide(scanner, true, now + Duration::from_millis(500)),
            Drop
        );
        // an OPTIONS ping from an unknown source is only rate limited
        assert_eq!(gate.decide(ip("127.0.0.6"), false, now), Admit);
        // the name resolves to the scanner's address now: it is the PBX
        gate.resolved("PBX.example", [scanner]);
        assert_eq!(gate.decide(scanner, true, now), Admit);
        // and re-resolves elsewhere: it is not any more
        gate.resolved("pbx.example", [ip("192.0.2.1")]);
        assert_eq!(gate.decide(scanner, true, now), Drop);
        // names nobody trusts do not widen anything
        gate.resolved("other.example", [ip("127.0.0.9")]);
        assert_eq!(gate.decide(ip("127.0.0.9"), true, now), Forbid);
    }

    #[test]
    fn accept_from_replaces_the_pbx_default() {
        let cidrs = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        let gate = Admission::new(Some(cidrs), vec!["127.0.0.1".into()], RateLimit::default());
        let now = Instant::now();
        assert_eq!(gate.decide(ip("10.1.2.3"), true, now), Decision::Admit);
        assert_eq!(
            gate.decide(ip("127.0.0.1"), true, now),
            Decision::Forbid,
            "narrowed out"
        );
    }

    #[test]
    fn a_spoofed_flood_does_not_grow_the_bucket_table() {
        let gate = Admission::new(None, vec!["127.0.0.1".into()], RateLimit::default());
        let now = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 * 3) {
            let src = IpAddr::V4((0x0a00_0000 + i).into());
            assert_eq!(gate.decide(src, true, now), Decision::Forbid);
        }
        assert!(gate.state.lock().unwrap().buckets.len() <= MAX_BUCKETS);
    }

    #[test]
    fn requests_outside_dialogs_are_found_and_forbidden() {
        let invite = "INVITE sip:a@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bK1\r\nFrom: <sip:s@x>;tag=9\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(out_of_dialog_method(invite.as_bytes()), Some("INVITE"));
        let reply = forbidden_for(invite.as_bytes()).unwrap();
        assert!(reply.starts_with("SIP/2.0 403 Forbidden\r\n") && reply.contains("Call-ID: c\r\n"));
        assert!(reply.contains("\r\nTo: <sip:a@x>;tag="), "{reply}");
        assert_eq!(
            reply.matches(";tag=").count(),
            2,
            "From's and one To tag: {reply}"
        );
        assert_eq!(
            forbidden_for(invite.as_bytes()),
            Some(reply),
            "stateless: same tag again"
        );
        let in_dialog = invite.replace("To: <sip:a@x>", "t: <sip:a@x> ; TAG=4");
        assert_eq!(out_of_dialog_method(in_dialog.as_bytes()), None);
        assert_eq!(
            out_of_dialog_method(b"SIP/2.0 200 OK\r\nTo: <sip:a@x>\r\n\r\n"),
            None
        );
        let logged: Vec<u64> = (1..=2000).filter(|n| worth_logging(*n)).collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
    }

    #[test]
    fn screening_refuses_counts_and_admits_what_transports_hand_on() {
        let gate = Admission::new(
            None,
            vec!["127.0.0.1".into()],
            RateLimit {
                per_second: 0.001,
                burst: 1.0,
            },
        );
        let counters = TransportCounters::default();
        let invite = "INVITE sip:a@x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.5:5060;branch=z9hG4bK1\r\nFrom: <sip:s@x>;tag=9\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let pbx: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let scanner: SocketAddr = "127.0.0.5:5060".parse().unwrap();
        assert_eq!(
            gate.screen(invite.as_bytes(), pbx, &counters),
            Screened::Pass
        );
        let refused = gate.screen(invite.as_bytes(), scanner, &counters);
        let reply = forbidden_for(invite.as_bytes()).unwrap();
        assert_eq!(refused, Screened::Forbidden(reply));
        assert_eq!(
            gate.screen(invite.as_bytes(), scanner, &counters),
            Screened::Dropped
        );
        Admission::forbidden_sent(&counters, scanner);
        let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(
            (read(&counters.forbidden_sent), read(&counters.rate_limited)),
            (1, 1)
        );
        // responses and in-dialog requests are never screened
        let ok = b"SIP/2.0 200 OK\r\nTo: <sip:a@x>\r\n\r\n";
        assert_eq!(gate.screen(ok, scanner, &counters), Screened::Pass);
    }

    #[test]
    fn dialog_creating_methods() {
        assert!(creates_dialog("INVITE") && creates_dialog("subscribe") && creates_dialog("REFER"));
        assert!(
            !creates_dialog("OPTIONS") && !creates_dialog("REGISTER") && !creates_dialog("BYE")
        );
    }
}
