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

/// Asks the identd at `original.local`'s address, port `port`, about the
/// connection `original` (as its own host sees it), within `timeout`.
pub fn ask(original: &Tuple, port: u16, timeout: Duration) -> anyhow::Result<ReplyKind> {
    let identd = SocketAddr::new(original.local.ip(), port);
    let reply = client::query(
        identd,
        original.local.port(),
        original.remote.port(),
        timeout,
    )?;
    Ok(reply.kind)
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
        assert_eq!(owner.uid, unsafe { libc::geteuid() });
        let wrong_port = owner_by_ports(client.local_addr().unwrap(), 1).unwrap();
        assert_eq!(wrong_port, None);
    }
}
