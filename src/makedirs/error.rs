//! Why a path could not be made a directory, and the exit status each reason earns.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

use super::sys::Kind;
use crate::exit::Exit;
use crate::quote::quote;

/// Why a path could not be made a directory. `Display` gives the reason, naming the
/// component at fault; callers prefix it with the path they were asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    EmptyPath,
    NulInPath,
    /// A component exists and is not a directory.
    NotADirectory {
        component: PathBuf,
        kind: Kind,
    },
    DanglingSymlink {
        component: PathBuf,
    },
    /// `--no-symlinks` met a symlink.
    SymlinkRefused {
        component: PathBuf,
    },
    /// `--beneath`: resolving this component would leave the directory.
    Escapes {
        component: PathBuf,
    },
    /// `--beneath` was given an absolute path.
    AbsoluteBeneath,
    /// `--beneath` on a kernel without openat2(2).
    BeneathUnsupported,
    /// `--exclusive`: the leaf was already there.
    AlreadyExists {
        path: PathBuf,
    },
    /// `--beneath`: a directory this call made turned out not to be beneath DIR any
    /// more (a directory the walk held was renamed out of DIR). `removed`: the
    /// directory made out there was removed again.
    MovedOut {
        component: PathBuf,
        removed: bool,
    },
    /// The tree changed under the walk more often than `Options::attempts` allows.
    KeptChanging {
        attempts: u32,
    },
    /// A system call failed and what is there does not settle it.
    Io {
        op: &'static str,
        component: PathBuf,
        errno: Errno,
    },
}

impl Error {
    /// The documented exit status for this failure.
    pub fn exit(&self) -> Exit {
        match self {
            Error::EmptyPath | Error::NulInPath | Error::AbsoluteBeneath => Exit::Usage,
            Error::AlreadyExists { .. } => Exit::Exists,
            _ => Exit::Failure,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyPath => write!(f, "empty path"),
            Error::NulInPath => write!(f, "path contains a NUL byte"),
            Error::NotADirectory { component, kind } => write!(
                f,
                "{} exists and is not a directory (it is a {})",
                quote(component),
                kind.describe()
            ),
            Error::DanglingSymlink { component } => write!(
                f,
                "{} is a dangling symbolic link (not a directory)",
                quote(component)
            ),
            Error::SymlinkRefused { component } => write!(
                f,
                "{} is a symbolic link, refused by --no-symlinks",
                quote(component)
            ),
            Error::Escapes { component } => {
                write!(
                    f,
                    "{} leads outside the --beneath directory",
                    quote(component)
                )
            }
            Error::MovedOut { component, removed } => write!(
                f,
                "{} was made outside the --beneath directory (a directory the walk \
                 held was moved out of it); {}",
                quote(component),
                if *removed {
                    "it was removed again"
                } else {
                    "it could not be removed (no longer empty, or replaced)"
                }
            ),
            Error::AbsoluteBeneath => write!(
                f,
                "an absolute path cannot be resolved --beneath a directory"
            ),
            Error::BeneathUnsupported => {
                write!(f, "--beneath needs openat2(2), Linux 5.6 or later")
            }
            Error::AlreadyExists { path } => {
                write!(
                    f,
                    "{} already exists (--exclusive wants to create it)",
                    quote(path)
                )
            }
            Error::KeptChanging { attempts } => write!(
                f,
                "the tree kept changing under the walk: gave up after {attempts} attempts"
            ),
            Error::Io {
                op,
                component,
                errno,
            } => {
                // nix words ELOOP "Too many symbolic links encountered"; say it
                // as strerror and GNU do.
                let why = match errno {
                    Errno::ELOOP => "too many levels of symbolic links",
                    _ => errno.desc(),
                };
                write!(f, "{op} {}: {why}", quote(component))
            }
        }
    }
}

impl std::error::Error for Error {}
