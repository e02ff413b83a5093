//! The `racefree lock` command line: take the lock, run COMMAND, pass its status on.

use std::ffi::OsString;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use super::{Busy, Options, forward, nfs, spawn};
use crate::exit::{self, Exit};
use crate::help;
use crate::lock;
use crate::quote::quote;

/// The long description for --help and the man page (set on the subcommand in
/// cli.rs: a doc comment there would otherwise replace it).
pub const LONG_ABOUT: &str = "Take a lock on LOCKFILE, run COMMAND while holding it, and exit with COMMAND's \
        status: util-linux flock(1)'s interface, without its traps.\n\n\
        LOCKFILE is created if missing (mode 0666 & ~umask) and never removed: removing a lock \
        file while others wait on it lets two processes hold 'the' lock. A symbolic link at \
        LOCKFILE is followed, as flock(1) follows it, only where it cannot be a trap: when you \
        own the link; outside a sticky world-writable directory such as /tmp, when the link's \
        owner owns the file it points to; inside one, when the directory's owner owns the link \
        (the kernel's protected_symlinks rule). Any other link is refused.\n\n\
        The lock is flock(2) on LOCKFILE. On a filesystem without flock (ENOLCK, EOPNOTSUPP) \
        it is the link(2) lock LOCKFILE.nfslock instead; --nfs takes both, the flock first \
        where the filesystem has it, so --nfs and plain lockers exclude each other wherever \
        flock works between them (where flock is local to each host, as on NFS mounted nolock, \
        every locker on every host must use --nfs). A link lock records every process that \
        may hold it, racefree and COMMAND (host, boot id, pid, start time), and is broken only \
        when all of them are provably dead (same host, and each is gone, or the host \
        rebooted); a lock held from another host is never broken, and one whose record cannot \
        be read is an error that says how to clear it. A link lock is always exclusive.\n\n\
        Given a descriptor number alone (racefree lock -n 9, after 'exec 9>FILE' in the \
        shell), racefree locks that descriptor and exits, as flock(1) does: the lock belongs to \
        the shell's open file, and stays until the shell closes it or 'racefree lock -u 9' \
        drops it.\n\n\
        By default COMMAND inherits the lock, as with flock(1): it stays locked until COMMAND \
        and every process it started that kept the descriptor have exited, even if racefree \
        itself is killed. With -o the descriptor is close-on-exec: only racefree holds the \
        flock, until COMMAND exits, and a daemon COMMAND starts cannot keep it locked forever. \
        With -F racefree execs COMMAND in its own place, so that COMMAND holds the lock itself \
        (refused with -o and --nfs: nothing would be left to hold or remove the lock). No \
        other child ever inherits the descriptor.\n\n\
        While COMMAND runs, racefree ignores SIGINT and SIGQUIT (a terminal sends them to \
        COMMAND too, which decides) and passes SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM \
        on to COMMAND, as timeout(1) does, and waits for it: the lock is never released while \
        COMMAND still runs.\n\n\
        What the exit status tells: 125, 126 and 127 are racefree's own failures (the lock \
        was not taken, COMMAND could not be run), statuses few commands use. A conflict (-n, \
        -w) is 1, as with flock(1), and so is a COMMAND that exits 1: -E N gives the conflict \
        a status of its own. A usage error is 2, reported on standard error before anything \
        is locked or run; by status alone it cannot be told from COMMAND's own 2.";

/// lock's examples, for `--help` and the man page.
pub const EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "cron: skip this run while the last one still holds the lock",
        lines: "racefree lock -n /run/lock/backup.lock -- rsync -a /data/ /backup/ || echo 'backup already running'",
    },
    help::Example {
        what: "cron, flock(1)'s descriptor form: the shell holds the lock until it exits",
        lines: "exec 9>/run/lock/backup.lock\nracefree lock -n 9 || exit 1\nrsync -a /data/ /backup/",
    },
    help::Example {
        what: "a script that locks itself (flock(1)'s boilerplate, as its first line after #!)",
        lines: "[ \"${FLOCKER}\" != \"$0\" ] && exec env FLOCKER=\"$0\" racefree lock -en \"$0\" \"$0\" \"$@\" || :",
    },
    help::Example {
        what: "wait at most 60 seconds for the lock, then give up with status 75",
        lines: "racefree lock -w 60 -E 75 /run/lock/db.lock -c 'pg_dump app > app.sql'",
    },
    help::Example {
        what: "many readers at once, no writer among them",
        lines: "racefree lock -s /run/lock/cache.lock -- ./read-cache",
    },
];

