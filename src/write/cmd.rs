//! The `racefree write` command line: standard input, or COMMAND's standard output,
//! becomes FILE's new content.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context;
use clap::Args as ClapArgs;

use super::{Options, Replacement, TempKind, cleanup};
use crate::child;
use crate::exit::{self, Exit};
use crate::help;
use crate::quote::quote;

/// The long description for --help and the man page (set on the subcommand in
/// cli.rs: a doc comment there would otherwise replace it).
pub const LONG_ABOUT: &str = "Make standard input, or with '-- COMMAND' COMMAND's standard output, \
        FILE's content, atomically: like 'cmd | sponge FILE' or 'cmd > tmp && mv tmp FILE', but \
        readers of FILE only ever see the old content or the new, never a mixture or an empty \
        file, and a crash at any point leaves one of the two.\n\n\
        With '-- COMMAND [ARG...]', COMMAND runs with its standard output going to the new \
        content, and FILE is replaced only if COMMAND exits 0; otherwise FILE is untouched, no \
        temporary file remains, and racefree exits with COMMAND's status (128+N when signal N \
        killed it). Reading standard input, as with sponge, an empty input makes FILE empty, \
        even when the command before the pipe failed: --no-empty refuses to replace a \
        non-empty FILE with empty content. A standard input that was closed (<&-) is an error, \
        not empty content.\n\n\
        The new content is written to a temporary file in FILE's own directory (unnamed with \
        O_TMPFILE where the filesystem allows it, else a hidden name made with O_EXCL), \
        fsynced, renamed over FILE, and the directory is fsynced. FILE keeps its mode, owner and \
        group (an owner that cannot be kept is an error, and FILE is left as it was); -m sets \
        the mode; a new FILE gets 0666 & ~umask. A symlink at FILE is followed and its target \
        replaced, so links into dotfile repositories keep working; --no-follow replaces the \
        link itself. FILE must be a regular file or absent.\n\n\
        Nothing is left behind on any error, or when SIGINT, SIGTERM or SIGHUP arrives (even \
        while waiting for input); FILE is then unchanged. A call killed outright (SIGKILL, a \
        crash) can leave its temporary file, named .FILE.rf-HOST-BOOT-PID-START-RAND: the next \
        successful write of FILE removes it once its writer is provably dead (same host and \
        boot, and that process is gone), or, when it was written from another host or by an \
        older racefree, once it is an hour old (in a directory bigger than 32 KiB, only a \
        share of the writes looks, in proportion, so the listing stays cheap). As with every rename-based replacement, other \
        hard links to FILE keep the old content, and extended attributes and ACLs of the old \
        FILE are not copied.";

/// write's examples, for `--help` and the man page.
pub const EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "sort a file in place, like sponge, but readers never see half a file",
        lines: "sort -u hosts.txt | racefree write hosts.txt",
    },
    help::Example {
        what: "replace the file only if the whole pipeline succeeded",
        lines: "racefree write --no-empty report.csv -- sh -c 'set -o pipefail; fetch-data | to-csv'",
    },
    help::Example {
        what: "a new config, owner-only, durable before the service reloads",
        lines: "racefree write -m 600 /etc/app/app.conf -- render-config && systemctl reload app",
    },
];

/// write's exit statuses, for `--help` and the man page.
pub const STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "FILE could not be replaced (its directory is not writable, it is a directory, standard input could not be read or was closed, --no-empty refused empty content, its owner cannot be kept); FILE is left as it was and no temporary file remains",
    },
    exit::Status {
        code: 2,
        meaning: "usage error: bad option, bad -m MODE or an empty FILE argument ('')",
    },
    exit::Status {
        code: 126,
        meaning: "COMMAND was found but could not be run",
    },
    exit::Status {
        code: 127,
        meaning: "COMMAND was not found",
    },
    exit::Status {
        code: 128,
        meaning: "plus N: COMMAND was killed by signal N. Every status COMMAND exits with other than 0 is passed on (1 and 2 included), and FILE is then left as it was",
    },
];

