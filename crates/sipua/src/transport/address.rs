//! Where this user agent can be reached: the bound SIP socket and the address written into
//! Contact, Via and SDP (the configured public address, the bound one, or for a wildcard bind
//! the local address that routes to the PBX). NAT learning (rport, STUN) will update it here.

use super::family;
use crate::config::EndpointConfig;
use crate::sip::uri::host_port;
use rsipstack::sip;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// The local SIP address and the advertised one.
pub(crate) struct Addressing {
    /// The bound SIP socket.
    pub local: SocketAddr,
    /// The address written into Contact, Via and SDP.
    pub advertised: IpAddr,
}

impl Addressing {
    pub(crate) fn new(config: &EndpointConfig, local: SocketAddr) -> Self {
        Self {
            local,
            advertised: advertised_ip(config, local.ip()),
        }
    }

    /// Our Contact URI for `user`.
    pub(crate) fn contact_uri(&self, user: &str) -> String {
        format!(
            "sip:{user}@{}",
            host_port(&self.advertised.to_string(), self.local.port())
        )
    }

    /// Our Contact header value for `user`.
    pub(crate) fn contact_for(&self, user: &str) -> sip::typed::Contact {
        sip::typed::Contact {
            display_name: None,
            uri: self
                .contact_uri(user)
                .as_str()
                .try_into()
                .unwrap_or_default(),
            params: vec![],
        }
    }
}

fn advertised_ip(config: &EndpointConfig, bind_ip: IpAddr) -> IpAddr {
    if let Some(ip) = config
        .public_address
        .as_deref()
        .and_then(|a| a.trim_matches(['[', ']']).parse::<IpAddr>().ok())
    {
        return ip.to_canonical();
    }
    if !bind_ip.is_unspecified() {
        return bind_ip;
    }
    // A wildcard bind: the source address the kernel would pick towards the PBX. `0.0.0.0`
    // reaches IPv4 PBXs only; `::` is dual stack, so the PBX's own family decides (rsipstack
    // would take the first IPv4 interface whatever the bind: we hand it this address instead).
    let target = config.server.as_deref().and_then(|host| {
        host_port(host, config.server_port)
            .to_socket_addrs()
            .ok()?
            .map(family::unmapped)
            .find(|t| bind_ip.is_ipv6() || t.is_ipv4())
    });
    let probe = |target: SocketAddr| -> Option<IpAddr> {
        let any = match target {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let s = std::net::UdpSocket::bind(any).ok()?;
        s.connect(target).ok()?;
        Some(s.local_addr().ok()?.ip())
    };
    let loopback = match target.map_or(bind_ip.is_ipv6(), |t| t.is_ipv6()) {
        false => IpAddr::V4(Ipv4Addr::LOCALHOST),
        true => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    target
        .and_then(probe)
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(loopback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_brackets_ipv6_and_prefers_the_public_address() {
        let config = EndpointConfig::default();
        let v6 = Addressing::new(&config, "[::1]:5062".parse().unwrap());
        assert_eq!(v6.contact_uri("7779"), "sip:7779@[::1]:5062");
        let public = EndpointConfig {
            public_address: Some("203.0.113.7".into()),
            ..EndpointConfig::default()
        };
        let natted = Addressing::new(&public, "10.0.0.2:5060".parse().unwrap());
        assert_eq!(natted.contact_uri("7779"), "sip:7779@203.0.113.7:5060");
        let wildcard = Addressing::new(&config, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(wildcard.advertised, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn a_dual_stack_wildcard_advertises_the_family_of_the_pbx() {
        let with_server = |server: &str| EndpointConfig {
            server: Some(server.into()),
            ..EndpointConfig::default()
        };
        let any6: SocketAddr = "[::]:5060".parse().unwrap();
        for (server, want) in [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("[::1]", "::1")] {
            let a = Addressing::new(&with_server(server), any6);
            assert_eq!(a.advertised.to_string(), want, "server {server}");
        }
        // no PBX: the bind's own family
        let a = Addressing::new(&EndpointConfig::default(), any6);
        assert_eq!(a.advertised, IpAddr::V6(Ipv6Addr::LOCALHOST));
        // an IPv4 wildcard never advertises IPv6, even towards an IPv6 PBX
        let a = Addressing::new(&with_server("::1"), "0.0.0.0:5060".parse().unwrap());
        assert_eq!(a.advertised, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let bracketed = EndpointConfig {
            public_address: Some("[2001:db8::7]".into()),
            ..EndpointConfig::default()
        };
        let a = Addressing::new(&bracketed, any6);
        assert_eq!(a.contact_uri("7779"), "sip:7779@[2001:db8::7]:5060");
    }
}
