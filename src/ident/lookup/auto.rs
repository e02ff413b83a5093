//! `--source auto`, the default: sock_diag's exact lookup where the kernel offers
//! it, the `/proc/net/tcp{,6}` reader where it does not (a sandbox that blocks
//! `NETLINK_SOCK_DIAG` still gets answers). Both apply the same rule ([`Matcher`]):
//! the 4-tuple only, any TCP state, TIME_WAIT has no owner.
//!
//! Which one answers is decided per failure of sock_diag:
//! - **Refused for good**: its socket cannot be opened because the protocol is not
//!   there (EPROTONOSUPPORT, EAFNOSUPPORT) or a seccomp filter or LSM forbids it
//!   (EACCES, EPERM, ENOSYS), or the kernel refuses the TCP request itself (ENOENT:
//!   no tcp_diag; EOPNOTSUPP, EINVAL). Nothing later changes that, so the process
//!   reads /proc from then on and never asks sock_diag again.
//! - **Anything else** (EMFILE, ENFILE, ENOBUFS, ENOMEM, no reply in time, a reply
//!   that does not decode): that one lookup is answered from /proc, and the next asks
//!   sock_diag again. An answer from the slower reader beats UNKNOWN-ERROR, and a
//!   moment's shortage is no reason to pay /proc's cost for the life of the server.
//!
//! sock_diag is probed once before its first lookup: its exact lookup answers ENOENT
//! both for a connection that does not exist and for a kernel without tcp_diag, so
//! only a probe can tell "no owner" from "cannot know".
//!
//! [`Matcher`]: super::Matcher

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use std::fmt;

use serde::Serialize;

/// Where the kernel's socket table is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The /proc/net/tcp and tcp6 reader, for hosts without sock_diag: works in any container and kernel; each read costs time in proportion to the sockets on the host (the kernel formats every one, TIME_WAIT included), shared by the lookups that arrive together
    Proc,
    /// The kernel's sock_diag exact lookup by 4-tuple: one request, constant time whatever the number of sockets; needs tcp_diag, which some sandboxes block (then an error)
    Netlink,
    /// netlink where the kernel offers sock_diag, proc where it does not: a refusal (no tcp_diag, a seccomp filter) switches to proc for good; a passing failure sends that one lookup to proc
    Auto,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Proc => "proc",
            Source::Netlink => "netlink",
            Source::Auto => "auto",
        })
    }
}

const UNPROBED: u8 = 0;
const NETLINK: u8 = 1;
const PROC: u8 = 2;

/// One process's decision between the two sources.
pub(crate) struct Auto {
    state: AtomicU8,
    /// Why sock_diag was refused for good, once it was.
    refused: OnceLock<String>,
}

impl Auto {
    pub(crate) const fn new() -> Auto {
        Auto {
            state: AtomicU8::new(UNPROBED),
            refused: OnceLock::new(),
        }
    }

    /// The source the next lookup will try first, probing sock_diag (with `probe`)
    /// if it has not been yet. A probe that fails for a passing reason answers
    /// `Proc` this time and is made again next time.
    pub(crate) fn current(&self, probe: impl FnOnce() -> anyhow::Result<()>) -> Source {
        match self.state.load(Ordering::Acquire) {
            NETLINK => Source::Netlink,
            PROC => Source::Proc,
            _ => match probe() {
                // Another thread may have been refused meanwhile: its word stands.
                Ok(()) => match self.state.compare_exchange(
                    UNPROBED,
                    NETLINK,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) | Err(NETLINK) => Source::Netlink,
                    Err(_) => Source::Proc,
                },
                Err(e) => {
                    self.note_failure(&e);
                    Source::Proc
                }
            },
        }
    }

    /// One lookup: `diag` (sock_diag) unless it is refused here, else or on its
    /// failure `proc`. Returns the answer and the source that gave it.
    pub(crate) fn find<T>(
        &self,
        probe: impl FnOnce() -> anyhow::Result<()>,
        diag: impl FnOnce() -> anyhow::Result<T>,
        proc: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<(T, Source)> {
        if self.current(probe) == Source::Netlink {
            match diag() {
                Ok(found) => return Ok((found, Source::Netlink)),
                Err(e) => self.note_failure(&e),
            }
        }
        Ok((proc()?, Source::Proc))
    }

    /// Why sock_diag is refused for good here, if it is.
    pub(crate) fn refusal(&self) -> Option<&str> {
        self.refused.get().map(String::as_str)
    }

    fn note_failure(&self, e: &anyhow::Error) {
        if refused_for_good(e) {
            let _ = self.refused.set(format!("{e:#}"));
            self.state.store(PROC, Ordering::Release);
        }
    }
}

