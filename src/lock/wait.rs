//! How long a taker waits for a lock, and what it reports when it gives up: the
//! same for the flock lock and for the link lock of [`super::nfs`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::quote::quote;

/// How [`acquire`](super::acquire) locks.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A shared (read) lock instead of an exclusive one.
    pub shared: bool,
    /// Fail at once with [`Busy`] instead of waiting.
    pub nonblock: bool,
    /// Wait at most this long, then fail with [`Busy`]. Zero means `nonblock`.
    pub timeout: Option<Duration>,
    /// Use the link(2) lock of [`nfs`](super::nfs) instead of flock.
    pub nfs: bool,
}

impl Options {
    /// Whether to give up at once when the lock is held.
    pub(super) fn nonblocking(&self) -> bool {
        self.nonblock || self.timeout == Some(Duration::ZERO)
    }

    /// The failure when the lock on `path` is held and waiting is over.
    pub(super) fn busy(&self, path: &Path) -> Busy {
        Busy {
            path: path.to_path_buf(),
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
    pub path: PathBuf,
    /// `Some` when a timeout expired, `None` for a non-blocking attempt.
    pub waited: Option<Duration>,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.waited {
            None => write!(
                f,
                "{} is locked by another process",
                quote(self.path.as_os_str())
            ),
            Some(d) => write!(
                f,
                "timed out after {} s waiting for the lock on {}",
                d.as_secs_f64(),
                quote(self.path.as_os_str())
            ),
        }
    }
}

impl std::error::Error for Busy {}
