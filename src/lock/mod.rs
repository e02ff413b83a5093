//! `racefree lock`: util-linux flock(1) with the mistakes users hit taken out.
//!
//! The lock file is opened with O_CREAT but not O_EXCL (whoever comes first creates
//! it, nobody fails) and O_CLOEXEC (no unrelated child inherits the lock by
//! accident); a symbolic link at LOCKFILE is followed only where it cannot be a
//! trap ([`open`]). It is never unlinked: a process blocked in flock on an unlinked
//! file would get its lock at the same time as a newcomer who created a fresh file
//! at the name, two holders.
//!
//! flock locks belong to an open file description, so every [`acquire`] opens its
//! own: two threads of one process exclude each other exactly like two processes.
//!
//! Where flock is not supported (ENOLCK, EOPNOTSUPP: an NFS mount without a lock
//! manager, some FUSE filesystems) or `nfs` is asked for, [`nfs`] takes a link(2)
//! based lock as well. With `nfs` the flock is taken too, first, where the
//! filesystem has it: so a `--nfs` locker and a plain one exclude each other on any
//! host where flock(2) works between them. A plain locker never looks at the link
//! lock: where flock is local to each host (NFS mounted `nolock`), every locker on
//! every host must use `--nfs`.

pub mod cmd;
mod deadline;
mod forward;
pub mod nfs;
pub mod open;
mod spawn;
mod wait;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use nix::errno::Errno;

pub use wait::{Busy, Options};

use crate::quote::quote;

/// A held lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct Held {
    // Declared first so that it is released first: a waiter blocked on the flock
    // then finds the link lock gone when the flock wakes it.
    link: Option<nfs::LinkHeld>,
    flock: Option<OwnedFd>,
}

impl Held {
    /// The descriptor holding a flock lock (`None` for a link lock alone, which a
    /// descriptor cannot carry). A child that inherits it holds the flock too.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.flock.as_ref().map(|fd| fd.as_fd())
    }

    /// "flock", "link" or "flock and link", for --verbose.
    pub fn method(&self) -> &'static str {
        match (&self.flock, &self.link) {
            (Some(_), Some(_)) => "flock and link",
            (None, Some(_)) => "link",
            _ => "flock",
        }
    }
}

/// A lock half taken: LOCKFILE is open and flock-locked where flock works. What
/// remains, [`Begun::finish`], is the link lock, if this lock needs one: `racefree
/// lock` starts COMMAND in between, so that the link lock's record can name it.
#[derive(Debug)]
pub struct Begun {
    held: Held,
    /// The link lock still to take, and the LOCKFILE it stands for.
    link: Option<(PathBuf, PathBuf)>,
    opts: Options,
    deadline: Option<Instant>,
}

impl Begun {
    /// Whether [`Begun::finish`] still has a link lock to take.
    pub fn needs_link(&self) -> bool {
        self.link.is_some()
    }

    /// The descriptor holding the flock, if one is held.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.held.fd()
    }

    /// Takes the link lock if one is needed, its record naming this process and
    /// `holders`, within what is left of the wait.
    pub fn finish(mut self, holders: &[nfs::Holder]) -> anyhow::Result<Held> {
        if let Some((name, lockfile)) = self.link.take() {
            let wait = nfs::Wait {
                opts: &self.opts,
                lockfile: &lockfile,
                deadline: self.deadline,
            };
            self.held.link = Some(nfs::acquire_named(&name, &wait, holders, &nfs::NoHook)?);
        }
        Ok(self.held)
    }
}

/// Takes the lock on `path`, creating the file if needed. Safe from many threads.
pub fn acquire(path: &Path, opts: &Options) -> anyhow::Result<Held> {
    begin(path, opts)?.finish(&[])
}