/// lock's exit statuses, for `--help` and the man page. Its 0 is COMMAND's.
pub const STATUSES: &[exit::Status] = &[
    exit::Status {
        code: 0,
        meaning: "COMMAND's own status is passed through: 0 and any other status below 125 come from COMMAND (in the descriptor form, 0: the descriptor is locked)",
    },
    exit::Status {
        code: 1,
        meaning: "the lock was held and -n was given or -w expired; COMMAND did not run. A COMMAND that exits 1 looks the same: -E N gives the conflict a status of its own",
    },
    exit::Status {
        code: 2,
        meaning: "usage error, reported on standard error; nothing was locked or run. By status alone, the same as COMMAND's own 2",
    },
    exit::Status {
        code: 125,
        meaning: "the lock could not be taken: LOCKFILE cannot be opened or created, is a symbolic link that is not followed, holds a link lock whose record cannot be read, or locking failed",
    },
    exit::Status {
        code: 126,
        meaning: "COMMAND was found but could not be run",
    },
    exit::Status {
        code: 127,
        meaning: "COMMAND was not found, or the interpreter its #! line names was not found",
    },
    exit::Status {
        code: 128,
        meaning: "plus N: COMMAND was killed by signal N (130 for SIGINT, 143 for SIGTERM)",
    },
];

/// The three forms, as flock(1)'s synopsis gives them.
const USAGE: &str = "racefree lock [OPTIONS] <LOCKFILE> <COMMAND> [ARG]...\n       \
                     racefree lock [OPTIONS] <LOCKFILE> -c <COMMAND_STRING>\n       \
                     racefree lock [OPTIONS] <FD>";

#[derive(Debug, ClapArgs)]
#[command(
    override_usage = USAGE,
    after_long_help = help::long_help(EXAMPLES, STATUSES)
)]
pub struct Args {
    /// The file to lock (created if missing, never removed); given alone, without
    /// COMMAND, the number of an inherited descriptor to lock
    #[arg(value_name = "LOCKFILE", value_hint = clap::ValueHint::FilePath,
          value_parser = clap::builder::ValueParser::os_string())]
    pub lockfile: OsString,

    /// The command to run while holding the lock, and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true,
          value_hint = clap::ValueHint::CommandWithArguments,
          value_parser = clap::builder::ValueParser::os_string())]
    pub command: Vec<OsString>,

    /// Run COMMAND_STRING with 'sh -c', as flock(1) -c does
    #[arg(short = 'c', long = "command", value_name = "COMMAND_STRING", conflicts_with = "command",
          value_parser = clap::builder::ValueParser::os_string())]
    pub command_string: Option<OsString>,

    /// Take a shared lock: any number of shared holders, no exclusive one
    #[arg(short, long, conflicts_with = "exclusive")]
    pub shared: bool,

    /// Take an exclusive lock (the default)
    #[arg(short = 'x', long, visible_short_alias = 'e')]
    pub exclusive: bool,

    /// Drop the lock on descriptor FD (the descriptor form only)
    #[arg(short = 'u', long, conflicts_with_all = ["shared", "exclusive"])]
    pub unlock: bool,

    /// Fail at once if the lock is held, instead of waiting
    #[arg(short = 'n', long, visible_aliases = ["nb", "nonblocking"])]
    pub nonblock: bool,

    /// Wait at most SECS seconds (fractions allowed; 0 is -n; inf, or too many to
    /// count, waits as long as it takes), then fail
    #[arg(short = 'w', long, value_name = "SECS", value_parser = parse_secs, visible_alias = "wait")]
    pub timeout: Option<Duration>,

    /// Exit status when the lock is not acquired (held, with -n or -w)
    #[arg(short = 'E', long, value_name = "N", default_value_t = 1)]
    pub conflict_exit_code: u8,

    /// COMMAND does not inherit the lock descriptor; racefree alone holds the lock
    #[arg(short = 'o', long)]
    pub close: bool,

    /// Run COMMAND in racefree's place (exec, no fork), so that COMMAND holds the lock
    #[arg(short = 'F', long, conflicts_with_all = ["close", "nfs"])]
    pub no_fork: bool,

    /// Take the link(2) lock LOCKFILE.nfslock as well as flock (for NFS without locking)
    #[arg(long)]
    pub nfs: bool,

    /// Say on standard error how long the lock took and what runs
    #[arg(long)]
    pub verbose: bool,
}

