//! The system calls of the conntrack lookup: read `/proc/net/nf_conntrack`, or send
//! one ctnetlink GET. Everything they read is handed to the pure code in `mod.rs`.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use netlink_sys::protocols::NETLINK_NETFILTER;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};

use super::{Entry, Flow, Miss, canonical_flow, find_in_text, get_request, take_reply};

/// Bounds a kernel that never answers; it answers while the request is sent.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads `/proc/net/nf_conntrack` whole and looks `reply` up in it. `Ok(None)`
/// when the file does not exist (no conntrack, or a kernel without its /proc view:
/// then ctnetlink is the way).
pub fn lookup_proc(path: &Path, reply: &Flow) -> anyhow::Result<Option<Result<Entry, Miss>>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut text = Vec::new();
    // One read call per page-sized chunk is how the kernel generates this file; a
    // large buffer keeps the number of calls down.
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(Some(find_in_text(&text, reply)))
}

/// Asks the kernel over ctnetlink for the entry whose reply direction is `reply`.
/// Needs CAP_NET_ADMIN in this network namespace.
pub fn lookup_netlink(reply: &Flow) -> anyhow::Result<Result<Entry, Miss>> {
    let wanted = canonical_flow(reply);
    let socket = Socket::new(NETLINK_NETFILTER).context("opening a NETLINK_NETFILTER socket")?;
    nix::sys::socket::setsockopt(
        &socket.as_fd(),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0),
    )
    .context("setting a receive timeout on the netlink socket")?;
    let packet = get_request(&wanted);
    let mut out = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut out);
    loop {
        match socket.send_to(&out, &NetlinkAddr::new(0, 0), 0) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("sending the ctnetlink request"),
        }
    }
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let (n, from) = match socket.recv_from(&mut buf, 0) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the ctnetlink reply"),
        };
        // Only the kernel (port id 0) answers for the kernel.
        if from.port_number() != 0 {
            continue;
        }
        if let Some(answer) = take_reply(&buf[..n], &wanted)? {
            return Ok(answer);
        }
    }
}
