//! RFC 3263 server location: from a SIP URI's host, port and transport to the ordered list of
//! (transport, address) targets to try. A numeric host or an explicit port skips NAPTR and SRV
//! (§4.2); a URI naming its transport skips NAPTR; otherwise NAPTR (`SIP+D2U`, `SIP+D2T`,
//! `SIPS+D2T`, `SIP+D2W`, `SIPS+D2W`) picks the transports in the domain's order, SRV then
//! gives the hosts (priority, then weight: RFC 2782), and A/AAAA their addresses.
//!
//! The rules run on any [`Lookups`] (the random draw of the weighted selection passed in), so
//! they are tested on canned records; [`super::dns`] answers them with hickory-resolver.
//! rsipstack's own resolver has no NAPTR and its default `DomainResolver` keeps only the first
//! result: this module and the locator replace both.

use crate::error::{Error, Result};
use rsipstack::sip::{self, Transport};
use rsipstack::transport::SipAddr;
use std::net::{IpAddr, SocketAddr};

/// One place to send a request to: the transport, the address, and the host name it came from
/// (for TLS SNI and certificate checks, which must use the name even when we dial the IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub host: String,
}

impl Target {
    /// The target as the SIP stack's transport address (an IP, so it is not resolved again).
    pub(crate) fn sip_addr(&self) -> SipAddr {
        let mut addr = SipAddr::from(self.addr);
        addr.r#type = Some(self.transport);
        addr
    }

    /// The peer of a stream connection we dialled, as a target (its address is an IP).
    pub(crate) fn of_connection(remote: &SipAddr) -> Result<Self> {
        let addr = SocketAddr::try_from(remote.addr.clone())
            .map_err(|e| Error::Transport(format!("connection peer {remote}: {e}")))?;
        Ok(Self {
            transport: remote.r#type.unwrap_or(Transport::Tcp),
            addr,
            host: addr.ip().to_string(),
        })
    }
}

/// What a URI says about its next hop (RFC 3263 §4: the host, port and transport of the
/// Request-URI, or of the first Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NextHop {
    pub host: String,
    pub port: Option<u16>,
    pub transport: Option<Transport>,
    /// A `sips:` URI: TLS only.
    pub secure: bool,
}

impl NextHop {
    pub(crate) fn of_uri(uri: &sip::Uri) -> Self {
        let transport = uri.params.iter().find_map(|p| match p {
            sip::Param::Transport(t) => Some(*t),
            _ => None,
        });
        Self {
            host: uri
                .host_with_port
                .host
                .to_string()
                .trim_matches(['[', ']'])
                .to_string(),
            port: uri.host_with_port.port.map(u16::from),
            transport,
            secure: uri.scheme == Some(sip::Scheme::Sips),
        }
    }
}

/// A NAPTR record as far as SIP uses it (RFC 3263 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The transport a NAPTR service field stands for (RFC 3263 §4.1, RFC 7118 §11 for WS).
fn naptr_transport(services: &str) -> Option<Transport> {
    match services.to_ascii_uppercase().as_str() {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIPS+D2T" => Some(Transport::Tls),
        "SIP+D2W" => Some(Transport::Ws),
        "SIPS+D2W" => Some(Transport::Wss),
        _ => None,
    }
}

/// The SRV name prefix of a transport (RFC 3263 §4.1, RFC 7118 for WS).
fn srv_prefix(transport: Transport) -> Option<&'static str> {
    match transport {
        Transport::Udp => Some("_sip._udp"),
        Transport::Tcp => Some("_sip._tcp"),
        Transport::Tls => Some("_sips._tcp"),
        Transport::Ws => Some("_sip._ws"),
        Transport::Wss => Some("_sips._ws"),
        _ => None,
    }
}

