//! One request to the kernel over netlink, and its reply: the exchange both of
//! ident's exact kernel lookups make, sock_diag's for a socket (`lookup`) and
//! ctnetlink's for a conntrack entry (`nat::conntrack`). Each builds its own
//! request and reads its own messages; the socket, the header our replies are
//! known by, and the rules for which datagrams and messages count are here, once.
//!
//! A socket per request keeps lookups from many threads independent (socket,
//! request and reply together took 15 us, median, at 100,000 sockets:
//! bench/RESULTS-ident.md), and lets one sequence number serve.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::Context;
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkSerializable,
};
use netlink_sys::protocols::{NETLINK_NETFILTER, NETLINK_SOCK_DIAG};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};

/// Our requests' sequence number; a reply must carry it.
pub(crate) const SEQUENCE: u32 = 1;

/// How long to wait for the kernel; it answers while the request is being sent, so
/// this only bounds a kernel that never does.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A netlink protocol, and the names its errors call it by.
pub(crate) struct Protocol {
    number: isize,
    /// The socket's protocol, as netlink(7) names it.
    socket: &'static str,
    /// Its messages, as a reader knows them.
    messages: &'static str,
    /// Bytes read at a time: room for the largest datagram a reply comes in.
    recv_buf: usize,
}

/// inet_diag: the kernel's socket tables.
pub(crate) const SOCK_DIAG: Protocol = Protocol {
    number: NETLINK_SOCK_DIAG,
    socket: "NETLINK_SOCK_DIAG",
    messages: "sock_diag",
    recv_buf: 8 * 1024,
};

/// ctnetlink: the connection tracker.
pub(crate) const NETFILTER: Protocol = Protocol {
    number: NETLINK_NETFILTER,
    socket: "NETLINK_NETFILTER",
    messages: "ctnetlink",
    recv_buf: 16 * 1024,
};

/// The header of a request of ours: `flags`, and the sequence number replies carry.
pub(crate) fn header(flags: u16) -> NetlinkHeader {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = SEQUENCE;
    header
}

/// Sends `request` on a fresh socket of `protocol` and hands each datagram the
/// kernel sends back to `take`, until `take` has the reply.
pub(crate) fn exchange<M, T>(
    protocol: &Protocol,
    mut request: NetlinkMessage<M>,
    mut take: impl FnMut(&[u8]) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T>
where
    M: NetlinkSerializable,
{
    let socket = Socket::new(protocol.number)
        .with_context(|| format!("opening a {} socket", protocol.socket))?;
    nix::sys::socket::setsockopt(
        &socket.as_fd(),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0),
    )
    .context("setting a receive timeout on the netlink socket")?;
    request.finalize();
    let mut out = vec![0u8; request.buffer_len()];
    request.serialize(&mut out);
    loop {
        match socket.send_to(&out, &NetlinkAddr::new(0, 0), 0) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("sending the {} request", protocol.messages));
            }
        }
    }
    let mut buf = Vec::with_capacity(protocol.recv_buf);
    loop {
        buf.clear();
        let (n, from) = match socket.recv_from(&mut buf, 0) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("reading the {} reply", protocol.messages));
            }
        };
        if let Some(reply) = from_kernel(from.port_number(), &buf[..n], &mut take)? {
            return Ok(reply);
        }
    }
}

/// `take` of a datagram that the kernel sent (netlink port id 0); nothing of one
/// that another process sent, since any process can unicast to our port id and must
/// neither answer for the kernel nor end the read early.
pub(crate) fn from_kernel<T>(
    sender_port: u32,
    datagram: &[u8],
    take: impl FnOnce(&[u8]) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Option<T>> {
    if sender_port != 0 {
        return Ok(None);
    }
    take(datagram)
}

/// The messages of one datagram that answer our request (they carry [`SEQUENCE`]),
/// in order; others are skipped. A message that does not decode ends the walk with
/// an error: what follows it cannot be found.
pub(crate) fn our_messages<'a, M>(
    protocol: &'a Protocol,
    datagram: &'a [u8],
) -> impl Iterator<Item = anyhow::Result<NetlinkMessage<M>>> + 'a
where
    M: NetlinkDeserializable + 'a,
{
    let mut offset = 0;
    std::iter::from_fn(move || {
        while offset < datagram.len() {
            let message = match NetlinkMessage::<M>::deserialize(&datagram[offset..]) {
                Ok(message) => message,
                Err(e) => {
                    offset = datagram.len();
                    return Some(Err(anyhow::anyhow!(
                        "undecodable {} reply: {e}",
                        protocol.messages
                    )));
                }
            };
            let len = message.header.length as usize;
            offset = match len {
                0 => datagram.len(),
                // NLMSG_ALIGN: each message starts on a 4-byte boundary.
                len => offset + ((len + 3) & !3),
            };
            if message.header.sequence_number == SEQUENCE {
                return Some(Ok(message));
            }
        }
        None
    })
}
