//! `racefree ident`: RFC 1413 owner lookup, server and client.
//!
//! - [`proto`]: the wire protocol, pure (frame, parse, format; no I/O).
//! - [`lookup`]: who owns a connection, from `/proc/net/tcp{,6}` or netlink
//!   sock_diag, matched on the 4-tuple only, never the TCP state.
//! - [`server`]: the identd (inetd, systemd, standalone) and its disclosure policy.
//! - [`client`]: ask an identd.
//! - [`nat`]: `--nat`, `--forward`, `--proxy`: connections that leave through NAT
//!   (conntrack, containers' namespaces, forwarding to hosts behind this one).
//! - `netlink`: the one netlink exchange with the kernel, for `lookup`'s sock_diag
//!   and `nat`'s ctnetlink.
//! - [`config`]: oidentd.conf and users' `~/.oidentd.conf`, parsed and decided as
//!   oidentd does (pure; the server wires it in).
//! - [`cmd`]: the command line: `Args`, the three subcommands, their output and
//!   exit statuses, and `run`.

pub mod client;
pub mod cmd;
pub mod config;
pub mod lookup;
pub mod nat;
mod netlink;
pub mod proto;
pub mod server;

pub use client::{Reply, ReplyKind, query, query_from};
pub use lookup::resolve;
pub use lookup::{
    Matcher, Owner, Source, TcpState, Tuple, lookup_owner, lookup_owner_established_only,
    lookup_owner_with, user_name,
};
pub use server::ServeChild;
pub use server::{LogTarget, Logger, Server, ServerConfig, ServerHandle};
