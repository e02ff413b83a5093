//! Other hosts behind this one: ask the host a connection came from (`--forward`),
//! and, on that host, answer the NAT host that asks (`--proxy`).
//!
//! A LAN host's identd cannot check the addr-pair rule for a forwarded query: it
//! comes from the NAT host, not from the far end of the connection. So it answers
//! only the NAT hosts it is told to trust (`--proxy ADDR`, oidentd's name for the
//! same thing), matching its own address and the two ports, any remote address;
//! the NAT host has already checked that the real querier is that far end.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

use crate::ident::client;
use crate::ident::lookup::{Owner, Source, TcpState, Tuple};
use crate::ident::proto::{Answer, ErrorToken, ReplyKind, is_wire_safe};

/// A query for the identd of a host behind this one, as `--nat --forward` decided
/// it. Deciding needs conntrack, root's to read; asking needs no privilege at all,
/// so under `--user` the privileged helper only hands this over and the side that
/// reads the network makes the query (and parses the reply) itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    /// That host's identd: the original connection's source address, on
    /// `--forward`'s port.
    pub identd: SocketAddr,
    /// The original connection's ports as that host sees them: its own end...
    pub server_port: u16,
    /// ...and the far end's.
    pub client_port: u16,
}

impl Forward {
    /// The query about `original` (as its own host sees it) at that host's `port`.
    pub fn to(original: &Tuple, port: u16) -> Forward {
        Forward {
            // IPv4 written as IPv4: the one form a forward crosses the helper's channel in.
            identd: SocketAddr::new(original.local.ip().to_canonical(), port),
            server_port: original.local.port(),
            client_port: original.remote.port(),
        }
    }

    /// Whether this can be asked: three ports that are not 0, and an address one
    /// host answers on (not unspecified, multicast or broadcast), written plainly
    /// (IPv4 as IPv4; no IPv6 flow label or scope, which [`Forward::to`] never
    /// sets). conntrack gives nothing else; anything else is not asked.
    pub fn is_sound(&self) -> bool {
        is_one_host(self.identd) && self.server_port != 0 && self.client_port != 0
    }

    /// Asks, within `timeout` (connect, send and reply together). The reply is
    /// returned only if it is well formed and about the ports asked.
    pub fn ask(&self, timeout: Duration) -> anyhow::Result<ReplyKind> {
        let reply = client::query(self.identd, self.server_port, self.client_port, timeout)?;
        Ok(reply.kind)
    }
}

/// Whether `identd` is a port of one host, written plainly: not port 0, not an
/// unspecified, multicast or broadcast address, IPv4 as IPv4, no IPv6 flow label
/// or scope.
pub fn is_one_host(identd: SocketAddr) -> bool {
    let ip = identd.ip();
    let plain = match identd {
        SocketAddr::V4(v4) => !v4.ip().is_broadcast(),
        SocketAddr::V6(v6) => {
            v6.ip().to_ipv4_mapped().is_none() && v6.flowinfo() == 0 && v6.scope_id() == 0
        }
    };
    plain && !ip.is_unspecified() && !ip.is_multicast() && identd.port() != 0
}

/// The answer to relay for a forwarded reply. Its ports were checked by the client
/// against the original ones; the caller's reply echoes the ports it was asked
/// about, so they come out translated back. A `USERID` other than `UNIX` (or
/// `OTHER` with a number) and any non-standard error token cannot be said in
/// racefree's replies without inventing an operating system: UNKNOWN-ERROR.
pub fn relay(reply: &ReplyKind) -> Answer {
    match reply {
        ReplyKind::UserId { os, user, .. } if os == "UNIX" && is_wire_safe(user) => {
            Answer::User(user.clone())
        }
        ReplyKind::UserId { os, user, .. } if os == "OTHER" => match user.parse() {
            Ok(uid) => Answer::Uid(uid),
            Err(_) => Answer::Error(ErrorToken::UnknownError),
        },
        ReplyKind::UserId { .. } => Answer::Error(ErrorToken::UnknownError),
        ReplyKind::Error(token) => Answer::Error(match token.as_str() {
            "NO-USER" => ErrorToken::NoUser,
            "HIDDEN-USER" => ErrorToken::HiddenUser,
            "INVALID-PORT" => ErrorToken::InvalidPort,
            _ => ErrorToken::UnknownError,
        }),
    }
}

