//! The RTP port pool: hands out even/odd UDP port pairs (RTP on the even port, RTCP on the
//! next one, RFC 3550 section 11) from the configured `pbx_rtp_port_min..=pbx_rtp_port_max`.
//!
//! Why a pool rather than binding port 0: PBXs and firewalls are configured for a fixed RTP
//! range, so every call's media must land inside it. Why bind at allocation: binding is
//! the only reliable way to know a port is free, and holding the sockets reserves the pair
//! against other processes (another softphone, a second instance of the service) until the
//! call ends. Ports that another process holds are skipped. The cursor moves round-robin,
//! so a pair released by a call that just ended is not handed out again at once: late
//! packets of the old call would otherwise reach the new one.
//!
//! The sockets are plain blocking `std::net::UdpSocket`s; the media layer calls
//! `set_nonblocking(true)` and converts them to tokio sockets.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Error;

/// A thread-safe pool of RTP/RTCP port pairs; clones share the same pool.
#[derive(Clone)]
pub(crate) struct PortPool {
    inner: Arc<Inner>,
}

struct Inner {
    /// The range as configured, for error messages.
    min: u16,
    max: u16,
    /// The first even port of the range, as u32 so `port + 1` never overflows.
    first: u32,
    /// How many pairs fit in the range.
    pairs: u32,
    bind_ip: IpAddr,
    state: Mutex<State>,
}

struct State {
    /// Index (0..pairs) of the pair to try first on the next allocation.
    cursor: u32,
    /// RTP ports currently leased by this pool.
    in_use: HashSet<u16>,
}

impl PortPool {
    /// Creates a pool over `min..=max` binding on `bind_ip` (the local media address, or
    /// an unspecified address for all interfaces).
    ///
    /// The first pair starts at the first even port `>= min` (port 0 excluded), the last
    /// one must have its RTCP port `<= max`. An empty or inverted range is accepted here
    /// and reported by [`allocate`](Self::allocate) as [`Error::PortsExhausted`], so a
    /// configuration mistake surfaces with the range in the message.
    pub(crate) fn new(min: u16, max: u16, bind_ip: IpAddr) -> PortPool {
        let lo = u32::from(min.max(1));
        let first = lo + (lo % 2);
        let hi = u32::from(max);
        let pairs = if hi > first {
            (hi - first - 1) / 2 + 1
        } else {
            0
        };
        PortPool {
            inner: Arc::new(Inner {
                min,
                max,
                first,
                pairs,
                bind_ip,
                state: Mutex::new(State {
                    cursor: 0,
                    in_use: HashSet::new(),
                }),
            }),
        }
    }

    /// Reserves the next free pair: binds the even RTP port and the RTCP port above it.
    ///
    /// Pairs leased from this pool, and pairs where either port is held by another
    /// socket, are skipped. Errors: [`Error::PortsExhausted`] when no pair is free,
    /// [`Error::Transport`] when binding fails for another reason than the port being
    /// taken (for example `bind_ip` is not an address of this host).
    pub(crate) fn allocate(&self) -> Result<RtpPortPair, Error> {
        let inner = &self.inner;
        let mut state = self.lock();
        for step in 0..inner.pairs {
            let index = (state.cursor + step) % inner.pairs;
            // first + 2*index + 1 <= max <= 65535, so both fit in u16.
            let port = (inner.first + 2 * index) as u16;
            if state.in_use.contains(&port) {
                continue;
            }
            let Some(rtp) = bind(inner.bind_ip, port)? else {
                continue;
            };
            let Some(rtcp) = bind(inner.bind_ip, port + 1)? else {
                continue;
            };
            state.in_use.insert(port);
            state.cursor = (index + 1) % inner.pairs;
            return Ok(RtpPortPair {
                rtp,
                rtcp,
                rtp_port: port,
                lease: PortLease {
                    pool: Arc::clone(inner),
                    port,
                },
            });
        }
        Err(Error::PortsExhausted {
            min: inner.min,
            max: inner.max,
        })
    }

    /// How many pairs are currently leased from this pool.
    pub(crate) fn in_use(&self) -> usize {
        self.lock().in_use.len()
    }

    /// How many pairs the range holds in total.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.inner.pairs as usize
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.inner)
    }
}

impl std::fmt::Debug for PortPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortPool")
            .field("min", &self.inner.min)
            .field("max", &self.inner.max)
            .field("bind_ip", &self.inner.bind_ip)
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// The state stays consistent even if a holder panicked (every update is one insert or
/// remove), so a poisoned lock is simply taken over.
fn lock_state(inner: &Inner) -> MutexGuard<'_, State> {
    inner.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Binds one port; `Ok(None)` when it is taken. `PermissionDenied` counts as taken too:
/// Windows reports ports in its excluded ranges (Hyper-V, WSL) that way.
fn bind(ip: IpAddr, port: u16) -> Result<Option<UdpSocket>, Error> {
    match crate::transport::family::bind_udp(SocketAddr::new(ip, port)) {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::Transport(format!(
            "cannot bind RTP port {}: {e}",
            SocketAddr::new(ip, port)
        ))),
    }
}

/// A reserved RTP/RTCP port pair. Dropping it returns the ports to the pool.
///
/// The sockets can be moved out (`let RtpPortPair { rtp, rtcp, lease, .. } = pair;`); the
/// pair stays reserved in the pool for as long as `lease` lives, so keep it with them.
#[derive(Debug)]
pub(crate) struct RtpPortPair {
    /// The RTP socket, bound on the even port.
    pub rtp: UdpSocket,
    /// The RTCP socket, bound on `rtp_port + 1`.
    pub rtcp: UdpSocket,
    /// The even RTP port.
    pub rtp_port: u16,
    /// The reservation in the pool, released on drop.
    pub lease: PortLease,
}

impl RtpPortPair {
    /// The RTCP port, `rtp_port + 1`.
    #[cfg(test)]
    pub(crate) fn rtcp_port(&self) -> u16 {
        self.rtp_port + 1
    }
}

/// The pool's record that a pair is leased; dropping it frees the pair for reuse.
pub(crate) struct PortLease {
    pool: Arc<Inner>,
    port: u16,
}

impl PortLease {
    /// The leased RTP port.
    #[cfg(test)]
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Debug for PortLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortLease")
            .field("port", &self.port)
            .finish()
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        lock_state(&self.pool).in_use.remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// An even base in 40000-60000 whose next `len` ports are all free right now, so
    /// parallel tests (and other processes) rarely collide.
    fn free_range(len: u16) -> u16 {
        use rand::RngExt;
        let mut rng = rand::rng();
        loop {
            let base = rng.random_range(20_000u16..30_000) * 2;
            let held: Vec<_> = (base..base + len)
                .map(|p| UdpSocket::bind((LOCALHOST, p)))
                .collect();
            if held.iter().all(|s| s.is_ok()) {
                return base;
            }
        }
    }

    #[test]
    fn allocates_even_rtp_and_next_rtcp() {
        let base = free_range(8);
        let pool = PortPool::new(base, base + 7, LOCALHOST);
        assert_eq!(pool.capacity(), 4);
        let pair = pool.allocate().unwrap();
        assert_eq!(pair.rtp_port % 2, 0);
        assert_eq!(pair.rtp_port, base);
        assert_eq!(pair.rtcp_port(), base + 1);
        assert_eq!(
            pair.rtp.local_addr().unwrap(),
            SocketAddr::new(LOCALHOST, base)
        );
        assert_eq!(
            pair.rtcp.local_addr().unwrap(),
            SocketAddr::new(LOCALHOST, base + 1)
        );
        assert_eq!(pair.lease.port(), base);
        assert_eq!(pool.in_use(), 1);
    }

    #[test]
    fn odd_min_starts_at_next_even_port() {
        let base = free_range(6);
        let pool = PortPool::new(base + 1, base + 5, LOCALHOST);
        assert_eq!(pool.capacity(), 2);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!((a.rtp_port, b.rtp_port), (base + 2, base + 4));
        assert!(pool.allocate().is_err());
    }

    #[test]
    fn capacity_edge_cases() {
        assert_eq!(PortPool::new(10000, 12000, LOCALHOST).capacity(), 1000);
        assert_eq!(PortPool::new(10000, 10001, LOCALHOST).capacity(), 1);
        assert_eq!(PortPool::new(10000, 10000, LOCALHOST).capacity(), 0);
        assert_eq!(PortPool::new(10001, 10002, LOCALHOST).capacity(), 0);
        assert_eq!(PortPool::new(12000, 10000, LOCALHOST).capacity(), 0);
        assert_eq!(PortPool::new(0, 3, LOCALHOST).capacity(), 1);
        assert_eq!(PortPool::new(65534, 65535, LOCALHOST).capacity(), 1);
        assert_eq!(PortPool::new(65535, 65535, LOCALHOST).capacity(), 0);
        assert_eq!(PortPool::new(0, 65535, LOCALHOST).capacity(), 32767);
    }