/// A number of seconds to wait. NaN and negative numbers are usage errors; infinity,
/// or a number beyond what a `Duration` holds, is `Duration::MAX`, which waits as
/// long as it takes (see [`Options::timeout`]).
fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .ok()
        .filter(|v: &f64| !v.is_nan())
        .ok_or_else(|| format!("'{s}' is not a number of seconds"))?;
    if v < 0.0 {
        return Err(format!("'{s}' is not a number of seconds >= 0"));
    }
    Ok(Duration::try_from_secs_f64(v).unwrap_or(Duration::MAX))
}

/// The descriptor number of the descriptor form: LOCKFILE alone, all digits.
fn descriptor_number(lockfile: &OsString) -> Option<RawFd> {
    let s = lockfile.to_str()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// racefree's own failure before COMMAND ran (lock file unusable): like env(1) and
/// timeout(1), 125, a status few commands use.
pub const CANNOT_LOCK: u8 = 125;
/// COMMAND exists but could not be run.
pub const CANNOT_RUN: u8 = 126;
/// COMMAND (or the interpreter its #! line names) was not found.
pub const NOT_FOUND: u8 = 127;

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let opts = Options {
        shared: args.shared,
        nonblock: args.nonblock,
        timeout: args.timeout,
        nfs: args.nfs,
    };
    let (program, rest) = match (&args.command_string, args.command.split_first()) {
        (Some(s), _) => (OsString::from("sh"), vec![OsString::from("-c"), s.clone()]),
        (None, Some((p, rest))) => (p.clone(), rest.to_vec()),
        (None, None) => return lock_descriptor(&args, &opts),
    };
    if args.unlock {
        return Err(exit::usage(
            "--unlock drops the lock on a descriptor, and runs no COMMAND: racefree lock -u FD",
        ));
    }
    let run = Run {
        args: &args,
        lockfile: PathBuf::from(&args.lockfile),
        program,
        started: Instant::now(),
    };
    let mut cmd = Command::new(&run.program);
    cmd.args(&rest);
    let begun = match lock::begin(&run.lockfile, &opts) {
        Ok(b) => b,
        Err(e) => return not_locked(&args, e),
    };
    if !args.close
        && let Some(fd) = begun.fd()
    {
        pass_on(fd)?;
    }
    if begun.needs_link() {
        return run.with_link_lock(begun, cmd);
    }
    let held = begun.finish(&[])?;
    run.took(&held);
    if args.no_fork {
        // The lock goes with the process image: COMMAND holds it, as with flock -F.
        let e = cmd.exec();
        return Err(run.cannot_run(&e));
    }
    // Before the spawn: a signal that arrives once COMMAND runs but before racefree
    // has a handler would kill racefree alone, and COMMAND would go on with the lock
    // released (-o) or orphaned.
    forward::catch();
    let child = cmd.spawn().map_err(|e| run.cannot_run(&e))?;
    wait_for(child, held)
}

/// One run of COMMAND under a lock on LOCKFILE.
struct Run<'a> {
    args: &'a Args,
    lockfile: PathBuf,
    program: OsString,
    started: Instant,
}

impl Run<'_> {
    /// With a link lock, COMMAND is started first and held at the gate, so that the
    /// lock's record names it before it runs (see spawn.rs).
    fn with_link_lock(&self, begun: lock::Begun, cmd: Command) -> anyhow::Result<Exit> {
        if self.args.no_fork {
            return Err(with_status(
                CANNOT_LOCK,
                anyhow::anyhow!(
                    "cannot run COMMAND in racefree's place (-F) with the lock on {}: its filesystem has no flock, and the link lock taken instead needs racefree to stay and remove it",
                    quote(self.lockfile.as_os_str())
                ),
            ));
        }
        let gated = spawn::start_gated(cmd).map_err(|e| self.cannot_run(&e))?;
        let Some(command) = nfs::holder(gated.pid()) else {
            gated.abandon();
            return Err(with_status(
                CANNOT_RUN,
                anyhow::anyhow!("{} ended before it could run", quote(&self.program)),
            ));
        };
        let held = match begun.finish(&[command]) {
            Ok(h) => h,
            Err(e) => {
                gated.abandon();
                return not_locked(self.args, e);
            }
        };
        self.took(&held);
        forward::catch();
        let child = gated.open().map_err(|e| self.cannot_run(&e))?;
        wait_for(child, held)
    }

    /// --verbose: the lock is taken, and what runs.
    fn took(&self, held: &lock::Held) {
        if !self.args.verbose {
            return;
        }
        verbose(format_args!(
            "took the {} {} lock on {} in {:.6} s",
            if self.args.shared && held.method() == "flock" {
                "shared"
            } else {
                "exclusive"
            },
            held.method(),
            quote(self.lockfile.as_os_str()),
            self.started.elapsed().as_secs_f64()
        ));
        verbose(format_args!("running {}", quote(&self.program)));
    }

    /// COMMAND could not be started: 127 when it (or its interpreter) is not there,
    /// else 126.
    fn cannot_run(&self, e: &io::Error) -> anyhow::Error {
        let status = if e.kind() == io::ErrorKind::NotFound {
            NOT_FOUND
        } else {
            CANNOT_RUN
        };
        with_status(
            status,
            anyhow::anyhow!(spawn::why_not_run(&self.program, e)),
        )
    }
}

