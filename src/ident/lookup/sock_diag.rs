//! The netlink sock_diag source: the kernel's exact lookup by 4-tuple.
//!
//! One `SOCK_DIAG_BY_FAMILY` request without `NLM_F_DUMP`, carrying both addresses
//! and a "no cookie" cookie, makes the kernel hash-look the connection up directly
//! (`inet_diag_find_one_icsk`): constant time however many sockets exist. Its
//! answer is checked, not trusted: on a miss among established sockets the kernel
//! falls back to the listener on the local port and reports that, so a reply whose
//! tuple differs from the one asked for, or whose state is LISTEN, is a miss
//! (`Matcher::accepts` decides). The reply names the interface the socket is bound
//! to (`idiag_if`), which a link-local connection's identity includes.
//!
//! Message encoding uses netlink-packet-sock-diag; the exchange is ident's one
//! netlink exchange (`ident::netlink`).

use std::io;
use std::net::SocketAddr;

use anyhow::Context;
use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};

use super::row::{Matcher, Row, TcpState};
use super::tuple::Tuple;
use crate::ident::netlink::{self, SOCK_DIAG};

/// `INET_DIAG_NOCOOKIE`: without it the kernel insists the cookie match and answers ESTALE.
const NO_COOKIE: [u8; 8] = [0xff; 8];

/// Asks the kernel for `wanted` (canonical) and returns the row if `matcher` accepts it.
pub(crate) fn find(wanted: &Tuple, matcher: Matcher) -> anyhow::Result<Option<Row>> {
    // An IPv4 connection of a dual-stack socket sits in the same hash as plain IPv4
    // ones, so the AF_INET lookup finds it too (its reply carries mapped addresses).
    match exchange(request_for(wanted), NLM_F_REQUEST)? {
        Reply::Rows(rows) => Ok(rows.into_iter().find(|r| matcher.accepts(r, wanted))),
        // ENOENT: no connection and no listener on the port either.
        Reply::Error(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Reply::Error(e) => Err(e).context("the kernel refused the request"),
    }
}

/// The exact-lookup request for `wanted` (canonical).
fn request_for(wanted: &Tuple) -> InetRequest {
    let family = if wanted.local.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        // Ignored by the exact lookup; every state, so the state is never a filter.
        states: StateFlags::all(),
        socket_id: SocketId {
            source_port: wanted.local.port(),
            destination_port: wanted.remote.port(),
            source_address: wanted.local.ip(),
            destination_address: wanted.remote.ip(),
            // A link-local connection is bound to its interface; the kernel's lookup
            // matches it only with that index here (0 matches unbound sockets only).
            interface_id: wanted.scope_id(),
            cookie: NO_COOKIE,
        },
    }
}

/// Checks that sock_diag answers TCP requests at all: a dump asking for no states
/// returns at once with an empty result, or an error when inet_diag is missing.
pub(crate) fn probe() -> anyhow::Result<()> {
    let request = InetRequest {
        family: AF_INET,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::empty(),
        socket_id: SocketId::new_v4(),
    };
    match exchange(request, NLM_F_REQUEST | NLM_F_DUMP)? {
        Reply::Rows(_) => Ok(()),
        Reply::Error(e) => Err(e).context("probing sock_diag for TCP"),
    }
}

enum Reply {
    Rows(Vec<Row>),
    Error(io::Error),
}

/// Sends one request and reads until the kernel is done: one reply message for an
/// exact lookup, up to `NLMSG_DONE` for a dump.
fn exchange(request: InetRequest, flags: u16) -> anyhow::Result<Reply> {
    let packet = NetlinkMessage::new(
        netlink::header(flags),
        SockDiagMessage::InetRequest(request).into(),
    );
    let dump = flags & NLM_F_DUMP != 0;
    let mut rows = Vec::new();
    netlink::exchange(&SOCK_DIAG, packet, |datagram| {
        take_datagram(datagram, dump, &mut rows)
    })
}