/// Whether a sock_diag failure means it will never work in this process: the
/// first OS error in the chain is one of the refusals the module comment lists.
pub(crate) fn refused_for_good(e: &anyhow::Error) -> bool {
    let errno = e
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    matches!(
        errno,
        Some(
            libc::EPROTONOSUPPORT
                | libc::EAFNOSUPPORT
                | libc::EACCES
                | libc::EPERM
                | libc::ENOSYS
                | libc::ENOENT
                | libc::EOPNOTSUPP
                | libc::EINVAL
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io;

    fn os(errno: i32) -> anyhow::Error {
        anyhow::Error::new(io::Error::from_raw_os_error(errno))
            .context("opening a NETLINK_SOCK_DIAG socket")
    }

    #[test]
    fn refusals_are_told_from_passing_failures() {
        for errno in [
            libc::EPROTONOSUPPORT,
            libc::EAFNOSUPPORT,
            libc::EACCES,
            libc::EPERM,
            libc::ENOSYS,
            libc::ENOENT,
            libc::EOPNOTSUPP,
            libc::EINVAL,
        ] {
            assert!(refused_for_good(&os(errno)), "errno {errno}");
        }
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EAGAIN,
        ] {
            assert!(!refused_for_good(&os(errno)), "errno {errno}");
        }
        // No OS error at all (a reply that does not decode): passing.
        assert!(!refused_for_good(&anyhow::anyhow!(
            "undecodable sock_diag reply"
        )));
    }

    /// Counts what each lookup through `auto` ran.
    struct Calls {
        probes: Cell<u32>,
        diags: Cell<u32>,
        procs: Cell<u32>,
    }

    impl Calls {
        fn new() -> Calls {
            Calls {
                probes: Cell::new(0),
                diags: Cell::new(0),
                procs: Cell::new(0),
            }
        }

        /// One lookup where the probe and sock_diag fail with `probe_errno` and
        /// `diag_errno` (0: they work); /proc always answers 7.
        fn lookup(&self, auto: &Auto, probe_errno: i32, diag_errno: i32) -> (u32, Source) {
            let bump = |c: &Cell<u32>| c.set(c.get() + 1);
            auto.find(
                || {
                    bump(&self.probes);
                    if probe_errno == 0 {
                        Ok(())
                    } else {
                        Err(os(probe_errno))
                    }
                },
                || {
                    bump(&self.diags);
                    if diag_errno == 0 {
                        Ok(5)
                    } else {
                        Err(os(diag_errno))
                    }
                },
                || {
                    bump(&self.procs);
                    Ok(7)
                },
            )
            .unwrap()
        }

        fn counts(&self) -> (u32, u32, u32) {
            (self.probes.get(), self.diags.get(), self.procs.get())
        }
    }

    #[test]
    fn sock_diag_answers_once_the_probe_passes_and_is_probed_once() {
        let (auto, calls) = (Auto::new(), Calls::new());
        assert_eq!(calls.lookup(&auto, 0, 0), (5, Source::Netlink));
        assert_eq!(calls.lookup(&auto, 0, 0), (5, Source::Netlink));
        assert_eq!(calls.counts(), (1, 2, 0));
        assert_eq!(auto.refusal(), None);
    }

    #[test]
    fn a_refused_socket_means_proc_for_the_rest_of_the_process() {
        for errno in [libc::EPROTONOSUPPORT, libc::EACCES, libc::EPERM] {
            let (auto, calls) = (Auto::new(), Calls::new());
            assert_eq!(calls.lookup(&auto, errno, 0), (7, Source::Proc));
            assert_eq!(calls.lookup(&auto, 0, 0), (7, Source::Proc));
            // Probed once, sock_diag never asked again.
            assert_eq!(calls.counts(), (1, 0, 2), "errno {errno}");
            assert!(
                auto.refusal()
                    .unwrap()
                    .starts_with("opening a NETLINK_SOCK_DIAG socket: ")
            );
        }
        // Refused on a later lookup (a filter installed after the probe): the same.
        let (auto, calls) = (Auto::new(), Calls::new());
        assert_eq!(calls.lookup(&auto, 0, libc::EPERM), (7, Source::Proc));
        assert_eq!(calls.lookup(&auto, 0, 0), (7, Source::Proc));
        assert_eq!(calls.counts(), (1, 1, 2));
    }

    #[test]
    fn a_passing_failure_sends_one_lookup_to_proc_and_the_next_to_sock_diag() {
        let (auto, calls) = (Auto::new(), Calls::new());
        assert_eq!(calls.lookup(&auto, 0, libc::EMFILE), (7, Source::Proc));
        assert_eq!(calls.lookup(&auto, 0, 0), (5, Source::Netlink));
        assert_eq!(calls.counts(), (1, 2, 1));
        // A probe that fails for a passing reason is made again next time.
        let (auto, calls) = (Auto::new(), Calls::new());
        assert_eq!(calls.lookup(&auto, libc::ENOBUFS, 0), (7, Source::Proc));
        assert_eq!(calls.lookup(&auto, 0, 0), (5, Source::Netlink));
        assert_eq!(calls.counts(), (2, 1, 1));
        assert_eq!(auto.refusal(), None);
    }

    #[test]
    fn a_proc_failure_is_the_lookups_error() {
        let auto = Auto::new();
        let got: anyhow::Result<(u32, Source)> = auto.find(
            || Err(os(libc::EACCES)),
            || Ok(5),
            || Err(anyhow::anyhow!("reading /proc/net/tcp: Permission denied")),
        );
        assert_eq!(
            format!("{:#}", got.unwrap_err()),
            "reading /proc/net/tcp: Permission denied"
        );
    }
}