#[derive(Debug, ClapArgs)]
#[command(
    after_long_help = help::long_help(EXAMPLES, STATUSES)
)]
pub struct Args {
    /// The file to replace (created if absent)
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath,
          value_parser = clap::builder::ValueParser::os_string())]
    pub file: OsString,

    /// Run COMMAND with its standard output as the new content; FILE is replaced
    /// only if COMMAND exits 0
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true,
          value_hint = clap::ValueHint::CommandWithArguments,
          value_parser = clap::builder::ValueParser::os_string())]
    pub command: Vec<OsString>,

    /// Mode of the new content: octal (644) or symbolic (u=rw,go=r); default: FILE's
    /// current mode, or 0666 & ~umask for a new file
    #[arg(short, long, value_name = "MODE")]
    pub mode: Option<String>,

    /// A symlink at FILE is replaced by a regular file, instead of replacing its target
    #[arg(long)]
    pub no_follow: bool,

    /// Skip both fsyncs: still atomic for readers, but a crash may lose the new content
    #[arg(long)]
    pub no_sync: bool,

    /// Refuse to replace a non-empty FILE with empty content (exit 1, FILE untouched)
    #[arg(long)]
    pub no_empty: bool,
}

/// Tests set this to force the named temporary file that filesystems without
/// O_TMPFILE get, so the signal handler's cleanup is exercised.
pub const NAMED_TEMP_ENV: &str = "RACEFREE_WRITE_NAMED_TEMP";

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mode = match &args.mode {
        Some(spec) => Some(
            crate::makedirs::mode::parse_mode(spec, crate::makedirs::mode::umask())
                .map_err(exit::usage)?
                .mode,
        ),
        None => None,
    };
    let opts = Options {
        mode,
        follow: !args.no_follow,
        sync: !args.no_sync,
        refuse_empty: args.no_empty,
    };
    let kind = if std::env::var_os(NAMED_TEMP_ENV).is_some_and(|v| v == "1") {
        TempKind::Named
    } else {
        TempKind::Auto
    };
    let file = PathBuf::from(&args.file);
    // `write -- -f -- cmd`: the first `--` ended the options, the second is the one
    // that introduces COMMAND, as in `write f -- cmd`.
    let command = match args.command.split_first() {
        Some((dashes, rest)) if dashes == "--" => rest,
        _ => &args.command[..],
    };
    if command.is_empty() && crate::startup::was_closed(libc::STDIN_FILENO) {
        // Start-up put /dev/null there; reading it would empty FILE.
        anyhow::bail!(
            "cannot replace {}: standard input is closed (give the content on standard input, or a COMMAND after --)",
            quote(file.as_os_str())
        );
    }
    cleanup::install_signal_handlers();
    let mut new = Replacement::begin(&file, &opts, kind)?;
    match command.split_first() {
        None => new.fill(&mut io::stdin().lock(), "standard input")?,
        Some((program, rest)) => {
            let status = run_command(&mut new, program, rest)?;
            if status != 0 {
                // FILE untouched; dropping the replacement removes its temporary file.
                return Ok(Exit::Code(status));
            }
        }
    }
    new.commit()?;
    Ok(Exit::Success)
}

/// Runs COMMAND with its standard output going into the new content, and returns
/// its status as a shell reports it. Its standard input and error are ours.
fn run_command(new: &mut Replacement, program: &OsString, rest: &[OsString]) -> anyhow::Result<u8> {
    let out = new
        .file()
        .try_clone()
        .context("cannot pass the temporary file to COMMAND")?;
    let mut cmd = Command::new(program);
    cmd.args(rest).stdout(Stdio::from(out));
    let mut child = cmd.spawn().map_err(|e| child::spawn_failed(program, &e))?;
    // Our copy of the descriptor goes with the Command: COMMAND holds its own.
    drop(cmd);
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("waiting for COMMAND")),
        }
    };
    Ok(child::shell_status(status))
}
