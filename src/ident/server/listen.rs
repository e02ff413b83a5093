//! `--listen`: where a standalone server binds. `ADDR:PORT` (`[V6ADDR]:PORT`) is
//! that address; `PORT` or `:PORT` is every address on that port, as oidentd
//! listens by default: dual stack, one IPv6 socket that also takes IPv4 (its
//! IPV6_V6ONLY off), two sockets where the system keeps the families apart, IPv4
//! alone where IPv6 is absent.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::str::FromStr;

use anyhow::Context;
use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage, sockopt};

/// One `--listen` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Addr(SocketAddr),
    /// Every address of this host, IPv4 and IPv6, on this port.
    EveryAddress(u16),
}

const EXPECTED: &str = "expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT";

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Listen, String> {
        let port_only = s.strip_prefix(':').unwrap_or(s);
        if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
            return port_only
                .parse()
                .map(Listen::EveryAddress)
                .map_err(|_| format!("port {port_only} is out of range (0 to 65535)"));
        }
        match crate::ident::lookup::parse_endpoint(s) {
            Ok(addr) => Ok(Listen::Addr(addr)),
            // A scope was written: what is wrong with it is the message.
            Err(why) if s.contains('%') => Err(why),
            Err(_) => Err(why_not(s)),
        }
    }
}

/// What is wrong with a `--listen` value that is neither a socket address nor a port.
fn why_not(s: &str) -> String {
    if s.is_empty() {
        return format!("empty; {EXPECTED}");
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(_) => format!("no port; {EXPECTED} (here {s}:PORT)"),
            // `::1:113` is an address too: only brackets say where the port begins.
            IpAddr::V6(_) => format!("an IPv6 address goes in brackets: [{s}]:PORT"),
        };
    }
    if let Some((host, port)) = s.rsplit_once(':') {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().is_ok() {
            return format!("{port:?} is not a port (0 to 65535); {EXPECTED}");
        }
        if !host.is_empty() && !host.contains(':') {
            return format!("{host:?} is not an IP address (names are not resolved); {EXPECTED}");
        }
    }
    EXPECTED.to_string()
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Addr(a) => a.fmt(f),
            Listen::EveryAddress(port) => write!(f, ":{port}"),
        }
    }
}

/// Binds `listen`: one socket, or for every address the one or two it takes.
pub fn bind(listen: Listen) -> anyhow::Result<Vec<TcpListener>> {
    match listen {
        Listen::Addr(a) => Ok(vec![TcpListener::from(
            listener(a, |_| Ok(())).with_context(|| format!("binding {a}"))?,
        )]),
        Listen::EveryAddress(port) => every_address(port, clear_v6only),
    }
}

/// Takes IPv4 on an IPv6 socket, where the system allows it.
fn clear_v6only(fd: &OwnedFd) -> nix::Result<()> {
    sock::setsockopt(fd, sockopt::Ipv6V6Only, &false)
}

/// Every address on `port`. `prepare_v6` (the seam the tests use to stand in for
/// a system that keeps the families apart) runs on the IPv6 socket before it is
/// bound. Whether that socket took IPv4 is read back afterwards, not assumed from
/// `prepare_v6`'s result, so a system default either way is served right.
fn every_address(
    port: u16,
    prepare_v6: impl FnOnce(&OwnedFd) -> nix::Result<()>,
) -> anyhow::Result<Vec<TcpListener>> {
    let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let v6 = match listener(any6, prepare_v6) {
        Ok(v6) => v6,
        // No IPv6 here (a kernel booted with ipv6.disable=1, a sandbox): IPv4 alone.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
            ) =>
        {
            let v4 = listener(any4, |_| Ok(())).with_context(|| format!("binding {any4}"))?;
            return Ok(vec![TcpListener::from(v4)]);
        }
        Err(e) => return Err(e).with_context(|| format!("binding {any6}")),
    };
    if sock::getsockopt(&v6, sockopt::Ipv6V6Only) == Ok(false) {
        return Ok(vec![TcpListener::from(v6)]);
    }
    let v6 = TcpListener::from(v6);
    // The same port for IPv4, also when port 0 let the kernel pick it.
    let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, v6.local_addr()?.port()));
    let v4 = listener(any4, |_| Ok(())).with_context(|| format!("binding {any4}"))?;
    Ok(vec![v6, TcpListener::from(v4)])
}

