//! Where this user agent can be reached: the bound SIP socket and the address written into
//! Contact, Via and SDP (the configured public address, the bound one, or for a wildcard bind
//! the local address that routes to the PBX). NAT learning (rport, STUN) will update it here.

use crate::config::{EndpointConfig, TransportKind};
use crate::sip::uri::host_port;
use rsipstack::sip;
use rsipstack::transport::SipAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The local SIP address and the advertised one.
pub(crate) struct Addressing {
    /// The bound SIP socket (UDP; the TCP listener shares its port).
    pub local: SocketAddr,
    /// The address written into Contact, Via and SDP.
    pub advertised: IpAddr,
    /// The transport our Contact and Via name.
    pub transport: TransportKind,
}

impl Addressing {
    pub(crate) fn new(config: &EndpointConfig, local: SocketAddr) -> Self {
        Self {
            local,
            advertised: advertised_ip(config, local.ip()),
            transport: config.transport,
        }
    }

    /// Our Contact URI for `user` at `port` (the SIP port, or on a stream transport the
    /// local port of the connection to the PBX, which is where the PBX reaches us: behind
    /// NAT nothing else is, and a PBX that reuses connections by address finds it so).
    pub(crate) fn contact_uri(&self, user: &str, port: u16) -> String {
        let host = host_port(&self.advertised.to_string(), port);
        match self.transport {
            TransportKind::Udp => format!("sip:{user}@{host}"),
            t => format!("sip:{user}@{host};transport={}", t.as_str()),
        }
    }

    /// Our Contact header value for `user` at `port`.
    pub(crate) fn contact_for(&self, user: &str, port: u16) -> sip::typed::Contact {
        sip::typed::Contact {
            display_name: None,
            uri: self
                .contact_uri(user, port)
                .as_str()
                .try_into()
                .unwrap_or_default(),
            params: vec![],
        }
    }

    /// The sent-by of our Via at `port`, with the transport in use.
    pub(crate) fn via_addr(&self, port: u16) -> SipAddr {
        SipAddr {
            r#type: Some(self.transport.sip_transport()),
            addr: SocketAddr::new(self.advertised, port).into(),
        }
    }
}

fn advertised_ip(config: &EndpointConfig, bind_ip: IpAddr) -> IpAddr {
    if let Some(ip) = config
        .public_address
        .as_deref()
        .and_then(|a| a.parse().ok())
    {
        return ip;
    }
    if !bind_ip.is_unspecified() {
        return bind_ip;
    }
    // The source address the kernel would pick towards the PBX, of the bind's family.
    let probe = |target: &str| -> Option<IpAddr> {
        let any = match bind_ip {
            IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let s = std::net::UdpSocket::bind(any).ok()?;
        s.connect(target).ok()?;
        Some(s.local_addr().ok()?.ip())
    };
    let loopback = match bind_ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    config
        .server
        .as_deref()
        .and_then(|host| probe(&host_port(host, config.server_port)))
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
        assert_eq!(v6.contact_uri("7779", 5062), "sip:7779@[::1]:5062");
        let public = EndpointConfig {
            public_address: Some("203.0.113.7".into()),
            ..EndpointConfig::default()
        };
        let natted = Addressing::new(&public, "10.0.0.2:5060".parse().unwrap());
        assert_eq!(
            natted.contact_uri("7779", 5060),
            "sip:7779@203.0.113.7:5060"
        );
        let tcp = EndpointConfig {
            transport: TransportKind::Tcp,
            ..EndpointConfig::default()
        };
        let tcp = Addressing::new(&tcp, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(
            tcp.contact_uri("7779", 40312),
            "sip:7779@127.0.0.1:40312;transport=tcp"
        );
        assert_eq!(tcp.via_addr(40312).to_string(), "TCP 127.0.0.1:40312");
        let wildcard = Addressing::new(&config, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(wildcard.advertised, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
