//! The top-level clap definition. Each subcommand's own arguments live in its module
//! (`makedirs::cmd::Args`, `ident::Args`, `stress::Args`); this file only joins them.

use clap::{Parser, Subcommand};

use crate::exit;

#[derive(Debug, Parser)]
#[command(
    name = "racefree",
    version,
    about = "Concurrency-safe filesystem and operations primitives",
    long_about = "Concurrency-safe filesystem and operations primitives.\n\n\
        racefree's commands are the versions of everyday operations that stay correct when \
        many processes act at once: an idempotent mkdir -p that tolerates concurrent creators \
        and removers at every level, an RFC 1413 identd whose lookup matches a connection on \
        its 4-tuple only (never its TCP state), and a stress harness that hammers both and \
        proves, with a known-bad control arm, that it can see a race.",
    after_long_help = exit::help_text("racefree"),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create directories and their missing ancestors, safely under concurrency
    #[command(after_long_help = exit::help_text("makedirs"))]
    Makedirs(crate::makedirs::cmd::Args),
    /// RFC 1413 ident: look up a connection's owner, serve identd, or query one
    #[command(after_long_help = exit::help_text("ident"))]
    Ident(crate::ident::Args),
    /// Run parallel racers against makedirs and ident and verify every answer
    #[command(after_long_help = exit::help_text("stress"))]
    Stress(crate::stress::Args),
}

/// The command line, or the exit status of a usage error already reported: on
/// stderr as clap does, or, when inetd or systemd may have started us (fd 2 may be
/// the client's socket), to syslog only.
pub fn parse() -> Result<Cli, std::process::ExitCode> {
    match <Cli as Parser>::try_parse() {
        Ok(cli) => Ok(cli),
        Err(err) if err.use_stderr() && crate::ident::server::started_by_a_superserver() => {
            crate::ident::server::log_usage_error_quietly(&err.to_string());
            Err(exit::Exit::Usage.into())
        }
        Err(err) => err.exit(),
    }
}

/// The full clap command, for docs generation and tests.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
