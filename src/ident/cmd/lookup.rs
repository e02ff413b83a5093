//! `racefree ident lookup`: who owns a connection of this host.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args as ClapArgs;
use serde::Serialize;

use super::nat::NatArgs;
use crate::exit::{self, Exit, usage};
use crate::help;
use crate::ident::lookup::{self, Source, TcpState, Tuple};
use crate::ident::nat::{self};
/// `ident lookup`'s exit statuses, for `--help` and the man page.
pub const LOOKUP_STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "the connection has no owner (no such connection, or only a TIME_WAIT row), or the socket table could not be read",
    },
    exit::Status {
        code: 2,
        meaning: "usage error: bad option, an address that is not ADDR:PORT, port 0, LOCAL and REMOTE of different families or on different interfaces",
    },
];

/// `ident lookup`'s examples, for `--help` and the man page.
pub const LOOKUP_EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "who owns this host's end of an SSH session: this host's address first",
        lines: "racefree ident lookup 192.0.2.10:22 198.51.100.7:51234",
    },
    help::Example {
        what: "uid, user, TCP state, inode and the source that answered, as JSON",
        lines: "racefree ident lookup --json 127.0.0.1:40312 127.0.0.1:5432",
    },
];

pub const LOOKUP_ABOUT: &str = "Print the user that owns a TCP connection of this host.\n\n\
    The connection is found by its 4-tuple only: any TCP state counts (a client that \
    half-closed with shutdown(SHUT_WR) is in FIN_WAIT1 or FIN_WAIT2 and still has an \
    owner). A TIME_WAIT row has no owner (the kernel's uid 0 there is not root). On a \
    miss the table is read once more before answering, since /proc is not a snapshot.\n\n\
    A link-local IPv6 end may name its interface ([fe80::1%eth0]:22, or its index): the \
    same addresses and ports can be a connection on each of two links, and then only the \
    one on that interface matches. sock_diag says which interface a connection is on; \
    /proc/net/tcp6 does not, so --source proc refuses such a question (exit 1).\n\n\
    With --nat, a connection that is no socket of this host is looked up as the \
    outside face of a NAT: LOCAL is this host's translated end. Its conntrack entry \
    gives the original connection; a container (network namespace) of this host \
    holding it is named from its own /etc/passwd; a connection from another host is \
    asked about at that host's identd with --forward.";

#[derive(Debug, ClapArgs)]
pub struct LookupArgs {
    /// This host's end of the connection, ADDR:PORT ([V6ADDR]:PORT for IPv6; a link-local one may name its interface, [fe80::1%eth0]:22, and then matches only there)
    #[arg(value_name = "LOCAL", value_parser = lookup::parse_endpoint)]
    local: SocketAddr,
    /// The other end, ADDR:PORT ([V6ADDR]:PORT or [V6ADDR%SCOPE]:PORT for IPv6)
    #[arg(value_name = "REMOTE", value_parser = lookup::parse_endpoint)]
    remote: SocketAddr,
    /// Print the uid instead of the user name
    #[arg(long, conflicts_with = "json")]
    numeric: bool,
    /// Print uid, user, state, inode and source as one JSON object
    #[arg(long)]
    json: bool,
    /// Where to read the kernel's socket table
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    source: Source,
    #[command(flatten)]
    nat: NatArgs,
}

/// How long `lookup --nat --forward` waits for the other host's identd.
const LOOKUP_FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize)]
struct LookupJson {
    uid: u32,
    user: String,
    state: TcpState,
    inode: u64,
    source: Source,
}

pub fn lookup(args: LookupArgs) -> anyhow::Result<Exit> {
    check_port("LOCAL", args.local)?;
    check_port("REMOTE", args.remote)?;
    let tuple = Tuple::new(args.local, args.remote);
    if !tuple.is_one_family() {
        return Err(usage("LOCAL and REMOTE must both be IPv4 or both IPv6"));
    }
    if tuple.has_two_scopes() {
        return Err(usage(
            "LOCAL and REMOTE name different interfaces: a link-local connection is on one",
        ));
    }
    let Some(owner) = lookup::lookup_owner(&tuple, args.source)? else {
        if args.nat.nat {
            let config = args.nat.config(args.source, LOOKUP_FORWARD_TIMEOUT);
            let format = nat::Format::new(args.json, args.numeric);
            return nat::print_lookup(&config, &tuple, format);
        }
        exit::print_error(format_args!("no owner for the connection {tuple}"));
        return Ok(Exit::Failure);
    };
    let mut out = io::stdout().lock();
    if args.json {
        let json = LookupJson {
            uid: owner.uid,
            user: lookup::user_name(owner.uid),
            state: owner.state,
            inode: owner.inode,
            source: owner.source,
        };
        writeln!(out, "{}", serde_json::to_string(&json)?)?;
    } else if args.numeric {
        writeln!(out, "{}", owner.uid)?;
    } else {
        writeln!(out, "{}", lookup::user_name(owner.uid))?;
    }
    out.flush()?;
    Ok(Exit::Success)
}

fn check_port(what: &str, addr: SocketAddr) -> anyhow::Result<()> {
    if addr.port() == 0 {
        return Err(usage(format!("{what} {addr}: port 0 names no connection")));
    }
    Ok(())
}
