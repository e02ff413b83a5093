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
    /// `stress`: every check held, but a control arm never failed, so the run could
    /// not have seen the race it looks for.
    Inconclusive,
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
            Exit::Inconclusive => 4,
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
            Exit::Inconclusive => 2,
            Exit::Failure | Exit::Code(_) => 3,
            Exit::Usage => 4,
        }
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

/// One documented exit status of a command. Each command declares its list beside
/// its `Args` (`STATUSES`), and shows it with [`help_text`]; the man pages read it
/// back from the same `--help` text ([`statuses_in_help`]), so the list exists once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u8,
    pub meaning: &'static str,
}

/// What every command means by 0.
pub const SUCCESS: Status = Status {
    code: 0,
    meaning: "success",
};

/// The heading [`help_text`] puts above the list.
const HEADING: &str = "Exit status:";

/// The "Exit status" block appended to a command's long `--help`.
pub fn help_text(statuses: &[Status]) -> String {
    let mut s = format!("{HEADING}\n");
    for st in statuses {
        s.push_str(&format!("  {}  {}\n", st.code, st.meaning));
    }
    s
}

/// The statuses in a long help text made by [`help_text`], in order: what the man
/// pages print under EXIT STATUS. Empty when the text has no such block.
pub fn statuses_in_help(text: &str) -> Vec<(u8, String)> {
    text.lines()
        .skip_while(|l| *l != HEADING)
        .skip(1)
        .map_while(|l| {
            let (code, meaning) = l.strip_prefix("  ")?.split_once("  ")?;
            Some((code.parse().ok()?, meaning.to_string()))
        })
        .collect()
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
        assert_eq!(Exit::Inconclusive.code(), 4);
    }

    #[test]
    fn worst_prefers_failure_over_exists_over_success() {
        assert_eq!(Exit::Success.worst(Exit::Exists), Exit::Exists);
        assert_eq!(Exit::Exists.worst(Exit::Failure), Exit::Failure);
        assert_eq!(Exit::Failure.worst(Exit::Success), Exit::Failure);
    }

    #[test]
    fn worst_prefers_failure_over_inconclusive_over_success() {
        assert_eq!(Exit::Success.worst(Exit::Inconclusive), Exit::Inconclusive);
        assert_eq!(Exit::Inconclusive.worst(Exit::Failure), Exit::Failure);
        assert_eq!(Exit::Inconclusive.worst(Exit::Success), Exit::Inconclusive);
        assert_eq!(Exit::Usage.worst(Exit::Inconclusive), Exit::Usage);
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
    fn the_man_pages_read_back_what_help_shows() {
        let statuses = [
            SUCCESS,
            Status {
                code: 128,
                meaning: "plus N: killed by signal N  (two spaces inside)",
            },
        ];
        let help = format!("Examples:\n  a  b\n\n{}", help_text(&statuses));
        assert_eq!(
            statuses_in_help(&help),
            vec![
                (0, "success".to_string()),
                (
                    128,
                    "plus N: killed by signal N  (two spaces inside)".to_string()
                )
            ]
        );
        assert!(statuses_in_help("Examples:\n  1  x\n").is_empty());
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("a\nb\r\nc"), "a b  c");
    }
}
