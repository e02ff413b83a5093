//! Exit statuses and fatal-error reporting: the shared core every subcommand uses.
//!
//! A subcommand returns `anyhow::Result<Exit>`. Per-item failures (one path of many)
//! are printed where they happen with [`print_error`] and folded into the returned
//! [`Exit`]; a fatal error travels up to `main`, which calls [`report_fatal`], the
//! only place that prints it: one line, `racefree: error: <what>: <why>`.

use std::fmt::Display;
use std::io::{self, Write};

/// The documented exit statuses. Numbers are part of the interface: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for holds.
    Success,
    /// The operation failed (at least one item did, or a verification did).
    Failure,
    /// The command line was wrong; nothing was touched. clap uses 2 as well.
    Usage,
    /// `makedirs --exclusive`: the leaf already existed, so this call did not create it.
    Exists,
    /// A status documented by one command alone: `lock` passes COMMAND's status
    /// through and has its own (125, 126, 127, 128+N, -E N).
    Code(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Exists => 3,
            Exit::Code(c) => c,
        }
    }

    /// The worse of two statuses, for folding per-item results.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    fn severity(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Exists => 1,
            Exit::Failure | Exit::Code(_) => 2,
            Exit::Usage => 3,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// A usage error found after clap parsed the line (an empty path, say): exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds a usage error as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// An error that carries its own exit status (for example `Exists` for `--exclusive`).
#[derive(Debug)]
pub struct WithStatus {
    pub status: Exit,
    pub message: String,
}

impl Display for WithStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WithStatus {}

/// True when the error chain bottoms out in a broken pipe (our reader went away).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The status a fatal error earns.
pub fn status_of(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return Exit::Usage;
        }
        if let Some(w) = cause.downcast_ref::<WithStatus>() {
            return w.status;
        }
    }
    Exit::Failure
}

/// Prints a fatal error as one line and returns its status. A broken pipe is no
/// exception: the command stopped with its work undone, so it must not exit 0
/// (`racefree ... | head` under `set -o pipefail` has to see that).
pub fn report_fatal(err: &anyhow::Error) -> Exit {
    print_error(format_args!("{err:#}"));
    status_of(err)
}

/// Prints `racefree: error: <msg>` on stderr, as one line.
pub fn print_error(msg: impl Display) {
    let line = one_line(&msg.to_string());
    let _ = writeln!(io::stderr().lock(), "racefree: error: {line}");
}

/// Folds any newlines out of a message so every error stays one line.
pub fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// The exit statuses of each command, as documented in `--help` and the man pages.
/// Keyed by the command path below `racefree` ("makedirs", "ident lookup", ...).
pub fn statuses(command: &str) -> Vec<(u8, &'static str)> {
    // lock's 0 is COMMAND's: its own table says so.
    let mut v = if command == "lock" {
        vec![]
    } else {
        vec![(0, "success")]
    };
    match command {
        "makedirs" => v.extend([
            (1, "at least one PATH failed (it is not a directory afterwards), or stdout could not be written (a closed pipe, a full disk); every other PATH was still made"),
            (2, "usage error: bad option or MODE, no PATH, an empty PATH or a NUL inside one; nothing was touched, except that a bad --from entry stops the list after the paths before it"),
            (3, "--exclusive: a leaf already existed, so this call did not create it"),
        ]),
        "ident lookup" => v.extend([
            (1, "the connection has no owner (no such connection, or only a TIME_WAIT row), or the socket table could not be read"),
            (2, "usage error: bad option, an address that is not ADDR:PORT, port 0, or LOCAL and REMOTE of different families"),
        ]),
        "ident query" => v.extend([
            (1, "the server answered ERROR, or gave no usable answer in time (refused, timed out, malformed, or for other ports)"),
            (2, "usage error"),
        ]),
        "ident serve" => v.extend([
            (1, "the server could not start (bind, privilege drop) or its listening socket failed"),
            (2, "usage error, including: nothing to serve (no --listen, stdin not a socket) or --mode not matching how it was started"),
        ]),
        "lock" => v.extend([
            (0, "COMMAND's own status is passed through: 0 and any other status below 125 come from COMMAND"),
            (1, "the lock was held and -n was given or -w expired (another status with -E N); COMMAND did not run"),
            (2, "usage error; nothing was locked"),
            (125, "the lock could not be taken: LOCKFILE cannot be opened or created, is a symbolic link, or locking failed"),
            (126, "COMMAND was found but could not be run"),
            (127, "COMMAND was not found"),
            (128, "plus N: COMMAND was killed by signal N (130 for SIGINT, 143 for SIGTERM)"),
        ]),
        "counter" => v.extend([
            (1, "FILE does not hold a number, the sum leaves the 64-bit range, or FILE or FILE.lock cannot be read or replaced; FILE is left as it was"),
            (2, "usage error: bad option or an empty FILE"),
        ]),
        "write" => v.extend([
            (1, "FILE could not be replaced (its directory is not writable, it is a directory, reading input failed, its owner cannot be kept); FILE is left as it was and no temporary file remains"),
            (2, "usage error: bad option, bad -m MODE or an empty FILE"),
        ]),
        "stress" | "stress makedirs" | "stress ident" | "stress counter" | "stress write"
        | "stress lock" | "stress report" => v.extend([
            (1, "a verification of racefree's arm failed (the control arm's failures do not count)"),
            (2, "usage error, including a --dir that does not exist, and for stress ident more racers than can be released within --duration"),
            (128, "plus N: interrupted by signal N (130 for SIGINT, 143 for SIGTERM), after removing its work directory"),
        ]),
        _ => v.extend([
            (1, "the operation failed"),
            (2, "usage error (clap's own, or a bad value found later)"),
        ]),
    }
    v
}

/// The "Exit status" block appended to `--help`.
pub fn help_text(command: &str) -> String {
    let mut s = String::from("Exit status:\n");
    for (code, what) in statuses(command) {
        s.push_str(&format!("  {code}  {what}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_documented_interface() {
        assert_eq!(Exit::Success.code(), 0);
        assert_eq!(Exit::Failure.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Exists.code(), 3);
    }

    #[test]
    fn worst_prefers_failure_over_exists_over_success() {
        assert_eq!(Exit::Success.worst(Exit::Exists), Exit::Exists);
        assert_eq!(Exit::Exists.worst(Exit::Failure), Exit::Failure);
        assert_eq!(Exit::Failure.worst(Exit::Success), Exit::Failure);
    }

    #[test]
    fn status_is_found_anywhere_in_the_chain() {
        let e = usage("empty path").context("reading paths");
        assert_eq!(status_of(&e), Exit::Usage);
        let e = anyhow::Error::new(WithStatus {
            status: Exit::Exists,
            message: "x".into(),
        });
        assert_eq!(status_of(&e), Exit::Exists);
        assert_eq!(status_of(&anyhow::anyhow!("plain")), Exit::Failure);
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no")));
    }

    #[test]
    fn a_broken_pipe_is_a_failure_not_success() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert_eq!(report_fatal(&e), Exit::Failure);
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("a\nb\r\nc"), "a b  c");
    }
}
