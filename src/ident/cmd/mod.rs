//! The `racefree ident` command line: `Args`, the three subcommands, their output
//! and exit statuses, and `run`. The work is in `lookup`, `server` and `client`;
//! this is the thin shell around them.

mod lookup;
mod nat;
mod query;
mod serve;

use clap::{Args as ClapArgs, Subcommand};

use crate::exit::{self, Exit};
use crate::help;
pub use lookup::LookupArgs;
use lookup::{LOOKUP_ABOUT, LOOKUP_EXAMPLES, LOOKUP_STATUSES, lookup};
pub use query::QueryArgs;
use query::{QUERY_ABOUT, QUERY_EXAMPLES, QUERY_STATUSES, query};
pub use serve::ServeArgs;
use serve::{SERVE_ABOUT, SERVE_EXAMPLES, SERVE_STATUSES, serve};

/// `ident`'s own statuses (a usage error before any subcommand ran).
pub const STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "the operation failed",
    },
    exit::Status {
        code: 2,
        meaning: "usage error (clap's own, or a bad value found later)",
    },
];

#[derive(Debug, ClapArgs)]
#[command(
    subcommand_required = true,
    arg_required_else_help = true,
    after_long_help = exit::help_text(STATUSES)
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// One value per process, made once from argv: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Print the user that owns a TCP connection, matched on its 4-tuple only
    #[command(long_about = LOOKUP_ABOUT, after_long_help = help::long_help(LOOKUP_EXAMPLES, LOOKUP_STATUSES))]
    Lookup(LookupArgs),
    /// Serve RFC 1413 ident under inetd, systemd socket activation, or standalone
    #[command(long_about = SERVE_ABOUT, after_long_help = help::long_help(SERVE_EXAMPLES, SERVE_STATUSES))]
    Serve(ServeArgs),
    /// Ask a host's identd who owns a connection
    #[command(long_about = QUERY_ABOUT, after_long_help = help::long_help(QUERY_EXAMPLES, QUERY_STATUSES))]
    Query(QueryArgs),
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        Command::Lookup(a) => lookup(a),
        Command::Serve(a) => serve(a),
        Command::Query(a) => query(a),
    }
}
