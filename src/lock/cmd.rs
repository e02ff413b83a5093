//! The `racefree lock` command line: take the lock, run COMMAND, pass its status on.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{SaFlags, Signal, kill};
use nix::unistd::Pid;

use super::{Busy, Options, acquire};
use crate::exit::{self, Exit};
use crate::help;
use crate::quote::quote;
use crate::signals::{self, Replace};

/// The long description for --help and the man page (set on the subcommand in
/// cli.rs: a doc comment there would otherwise replace it).
pub const LONG_ABOUT: &str = "Take a lock on LOCKFILE, run COMMAND while holding it, and exit with COMMAND's \
        status: util-linux flock(1)'s interface, without its traps.\n\n\
        LOCKFILE is created if missing (mode 0666 & ~umask) and never removed: removing a lock \
        file while others wait on it lets two processes hold 'the' lock. A symbolic link at \
        LOCKFILE is refused, not followed. The lock is flock(2) on LOCKFILE; on a filesystem \
        without flock (ENOLCK, EOPNOTSUPP), or with --nfs, it is the link(2) lock \
        LOCKFILE.nfslock instead, which records its owner (host, pid, boot id, start time) and \
        is broken only when that owner is provably dead (same host, and its process is gone or \
        the host rebooted); a lock held from another host is never broken. A link lock is always \
        exclusive.\n\n\
        By default COMMAND inherits the lock, as with flock(1): it stays locked until COMMAND \
        and every process it started that kept the descriptor have exited, even if racefree \
        itself is killed. With -o the descriptor is close-on-exec: only racefree holds the lock, \
        until COMMAND exits, and a daemon COMMAND starts cannot keep it locked forever. No \
        other child ever inherits the descriptor.\n\n\
        While COMMAND runs, racefree ignores SIGINT and SIGQUIT (a terminal sends them to \
        COMMAND too, which decides) and passes SIGTERM and SIGHUP on to COMMAND, so the lock \
        is never released while COMMAND still runs.";

/// lock's examples, for `--help` and the man page.
pub const EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "cron: skip this run while the last one still holds the lock",
        lines: "racefree lock -n /run/lock/backup.lock -- rsync -a /data/ /backup/ || echo 'backup already running'",
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
        meaning: "COMMAND's own status is passed through: 0 and any other status below 125 come from COMMAND",
    },
    exit::Status {
        code: 1,
        meaning: "the lock was held and -n was given or -w expired (another status with -E N); COMMAND did not run",
    },
    exit::Status {
        code: 2,
        meaning: "usage error; nothing was locked",
    },
    exit::Status {
        code: 125,
        meaning: "the lock could not be taken: LOCKFILE cannot be opened or created, is a symbolic link, or locking failed",
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
        meaning: "plus N: COMMAND was killed by signal N (130 for SIGINT, 143 for SIGTERM)",
    },
];

#[derive(Debug, ClapArgs)]
#[command(
    after_long_help = help::long_help(EXAMPLES, STATUSES)
)]
pub struct Args {
    /// The file to lock (created if missing, never removed)
    #[arg(value_name = "LOCKFILE", value_hint = clap::ValueHint::FilePath,
          value_parser = clap::builder::ValueParser::os_string())]
    pub lockfile: OsString,

    /// The command to run while holding the lock, and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true,
          value_hint = clap::ValueHint::CommandWithArguments,
          value_parser = clap::builder::ValueParser::os_string(),
          required_unless_present = "command_string")]
    pub command: Vec<OsString>,

    /// Run COMMAND_STRING with 'sh -c', as flock(1) -c does
    #[arg(short = 'c', long = "command", value_name = "COMMAND_STRING", conflicts_with = "command",
          value_parser = clap::builder::ValueParser::os_string())]
    pub command_string: Option<OsString>,

    /// Take a shared lock: any number of shared holders, no exclusive one
    #[arg(short, long, conflicts_with = "exclusive")]
    pub shared: bool,

    /// Take an exclusive lock (the default)
    #[arg(short = 'x', long)]
    pub exclusive: bool,

    /// Fail at once if the lock is held, instead of waiting
    #[arg(short = 'n', long, visible_alias = "nb")]
    pub nonblock: bool,

    /// Wait at most SECS seconds (fractions allowed; 0 is -n), then fail
    #[arg(short = 'w', long, value_name = "SECS", value_parser = parse_secs, visible_alias = "wait")]
    pub timeout: Option<Duration>,

    /// Exit status when the lock is not acquired (held, with -n or -w)
    #[arg(short = 'E', long, value_name = "N", default_value_t = 1)]
    pub conflict_exit_code: u8,

    /// COMMAND does not inherit the lock descriptor; racefree alone holds the lock
    #[arg(short = 'o', long)]
    pub close: bool,

    /// Use the link(2) lock LOCKFILE.nfslock instead of flock (for NFS without locking)
    #[arg(long)]
    pub nfs: bool,

    /// Say on standard error how long the lock took and what runs
    #[arg(long)]
    pub verbose: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("'{s}' is not a number of seconds >= 0"))
}

