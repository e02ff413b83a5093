//! `racefree ident`: RFC 1413 owner lookup, server and client.
//!
//! - [`proto`]: the wire protocol, pure (frame, parse, format; no I/O).
//! - [`lookup`]: who owns a connection, from `/proc/net/tcp{,6}` or netlink
//!   sock_diag, matched on the 4-tuple only, never the TCP state.
//! - [`server`]: the identd (inetd, systemd, standalone) and its disclosure policy.
//! - [`client`]: ask an identd.
//! - [`nat`]: `--nat`, `--forward`, `--proxy`: connections that leave through NAT
//!   (conntrack, containers' namespaces, forwarding to hosts behind this one).
//! - `cmd`: the three subcommands' arguments and output.

pub mod client;
mod cmd;
pub mod lookup;
pub mod nat;
pub mod proto;
pub mod server;

use clap::{Args as ClapArgs, Subcommand};

use crate::exit::Exit;

pub use client::{Reply, ReplyKind, query, query_from};
pub use lookup::resolve;
pub use lookup::{
    Matcher, Owner, Source, TcpState, Tuple, lookup_owner, lookup_owner_established_only,
    lookup_owner_with, user_name,
};
pub use server::ServeChild;
pub use server::{LogTarget, Logger, Server, ServerConfig, ServerHandle};

#[derive(Debug, ClapArgs)]
#[command(
    subcommand_required = true,
    arg_required_else_help = true,
    after_long_help = crate::exit::help_text(cmd::STATUSES)
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the user that owns a TCP connection, matched on its 4-tuple only
    #[command(long_about = cmd::LOOKUP_ABOUT, after_long_help = crate::exit::help_text(cmd::LOOKUP_STATUSES))]
    Lookup(cmd::LookupArgs),
    /// Serve RFC 1413 ident under inetd, systemd socket activation, or standalone
    #[command(long_about = cmd::SERVE_ABOUT, after_long_help = crate::exit::help_text(cmd::SERVE_STATUSES))]
    Serve(cmd::ServeArgs),
    /// Ask a host's identd who owns a connection
    #[command(long_about = cmd::QUERY_ABOUT, after_long_help = crate::exit::help_text(cmd::QUERY_STATUSES))]
    Query(cmd::QueryArgs),
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        Command::Lookup(a) => cmd::lookup(a),
        Command::Serve(a) => cmd::serve(a),
        Command::Query(a) => cmd::query(a),
    }
}
