//! The DNS client of server location: hickory-resolver on the configured `dnsServers` (each
//! with its port) or the system's configuration, answering the [`Lookups`] of RFC 3263 (the
//! rules are in [`super::resolve`]). When the system has no readable configuration, A/AAAA
//! come from the OS (`getaddrinfo`, hosts file included) and there is no NAPTR or SRV.

use super::resolve::{locate, Lookups, Naptr, NextHop, Srv, Target};
use crate::error::Result;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use rsipstack::sip::Transport;
use std::net::{IpAddr, SocketAddr};

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
        locate(self, hop, supported, &mut |total| {
            rand::random_range(0..=total)
        })
        .await
    }
}

#[async_trait::async_trait]
impl Lookups for Resolver {
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

/// The name as absolute, so no search domain of the system's configuration is appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}
