//! A lock made with link(2), for filesystems without flock (NFS without a lock
//! manager): the dotlockfile approach, made safe to break.
//!
//! The lock for LOCKFILE is the name `LOCKFILE.nfslock`; whoever links a file to it
//! holds it. The file, its owner record ([`record`]), is written completely under a
//! unique temporary name before it is linked, so a lock that exists always names its
//! owner. link(2) is atomic on NFS too; a reply lost in transit is caught by checking
//! the temporary file's link count. (Linux's NFS client has written a file's data
//! to the server before sending a link of it since a 2021 change, backported to the
//! stable kernels; a client without it could let another host read the record empty
//! for a moment, which is reported as unreadable: an error, never a break.)
//!
//! The record names every process that may hold the lock: the racefree that took
//! it, and COMMAND, which racefree starts before it takes the lock and holds at a
//! gate until the record names it (`cmd`). SIGKILL can end racefree, not the lock.
//!
//! Stale holders: a lock is broken only when every process it names is provably
//! dead: same host and boot, and each pid is gone, a zombie, or now belongs to a
//! process with another start time; or same host and a different boot id. A lock
//! from another host is never broken: its owners might be alive. A file at the name
//! that holds no record is an error that says how to clear it ([`Unreadable`]).
//!
//! Breaking is itself race-free. Two breakers that both judged the lock with token
//! T stale must not both remove "the lock": the second would remove a live lock a
//! third process took in between. So a breaker first takes the breaker lock
//! `LOCKFILE.nfslock.break-T` (the same kind of link lock, so a breaker that dies
//! holding it is judged and broken in turn), then re-reads the lock: only if it
//! still holds token T is it removed. Nothing else can remove a lock with token T
//! while we hold the breaker lock: its owner is dead, and every other breaker of T
//! waits for the breaker lock.

use std::fmt;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub use record::{FORMAT, Holder, Owner};

use super::wait::Options;
use crate::owner::{self, Here, Process, Verdict, here, process};
use crate::quote::quote;
use crate::write::{LinkNewError, link_new};

/// This process, as an [`Owner`] with a fresh token, sharing the lock with `holders`.
pub fn me(holders: &[Holder]) -> anyhow::Result<Owner> {
    let here = here()?;
    Ok(Owner {
        host: here.host,
        pid: std::process::id() as i32,
        boot: here.boot,
        start: here.start,
        token: format!("{:016x}", crate::write::random_u64()),
        format: FORMAT,
        holders: holders.to_vec(),
    })
}

/// Process `pid` of this host as a record names it; `None` if there is none.
pub fn holder(pid: i32) -> Option<Holder> {
    process(pid).map(|p| Holder {
        pid,
        start: p.start,
    })
}

/// Judges an owner. Pure: `probe` is how processes are looked up. A lock is stale
/// only when every process its record names is provably dead.
pub fn judge(owner: &Owner, here: &Here, probe: impl Fn(i32) -> Option<Process>) -> Verdict {
    if owner.host != here.host {
        return Verdict::Unknown(format!(
            "held by {owner}, whose processes cannot be seen from here"
        ));
    }
    if owner.boot != here.boot {
        return Verdict::Stale(format!("held by {owner} before this host rebooted"));
    }
    let taker = Holder {
        pid: owner.pid,
        start: owner.start,
    };
    let Err(taker_gone) = alive(taker, &probe) else {
        return Verdict::Live;
    };
    if owner.format > FORMAT {
        return Verdict::Unknown(format!(
            "held by {owner}, in a record of format {} (a later racefree's), whose other holders this one cannot judge",
            owner.format
        ));
    }
    let mut gone = vec![taker_gone];
    for &h in &owner.holders {
        match alive(h, &probe) {
            Ok(()) => return Verdict::Live,
            Err(why) => gone.push(why),
        }
    }
    Verdict::Stale(format!("held by {}", gone.join(" and ")))
}

