//! Where this user agent can be reached: the bound SIP socket, the address of this host
//! written into SDP (the configured public address, the bound one, or for a wildcard bind the
//! local address that routes to the PBX), and the public address written into Contact and Via,
//! which NAT learning (the registrar's `received`/`rport`, STUN) updates while we run.

use super::family;
use crate::config::{EndpointConfig, TransportKind};
use crate::sip::uri::host_port;
use rsipstack::transport::SipAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use tokio::sync::watch;

/// The local SIP address, the advertised one and the public one.
pub(crate) struct Addressing {
    /// The bound SIP socket (UDP; the TCP listener shares its port).
    pub local: SocketAddr,
    /// This host's address as others should see it without NAT learning: SDP `c=` (unless a
    /// call's RTP port has a STUN mapping) and what the SIP stack writes as Via sent-by.
    pub advertised: IpAddr,
    /// The transport our Contact and Via name.
    pub transport: TransportKind,
    /// `publicAddress` was configured: it is the public address, nothing learned replaces it.
    fixed: bool,
    /// The public address and port NAT learning found (rport, STUN), read on every request. A
    /// watch so that each registration learns at once that another one changed it (and
    /// re-registers). `None`: nothing learned, Contact and Via carry `advertised`.
    learned: watch::Sender<Option<SocketAddr>>,
}

impl Addressing {
    pub(crate) fn new(config: &EndpointConfig, local: SocketAddr) -> Self {
        let advertised = advertised_ip(config, local.ip());
        Self {
            local,
            advertised,
            transport: config.transport,
            fixed: config.public_address.is_some(),
            learned: watch::Sender::new(None),
        }
    }

    /// What the SIP stack writes as Via sent-by on UDP (it was given it at start).
    pub(crate) fn stack_sent_by(&self) -> SocketAddr {
        SocketAddr::new(self.advertised, self.local.port())
    }

    /// The address of our Contact at `port` (the SIP port, or the local port of the stream
    /// connection to the PBX): the learned public address, else `advertised` at `port`.
    pub(crate) fn public_for(&self, port: u16) -> SocketAddr {
        self.learned
            .borrow()
            .unwrap_or(SocketAddr::new(self.advertised, port))
    }

    /// The address of our Contact and Via on the SIP socket now.
    pub(crate) fn public(&self) -> SocketAddr {
        self.public_for(self.local.port())
    }

    /// Takes `addr` as our public address; true when that changed it. A configured
    /// `publicAddress` wins over anything learned.
    pub(crate) fn learn(&self, addr: SocketAddr) -> bool {
        if self.fixed {
            return false;
        }
        self.learned.send_if_modified(|current| {
            let changed = *current != Some(addr);
            *current = Some(addr);
            changed
        })
    }

    /// Notified whenever the public address changes.
    pub(crate) fn watch(&self) -> watch::Receiver<Option<SocketAddr>> {
        self.learned.subscribe()
    }

    /// Our Contact URI for `user` at `port` (the SIP port, or on a stream transport the
    /// local port of the connection to the PBX, which is where the PBX reaches us: behind
    /// NAT nothing else is, and a PBX that reuses connections by address finds it so), with
    /// the public address once learned.
    pub(crate) fn contact_uri(&self, user: &str, port: u16) -> String {
        let public = self.public_for(port);
        let host = host_port(&public.ip().to_string(), public.port());
        match self.transport {
            TransportKind::Udp => format!("sip:{user}@{host}"),
            t => format!("sip:{user}@{host};transport={}", t.as_str()),
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
        host_port(host, config.server_port.unwrap_or(5060))
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

    #[test]
    fn the_public_address_is_learned_unless_configured() {
        let config = EndpointConfig::default();
        let a = Addressing::new(&config, "10.0.0.2:5060".parse().unwrap());
        let changes = a.watch();
        assert_eq!(a.public(), "10.0.0.2:5060".parse().unwrap());
        assert!(a.learn("198.51.100.4:31000".parse().unwrap()));
        assert!(
            !a.learn("198.51.100.4:31000".parse().unwrap()),
            "no change, no news"
        );
        assert!(changes.has_changed().unwrap());
        assert_eq!(a.contact_uri("7779", 5060), "sip:7779@198.51.100.4:31000");
        // SDP and the stack's Via keep the host's own address
        assert_eq!(a.advertised, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(a.stack_sent_by(), "10.0.0.2:5060".parse().unwrap());
        let fixed = EndpointConfig {
            public_address: Some("203.0.113.7".into()),
            ..EndpointConfig::default()
        };
        let f = Addressing::new(&fixed, "10.0.0.2:5060".parse().unwrap());
        assert!(!f.learn("198.51.100.4:31000".parse().unwrap()));
        assert_eq!(f.contact_uri("7779", 5060), "sip:7779@203.0.113.7:5060");
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
        assert_eq!(a.contact_uri("7779", 5060), "sip:7779@[2001:db8::7]:5060");
    }
}