/// racefree's own failure before COMMAND ran (lock file unusable): like env(1) and
/// timeout(1), 125, so it is never mistaken for COMMAND's own status.
pub const CANNOT_LOCK: u8 = 125;
/// COMMAND exists but could not be run.
pub const CANNOT_RUN: u8 = 126;
/// COMMAND was not found.
pub const NOT_FOUND: u8 = 127;

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let lockfile = PathBuf::from(&args.lockfile);
    let (program, rest) = match &args.command_string {
        Some(s) => (OsString::from("sh"), vec![OsString::from("-c"), s.clone()]),
        None => match args.command.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => return Err(exit::usage("no COMMAND given")),
        },
    };
    let opts = Options {
        shared: args.shared,
        nonblock: args.nonblock,
        timeout: args.timeout,
        nfs: args.nfs,
    };
    let started = Instant::now();
    let held = match acquire(&lockfile, &opts) {
        Ok(h) => h,
        Err(e) if e.downcast_ref::<Busy>().is_some() => {
            // Silent by default, as flock(1): scripts test the status.
            if args.verbose {
                verbose(format_args!("{e}"));
            }
            return Ok(Exit::Code(args.conflict_exit_code));
        }
        Err(e) => return Err(with_status(CANNOT_LOCK, e)),
    };
    if args.verbose {
        verbose(format_args!(
            "took the {} {} lock on {} in {:.6} s",
            if args.shared && held.method() == "flock" {
                "shared"
            } else {
                "exclusive"
            },
            held.method(),
            quote(lockfile.as_os_str()),
            started.elapsed().as_secs_f64()
        ));
        verbose(format_args!("running {}", quote(&program)));
    }

    let mut cmd = Command::new(&program);
    cmd.args(&rest);
    if let (false, Some(fd)) = (args.close, held.fd()) {
        // COMMAND inherits the lock. Clearing close-on-exec in this process rather
        // than in a pre_exec hook keeps std on posix_spawn (no page-table copy: see
        // bench/RESULTS-primitives.md). Safe only because this command line is
        // single-threaded, so no other child can be started meanwhile; the library's
        // descriptors stay close-on-exec.
        if let Err(e) = fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())) {
            return Err(with_status(
                CANNOT_LOCK,
                anyhow::anyhow!("cannot pass the lock on: {}", e.desc()),
            ));
        }
    }
    // Before the spawn: a SIGTERM that arrives once COMMAND runs but before racefree
    // has a handler would kill racefree alone, and COMMAND would go on with the lock
    // released (-o, link locks) or orphaned. Caught signals are reset to their
    // default in COMMAND by exec; ignored ones would not be, so none is ignored.
    catch_signals();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let status = if e.kind() == io::ErrorKind::NotFound {
                NOT_FOUND
            } else {
                CANNOT_RUN
            };
            let why = match e.raw_os_error() {
                Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
                None => e.to_string(),
            };
            return Err(with_status(
                status,
                anyhow::anyhow!("cannot run {}: {why}", quote(&program)),
            ));
        }
    };
    forward_terminations_to(child.id() as i32);
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

/// Signals that, sent to racefree while COMMAND runs, go on to COMMAND.
const TERMINATIONS: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGHUP];
/// Signals racefree does not act on while COMMAND runs, as system(3) ignores them:
/// the terminal delivers them to COMMAND as well, and if racefree died of them first,
/// a lock held by racefree alone (-o, link locks) would be released while COMMAND runs.
const INTERRUPTS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGQUIT];

/// COMMAND's pid once it is known; 0 before.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A termination signal that arrived before COMMAND's pid was known.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_termination(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        pass_on(pid, sig);
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

extern "C" fn on_interrupt(_sig: libc::c_int) {}

/// Sends `sig` to COMMAND. Async-signal-safe: the handler calls it.
fn pass_on(pid: i32, sig: libc::c_int) {
    if let Ok(sig) = Signal::try_from(sig) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Installs racefree's handlers, before COMMAND is spawned. A handler, not SIG_IGN,
/// even for the interrupts: exec resets a caught signal to its default in COMMAND,
/// but an ignored one would stay ignored there. A termination signal whose
/// disposition we were given as ignored stays ignored, as it is passed on to COMMAND.
fn catch_signals() {
    let handlers = TERMINATIONS
        .iter()
        .map(|&sig| (sig, on_termination as extern "C" fn(libc::c_int)))
        .chain(
            INTERRUPTS
                .iter()
                .map(|&sig| (sig, on_interrupt as extern "C" fn(libc::c_int))),
        );
    for (sig, handler) in handlers {
        // SAFETY: the handlers only call kill(2) and touch atomics, which is
        // async-signal-safe.
        let _ =
            unsafe { signals::install(sig, handler, SaFlags::SA_RESTART, Replace::UnlessIgnored) };
    }
}

/// SIGTERM and SIGHUP sent to racefree go to COMMAND from now on, and one that
/// arrived while COMMAND was being spawned goes to it now; racefree waits for it to
/// exit and reports its status, releasing the lock only then. racefree lock is
/// single-threaded, so the handler runs either wholly before the store below (and
/// leaves PENDING for the swap) or wholly after it (and kills COMMAND itself).
fn forward_terminations_to(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    let sig = PENDING.swap(0, Ordering::SeqCst);
    if sig != 0 {
        pass_on(pid, sig);
    }
}