/// The descriptor form, `racefree lock -n 9`: locks (or with -u, unlocks) the
/// descriptor the shell opened, and exits, leaving the lock with the shell.
fn lock_descriptor(args: &Args, opts: &Options) -> anyhow::Result<Exit> {
    let Some(fd) = descriptor_number(&args.lockfile) else {
        let _ = missing_command().print();
        return Ok(Exit::Usage);
    };
    for (given, option) in [
        (args.close, "--close"),
        (args.no_fork, "--no-fork"),
        (args.nfs, "--nfs"),
    ] {
        if given {
            return Err(exit::usage(format!(
                "{option} needs LOCKFILE and COMMAND; the descriptor form (racefree lock {fd}) runs no COMMAND"
            )));
        }
    }
    let started = Instant::now();
    match lock::lock_descriptor(fd, opts, args.unlock) {
        Ok(()) if args.verbose => {
            if args.unlock {
                verbose(format_args!("unlocked descriptor {fd}"));
            } else {
                verbose(format_args!(
                    "took the {} flock lock on descriptor {fd} in {:.6} s",
                    if args.shared { "shared" } else { "exclusive" },
                    started.elapsed().as_secs_f64()
                ));
            }
            Ok(Exit::Success)
        }
        Ok(()) => Ok(Exit::Success),
        Err(e) => not_locked(args, e),
    }
}

/// clap's own error for a line without COMMAND whose LOCKFILE is no descriptor
/// number: what the full parser said before the descriptor form made COMMAND optional.
fn missing_command() -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let mut lock =
        <Args as clap::Args>::augment_args(clap::Command::new("lock")).bin_name("racefree lock");
    let mut err = clap::Error::new(ErrorKind::MissingRequiredArgument).with_cmd(&lock);
    err.insert(
        ContextKind::InvalidArg,
        ContextValue::Strings(vec!["<COMMAND>...".into()]),
    );
    err.insert(
        ContextKind::Usage,
        ContextValue::StyledStr(lock.render_usage()),
    );
    err
}

/// The lock was not taken: the conflict status when it is held, else 125.
fn not_locked(args: &Args, e: anyhow::Error) -> anyhow::Result<Exit> {
    if e.downcast_ref::<Busy>().is_none() {
        return Err(match crate::exit::status_of(&e) {
            Exit::Usage => e,
            _ => with_status(CANNOT_LOCK, e),
        });
    }
    // Silent by default, as flock(1): scripts test the status.
    if args.verbose {
        verbose(format_args!("{e}"));
    }
    Ok(Exit::Code(args.conflict_exit_code))
}

/// Lets COMMAND inherit the lock. Clearing close-on-exec in this process rather than
/// in a pre_exec hook keeps std on posix_spawn (no page-table copy: see
/// bench/RESULTS-primitives.md). Safe only because this command line is
/// single-threaded, so no other child can be started meanwhile; the library's
/// descriptors stay close-on-exec.
fn pass_on(fd: BorrowedFd<'_>) -> anyhow::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| {
        with_status(
            CANNOT_LOCK,
            anyhow::anyhow!("cannot pass the lock on: {}", e.desc()),
        )
    })?;
    Ok(())
}

/// Waits for COMMAND, passing signals on (see forward.rs), releases the lock only
/// then, and exits with COMMAND's status.
fn wait_for(mut child: Child, held: lock::Held) -> anyhow::Result<Exit> {
    forward::to(child.id() as i32);
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(with_status(
                    CANNOT_RUN,
                    anyhow::Error::new(e).context("waiting for COMMAND"),
                ));
            }
        }
    };
    drop(held);
    Ok(Exit::Code(match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => 1,
    }))
}

fn verbose(msg: std::fmt::Arguments<'_>) {
    eprintln!("racefree: lock: {msg}");
}

fn with_status(code: u8, e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(exit::WithStatus {
        status: Exit::Code(code),
        message: format!("{e:#}"),
    })
}
