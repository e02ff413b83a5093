//! How long a taker waits for a lock, and what it reports when it gives up: the
//! same for the flock lock and for the link lock of [`super::nfs`].

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::quote::quote;

/// How [`acquire`](super::acquire) locks.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A shared (read) lock instead of an exclusive one.
    pub shared: bool,
    /// Fail at once with [`Busy`] instead of waiting.
    pub nonblock: bool,
    /// Wait at most this long, then fail with [`Busy`]. Zero means `nonblock`; one
    /// too long for a deadline to be computed (`Duration::MAX`) means no limit.
    pub timeout: Option<Duration>,
    /// Take the link(2) lock of [`nfs`](super::nfs) as well as the flock (which
    /// is then exclusive, and skipped where the filesystem has no flock).
    pub nfs: bool,
}

impl Options {
    /// Whether to give up at once when the lock is held.
    pub(super) fn nonblocking(&self) -> bool {
        self.nonblock || self.timeout == Some(Duration::ZERO)
    }

    /// When waiting that started at `from` ends; `None` to wait as long as it takes,
    /// for no timeout or one that no clock could reach (`-w 1e19`).
    pub(super) fn deadline(&self, from: Instant) -> Option<Instant> {
        from.checked_add(self.timeout?)
    }

    /// The failure when the lock on `path` is held and waiting is over.
    pub(super) fn busy(&self, path: &Path) -> Busy {
        self.busy_on(quote(path.as_os_str()))
    }

    /// The same for an inherited descriptor (`racefree lock -n 9`).
    pub(super) fn busy_fd(&self, fd: i32) -> Busy {
        self.busy_on(format!("descriptor {fd}"))
    }

    fn busy_on(&self, what: String) -> Busy {
        Busy {
            what,
            waited: if self.nonblocking() {
                None
            } else {
                self.timeout
            },
        }
    }
}

/// The lock is held by someone else and we were told not to wait (longer).
#[derive(Debug)]
pub struct Busy {
    /// What is locked, as messages name it: a quoted path, or `descriptor N`.
    pub what: String,
    /// `Some` when a timeout expired, `None` for a non-blocking attempt.
    pub waited: Option<Duration>,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.waited {
            None => write!(f, "{} is locked by another process", self.what),
            Some(d) => write!(
                f,
                "timed out after {} s waiting for the lock on {}",
                d.as_secs_f64(),
                self.what
            ),
        }
    }
}

impl std::error::Error for Busy {}
