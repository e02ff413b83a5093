//! A TCP connection as this host sees it, the one form in which the lookup
//! compares connections, and an endpoint as a user writes one.
//!
//! **Scope ids.** A link-local IPv6 address (fe80::/10) names a host only on one
//! link: the same pair of addresses on two interfaces are two connections, to two
//! hosts. So a link-local end asked about with its interface (`[fe80::1%eth0]:22`,
//! or the interface's index; the server always knows it, from the ident
//! connection) matches only a connection on that interface. sock_diag reports the
//! interface a socket is bound to, and the kernel binds every link-local connection
//! to its interface; /proc/net/tcp6 has no such column, so /proc cannot answer such
//! a question (see [`Tuple::link_local_scope`]). Asked without its interface, a
//! link-local address matches on any interface, as before. On any other address a
//! scope id means nothing to the kernel, and nothing here.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

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

    /// The interface a link-local connection was asked about on: the scope id of
    /// its link-local end (the local one if both are). None when no end is a
    /// link-local IPv6 address with a scope id: then any interface matches.
    pub fn link_local_scope(&self) -> Option<u32> {
        [self.local, self.remote]
            .into_iter()
            .find_map(|end| match end {
                SocketAddr::V6(v6) if is_link_local(v6.ip()) && v6.scope_id() != 0 => {
                    Some(v6.scope_id())
                }
                _ => None,
            })
    }

    /// True when the two ends name different interfaces: no connection can have
    /// them both.
    pub fn has_two_scopes(&self) -> bool {
        let scope = |end: SocketAddr| match end {
            SocketAddr::V6(v6) if is_link_local(v6.ip()) && v6.scope_id() != 0 => {
                Some(v6.scope_id())
            }
            _ => None,
        };
        matches!((scope(self.local), scope(self.remote)), (Some(l), Some(r)) if l != r)
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

/// fe80::/10: unicast link-local.
fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// An endpoint as a user writes it: `ADDR:PORT`, `[V6ADDR]:PORT`, or with the
/// interface of a link-local IPv6 address, `[V6ADDR%SCOPE]:PORT`, SCOPE an
/// interface name or index.
pub fn parse_endpoint(s: &str) -> Result<SocketAddr, String> {
    let std_error = match s.parse::<SocketAddr>() {
        Ok(addr) => return Ok(addr),
        Err(e) => e.to_string(),
    };
    let scoped = s
        .strip_prefix('[')
        .and_then(|rest| rest.rsplit_once("]:"))
        .filter(|(addr, _)| addr.contains('%'));
    let Some((addr, port)) = scoped else {
        return Err(std_error);
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("'{port}' is not a port number"))?;
    let mut endpoint = parse_scoped_ip(addr)?;
    endpoint.set_port(port);
    Ok(endpoint)
}

/// An address as a user writes it, perhaps with the interface of a link-local IPv6
/// address: `ADDR`, `V6ADDR%SCOPE` or `[V6ADDR%SCOPE]`, SCOPE an interface name or
/// index; port 0.
pub fn parse_address(s: &str) -> Result<SocketAddr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(s);
    if bare.contains('%') {
        return parse_scoped_ip(bare);
    }
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 0))
        .map_err(|e| e.to_string())
}

/// `V6ADDR%SCOPE`, port 0.
fn parse_scoped_ip(s: &str) -> Result<SocketAddr, String> {
    let (ip, scope) = s
        .split_once('%')
        .ok_or_else(|| format!("'{s}' has no %SCOPE"))?;
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| format!("'{ip}' is not an IPv6 address (only IPv6 addresses have a scope)"))?;
    let scope = match scope.parse::<u32>() {
        Ok(index) => index,
        Err(_) if !scope.is_empty() => nix::net::if_::if_nametoindex(scope)
            .map_err(|_| format!("no network interface named '{scope}'"))?,
        Err(_) => return Err(format!("'{s}': an empty scope after %")),
    };
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, scope)))
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

    #[test]
    fn an_endpoint_may_name_its_interface_by_name_or_index() {
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        let want = |ip: &str, port, scope| {
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip.parse().unwrap(),
                port,
                0,
                scope,
            )))
        };
        assert_eq!(parse_endpoint("[fe80::1%lo]:22"), want("fe80::1", 22, lo));
        assert_eq!(parse_endpoint("[fe80::1%7]:22"), want("fe80::1", 22, 7));
        assert_eq!(parse_endpoint("127.0.0.1:22"), Ok(sa("127.0.0.1:22")));
        assert_eq!(parse_endpoint("[::1]:22"), Ok(sa("[::1]:22")));
        assert_eq!(
            parse_endpoint("bogus"),
            Err("invalid socket address syntax".into())
        );
        assert_eq!(
            parse_endpoint("[fe80::1%no-such-if0]:22"),
            Err("no network interface named 'no-such-if0'".into())
        );
        assert!(parse_endpoint("[fe80::1%lo]:99999").is_err());
        assert!(parse_endpoint("[127.0.0.1%lo]:22").is_err());
        assert!(parse_endpoint("[fe80::1%]:22").is_err());
        assert_eq!(parse_address("fe80::1%lo"), want("fe80::1", 0, lo));
        assert_eq!(parse_address("[fe80::1%lo]"), want("fe80::1", 0, lo));
        assert_eq!(parse_address("127.0.0.2"), Ok(sa("127.0.0.2:0")));
        assert!(parse_address("fe80::1%no-such-if0").is_err());
    }

    #[test]
    fn only_a_link_local_end_with_a_scope_names_an_interface() {
        let t = |l: &str, r: &str| Tuple::new(sa(l), sa(r));
        assert_eq!(
            t("[fe80::1%3]:22", "[fe80::2%3]:4000").link_local_scope(),
            Some(3)
        );
        assert_eq!(t("[fe80::1]:22", "[fe80::2]:4000").link_local_scope(), None);
        // A scope on a global address means nothing.
        assert_eq!(
            t("[2001:db8::1%3]:22", "[2001:db8::2%3]:1").link_local_scope(),
            None
        );
        assert!(t("[fe80::1%3]:22", "[fe80::2%4]:1").has_two_scopes());
        assert!(!t("[fe80::1%3]:22", "[fe80::2]:1").has_two_scopes());
        assert!(!t("[2001:db8::1%3]:22", "[2001:db8::2%4]:1").has_two_scopes());
    }
}
