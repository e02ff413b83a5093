//! The top-level clap definition. Each subcommand's own arguments live in its module
//! (`makedirs::cmd::Args`, `ident::cmd::Args`, `stress::Args`); this file only joins them.

use clap::{Parser, Subcommand};

use crate::exit;

/// What `racefree` itself can exit with; each command's own list is in its help.
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
    after_long_help = exit::help_text(STATUSES),
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
    #[command(long_about = crate::makedirs::cmd::LONG_ABOUT)]
    Makedirs(crate::makedirs::cmd::Args),
    /// RFC 1413 ident: look up a connection's owner, serve identd, or query one
    Ident(crate::ident::cmd::Args),
    /// Run parallel racers against every command and verify every answer
    #[command(long_about = crate::stress::LONG_ABOUT)]
    Stress(crate::stress::Args),
    /// Run a command while holding a file lock (flock(1) without its traps)
    #[command(long_about = crate::lock::cmd::LONG_ABOUT)]
    Lock(crate::lock::cmd::Args),
    /// Add to a number stored in a file, atomically, and print the new value
    #[command(long_about = crate::counter::cmd::LONG_ABOUT)]
    Counter(crate::counter::cmd::Args),
    /// Replace a file's content with standard input, atomically and durably
    #[command(long_about = crate::write::cmd::LONG_ABOUT)]
    Write(crate::write::cmd::Args),
}

/// The command line, or the exit status of a usage error already reported: on
/// stderr as clap does, or where `ident` says it must go instead (under inetd or
/// systemd, fd 2 may be the client's socket).
pub fn parse() -> Result<Cli, exit::Exit> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(cli) = parse_primitive_fast(&argv) {
        return Ok(cli);
    }
    match <Cli as Parser>::try_parse_from(&argv) {
        Ok(cli) => Ok(cli),
        Err(err) if crate::ident::server::reported_usage_error_quietly(&err) => {
            Err(exit::Exit::Usage)
        }
        Err(err) => err.exit(),
    }
}

/// The full clap command, for docs generation and tests.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The primitives scripts call once per item (`lock`, `counter`, `write`) pay for
/// start-up on every call, and building clap's whole command tree costs more than
/// flock(1) takes in all (bench/RESULTS-primitives.md); so does `ident serve` under
/// inetd, started once per query (bench/RESULTS-identd.md). This parses such a command
/// line against its own subcommand alone. Anything it does not accept cleanly
/// (help, version, any error) gives `None`, and the full parser then handles it, so
/// every message stays exactly as the full tree makes it.
pub fn parse_primitive_fast(argv: &[std::ffi::OsString]) -> Option<Cli> {
    use clap::{Args, FromArgMatches};
    fn one<A: Args + FromArgMatches>(name: &'static str, rest: &[std::ffi::OsString]) -> Option<A> {
        let cmd = A::augment_args(clap::Command::new(name))
            .no_binary_name(true)
            .disable_version_flag(true)
            .disable_help_flag(true);
        let matches = cmd.try_get_matches_from(rest).ok()?;
        A::from_arg_matches(&matches).ok()
    }
    let rest = argv.get(2..)?;
    let command = match argv.get(1)?.to_str()? {
        "lock" => Command::Lock(one("lock", rest)?),
        "counter" => Command::Counter(one("counter", rest)?),
        "write" => Command::Write(one("write", rest)?),
        "ident" if rest.first()?.to_str()? == "serve" => {
            let serve = crate::ident::cmd::Command::Serve(one("serve", rest.get(1..)?)?);
            Command::Ident(crate::ident::cmd::Args { command: serve })
        }
        _ => return None,
    };
    Some(Cli { command })
}
