//! RFC 3263 server location: from a SIP URI's host, port and transport to the ordered list of
//! (transport, address) targets to try. A numeric host or an explicit port skips NAPTR and SRV
//! (§4.2); a URI naming its transport skips NAPTR; otherwise NAPTR (`SIP+D2U`, `SIP+D2T`,
//! `SIPS+D2T`, `SIP+D2W`, `SIPS+D2W`) picks the transports in the domain's order, SRV then
//! gives the hosts (priority, then weight: RFC 2782), and A/AAAA their addresses.
//!
//! The ordering rules are pure functions (the random draw of the weighted selection passed in);
//! [`Resolver`] does the lookups with hickory-resolver, on the configured `dnsServers` or the
//! system's configuration. rsipstack's own resolver has no NAPTR and its default
//! `DomainResolver` keeps only the first result: this module replaces both.

use crate::error::{Error, Result};
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
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

/// The DNS client: hickory on the configured servers or the system's configuration; when the
/// system has none readable, `getaddrinfo` (A/AAAA and the hosts file only).
pub(crate) struct Resolver {
    dns: Option<TokioResolver>,
}

impl Resolver {
    /// A resolver on `servers` (each `ip:port`), or on the system configuration when empty.
    pub(crate) fn new(servers: &[SocketAddr]) -> Self {
        let builder = if servers.is_empty() {
            match TokioResolver::builder_tokio() {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(error = %e, "no system DNS configuration: only A/AAAA lookups by the OS, no NAPTR/SRV");
                    None
                }
            }
        } else {
            let mut config = ResolverConfig::default();
            for server in servers {
                let connection = |mut c: ConnectionConfig| {
                    c.port = server.port();
                    c
                };
                config.add_name_server(NameServerConfig::new(
                    server.ip(),
                    true,
                    vec![
                        connection(ConnectionConfig::udp()),
                        connection(ConnectionConfig::tcp()),
                    ],
                ));
            }
            Some(TokioResolver::builder_with_config(
                config,
                TokioRuntimeProvider::default(),
            ))
        };
        let dns = builder.and_then(|mut b| {
            // Both families: a dual-stack PBX is reachable over the one we have.
            b.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            b.build()
                .inspect_err(|e| tracing::warn!(error = %e, "cannot build the DNS resolver"))
                .ok()
        });
        Self { dns }
    }

    /// The targets of `hop` over the transports in `supported`, in the order to try them.
    /// An empty list is an error naming the host.
    pub(crate) async fn locate(
        &self,
        hop: &NextHop,
        supported: &[Transport],
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
            return Ok(vec![self.target(t, SocketAddr::new(ip, port), hop)]);
        }
        if let Some(port) = hop.port {
            let t = default_transport(hop.transport);
            let ips = self.addresses(&hop.host).await.map_err(fail)?;
            return Ok(ips
                .into_iter()
                .map(|ip| self.target(t, SocketAddr::new(ip, port), hop))
                .collect());
        }
        let services: Vec<(Transport, String)> = match hop.transport {
            Some(t) => srv_name(t, &hop.host).into_iter().collect(),
            None => {
                let from_naptr = naptr_choices(self.naptr(&hop.host).await, supported, hop.secure);
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
            for srv in srv_order(self.srv(&name).await, |total| rand::random_range(0..=total)) {
                match self.addresses(&srv.target).await {
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
        let port: u16 = t.default_port().into();
        let ips = self.addresses(&hop.host).await.map_err(fail)?;
        Ok(ips
            .into_iter()
            .map(|ip| self.target(t, SocketAddr::new(ip, port), hop))
            .collect())
    }

    fn target(&self, transport: Transport, addr: SocketAddr, hop: &NextHop) -> Target {
        Target {
            transport,
            addr,
            host: hop.host.clone(),
        }
    }

    async fn naptr(&self, name: &str) -> Vec<Naptr> {
        let Some(dns) = &self.dns else {
            return Vec::new();
        };
        let Ok(lookup) = dns.lookup(fqdn(name), RecordType::NAPTR).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::NAPTR(n) => Some(Naptr {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    services: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_string(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn srv(&self, name: &str) -> Vec<Srv> {
        let Some(dns) = &self.dns else {
            return Vec::new();
        };
        let Ok(lookup) = dns.lookup(fqdn(name), RecordType::SRV).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_string().trim_end_matches('.').to_string(),
                }),
                _ => None,
            })
            .collect()
    }

    /// A/AAAA of `host`; an error (the resolver's words) when there is none.
    async fn addresses(&self, host: &str) -> std::result::Result<Vec<IpAddr>, String> {
        let ips: Vec<IpAddr> = match &self.dns {
            Some(dns) => dns
                .lookup_ip(fqdn(host))
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .collect(),
            None => tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| e.to_string())?
                .map(|a| a.ip())
                .collect(),
        };
        if ips.is_empty() {
            return Err("no A or AAAA record".into());
        }
        Ok(ips)
    }
}

/// The SRV name of `transport` at `domain`, for the transports that have one.
fn srv_name(transport: Transport, domain: &str) -> Option<(Transport, String)> {
    srv_prefix(transport).map(|p| (transport, format!("{p}.{domain}")))
}

/// The name as absolute, so no search domain of the system's configuration is appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn numeric_hosts_and_explicit_ports_skip_dns() {
        // No DNS server answers on this port: a lookup would fail, so none may happen.
        let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let resolver = Resolver::new(&[dead]);
        let hop = |host: &str, port| NextHop {
            host: host.into(),
            port,
            transport: None,
            secure: false,
        };
        let t = resolver
            .locate(&hop("192.0.2.1", None), &[Transport::Udp])
            .await
            .unwrap();
        assert_eq!(t[0].addr, "192.0.2.1:5060".parse().unwrap());
        let t = resolver
            .locate(&hop("::1", Some(5070)), &[Transport::Udp])
            .await
            .unwrap();
        assert_eq!(
            (t[0].addr, t[0].transport),
            ("[::1]:5070".parse().unwrap(), Transport::Udp)
        );
        let e = resolver
            .locate(
                &NextHop {
                    transport: Some(Transport::Tcp),
                    ..hop("192.0.2.1", None)
                },
                &[Transport::Udp],
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot resolve 192.0.2.1") && e.contains("tcp"),
            "{e}"
        );
    }
}
