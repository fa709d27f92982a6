//! Where requests go: the resolver, the transports this endpoint has, and the memory of bad
//! targets, in one object the whole endpoint shares. It also stands in for rsipstack's
//! `DomainResolver`, which the stack calls for a next hop named by a host name (an in-dialog
//! request to a Contact or Record-Route by name): the stack's default resolver has no NAPTR,
//! ignores `dnsServers` and picks the first SRV target even when it failed a moment ago.

use super::admission::Admission;
use super::dns::Resolver;
use super::icmp::Unreachable;
use super::resolve::{NextHop, Target};
use super::targets::BadTargets;
use crate::error::{Error, Result};
use rsipstack::sip::Transport;
use rsipstack::transport::transport_layer::DomainResolver;
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The resolver with the endpoint's transports and its bad-target memory.
pub(crate) struct Locator {
    resolver: Resolver,
    bad: BadTargets,
    supported: Vec<Transport>,
    /// The SIP socket's address: a target of a family it cannot send to is dropped (a `::`
    /// socket is dual stack and reaches both).
    local: SocketAddr,
    unreachable: Unreachable,
    /// Told every resolution, so the PBX's admitted addresses follow DNS.
    admission: Arc<Admission>,
}

impl Locator {
    /// A locator on `dns_servers` (empty: the system's), for targets over `supported` of the
    /// address family of `local` (the SIP socket); `unreachable` reports the destinations the
    /// transports found unreachable.
    pub(crate) fn new(
        dns_servers: &[SocketAddr],
        supported: Vec<Transport>,
        local: SocketAddr,
        unreachable: Unreachable,
        admission: Arc<Admission>,
    ) -> Self {
        Self {
            resolver: Resolver::new(dns_servers),
            bad: BadTargets::default(),
            supported,
            local,
            unreachable,
            admission,
        }
    }

    /// The destinations found unreachable from now on (ICMP errors); see
    /// [`super::unreachable_reported`].
    pub(crate) fn watch_unreachable(&self) -> tokio::sync::broadcast::Receiver<SocketAddr> {
        self.unreachable.subscribe()
    }

    /// The targets of `hop` in the order to try them: RFC 3263's order, with the targets that
    /// failed recently moved last.
    pub(crate) async fn locate(&self, hop: &NextHop) -> Result<Vec<Target>> {
        let mut targets = self.resolver.locate(hop, &self.supported).await?;
        self.admission
            .resolved(&hop.host, targets.iter().map(|t| t.addr.ip()));
        targets.retain(|t| super::family::sendable(self.local, t.addr).is_ok());
        if targets.is_empty() {
            let (has, lacks) = if self.local.is_ipv4() {
                ("IPv4", "IPv6")
            } else {
                ("IPv6", "IPv4")
            };
            return Err(Error::Resolve {
                name: hop.host.clone(),
                cause: format!("only {lacks} addresses, and the SIP socket is {has}"),
            });
        }
        Ok(self.bad.order(targets, Instant::now()))
    }

    /// `target` failed (timeout, transport error, 503 with its Retry-After).
    pub(crate) fn failed(&self, target: &Target, retry_after: Option<Duration>) {
        tracing::info!(target = %target.addr, transport = %target.transport, "SIP target failed; trying it last for a while");
        self.bad.mark(target, Instant::now(), retry_after);
    }

    /// `target` answered.
    pub(crate) fn answered(&self, target: &Target) {
        self.bad.clear(target);
    }
}

/// [`Locator`] as the SIP stack's resolver of host names.
pub(crate) struct StackResolver(pub Arc<Locator>);

#[async_trait::async_trait]
impl DomainResolver for StackResolver {
    async fn resolve(&self, target: &SipAddr) -> rsipstack::Result<SipAddr> {
        let hop = NextHop {
            host: target.addr.host.to_string(),
            port: target.addr.port.map(u16::from),
            transport: target.r#type,
            secure: false,
        };
        let fail = |e: String| rsipstack::Error::DnsResolutionError(e);
        let targets = self.0.locate(&hop).await.map_err(|e| fail(e.to_string()))?;
        targets
            .first()
            .map(Target::sip_addr)
            .ok_or_else(|| fail(format!("cannot resolve {}: no target", hop.host)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(host: &str) -> NextHop {
        NextHop {
            host: host.into(),
            port: Some(5070),
            transport: None,
            secure: false,
        }
    }

    #[tokio::test]
    async fn targets_of_the_other_family_are_dropped_and_bad_ones_go_last() {
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let locator = Locator::new(
            &[],
            vec![Transport::Udp],
            local,
            Unreachable::default(),
            Arc::default(),
        );
        let e = locator.locate(&hop("::1")).await.unwrap_err().to_string();
        assert!(
            e.contains("cannot resolve ::1: only IPv6 addresses, and the SIP socket is IPv4"),
            "{e}"
        );
        // a dual-stack `::` socket reaches both families
        let any6: SocketAddr = "[::]:5060".parse().unwrap();
        let dual = Locator::new(
            &[],
            vec![Transport::Udp],
            any6,
            Unreachable::default(),
            Arc::default(),
        );
        assert_eq!(dual.locate(&hop("127.0.0.2")).await.unwrap().len(), 1);
        assert_eq!(dual.locate(&hop("::1")).await.unwrap().len(), 1);
        let target = locator.locate(&hop("127.0.0.2")).await.unwrap().remove(0);
        assert_eq!(target.addr, "127.0.0.2:5070".parse().unwrap());
        // One target only: still returned when bad (there is nothing else to try).
        locator.failed(&target, None);
        assert_eq!(locator.locate(&hop("127.0.0.2")).await.unwrap()[0], target);
    }
}
