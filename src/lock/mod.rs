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
    fn ones_own_symlink_at_the_lock_file_is_followed_as_flock_follows_it() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        let target = t.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &l).unwrap();
        let held = acquire(&l, &Options::default()).unwrap();
        assert!(
            target.is_file(),
            "created through the link, as flock(1) does"
        );
        assert!(is_busy(&acquire(&target, &nonblock(false))));
        drop(held);
        let nfs = Options {
            nfs: true,
            ..nonblock(false)
        };
        // The link lock is named after the file, not the link: one lock, two names.
        let held = acquire(&l, &nfs).unwrap();
        assert!(nfs::dotlock_path(&target).exists());
        assert!(!nfs::dotlock_path(&l).exists());
        assert!(is_busy(&acquire(&target, &nfs)));
        drop(held);
    }

    #[test]
    fn nfs_and_plain_lockers_exclude_each_other() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        let nfs = Options {
            nfs: true,
            ..nonblock(false)
        };
        let held = acquire(&l, &nfs).unwrap();
        assert!(is_busy(&acquire(&l, &nonblock(false))));
        assert!(is_busy(&acquire(&l, &nonblock(true))));
        drop(held);
        let held = acquire(&l, &nonblock(true)).unwrap();
        assert!(is_busy(&acquire(&l, &nfs)));
        assert!(
            !nfs::dotlock_path(&l).exists(),
            "a --nfs locker turned away by the flock leaves no link lock"
        );
        drop(held);
    }

    #[test]
    fn a_wait_too_long_for_any_clock_waits_as_long_as_it_takes() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        for timeout in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
            let opts = Options {
                timeout: Some(timeout),
                ..Options::default()
            };
            assert_eq!(opts.deadline(Instant::now()), None);
            drop(acquire(&l, &opts).unwrap());
            let link = Options { nfs: true, ..opts };
            drop(acquire(&l, &link).unwrap());
        }
    }
}