/// `Ok` while `p` runs; otherwise how it is known to be gone.
fn alive(p: Holder, probe: impl Fn(i32) -> Option<Process>) -> Result<(), String> {
    owner::alive(p.pid, p.start, probe)
}

/// The seam for tests: runs between "judged stale" and the break.
pub trait Hook {
    fn judged_stale(&self, _lock: &Path, _owner: &Owner) {}
}

/// The hook production code uses.
pub struct NoHook;
impl Hook for NoHook {}

/// The name whose existence is the lock: `LOCKFILE.nfslock`.
pub fn dotlock_path(lockfile: &Path) -> PathBuf {
    let mut s = lockfile.as_os_str().to_os_string();
    s.push(".nfslock");
    PathBuf::from(s)
}

/// A held link lock; dropping it removes the name, if it is still ours.
#[derive(Debug)]
pub struct LinkHeld {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for LinkHeld {
    fn drop(&mut self) {
        // Only our own file is removed: nothing else can stand at the name while
        // we live (a breaker removes only a dead owner's lock).
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && (m.dev(), m.ino()) == (self.dev, self.ino)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Takes the link lock for `lockfile`. Always exclusive: `shared` is honoured as
/// exclusive, which is stricter, never weaker.
pub fn acquire(lockfile: &Path, opts: &Options) -> anyhow::Result<LinkHeld> {
    acquire_with_hook(lockfile, opts, &NoHook)
}

/// [`acquire`] with a seam between judging a lock stale and breaking it.
pub fn acquire_with_hook(
    lockfile: &Path,
    opts: &Options,
    hook: &dyn Hook,
) -> anyhow::Result<LinkHeld> {
    if lockfile.as_os_str().is_empty() {
        return Err(crate::exit::usage("LOCKFILE is empty"));
    }
    let wait = Wait {
        opts,
        lockfile,
        deadline: opts.deadline(Instant::now()),
    };
    acquire_named(&dotlock_path(lockfile), &wait, &[], hook)
}

/// How long to wait for a link lock, and what to call it when giving up.
pub struct Wait<'a> {
    pub opts: &'a Options,
    /// The LOCKFILE the link lock stands for, as [`Busy`](super::Busy) names it.
    pub lockfile: &'a Path,
    pub deadline: Option<Instant>,
}

/// Takes the link lock `lock`, its record naming this process and `holders`.
pub fn acquire_named(
    lock: &Path,
    wait: &Wait<'_>,
    holders: &[Holder],
    hook: &dyn Hook,
) -> anyhow::Result<LinkHeld> {
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(held) = try_lock(lock, holders, hook, 0)? {
            return Ok(held);
        }
        let now = Instant::now();
        if wait.opts.nonblocking() || wait.deadline.is_some_and(|d| now >= d) {
            return Err(wait.opts.busy(wait.lockfile).into());
        }
        // No way to sleep until a link lock is released: poll, backing off to 100 ms.
        let sleep = match wait.deadline {
            Some(d) => pause.min(d - now),
            None => pause,
        };
        std::thread::sleep(sleep);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Breaker locks of breaker locks: a chain this deep means something else is wrong.
const MAX_BREAK_DEPTH: usize = 3;

/// A few attempts at `lock`, breaking a stale one; `None` when it is held.
fn try_lock(
    lock: &Path,
    holders: &[Holder],
    hook: &dyn Hook,
    depth: usize,
) -> anyhow::Result<Option<LinkHeld>> {
    for _ in 0..4 {
        if let Some(held) = link_lock(lock, holders)? {
            return Ok(Some(held));
        }
        let owner = match read_owner(lock)? {
            // Released between our link and our read: try again at once.
            Record::Absent => continue,
            Record::Unreadable => return Err(Unreadable(lock.to_path_buf()).into()),
            Record::Owner(owner) => owner,
        };
        match judge(&owner, &here()?, process) {
            Verdict::Live | Verdict::Unknown(_) => return Ok(None),
            Verdict::Stale(_) => {
                hook.judged_stale(lock, &owner);
                break_stale(lock, &owner.token, hook, depth)?;
            }
        }
    }
    Ok(None)
}

/// Removes `lock` if, under the breaker lock for `token`, it still holds `token`.
fn break_stale(lock: &Path, token: &str, hook: &dyn Hook, depth: usize) -> anyhow::Result<()> {
    if depth >= MAX_BREAK_DEPTH {
        bail!(
            "cannot break the stale lock {}: its breaker locks are stale too, {depth} deep",
            quote(lock.as_os_str())
        );
    }
    let mut name = lock.as_os_str().to_os_string();
    name.push(format!(".break-{token}"));
    let breaker = PathBuf::from(name);
    let Some(_held) = try_lock(&breaker, &[], hook, depth + 1)? else {
        // Another breaker is at it; the caller tries the lock again.
        return Ok(());
    };
    if matches!(read_owner(lock)?, Record::Owner(o) if o.token == token) {
        match std::fs::remove_file(lock) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot break the stale lock {}", quote(lock.as_os_str()))
                });
            }
        }
    }
    Ok(())
}