/// Takes one datagram from the kernel: adds the rows of its reply to our request to
/// `rows`, and returns the reply once it is complete.
fn take_datagram(bytes: &[u8], dump: bool, rows: &mut Vec<Row>) -> anyhow::Result<Option<Reply>> {
    for message in netlink::our_messages::<SockDiagMessage>(&SOCK_DIAG, bytes) {
        match message?.payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(resp)) => {
                let h = &resp.header;
                rows.push(Row {
                    tuple: Tuple::new(
                        SocketAddr::new(h.socket_id.source_address, h.socket_id.source_port),
                        SocketAddr::new(
                            h.socket_id.destination_address,
                            h.socket_id.destination_port,
                        ),
                    ),
                    state: TcpState::from_kernel(h.state),
                    uid: h.uid,
                    inode: u64::from(h.inode),
                    // idiag_if: the interface the socket is bound to.
                    interface: Some(h.socket_id.interface_id),
                });
                if !dump {
                    return Ok(Some(Reply::Rows(std::mem::take(rows))));
                }
            }
            NetlinkPayload::Error(e) if e.code.is_some() => {
                return Ok(Some(Reply::Error(io::Error::from_raw_os_error(
                    -e.raw_code(),
                ))));
            }
            NetlinkPayload::Done(_) | NetlinkPayload::Error(_) => {
                return Ok(Some(Reply::Rows(std::mem::take(rows))));
            }
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn inode_of(fd: &impl AsRawFd) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let s = link.to_str().unwrap();
        s.trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse()
            .unwrap()
    }

    #[test]
    fn an_exact_lookup_finds_the_connection_and_not_the_listener() {
        if probe().is_err() {
            eprintln!("note: netlink sock_diag unavailable here; skipping");
            return;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let t = Tuple::new(client.local_addr().unwrap(), client.peer_addr().unwrap());
        let row = find(&t, Matcher::FourTuple)
            .unwrap()
            .expect("the client's row");
        assert_eq!(row.inode, inode_of(&client));
        assert_eq!(row.state, TcpState::Established);

        // A port nobody connected from: the kernel answers with the listener, which
        // must not count.
        let mut miss = t;
        miss.local = listener.local_addr().unwrap();
        miss.remote.set_port(1);
        assert_eq!(find(&miss, Matcher::FourTuple).unwrap(), None);
    }

    /// One sock_diag reply message as the kernel would send it, numbered `seq`.
    fn response(seq: u32, inode: u32) -> Vec<u8> {
        use netlink_packet_core::NetlinkHeader;
        use netlink_packet_sock_diag::inet::{InetResponse, InetResponseHeader};
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        let body = InetResponse {
            header: InetResponseHeader {
                family: AF_INET,
                state: 1,
                timer: None,
                socket_id: SocketId {
                    source_port: 5000,
                    destination_port: 80,
                    source_address: "127.0.0.1".parse().unwrap(),
                    destination_address: "127.0.0.1".parse().unwrap(),
                    interface_id: 0,
                    cookie: [0; 8],
                },
                recv_queue: 0,
                send_queue: 0,
                uid: 1000,
                inode,
            },
            nlas: Default::default(),
        };
        let mut packet =
            NetlinkMessage::new(header, SockDiagMessage::InetResponse(Box::new(body)).into());
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        out
    }

    fn inodes(reply: Option<Reply>) -> Option<Vec<u64>> {
        match reply? {
            Reply::Rows(rows) => Some(rows.iter().map(|r| r.inode).collect()),
            Reply::Error(e) => panic!("{e}"),
        }
    }

    /// A datagram from netlink port id `sender`, as the exchange takes it.
    fn take(sender: u32, bytes: &[u8], rows: &mut Vec<Row>) -> Option<Reply> {
        netlink::from_kernel(sender, bytes, |d| take_datagram(d, false, rows)).unwrap()
    }

    #[test]
    fn only_the_kernels_reply_to_our_request_counts() {
        use netlink::SEQUENCE;
        let mut rows = Vec::new();
        // Another sequence number: not the answer to this request.
        let stray = take(0, &response(SEQUENCE + 1, 7), &mut rows);
        assert_eq!(inodes(stray), None);
        // Our sequence number, but sent by a process (port id 4242), not the kernel.
        let forged = take(4242, &response(SEQUENCE, 7), &mut rows);
        assert_eq!(inodes(forged), None);
        assert!(rows.is_empty());
        // A stray message ahead of ours in one datagram is skipped, ours taken.
        let mut both = response(SEQUENCE + 1, 7);
        both.extend(response(SEQUENCE, 8));
        let ours = take(0, &both, &mut rows);
        assert_eq!(inodes(ours), Some(vec![8]));
    }

    /// A link-local IPv6 address of this host and its interface index, if any.
    fn link_local() -> Option<SocketAddr> {
        nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
            let a = ifa.address?;
            let v6 = a.as_sockaddr_in6()?;
            let ip = v6.ip();
            (ip.segments()[0] & 0xffc0 == 0xfe80 && v6.scope_id() != 0)
                .then(|| SocketAddr::V6(std::net::SocketAddrV6::new(ip, 0, 0, v6.scope_id())))
        })
    }

    #[test]
    fn a_link_local_connection_is_found_through_its_scope() {
        // The kernel binds a link-local connection to its interface, and its exact
        // lookup then matches only when asked with that interface.
        let Some(addr) = (probe().is_ok()).then(link_local).flatten() else {
            eprintln!("note: no netlink sock_diag or no link-local address here; skipping");
            return;
        };
        let listener = TcpListener::bind(addr).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        for end in [&client, &server] {
            let t = Tuple::new(end.local_addr().unwrap(), end.peer_addr().unwrap());
            let row = find(&t.canonical(), Matcher::FourTuple)
                .unwrap()
                .unwrap_or_else(|| panic!("no row for {t}"));
            assert_eq!(row.inode, inode_of(end));
        }
    }

    #[test]
    fn the_request_carries_the_scope_of_a_link_local_tuple() {
        let scoped: SocketAddr = "[fe80::1%7]:22".parse().unwrap();
        let peer: SocketAddr = "[fe80::2%7]:40000".parse().unwrap();
        let t = Tuple::new(scoped, peer).canonical();
        assert_eq!(request_for(&t).socket_id.interface_id, 7);
        let v4 = Tuple::new(
            "127.0.0.1:22".parse().unwrap(),
            "127.0.0.1:4".parse().unwrap(),
        );
        assert_eq!(request_for(&v4).socket_id.interface_id, 0);
    }
}