/// The first half of [`acquire`]: opens LOCKFILE and takes the flock.
pub fn begin(path: &Path, opts: &Options) -> anyhow::Result<Begun> {
    let deadline = opts.deadline(Instant::now());
    let opened = match open::lock_file(path) {
        Ok(o) => Some(o),
        // A link lock needs only LOCKFILE's directory, and a file this caller cannot
        // open is one that no plain locker running as this caller holds either.
        Err(e)
            if opts.nfs
                && e.downcast_ref::<open::CannotOpen>()
                    .is_some_and(|c| matches!(c.errno, Errno::EACCES | Errno::EPERM)) =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    // A link lock is exclusive, so with one the flock is too: stricter, never weaker.
    let op = if opts.shared && !opts.nfs {
        libc::LOCK_SH
    } else {
        libc::LOCK_EX
    };
    let mut flock = None;
    let mut link_name = None;
    if let Some(opened) = opened {
        let flocked = match lock_fd(opened.fd.as_raw_fd(), op, opts, deadline) {
            Ok(()) => true,
            Err(Errno::EWOULDBLOCK) => return Err(opts.busy(path).into()),
            // No flock here: fall back to the lock that works on any filesystem with
            // link(2). It is exclusive only, which is stricter, never weaker.
            Err(Errno::ENOLCK | Errno::EOPNOTSUPP) => false,
            Err(e) => bail!("cannot lock {}: {}", quote(path.as_os_str()), e.desc()),
        };
        if opts.nfs || !flocked {
            link_name = Some(link_lock_name(path, &opened)?);
        }
        if flocked {
            flock = Some(opened.fd);
        }
    } else {
        link_name = Some(nfs::dotlock_path(path));
    }
    Ok(Begun {
        held: Held { link: None, flock },
        link: link_name.map(|name| (name, path.to_path_buf())),
        opts: opts.clone(),
        deadline,
    })
}

/// The link lock's name for LOCKFILE: `LOCKFILE.nfslock`, made from the name of the
/// file opened rather than of a symbolic link to it, as two names for one file must
/// not be two locks.
fn link_lock_name(path: &Path, opened: &open::Opened) -> anyhow::Result<PathBuf> {
    if !opened.via_link {
        return Ok(nfs::dotlock_path(path));
    }
    let fd = opened.fd.as_raw_fd();
    let real = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|e| {
        anyhow::anyhow!(
            "cannot find the file the link {} points to: {e}",
            quote(path.as_os_str())
        )
    })?;
    Ok(nfs::dotlock_path(&real))
}

/// Locks (or with `unlock`, unlocks) an inherited descriptor, as `flock -n 9` does:
/// the lock belongs to the open file description, so it stays with the process
/// that opened it (the shell) after racefree exits.
pub fn lock_descriptor(fd: RawFd, opts: &Options, unlock: bool) -> anyhow::Result<()> {
    let op = if unlock {
        libc::LOCK_UN
    } else if opts.shared {
        libc::LOCK_SH
    } else {
        libc::LOCK_EX
    };
    match lock_fd(fd, op, opts, opts.deadline(Instant::now())) {
        Ok(()) => Ok(()),
        Err(Errno::EWOULDBLOCK) => Err(opts.busy_fd(fd).into()),
        Err(e) => {
            let hint = match e {
                Errno::EBADF => format!(" (open it first, as in 'exec {fd}>FILE')"),
                Errno::ENOLCK | Errno::EOPNOTSUPP => {
                    " (this filesystem has no flock: --nfs needs LOCKFILE's name)".to_string()
                }
                _ => String::new(),
            };
            let what = if unlock { "unlock" } else { "lock" };
            bail!("cannot {what} descriptor {fd}: {}{hint}", e.desc())
        }
    }
}

/// flock(2) `op` on `fd`, as `opts` says to wait, until `deadline` at most.
fn lock_fd(
    fd: RawFd,
    op: libc::c_int,
    opts: &Options,
    deadline: Option<Instant>,
) -> Result<(), Errno> {
    if opts.nonblocking() {
        flock(fd, op | libc::LOCK_NB)
    } else if let Some(deadline) = deadline {
        flock_until(fd, op, deadline)
    } else {
        flock(fd, op)
    }
}

/// flock(2), retried when a signal interrupts it. libc's, not nix's: nix's `Flock`
/// unlocks when dropped (LOCK_UN), which would release the lock for the COMMAND
/// that inherited the descriptor too, and nix's plain `flock` is deprecated.
fn flock(fd: RawFd, op: libc::c_int) -> Result<(), Errno> {
    loop {
        // SAFETY: a plain syscall on a descriptor number; a closed one is EBADF.
        if unsafe { libc::flock(fd, op) } == 0 {
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
fn flock_until(fd: RawFd, op: libc::c_int, deadline: Instant) -> Result<(), Errno> {
    if let Some(result) = deadline::flock_until(fd, op, deadline) {
        return result;
    }
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

#[cfg(test)]
mod tests;