/// A listening socket on `addr`, `prepare` run on it before the bind. Like std's
/// `TcpListener::bind`: close-on-exec, SO_REUSEADDR (a restart binds while the old
/// server's connections linger in TIME_WAIT); but with the longest accept queue the
/// kernel allows (std asks for 128). Connections arriving faster than the server
/// accepts them fill the queue, and then the kernel drops every new SYN, a querier's
/// as much as a flooder's (the querier retries a second later): the longer the
/// queue, the later that begins.
fn listener(
    addr: SocketAddr,
    prepare: impl FnOnce(&OwnedFd) -> nix::Result<()>,
) -> std::io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = sock::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    sock::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    // A system that will not mix the families says so here; the caller reads back
    // what the socket ended up as.
    let _ = prepare(&fd);
    sock::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    sock::listen(&fd, sock::Backlog::MAXCONN)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_listener_has_the_longest_accept_queue_allowed() {
        let listen = Listen::Addr("127.0.0.1:0".parse().unwrap());
        let listener = bind(listen).unwrap().remove(0);
        let port = listener.local_addr().unwrap().port();
        // /proc/net/tcp has no backlog column; sock_diag's listener row has it as
        // its send queue, which `ss -lnt` prints.
        let out = std::process::Command::new("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
            .unwrap();
        let row = String::from_utf8_lossy(&out.stdout);
        let backlog: u32 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(backlog, somaxconn.min(libc::SOMAXCONN as u32), "{row}");
        assert!(backlog > 128, "no longer than std's: {row}");
        // An address in use is refused, as bind refuses it.
        assert!(bind(Listen::Addr(listener.local_addr().unwrap())).is_err());
    }

    #[test]
    fn a_link_local_listen_address_may_name_its_interface() {
        let Ok(Listen::Addr(SocketAddr::V6(a))) = "[fe80::1%1]:113".parse::<Listen>() else {
            panic!("not an address");
        };
        assert_eq!((a.scope_id(), a.port()), (1, 113));
        let err = "[fe80::1%no-such-if9]:113".parse::<Listen>().unwrap_err();
        assert!(err.contains("no-such-if9"), "{err}");
    }
    use nix::errno::Errno;

    fn parse(s: &str) -> Result<Listen, String> {
        s.parse()
    }

    #[test]
    fn a_port_alone_is_every_address_and_anything_else_an_address() {
        assert_eq!(parse("113"), Ok(Listen::EveryAddress(113)));
        assert_eq!(parse(":113"), Ok(Listen::EveryAddress(113)));
        assert_eq!(parse(":0"), Ok(Listen::EveryAddress(0)));
        assert_eq!(
            parse("127.0.0.1:113"),
            Ok(Listen::Addr("127.0.0.1:113".parse().unwrap()))
        );
        assert_eq!(
            parse("[::1]:113"),
            Ok(Listen::Addr("[::1]:113".parse().unwrap()))
        );
        assert_eq!(parse(":113").unwrap().to_string(), ":113");
    }

    #[test]
    fn what_cannot_be_parsed_is_said_plainly() {
        for (s, why) in [
            (
                "",
                "empty; expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT",
            ),
            ("70000", "port 70000 is out of range (0 to 65535)"),
            (":70000", "port 70000 is out of range (0 to 65535)"),
            (
                "127.0.0.1",
                "no port; expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT (here 127.0.0.1:PORT)",
            ),
            ("::1", "an IPv6 address goes in brackets: [::1]:PORT"),
            (
                "::1:113",
                "an IPv6 address goes in brackets: [::1:113]:PORT",
            ),
            (
                "127.0.0.1:ident",
                "\"ident\" is not a port (0 to 65535); expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT",
            ),
            (
                "127.0.0.1:70000",
                "\"70000\" is not a port (0 to 65535); expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT",
            ),
            (
                "localhost:113",
                "\"localhost\" is not an IP address (names are not resolved); expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT",
            ),
            ("bogus", "expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT"),
            ("-1", "expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT"),
        ] {
            assert_eq!(parse(s), Err(why.to_string()), "{s:?}");
        }
    }

    fn ipv6_here() -> bool {
        TcpListener::bind("[::]:0").is_ok()
    }

    #[test]
    fn every_address_is_one_dual_stack_socket() {
        if !ipv6_here() {
            eprintln!("note: no IPv6 here; skipping");
            return;
        }
        let got = bind(Listen::EveryAddress(0)).unwrap();
        assert_eq!(got.len(), 1);
        let addr = got[0].local_addr().unwrap();
        assert_eq!(addr.ip(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_ne!(addr.port(), 0);
        assert_eq!(sock::getsockopt(&got[0], sockopt::Ipv6V6Only), Ok(false));
        // IPv4 reaches it.
        std::net::TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    }

    #[test]
    fn where_the_families_stay_apart_every_address_is_two_sockets_on_one_port() {
        if !ipv6_here() {
            eprintln!("note: no IPv6 here; skipping");
            return;
        }
        // A system whose IPv6 sockets are IPv6 only and stay so (OpenBSD's rule).
        let v6only = |fd: &OwnedFd| {
            sock::setsockopt(fd, sockopt::Ipv6V6Only, &true)?;
            Err(Errno::EINVAL)
        };
        let got = every_address(0, v6only).unwrap();
        let addrs: Vec<SocketAddr> = got.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        assert_eq!(addrs[0].ip(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(addrs[1].ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(addrs[0].port(), addrs[1].port());
        std::net::TcpStream::connect(("127.0.0.1", addrs[1].port())).unwrap();
    }
}
