//! `racefree lock`: util-linux flock(1) with the mistakes users hit taken out.
//!
//! The lock file is opened with O_CREAT but not O_EXCL (whoever comes first creates
//! it, nobody fails), O_NOFOLLOW (a symlink planted at LOCKFILE is refused rather
//! than followed to a file of the planter's choosing) and O_CLOEXEC (no unrelated
//! child inherits the lock by accident). It is never unlinked: a process blocked in
//! flock on an unlinked file would get its lock at the same time as a newcomer who
//! created a fresh file at the name, two holders.
//!
//! flock locks belong to an open file description, so every [`acquire`] opens its
//! own: two threads of one process exclude each other exactly like two processes.
//!
//! Where flock is not supported (ENOLCK, EOPNOTSUPP: an NFS mount without a lock
//! manager, some FUSE filesystems) or `nfs` is asked for, [`nfs`] takes a link(2)
//! based lock instead.

pub mod cmd;
mod deadline;
pub mod nfs;
mod wait;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

pub use wait::{Busy, Options};

use crate::quote::quote;

/// A held lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct Held {
    kind: HeldKind,
}

#[derive(Debug)]
enum HeldKind {
    Flock(OwnedFd),
    // Held for its Drop, which removes the link.
    Link(#[allow(dead_code)] nfs::LinkHeld),
}

impl Held {
    fn link(held: nfs::LinkHeld) -> Held {
        Held {
            kind: HeldKind::Link(held),
        }
    }

    /// The descriptor holding a flock lock (`None` for a link lock, which a
    /// descriptor cannot carry). A child that inherits it holds the lock too.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.kind {
            HeldKind::Flock(fd) => Some(fd.as_fd()),
            HeldKind::Link(_) => None,
        }
    }

    /// "flock" or "link", for --verbose.
    pub fn method(&self) -> &'static str {
        match &self.kind {
            HeldKind::Flock(_) => "flock",
            HeldKind::Link(_) => "link",
        }
    }
}

/// Takes the lock on `path`, creating the file if needed. Safe from many threads.
pub fn acquire(path: &Path, opts: &Options) -> anyhow::Result<Held> {
    if opts.nfs {
        return nfs::acquire(path, opts).map(Held::link);
    }
    let fd = open_lock_file(path)?;
    let op = if opts.shared {
        libc::LOCK_SH
    } else {
        libc::LOCK_EX
    };
    let result = if opts.nonblocking() {
        flock(&fd, op | libc::LOCK_NB)
    } else if let Some(limit) = opts.timeout {
        flock_until(&fd, op, limit)
    } else {
        flock(&fd, op)
    };
    match result {
        Ok(()) => Ok(Held {
            kind: HeldKind::Flock(fd),
        }),
        Err(Errno::EWOULDBLOCK) => Err(opts.busy(path).into()),
        // No flock here: fall back to the lock that works on any filesystem with
        // link(2). It is exclusive only, which is stricter, never weaker.
        Err(Errno::ENOLCK | Errno::EOPNOTSUPP) => nfs::acquire(path, opts).map(Held::link),
        Err(e) => bail!("cannot lock {}: {}", quote(path.as_os_str()), e.desc()),
    }
}

