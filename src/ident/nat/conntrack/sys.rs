//! The system calls of the conntrack lookup: read `/proc/net/nf_conntrack`, or send
//! one ctnetlink GET. Everything they read is handed to the pure code in `proc_text` and
//! `ctnetlink`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::Context;

use super::ctnetlink::{get_request, take_reply};
use super::entry::{Entry, Flow, Miss, canonical_flow};
use super::proc_text::find_in_text;
use crate::ident::netlink::{self, NETFILTER};

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
    netlink::exchange(&NETFILTER, get_request(&wanted), |datagram| {
        take_reply(datagram, &wanted)
    })
}
