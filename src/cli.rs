//! The top-level clap definition. Each subcommand's own arguments live in its module
//! (`makedirs::cmd::Args`, `ident::cmd::Args`, `stress::cmd::Args`); this file only joins them.

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
        meaning: "usage error: 'racefree: error: ...' and one usage line on stderr; nothing was done",
    },
    exit::Status {
        code: 3,
        meaning: "and above: each command's own, listed in its --help and man page (makedirs 3: --exclusive and the leaf existed; stress 4: inconclusive; lock and write -- COMMAND 125 to 127: racefree could not run COMMAND, 128+N: COMMAND was killed by signal N)",
    },
];

#[derive(Debug, Parser)]
#[command(
    name = "racefree",
    version,
    about = "Concurrency-safe filesystem and operations primitives",
    long_about = "Concurrency-safe filesystem and operations primitives.\n\n\
        racefree's commands are the versions of everyday operations that stay correct when \
        many processes act at once: makedirs, an idempotent mkdir -p that tolerates concurrent \
        creators and removers at every level; ident, an RFC 1413 identd, lookup and client whose \
        lookup matches a connection on its 4-tuple only, never its TCP state; lock, flock(1) \
        without its traps; counter, an atomic counter in a file; write, an atomic and durable \
        file replace; and stress, parallel racers that hammer every one of them and prove, with \
        a known-bad control arm beside each, that they could have seen a race.",
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
    #[command(long_about = crate::stress::cmd::LONG_ABOUT)]
    Stress(crate::stress::cmd::Args),
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
        Err(err) => Err(report_usage_error(&err)),
    }
}

/// Prints what clap found wrong with the command line the way every other error is
/// printed, `racefree: error: ...` on one line, followed by one line of usage; help
/// and version output go out as clap makes them. Returns the status (2 for errors).
fn report_usage_error(err: &clap::Error) -> exit::Exit {
    if !err.use_stderr()
        || err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        // Help asked for (or all there is to say): clap prints and exits itself.
        err.exit()
    }
    let (message, usage) = usage_error_lines(&err.render().to_string());
    exit::print_error(message);
    if let Some(usage) = usage {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "{usage} (see --help)");
    }
    exit::Exit::Usage
}

/// Splits clap's rendering of a usage error into our two lines: the error with its
/// details and tips folded into one line, and the first usage line.
fn usage_error_lines(rendered: &str) -> (String, Option<String>) {
    let mut message = String::new();
    let mut usage = None;
    for line in rendered.lines() {
        let line = line.trim();
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage.get_or_insert_with(|| format!("Usage: {u}"));
        } else if line.is_empty() || line.starts_with("For more information") {
            continue;
        } else if usage.is_none() {
            let part = line.strip_prefix("error: ").unwrap_or(line);
            let part = part.strip_prefix("tip: ").unwrap_or(part);
            if !message.is_empty() {
                message.push_str(if message.ends_with(':') { " " } else { "; " });
            }
            message.push_str(part);
        }
    }
    (message, usage)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_for(args: &[&str]) -> (String, Option<String>) {
        let err = <Cli as Parser>::try_parse_from(args).expect_err("a usage error");
        usage_error_lines(&err.render().to_string())
    }

    #[test]
    fn a_usage_error_is_one_error_line_and_one_usage_line() {
        assert_eq!(
            lines_for(&["racefree", "makedirs", "--verbos", "x"]),
            (
                "unexpected argument '--verbos' found; a similar argument exists: '--verbose'"
                    .to_string(),
                Some("Usage: racefree makedirs --verbose [PATH]...".to_string())
            )
        );
        // Indented details join the line they belong to.
        assert_eq!(
            lines_for(&["racefree", "lock"]).0,
            "the following required arguments were not provided: <LOCKFILE>"
        );
        // No usage line from clap: none of ours either.
        assert_eq!(
            lines_for(&["racefree", "counter", "n", "--add", "x"]).1,
            None
        );
    }

    #[test]
    fn every_usage_error_line_is_a_single_line() {
        for args in [
            &["racefree", "frob"][..],
            &["racefree", "lock"],
            &["racefree", "makedirs", "--bogus"],
            &["racefree", "stress", "makedirs", "--racers", "0"],
            &["racefree", "ident", "lookup", "1.2.3.4:1"],
        ] {
            let (message, usage) = lines_for(args);
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{args:?}: {message:?}"
            );
            assert!(usage.is_none_or(|u| !u.contains('\n')), "{args:?}");
        }
    }
}