/// On the LAN host: the owner of this host's connection from `local` (its address
/// and port) to port `remote_port` of any address, for a trusted NAT host's
/// forwarded query. Several such connections owned by different users: none.
pub fn owner_by_ports(local: SocketAddr, remote_port: u16) -> anyhow::Result<Option<Owner>> {
    let mut rows = procfs::net::tcp().context("reading /proc/net/tcp")?;
    match procfs::net::tcp6() {
        Ok(v6) => rows.extend(v6),
        // A kernel without IPv6 has no tcp6 table.
        Err(procfs::ProcError::NotFound(_)) => {}
        Err(e) => return Err(e).context("reading /proc/net/tcp6"),
    }
    let local = Tuple::new(local, local).canonical().local;
    let owners: Vec<Owner> = rows
        .iter()
        .filter(|r| {
            let t = Tuple::new(r.local_address, r.remote_address).canonical();
            t.local.ip() == local.ip()
                && t.local.port() == local.port()
                && t.remote.port() == remote_port
                && r.inode != 0
                && r.state != procfs::net::TcpState::Listen
        })
        .map(|r| Owner {
            uid: r.uid,
            inode: r.inode,
            state: TcpState::from_kernel(r.state.to_u8()),
            source: Source::Proc,
        })
        .collect();
    Ok(match owners.as_slice() {
        [first, rest @ ..] if rest.iter().all(|o| o.uid == first.uid) => Some(*first),
        _ => None,
    })
}

/// True when `peer` is one of the trusted NAT hosts (IPv4-mapped compares as IPv4).
pub fn is_trusted(proxies: &[IpAddr], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    proxies.iter().any(|p| p.to_canonical() == peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(os: &str, user: &str) -> ReplyKind {
        ReplyKind::UserId {
            os: os.into(),
            charset: None,
            user: user.into(),
        }
    }

    #[test]
    fn replies_relay_as_racefree_would_say_them() {
        assert_eq!(relay(&user("UNIX", "alice")), Answer::User("alice".into()));
        assert_eq!(relay(&user("OTHER", "1000")), Answer::Uid(1000));
        assert_eq!(
            relay(&user("OTHER", "x")),
            Answer::Error(ErrorToken::UnknownError)
        );
        assert_eq!(
            relay(&user("WIN32", "bob")),
            Answer::Error(ErrorToken::UnknownError)
        );
        assert_eq!(
            relay(&ReplyKind::Error("HIDDEN-USER".into())),
            Answer::Error(ErrorToken::HiddenUser)
        );
        assert_eq!(
            relay(&ReplyKind::Error("X-FOO".into())),
            Answer::Error(ErrorToken::UnknownError)
        );
    }

    #[test]
    fn a_forward_asks_the_original_source_about_its_own_ports() {
        let original = Tuple::new(
            "[::ffff:198.18.2.2]:40000".parse().unwrap(),
            "198.19.0.2:6667".parse().unwrap(),
        );
        let forward = Forward::to(&original, 1113);
        assert_eq!(
            forward,
            Forward {
                identd: "198.18.2.2:1113".parse().unwrap(),
                server_port: 40000,
                client_port: 6667,
            }
        );
        assert!(forward.is_sound());
        let with = |identd: &str, ports: (u16, u16)| Forward {
            identd: identd.parse().unwrap(),
            server_port: ports.0,
            client_port: ports.1,
        };
        assert!(with("[2001:db8::2]:113", (1, 65535)).is_sound());
        assert!(with("127.0.0.1:113", (1, 2)).is_sound());
        for unsound in [
            with("0.0.0.0:113", (1, 2)),
            with("[::]:113", (1, 2)),
            with("255.255.255.255:113", (1, 2)),
            with("224.0.0.1:113", (1, 2)),
            with("[ff02::1]:113", (1, 2)),
            with("[::ffff:198.18.2.2]:113", (1, 2)),
            with("[fe80::2%2]:113", (1, 2)),
            with("198.18.2.2:0", (1, 2)),
            with("198.18.2.2:113", (0, 2)),
            with("198.18.2.2:113", (1, 0)),
        ] {
            assert!(!unsound.is_sound(), "{unsound:?}");
        }
    }

    #[test]
    fn a_trusted_proxy_is_its_address_in_either_notation() {
        let p: Vec<IpAddr> = vec!["198.18.2.1".parse().unwrap()];
        assert!(is_trusted(&p, "198.18.2.1".parse().unwrap()));
        assert!(is_trusted(&p, "::ffff:198.18.2.1".parse().unwrap()));
        assert!(!is_trusted(&p, "198.18.2.2".parse().unwrap()));
    }

    #[test]
    fn a_connection_is_found_by_its_local_end_and_remote_port() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let owner = owner_by_ports(
            client.local_addr().unwrap(),
            client.peer_addr().unwrap().port(),
        )
        .unwrap()
        .expect("our connection");
        // SAFETY: geteuid never fails.
        assert_eq!(owner.uid, nix::unistd::geteuid().as_raw());
        let wrong_port = owner_by_ports(client.local_addr().unwrap(), 1).unwrap();
        assert_eq!(wrong_port, None);
    }
}
