//! The `racefree write` command line: standard input becomes FILE's new content.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use clap::Args as ClapArgs;

use super::{Options, TempKind, cleanup, replace_with};
use crate::exit::{self, Exit};
use crate::help;

/// The long description for --help and the man page (set on the subcommand in
/// cli.rs: a doc comment there would otherwise replace it).
pub const LONG_ABOUT: &str = "Read standard input to the end and make it FILE's content, atomically: \
        like 'cmd | sponge FILE' or 'cmd > tmp && mv tmp FILE', but readers of FILE only ever \
        see the old content or the new, never a mixture or an empty file, and a crash at any \
        point leaves one of the two.\n\n\
        The new content is written to a temporary file in FILE's own directory (unnamed with \
        O_TMPFILE where the filesystem allows it, else a random hidden name made with O_EXCL), \
        fsynced, renamed over FILE, and the directory is fsynced. FILE keeps its mode, owner and \
        group (an owner that cannot be kept is an error, and FILE is left as it was); -m sets \
        the mode; a new FILE gets 0666 & ~umask. A symlink at FILE is followed and its target \
        replaced, so links into dotfile repositories keep working; --no-follow replaces the \
        link itself. FILE must be a regular file or absent.\n\n\
        Nothing is left behind on any error, or when SIGINT, SIGTERM or SIGHUP arrives (even \
        while waiting for input); FILE is then unchanged. As with every rename-based \
        replacement, other hard links to FILE keep the old content, and extended attributes \
        and ACLs of the old FILE are not copied.";

/// write's examples, for `--help` and the man page.
pub const EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "sort a file in place, like sponge, but readers never see half a file",
        lines: "sort -u hosts.txt | racefree write hosts.txt",
    },
    help::Example {
        what: "a new config, owner-only, durable before the service reloads",
        lines: "render-config | racefree write -m 600 /etc/app/app.conf && systemctl reload app",
    },
];

/// write's exit statuses, for `--help` and the man page.
pub const STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "FILE could not be replaced (its directory is not writable, it is a directory, reading input failed, its owner cannot be kept); FILE is left as it was and no temporary file remains",
    },
    exit::Status {
        code: 2,
        meaning: "usage error: bad option, bad -m MODE or an empty FILE",
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
    };
    let kind = if std::env::var_os(NAMED_TEMP_ENV).is_some_and(|v| v == "1") {
        TempKind::Named
    } else {
        TempKind::Auto
    };
    cleanup::install_signal_handlers();
    let file = PathBuf::from(args.file);
    replace_with(&file, &mut io::stdin().lock(), &opts, kind)?;
    Ok(Exit::Success)
}
