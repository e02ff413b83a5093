//! A TCP connection as this host sees it, and the one form in which the lookup
//! compares connections.

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

/// A TCP connection as seen from this host: its local and remote ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Tuple {
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Tuple {
        Tuple { local, remote }
    }

    /// The same connection with IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// written as IPv4 and flow labels dropped: the form the lookup compares. An
    /// IPv6 scope id (the interface of a link-local address) is kept: the kernel
    /// binds a link-local connection to its interface, and netlink's exact lookup
    /// finds it only when told which one. Comparisons ignore it ([`Tuple::same_ends`]).
    pub fn canonical(&self) -> Tuple {
        Tuple {
            local: canonical_addr(self.local),
            remote: canonical_addr(self.remote),
        }
    }

    /// True when both ends have the same addresses and ports, scope ids aside:
    /// /proc prints no scope, and a connection's addresses and ports name it.
    pub fn same_ends(&self, other: &Tuple) -> bool {
        let ends = |t: &Tuple| (t.local.ip(), t.local.port(), t.remote.ip(), t.remote.port());
        ends(self) == ends(other)
    }

    /// The interface of a link-local IPv6 connection (either end's scope id), or 0.
    pub fn scope_id(&self) -> u32 {
        match (self.local, self.remote) {
            (SocketAddr::V6(l), _) if l.scope_id() != 0 => l.scope_id(),
            (_, SocketAddr::V6(r)) => r.scope_id(),
            _ => 0,
        }
    }

    /// True when both ends are IPv4 (after unmapping) or both IPv6. A mixed tuple
    /// names no connection that can exist.
    pub fn is_one_family(&self) -> bool {
        let t = self.canonical();
        t.local.is_ipv4() == t.remote.is_ipv4()
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.local, self.remote)
    }
}

pub(super) fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, v6.scope_id())),
        },
        SocketAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_addresses_compare_as_ipv4() {
        let t = Tuple::new(sa("[::ffff:127.0.0.1]:80"), sa("[::ffff:10.1.2.3]:4000"));
        assert_eq!(
            t.canonical(),
            Tuple::new(sa("127.0.0.1:80"), sa("10.1.2.3:4000"))
        );
        let v6 = Tuple::new(sa("[::1]:80"), sa("[::1]:4000"));
        assert_eq!(v6.canonical(), v6);
        assert!(t.is_one_family());
        assert!(!Tuple::new(sa("127.0.0.1:1"), sa("[::1]:2")).is_one_family());
        assert!(Tuple::new(sa("127.0.0.1:1"), sa("[::ffff:127.0.0.1]:2")).is_one_family());
    }
}