/// The SRV names to query, in order, from a domain's NAPTR records: only `s`-flag records for a
/// transport we support (and secure ones for `sips:`), by order then preference.
pub(crate) fn naptr_choices(
    mut records: Vec<Naptr>,
    supported: &[Transport],
    secure: bool,
) -> Vec<(Transport, String)> {
    records.sort_by_key(|r| (r.order, r.preference));
    let mut out: Vec<(Transport, String)> = Vec::new();
    for r in records {
        if !r.flags.eq_ignore_ascii_case("s") {
            continue;
        }
        let Some(t) = naptr_transport(&r.services) else {
            continue;
        };
        if !supported.contains(&t) || (secure && !t.is_secure()) {
            continue;
        }
        let name = r.replacement.trim_end_matches('.').to_string();
        if !out.iter().any(|(_, n)| *n == name) {
            out.push((t, name));
        }
    }
    out
}

/// SRV records in the order to try them (RFC 2782): by priority; within one priority by the
/// weighted random selection, `draw(total)` returning a number in `0..=total`.
pub(crate) fn srv_order(mut records: Vec<Srv>, mut draw: impl FnMut(u32) -> u32) -> Vec<Srv> {
    // A target of "." means the service is decidedly not available there.
    records.retain(|r| !r.target.trim_end_matches('.').is_empty());
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records
            .iter()
            .take_while(|r| r.priority == priority)
            .count();
        // Zero weights first, so they have a small chance only when others exist (RFC 2782).
        let mut group: Vec<Srv> = records.drain(..end).collect();
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = draw(total).min(total);
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

/// The DNS queries of RFC 3263, so that its rules run on canned records in tests.
#[async_trait::async_trait]
pub(crate) trait Lookups: Send + Sync {
    /// The NAPTR records of `name` (none on any error: §4.1 then goes on with SRV).
    async fn naptr(&self, name: &str) -> Vec<Naptr>;
    /// The SRV records of `name` (none on any error: §4.2 then goes on with A/AAAA).
    async fn srv(&self, name: &str) -> Vec<Srv>;
    async fn addresses(&self, host: &str) -> std::result::Result<Vec<IpAddr>, String>;
}

/// RFC 3263 §4 on `dns`, keeping the targets over `supported`; `draw` is the SRV weighted
/// selection's random source (see [`srv_order`]).
pub(crate) async fn locate(
    dns: &dyn Lookups,
    hop: &NextHop,
    supported: &[Transport],
    draw: &mut (dyn FnMut(u32) -> u32 + Send),
) -> Result<Vec<Target>> {
    let mut targets = locate_any(dns, hop, supported, draw).await?;
    targets.retain(|t| supported.contains(&t.transport));
    if targets.is_empty() {
        let names: Vec<String> = supported
            .iter()
            .map(|t| t.to_string().to_ascii_lowercase())
            .collect();
        return Err(Error::Resolve {
            name: hop.host.clone(),
            cause: format!(
                "no target over a transport this endpoint has ({})",
                names.join(", ")
            ),
        });
    }
    Ok(targets)
}

async fn locate_any(
    dns: &dyn Lookups,
    hop: &NextHop,
    supported: &[Transport],
    draw: &mut (dyn FnMut(u32) -> u32 + Send),
) -> Result<Vec<Target>> {
    let fail = |cause: String| Error::Resolve {
        name: hop.host.clone(),
        cause,
    };
    let default_transport = |t: Option<Transport>| {
        t.unwrap_or(if hop.secure {
            Transport::Tls
        } else {
            supported.first().copied().unwrap_or(Transport::Udp)
        })
    };
    let at_host = |transport: Transport, ip: IpAddr, port: u16| Target {
        transport,
        addr: SocketAddr::new(ip, port),
        host: hop.host.clone(),
    };
    if let Some(t) = hop.transport {
        if !supported.contains(&t) {
            return Err(fail(format!(
                "transport {} is not available on this endpoint",
                t.to_string().to_ascii_lowercase()
            )));
        }
    }
    // §4.2: a numeric host or an explicit port means no NAPTR and no SRV.
    if let Ok(ip) = hop.host.parse::<IpAddr>() {
        let t = default_transport(hop.transport);
        let port = hop.port.unwrap_or_else(|| t.default_port().into());
        return Ok(vec![at_host(t, ip, port)]);
    }
    if let Some(port) = hop.port {
        let t = default_transport(hop.transport);
        let ips = dns.addresses(&hop.host).await.map_err(fail)?;
        return Ok(ips.into_iter().map(|ip| at_host(t, ip, port)).collect());
    }
    let services: Vec<(Transport, String)> = match hop.transport {
        Some(t) => srv_name(t, &hop.host).into_iter().collect(),
        None => {
            let from_naptr = naptr_choices(dns.naptr(&hop.host).await, supported, hop.secure);
            if from_naptr.is_empty() {
                // §4.1: no NAPTR: SRV for each transport we support.
                supported
                    .iter()
                    .filter(|t| !hop.secure || t.is_secure())
                    .filter_map(|t| srv_name(*t, &hop.host))
                    .collect()
            } else {
                from_naptr
            }
        }
    };
    let mut targets = Vec::new();
    let mut last_error = None;
    for (transport, name) in services {
        for srv in srv_order(dns.srv(&name).await, &mut *draw) {
            match dns.addresses(&srv.target).await {
                Ok(ips) => targets.extend(ips.into_iter().map(|ip| Target {
                    transport,
                    addr: SocketAddr::new(ip, srv.port),
                    host: srv.target.clone(),
                })),
                Err(e) => last_error = Some(format!("{}: {e}", srv.target)),
            }
        }
    }
    if !targets.is_empty() {
        return Ok(targets);
    }
    if let Some(e) = last_error {
        return Err(fail(format!("no address for its SRV targets ({e})")));
    }
    // §4.2: no SRV either: the host's A/AAAA on the transport's default port.
    let t = default_transport(hop.transport);
    let ips = dns.addresses(&hop.host).await.map_err(fail)?;
    Ok(ips
        .into_iter()
        .map(|ip| at_host(t, ip, t.default_port().into()))
        .collect())
}

/// The SRV name of `transport` at `domain`, for the transports that have one.
fn srv_name(transport: Transport, domain: &str) -> Option<(Transport, String)> {
    srv_prefix(transport).map(|p| (transport, format!("{p}.{domain}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "s".into(),
            services: services.into(),
            replacement: replacement.into(),
        }
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn naptr_is_ordered_and_filtered_to_what_we_support() {
        let records = vec![
            naptr(20, 10, "SIP+D2U", "_sip._udp.pbx.test."),
            naptr(10, 20, "SIPS+D2T", "_sips._tcp.pbx.test."),
            naptr(10, 10, "SIP+D2T", "_sip._tcp.pbx.test."),
            naptr(5, 10, "E2U+sip", "!^.*$!sip:x@y!"),
            Naptr {
                flags: "u".into(),
                ..naptr(1, 1, "SIP+D2U", "ignored.")
            },
        ];
        let all = [Transport::Udp, Transport::Tcp, Transport::Tls];
        assert_eq!(
            naptr_choices(records.clone(), &all, false),
            vec![
                (Transport::Tcp, "_sip._tcp.pbx.test".into()),
                (Transport::Tls, "_sips._tcp.pbx.test".into()),
                (Transport::Udp, "_sip._udp.pbx.test".into()),
            ]
        );
        assert_eq!(
            naptr_choices(records.clone(), &[Transport::Udp], false),
            vec![(Transport::Udp, "_sip._udp.pbx.test".into())]
        );
        assert_eq!(
            naptr_choices(records, &all, true),
            vec![(Transport::Tls, "_sips._tcp.pbx.test".into())]
        );
    }

    #[test]
    fn srv_goes_by_priority_then_weight() {
        let records = vec![
            srv(20, 0, "c"),
            srv(10, 10, "a"),
            srv(10, 90, "b"),
            srv(30, 5, "."),
        ];
        // A draw of 0 takes the first of the running sums; the maximum takes the last.
        let low = srv_order(records.clone(), |_| 0);
        let names: Vec<&str> = low.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let high = srv_order(records.clone(), |total| total);
        let names: Vec<&str> = high.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        // Over many draws the 90-weight target comes first about nine times in ten.
        let mut seed = 12345u64;
        let mut b_first = 0;
        for _ in 0..10_000 {
            let order = srv_order(records.clone(), |total| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % (u64::from(total) + 1)) as u32
            });
            assert_eq!(order.len(), 3, "the \".\" target is dropped");
            assert_eq!(order[2].target, "c", "priority 20 after every priority 10");
            if order[0].target == "b" {
                b_first += 1;
            }
        }
        assert!((8700..9300).contains(&b_first), "{b_first}");
    }

    #[test]
    fn zero_weights_come_last_within_a_priority_but_are_kept() {
        let order = srv_order(vec![srv(1, 0, "z"), srv(1, 0, "y")], |_| 0);
        assert_eq!(order.len(), 2);
        let order = srv_order(vec![srv(1, 0, "z"), srv(1, 50, "w")], |t| t);
        assert_eq!(order[0].target, "w");
    }

    #[test]
    fn next_hop_of_a_uri() {
        let uri: sip::Uri = "sips:[2001:db8::1]:5071;transport=tcp".try_into().unwrap();
        let hop = NextHop::of_uri(&uri);
        assert_eq!(hop.host, "2001:db8::1");
        assert_eq!(hop.port, Some(5071));
        assert_eq!(hop.transport, Some(Transport::Tcp));
        assert!(hop.secure);
        let plain = NextHop::of_uri(&"sip:1000@pbx.test".try_into().unwrap());
        assert_eq!(
            (plain.port, plain.transport, plain.secure),
            (None, None, false)
        );
    }

    /// Canned records; every query is recorded.
    #[derive(Default)]
    struct Fake {
        naptr: HashMap<&'static str, Vec<Naptr>>,
        srv: HashMap<&'static str, Vec<Srv>>,
        a: HashMap<&'static str, Vec<IpAddr>>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Lookups for Fake {
        async fn naptr(&self, name: &str) -> Vec<Naptr> {
            self.asked.lock().unwrap().push(format!("NAPTR {name}"));
            self.naptr.get(name).cloned().unwrap_or_default()
        }
        async fn srv(&self, name: &str) -> Vec<Srv> {
            self.asked.lock().unwrap().push(format!("SRV {name}"));
            self.srv.get(name).cloned().unwrap_or_default()
        }
        async fn addresses(&self, host: &str) -> std::result::Result<Vec<IpAddr>, String> {
            self.asked.lock().unwrap().push(format!("A {host}"));
            self.a
                .get(host)
                .cloned()
                .ok_or_else(|| "no record found".to_string())
        }
    }

    fn hop(host: &str, port: Option<u16>, transport: Option<Transport>) -> NextHop {
        NextHop {
            host: host.into(),
            port,
            transport,
            secure: false,
        }
    }

    fn srv_at(priority: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight: 10,
            port,
            target: target.into(),
        }
    }

    fn pbx() -> Fake {
        let ip = |s: &str| vec![s.parse::<IpAddr>().unwrap()];
        Fake {
            naptr: HashMap::from([(
                "pbx.test",
                vec![
                    naptr(10, 10, "SIP+D2T", "_sip._tcp.pbx.test."),
                    naptr(20, 10, "SIP+D2U", "_sip._udp.pbx.test."),
                ],
            )]),
            srv: HashMap::from([
                (
                    "_sip._udp.pbx.test",
                    vec![
                        srv_at(20, 5071, "b.pbx.test"),
                        srv_at(10, 5070, "a.pbx.test"),
                    ],
                ),
                ("_sip._tcp.pbx.test", vec![srv_at(10, 5080, "t.pbx.test")]),
                ("_sip._udp.nosrv.test", vec![]),
                ("_sip._udp.broken.test", vec![srv_at(10, 5070, "gone.test")]),
            ]),
            a: HashMap::from([
                ("a.pbx.test", ip("192.0.2.1")),
                ("b.pbx.test", ip("192.0.2.2")),
                ("t.pbx.test", ip("192.0.2.3")),
                ("pbx.test", ip("192.0.2.9")),
                ("nosrv.test", ip("2001:db8::7")),
            ]),
            ..Fake::default()
        }
    }

    async fn run(dns: &Fake, hop: &NextHop, supported: &[Transport]) -> Result<Vec<Target>> {
        locate(dns, hop, supported, &mut |_| 0).await
    }

    fn addrs(targets: &[Target]) -> Vec<String> {
        targets
            .iter()
            .map(|t| format!("{} {}", t.transport, t.addr))
            .collect()
    }

    #[tokio::test]
    async fn naptr_then_srv_by_priority_then_addresses() {
        let dns = pbx();
        let t = run(&dns, &hop("pbx.test", None, None), &[Transport::Udp])
            .await
            .unwrap();
        // NAPTR prefers TCP, which this endpoint lacks: UDP's SRV, priority 10 first.
        assert_eq!(addrs(&t), ["UDP 192.0.2.1:5070", "UDP 192.0.2.2:5071"]);
        assert_eq!(
            t[0].host, "a.pbx.test",
            "the SRV target names the host (TLS SNI)"
        );
        let both = run(
            &dns,
            &hop("pbx.test", None, None),
            &[Transport::Udp, Transport::Tcp],
        )
        .await
        .unwrap();
        assert_eq!(
            addrs(&both),
            [
                "TCP 192.0.2.3:5080",
                "UDP 192.0.2.1:5070",
                "UDP 192.0.2.2:5071"
            ]
        );
    }

    #[tokio::test]
    async fn a_uri_transport_skips_naptr_and_a_port_or_an_ip_skip_srv() {
        let dns = pbx();
        let t = run(
            &dns,
            &hop("pbx.test", None, Some(Transport::Udp)),
            &[Transport::Udp],
        )
        .await
        .unwrap();
        assert_eq!(addrs(&t), ["UDP 192.0.2.1:5070", "UDP 192.0.2.2:5071"]);
        let t = run(&dns, &hop("pbx.test", Some(5099), None), &[Transport::Udp])
            .await
            .unwrap();
        assert_eq!(addrs(&t), ["UDP 192.0.2.9:5099"]);
        let t = run(&dns, &hop("192.0.2.44", None, None), &[Transport::Udp])
            .await
            .unwrap();
        assert_eq!(addrs(&t), ["UDP 192.0.2.44:5060"]);
        let t = run(&dns, &hop("::1", Some(5070), None), &[Transport::Udp])
            .await
            .unwrap();
        assert_eq!(addrs(&t), ["UDP [::1]:5070"]);
        assert_eq!(
            *dns.asked.lock().unwrap(),
            [
                "SRV _sip._udp.pbx.test",
                "A a.pbx.test",
                "A b.pbx.test",
                "A pbx.test"
            ],
            "no NAPTR with a transport, no SRV with a port, nothing for an IP"
        );
    }

    #[tokio::test]
    async fn without_naptr_or_srv_the_host_on_the_default_port() {
        let dns = pbx();
        let t = run(&dns, &hop("nosrv.test", None, None), &[Transport::Udp])
            .await
            .unwrap();
        assert_eq!(addrs(&t), ["UDP [2001:db8::7]:5060"]);
    }

    #[tokio::test]
    async fn failures_name_the_host_and_the_cause() {
        let dns = pbx();
        let e = |r: Result<Vec<Target>>| r.unwrap_err().to_string();
        let nx = e(run(&dns, &hop("nx.test", None, None), &[Transport::Udp]).await);
        assert_eq!(nx, "cannot resolve nx.test: no record found");
        let broken = e(run(&dns, &hop("broken.test", None, None), &[Transport::Udp]).await);
        assert!(
            broken.starts_with(
                "cannot resolve broken.test: no address for its SRV targets (gone.test: "
            ),
            "{broken}"
        );
        let tcp = e(run(
            &dns,
            &hop("192.0.2.1", None, Some(Transport::Tcp)),
            &[Transport::Udp],
        )
        .await);
        assert_eq!(
            tcp,
            "cannot resolve 192.0.2.1: transport tcp is not available on this endpoint"
        );
        let sips = NextHop {
            secure: true,
            ..hop("192.0.2.1", None, None)
        };
        let tls = e(run(&dns, &sips, &[Transport::Udp]).await);
        assert_eq!(
            tls,
            "cannot resolve 192.0.2.1: no target over a transport this endpoint has (udp)"
        );
    }
}
