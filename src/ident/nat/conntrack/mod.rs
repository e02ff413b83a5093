//! The conntrack side of `--nat`: which connection did the kernel translate into
//! the one asked about?
//!
//! A masqueraded connection has two directions in the kernel's connection tracker:
//! the *original* one, as its client sent it (`198.18.1.2:40000 -> IRC:6667`), and
//! the *reply* one, as the far end answers it after translation (`IRC:6667 ->
//! PUBLIC:40000`). The ident question names the connection as the far end sees it,
//! so it is the reply direction, reversed; its original direction says where the
//! connection really started.
//!
//! Two sources, as for sockets:
//! - `/proc/net/nf_conntrack` (kernels built with `NF_CONNTRACK_PROCFS`): scanned
//!   for the reply direction printed exactly as the kernel prints it, and only a
//!   line that hits is parsed ([`find_in_text`]).
//! - ctnetlink: one `IPCTNL_MSG_CT_GET` carrying `CTA_TUPLE_REPLY`; the kernel
//!   hashes either direction, so this is an exact lookup whatever the table size.
//!   Messages are netlink-packet-netfilter's; the exchange is ident's one netlink
//!   exchange (`ident::netlink`).
//!
//! This file is pure (text and bytes in, entries out: [`parse_line`],
//! [`find_in_text`], [`get_request`], [`take_reply`]) and tested on captured text

mod ctnetlink;
mod entry;
mod proc_text;
mod sys;

pub use ctnetlink::{entry_from_message, get_request, take_reply};
pub use entry::{Entry, Flow, Miss};
pub use proc_text::{PROC_CONNTRACK, find_in_text, parse_line};
pub use sys::{lookup_netlink, lookup_proc};