/// What stands at a link lock's name.
enum Record {
    /// Nothing: the lock is free.
    Absent,
    Owner(Owner),
    /// A file that holds no record (empty, or not racefree's).
    Unreadable,
}

/// A link lock whose file holds no owner record. Every racefree writes its record
/// whole under a name of its own before linking it into place, so this is not a
/// record caught half-written: it was left by something else (an editor, a crash
/// that lost the file's data), and nobody can say whether its owner is alive.
#[derive(Debug)]
pub struct Unreadable(pub PathBuf);

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lock = quote(self.0.as_os_str());
        write!(
            f,
            "the lock {lock} holds no owner record that racefree can read (it is empty or was not written by racefree), so whether its owner lives cannot be told; once no process on any host holds the lock, remove it: rm {lock}"
        )
    }
}

impl std::error::Error for Unreadable {}

/// Who holds `lock`, if anyone.
fn read_owner(lock: &Path) -> anyhow::Result<Record> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nofollow()
        .open(lock)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::Absent),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the lock {}", quote(lock.as_os_str())));
        }
    };
    let mut text = String::new();
    let _ = f.take(4096).read_to_string(&mut text);
    Ok(Owner::parse(&text).map_or(Record::Unreadable, Record::Owner))
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
    }
}

/// One link(2) attempt: our owner record, written whole under a unique name and
/// linked to `lock`. `None` if `lock` exists.
fn link_lock(lock: &Path, holders: &[Holder]) -> anyhow::Result<Option<LinkHeld>> {
    let me = me(holders)?;
    let mut tmp_name = lock.as_os_str().to_os_string();
    tmp_name.push(format!(".{}.tmp", me.token));
    let tmp = PathBuf::from(tmp_name);
    if lock.as_os_str().as_bytes().contains(&0) {
        return Err(crate::exit::usage("a NUL byte inside LOCKFILE"));
    }
    let st =
        match link_new(&tmp, lock, me.to_text().as_bytes()) {
            Ok(Some(st)) => st,
            Ok(None) => return Ok(None),
            Err(LinkNewError::Create(e)) => bail!(
                "cannot create {} to take the lock: {}",
                quote(tmp.as_os_str()),
                e.desc()
            ),
            Err(LinkNewError::Write(e)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot write {}", quote(tmp.as_os_str()))));
            }
            Err(LinkNewError::Examine(e)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot examine {}", quote(tmp.as_os_str()))));
            }
            Err(LinkNewError::Link(e)) => bail!(
                "cannot take the lock {}: {}",
                quote(lock.as_os_str()),
                e.desc()
            ),
        };
    Ok(Some(LinkHeld {
        path: lock.to_path_buf(),
        dev: st.st_dev,
        ino: st.st_ino,
    }))
}

mod record;
#[cfg(test)]
mod tests;