    #[test]
    fn exhaustion_reports_the_configured_range() {
        let base = free_range(6);
        let pool = PortPool::new(base, base + 5, LOCALHOST);
        let pairs: Vec<_> = (0..3).map(|_| pool.allocate().unwrap()).collect();
        let mut ports: Vec<_> = pairs.iter().map(|p| p.rtp_port).collect();
        ports.sort();
        assert_eq!(ports, vec![base, base + 2, base + 4]);
        assert_eq!(pool.in_use(), 3);
        match pool.allocate() {
            Err(Error::PortsExhausted { min, max }) => assert_eq!((min, max), (base, base + 5)),
            other => panic!("expected PortsExhausted, got {other:?}"),
        }
        let msg = pool.allocate().unwrap_err().to_string();
        assert_eq!(msg, format!("RTP port range {base}-{} exhausted", base + 5));
    }

    #[test]
    fn empty_range_is_exhausted() {
        let pool = PortPool::new(50001, 50001, LOCALHOST);
        assert!(matches!(
            pool.allocate(),
            Err(Error::PortsExhausted {
                min: 50001,
                max: 50001
            })
        ));
        let pool = PortPool::new(50010, 50000, LOCALHOST);
        assert!(matches!(pool.allocate(), Err(Error::PortsExhausted { .. })));
    }

    #[test]
    fn release_on_drop() {
        let base = free_range(4);
        let pool = PortPool::new(base, base + 3, LOCALHOST);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert!(pool.allocate().is_err());
        let freed = a.rtp_port;
        drop(a);
        assert_eq!(pool.in_use(), 1);
        let c = pool.allocate().unwrap();
        assert_eq!(c.rtp_port, freed);
        drop(b);
        drop(c);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn released_pair_is_not_reused_at_once() {
        let base = free_range(6);
        let pool = PortPool::new(base, base + 5, LOCALHOST);
        let a = pool.allocate().unwrap();
        let first = a.rtp_port;
        drop(a);
        let b = pool.allocate().unwrap();
        assert_ne!(b.rtp_port, first);
        let c = pool.allocate().unwrap();
        assert_ne!(c.rtp_port, first);
        // The cursor wraps around to the beginning.
        let d = pool.allocate().unwrap();
        assert_eq!(d.rtp_port, first);
    }

    #[test]
    fn skips_ports_held_by_another_socket() {
        let base = free_range(8);
        let _rtp_holder = UdpSocket::bind((LOCALHOST, base)).unwrap();
        let _rtcp_holder = UdpSocket::bind((LOCALHOST, base + 3)).unwrap();
        let pool = PortPool::new(base, base + 7, LOCALHOST);
        let pair = pool.allocate().unwrap();
        assert_eq!(pair.rtp_port, base + 4);
        let pair2 = pool.allocate().unwrap();
        assert_eq!(pair2.rtp_port, base + 6);
        assert!(matches!(pool.allocate(), Err(Error::PortsExhausted { .. })));
        assert_eq!(pool.in_use(), 2);
    }

    #[test]
    fn moved_out_sockets_keep_the_lease() {
        let base = free_range(2);
        let pool = PortPool::new(base, base + 1, LOCALHOST);
        let RtpPortPair {
            rtp, rtcp, lease, ..
        } = pool.allocate().unwrap();
        assert_eq!(pool.in_use(), 1);
        drop((rtp, rtcp));
        assert_eq!(pool.in_use(), 1);
        drop(lease);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.allocate().unwrap().rtp_port, base);
    }

    #[test]
    fn lease_released_while_sockets_live_skips_the_port() {
        let base = free_range(2);
        let pool = PortPool::new(base, base + 1, LOCALHOST);
        let RtpPortPair {
            rtp, rtcp, lease, ..
        } = pool.allocate().unwrap();
        drop(lease);
        // The pool thinks the pair is free but binding tells otherwise.
        assert!(matches!(pool.allocate(), Err(Error::PortsExhausted { .. })));
        drop((rtp, rtcp));
        assert!(pool.allocate().is_ok());
    }

    #[test]
    fn clones_share_the_pool_across_threads() {
        let base = free_range(40);
        let pool = PortPool::new(base, base + 39, LOCALHOST);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    (0..5).map(|_| pool.allocate().unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let pairs: Vec<RtpPortPair> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let ports: HashSet<u16> = pairs.iter().map(|p| p.rtp_port).collect();
        assert_eq!(ports.len(), 20);
        assert_eq!(pool.in_use(), 20);
        drop(pairs);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn foreign_address_is_a_transport_error() {
        // 192.0.2.1 (TEST-NET-1) is not an address of this host.
        let pool = PortPool::new(50000, 50001, "192.0.2.1".parse().unwrap());
        match pool.allocate() {
            Err(Error::Transport(msg)) => assert!(msg.contains("192.0.2.1:50000"), "{msg}"),
            other => panic!("expected a transport error, got {other:?}"),
        }
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.inner.bind_ip, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert!(format!("{pool:?}").contains("192.0.2.1"));
    }
}
