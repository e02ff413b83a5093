//! The server's log: one line per query, per refusal and per error, to syslog
//! (facility daemon), stderr, or nowhere.

use std::io::{self, Write};
use std::sync::Mutex;

/// Where the server's log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogTarget {
    /// The local syslog daemon (facility daemon); silently nothing if there is none.
    Syslog,
    /// Standard error (refused in inetd and systemd modes, where fd 2 may be the socket).
    Stderr,
    /// Nowhere.
    None,
}

/// A thread-safe log: one line per query, per refusal and per error.
pub struct Logger {
    target: LogTarget,
    sink: Mutex<Sink>,
}

enum Sink {
    Syslog(Box<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>),
    Stderr,
    Discard,
    /// A unit test's: the lines, kept to be read back.
    #[cfg(test)]
    Kept(Vec<String>),
}

impl Sink {
    /// Syslog, facility daemon, with `process` as the ident.
    fn syslog(process: &str) -> Sink {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_DAEMON,
            hostname: None,
            process: process.into(),
            pid: std::process::id(),
        };
        // No syslog daemon (a container, say): there is nowhere safe to say so.
        syslog::unix(formatter).map_or(Sink::Discard, |l| Sink::Syslog(Box::new(l)))
    }
}

impl Logger {
    pub fn new(target: LogTarget) -> Logger {
        let sink = match target {
            LogTarget::Syslog => Sink::syslog("racefree-identd"),
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::None => Sink::Discard,
        };
        Logger {
            target,
            sink: Mutex::new(sink),
        }
    }

    /// A new log to the same place (its own syslog connection, for a new process).
    pub fn clone_target(&self) -> Logger {
        Logger::new(self.target)
    }

    pub fn target(&self) -> LogTarget {
        self.target
    }

    /// A syslog log with `process` as its ident, whatever the server's `--log`.
    pub(crate) fn syslog_as(process: &str) -> Logger {
        Logger {
            target: LogTarget::Syslog,
            sink: Mutex::new(Sink::syslog(process)),
        }
    }

    /// A log that keeps its lines for [`Logger::lines`], for the unit tests that
    /// check what is logged.
    #[cfg(test)]
    pub(crate) fn kept() -> Logger {
        Logger {
            target: LogTarget::None,
            sink: Mutex::new(Sink::Kept(Vec::new())),
        }
    }

    /// The lines a [`Logger::kept`] log has had, `error: ` before each error's.
    #[cfg(test)]
    pub(crate) fn lines(&self) -> Vec<String> {
        match &*self.sink.lock().unwrap_or_else(|p| p.into_inner()) {
            Sink::Kept(lines) => lines.clone(),
            _ => Vec::new(),
        }
    }

    pub fn info(&self, msg: &str) {
        self.write(msg, false);
    }

    pub fn error(&self, msg: &str) {
        self.write(msg, true);
    }

    fn write(&self, msg: &str, is_error: bool) {
        let msg = crate::exit::one_line(msg);
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::Syslog(l) => {
                let _ = if is_error { l.err(msg) } else { l.info(msg) };
            }
            Sink::Stderr => {
                let kind = if is_error { "error: " } else { "" };
                let _ = writeln!(io::stderr().lock(), "racefree ident: {kind}{msg}");
            }
            Sink::Discard => {}
            #[cfg(test)]
            Sink::Kept(lines) => {
                let kind = if is_error { "error: " } else { "" };
                lines.push(format!("{kind}{msg}"));
            }
        }
    }
}