/// flock(2), retried when a signal interrupts it. libc's, not nix's: nix's `Flock`
/// unlocks when dropped (LOCK_UN), which would release the lock for the COMMAND
/// that inherited the descriptor too, and nix's plain `flock` is deprecated.
fn flock(fd: &OwnedFd, op: libc::c_int) -> Result<(), Errno> {
    loop {
        // SAFETY: plain syscall on an owned fd.
        if unsafe { libc::flock(fd.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// flock with a deadline: blocked in the kernel until a per-thread timer fires
/// ([`deadline`]), like flock(1)'s alarm(2) but safe from many threads. Where no
/// timer can be had, it polls with LOCK_NB, backing off from 1 ms to 20 ms.
fn flock_until(fd: &OwnedFd, op: libc::c_int, limit: Duration) -> Result<(), Errno> {
    if let Some(result) = deadline::flock_until(fd.as_raw_fd(), op, limit) {
        return result;
    }
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        match flock(fd, op | libc::LOCK_NB) {
            Err(Errno::EWOULDBLOCK) => {}
            other => return other,
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Errno::EWOULDBLOCK);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Opens (creating if needed) the file to lock. See the module comment for the flags.
pub fn open_lock_file(path: &Path) -> anyhow::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| crate::exit::usage("a NUL byte inside LOCKFILE"))?;
    if path.as_os_str().is_empty() {
        return Err(crate::exit::usage("LOCKFILE is empty"));
    }
    // O_NONBLOCK: a FIFO planted at the name must not hang the open.
    let base = OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    let open = |flags: OFlag| {
        nix::fcntl::open(c.as_c_str(), base | flags, Mode::from_bits_truncate(0o666))
    };
    let first = match open(OFlag::O_RDONLY | OFlag::O_CREAT) {
        Ok(fd) => return Ok(fd),
        // A directory can be locked too (flock(1) allows it); no O_CREAT for it.
        Err(Errno::EISDIR) => match open(OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(e) => e,
        },
        // A file we may write but not read locks just as well.
        Err(Errno::EACCES) => match open(OFlag::O_WRONLY) {
            Ok(fd) => return Ok(fd),
            Err(_) => Errno::EACCES,
        },
        Err(e) => e,
    };
    if first == Errno::ELOOP {
        bail!(
            "refusing to lock {}: it is a symbolic link (a lock file is never followed through a link someone else may have planted)",
            quote(path.as_os_str())
        );
    }
    bail!(
        "cannot open lock file {}: {}",
        quote(path.as_os_str()),
        first.desc()
    )
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::SigSet;

    use super::*;

    fn nonblock(shared: bool) -> Options {
        Options {
            shared,
            nonblock: true,
            ..Options::default()
        }
    }

    fn is_busy(r: &anyhow::Result<Held>) -> bool {
        matches!(r, Err(e) if e.downcast_ref::<Busy>().is_some())
    }

    #[test]
    fn each_acquire_has_its_own_description_so_threads_exclude_each_other() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        let held = acquire(&l, &Options::default()).unwrap();
        assert_eq!(held.method(), "flock");
        std::thread::scope(|s| {
            s.spawn(|| assert!(is_busy(&acquire(&l, &nonblock(false)))));
            s.spawn(|| assert!(is_busy(&acquire(&l, &nonblock(true)))));
        });
        drop(held);
        let a = acquire(&l, &nonblock(true)).unwrap();
        let b = acquire(&l, &nonblock(true)).unwrap();
        assert!(is_busy(&acquire(&l, &nonblock(false))));
        drop((a, b));
        assert!(l.is_file(), "the lock file is never removed");
    }

    #[test]
    fn a_timeout_gives_up_with_busy_after_roughly_that_long() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        let _held = acquire(&l, &Options::default()).unwrap();
        let opts = Options {
            timeout: Some(Duration::from_millis(30)),
            ..Options::default()
        };
        let err = acquire(&l, &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "timed out after 0.03 s waiting for the lock on '{}'",
                l.display()
            )
        );
    }

    #[test]
    fn a_timed_wait_blocks_in_the_kernel_and_the_release_wakes_it() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        let held = acquire(&l, &Options::default()).unwrap();
        let ino = std::fs::metadata(&l).unwrap().ino();
        let waiter = {
            let l = l.clone();
            std::thread::spawn(move || {
                let opts = Options {
                    timeout: Some(Duration::from_secs(120)),
                    ..Options::default()
                };
                acquire(&l, &opts).map(|h| h.method())
            })
        };
        // /proc/locks lists a request blocked in flock(2) with "->"; a waiter that
        // polls with LOCK_NB never appears there.
        let pid = std::process::id();
        let blocked = |locks: &str| {
            locks.lines().any(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                f.get(1) == Some(&"->")
                    && f.get(2) == Some(&"FLOCK")
                    && f.get(5) == Some(&pid.to_string().as_str())
                    && f.get(6)
                        .is_some_and(|dev_ino| dev_ino.ends_with(&format!(":{ino}")))
            })
        };
        let give_up = Instant::now() + Duration::from_secs(20);
        let mut locks = String::new();
        while Instant::now() < give_up {
            locks = std::fs::read_to_string("/proc/locks").unwrap();
            if blocked(&locks) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            blocked(&locks),
            "no blocked flock request in /proc/locks:\n{locks}"
        );
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), "flock");
    }

    #[test]
    fn a_timed_wait_ends_even_in_a_thread_that_blocks_every_signal() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        let _held = acquire(&l, &Options::default()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            SigSet::all().thread_block().unwrap();
            let opts = Options {
                timeout: Some(Duration::from_millis(50)),
                ..Options::default()
            };
            let _ = tx.send(is_busy(&acquire(&l, &opts)));
        });
        let busy = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the timed wait never ended");
        assert!(busy, "a timed-out wait is Busy");
    }

    #[test]
    fn a_symlink_at_the_lock_file_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        std::os::unix::fs::symlink(t.path().join("elsewhere"), &l).unwrap();
        let err = acquire(&l, &Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to lock '{}': it is a symbolic link (a lock file is never followed through a link someone else may have planted)",
                l.display()
            )
        );
        assert!(!t.path().join("elsewhere").exists());
    }
}
