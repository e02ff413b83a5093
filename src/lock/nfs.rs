//! A lock made with link(2), for filesystems without flock (NFS without a lock
//! manager): the dotlockfile approach, made safe to break.
//!
//! The lock for LOCKFILE is the name `LOCKFILE.nfslock`; whoever links a file to it
//! holds it. The file is written completely (host, pid, boot id, process start
//! time, a random token) under a unique temporary name before it is linked, so a
//! lock that exists always names its owner. link(2) is atomic on NFS too; a reply
//! lost in transit is caught by checking the temporary file's link count.
//!
//! Stale holders: a lock is broken only when its owner is provably dead: same host
//! and boot, and its pid is gone or now belongs to a process with another start
//! time; or same host and a different boot id. A lock from another host, or one
//! that cannot be read, is never broken: its owner might be alive.
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

use super::wait::Options;
use crate::owner::{Identity, Verdict, here, judge, process};
use crate::quote::quote;
use crate::write::{LinkNewError, link_new};

/// Who holds a link lock, as written in the lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: i32,
    pub boot: String,
    /// Process start time, in clock ticks after boot (field 22 of /proc/PID/stat).
    pub start: u64,
    /// Unique to this one acquisition.
    pub token: String,
}

const MAGIC: &str = "racefree-lock 1";

impl Owner {
    pub fn to_text(&self) -> String {
        format!(
            "{MAGIC}\nhost {}\npid {}\nboot {}\nstart {}\ntoken {}\n",
            self.host, self.pid, self.boot, self.start, self.token
        )
    }

    /// Parses what [`Owner::to_text`] wrote; `None` for anything else.
    pub fn parse(text: &str) -> Option<Owner> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut field = |key: &str| -> Option<String> {
            let line = lines.next()?;
            let v = line.strip_prefix(key)?.strip_prefix(' ')?;
            (!v.is_empty()).then(|| v.to_string())
        };
        let owner = Owner {
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            boot: field("boot")?,
            start: field("start")?.parse().ok()?,
            token: field("token")?,
        };
        (owner.pid > 0).then_some(owner)
    }
}

impl Identity for Owner {
    fn host(&self) -> &str {
        &self.host
    }
    fn boot(&self) -> &str {
        &self.boot
    }
    fn pid(&self) -> i32 {
        self.pid
    }
    fn start(&self) -> u64 {
        self.start
    }
}

/// This process, as an [`Owner`] with a fresh token.
pub fn me() -> anyhow::Result<Owner> {
    let here = here()?;
    Ok(Owner {
        host: here.host,
        pid: std::process::id() as i32,
        boot: here.boot,
        start: here.start,
        token: format!("{:016x}", crate::write::random_u64()),
    })
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
    let lock = dotlock_path(lockfile);
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(held) = try_lock(&lock, hook, 0)? {
            return Ok(held);
        }
        let now = Instant::now();
        if opts.nonblocking() || deadline.is_some_and(|d| now >= d) {
            return Err(opts.busy(lockfile).into());
        }
        // No way to sleep until a link lock is released: poll, backing off to 100 ms.
        let wait = match deadline {
            Some(d) => pause.min(d - now),
            None => pause,
        };
        std::thread::sleep(wait);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Breaker locks of breaker locks: a chain this deep means something else is wrong.
const MAX_BREAK_DEPTH: usize = 3;

/// A few attempts at `lock`, breaking a stale one; `None` when it is held.
fn try_lock(lock: &Path, hook: &dyn Hook, depth: usize) -> anyhow::Result<Option<LinkHeld>> {
    for _ in 0..4 {
        if let Some(held) = link_lock(lock)? {
            return Ok(Some(held));
        }
        let Some(owner) = read_owner(lock)? else {
            // Released between our link and our read: try again at once.
            continue;
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
    let Some(_held) = try_lock(&breaker, hook, depth + 1)? else {
        // Another breaker is at it; the caller tries the lock again.
        return Ok(());
    };
    if read_owner(lock)?.is_some_and(|o| o.token == token) {
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

/// Who holds `lock`, or `None` if nobody does. An unreadable owner is reported
/// as an owner that can never be judged stale.
fn read_owner(lock: &Path) -> anyhow::Result<Option<Owner>> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nofollow()
        .open(lock)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the lock {}", quote(lock.as_os_str())));
        }
    };
    let mut text = String::new();
    let _ = f.take(4096).read_to_string(&mut text);
    Ok(Some(Owner::parse(&text).unwrap_or_else(|| Owner {
        host: "(unreadable lock file)".into(),
        pid: 0,
        boot: String::new(),
        start: 0,
        token: String::new(),
    })))
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

/// One link(2) attempt: our owner file, written whole under a unique name and
/// linked to `lock`. `None` if `lock` exists.
fn link_lock(lock: &Path) -> anyhow::Result<Option<LinkHeld>> {
    let me = me()?;
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

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

#[cfg(test)]
mod tests;
