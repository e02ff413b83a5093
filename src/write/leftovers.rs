//! Temporary files that a killed call left behind, how they are named, and the rule
//! that removes them.
//!
//! A call that is killed (SIGKILL, a crash, the host losing power) while its
//! temporary file has a name leaves that file behind: for `write` from its creation
//! on filesystems without O_TMPFILE, and everywhere in the instant between linkat and
//! rename. Nothing in the dead process can remove it, so the next call does, and it
//! must never remove a file a live writer is still filling.
//!
//! Naming: `.NAME.rf-HOST-BOOT-PID-START-RAND` beside FILE, where NAME is FILE's
//! name (its first 180 bytes), HOST is 8 hex digits hashing the host name and the
//! pid namespace, BOOT the first 8 hex digits of the boot id, PID and START the
//! writer's pid and start time (clock ticks after boot, as in /proc/PID/stat), both
//! decimal, and RAND 8 random hex digits. The name proves whose the file is.
//!
//! The rule, applied by every successful `write` to the names of its own FILE after
//! its rename, by [`remove_dead`] (see [`decide`]):
//! - same HOST and BOOT: removed when the writer is provably dead, as `lock --nfs`
//!   proves a lock owner dead ([`crate::owner::judge`]): its pid is gone, is a
//!   zombie, or belongs to a process with another start time;
//! - same HOST, another BOOT: removed (the host rebooted since);
//! - another HOST (another machine on a shared filesystem, or a container in
//!   another pid namespace, whose processes cannot be seen from here), and names of
//!   racefree before 0.2 (`.NAME.rf-` and 16 hex digits, which say nothing of their
//!   writer): removed once unmodified for [`FOREIGN_AGE`]. A live writer there could
//!   only lose a write stalled that long, and it would fail, never corrupt FILE.
//!
//! Only a regular file with one link whose whole name has one of these shapes is
//! touched. A writer that cannot read /proc names its file the unstamped way.
//!
//! So after a successful `write` of FILE, no temporary file of FILE remains from a
//! dead call of this host, and none older than [`FOREIGN_AGE`] from anywhere, as
//! long as FILE's directory is at most [`LIST_ALWAYS_UP_TO`] in size (st_size: on
//! ext4 about 1,000 names, on tmpfs about 1,600).
//!
//! Finding the names costs a listing of FILE's directory: nothing cheaper finds
//! them, since a leftover's name is unknown to the next call until listed, and any
//! marker a writer made to announce it would itself be left by a kill. A listing
//! costs in proportion to the directory (listing on every call, perf stat on ext4
//! measured 3.5 ms more CPU per write beside 10,000 files and 40 ms beside 100,000,
//! against 1 ms for the whole call; bench/write.sh has a row beside 10,000 files),
//! so a directory bigger than [`LIST_ALWAYS_UP_TO`] is listed by a successful
//! write with probability LIST_ALWAYS_UP_TO / size ([`worth_listing`]): each call
//! pays at most about one small directory's listing on average, and a leftover
//! there goes after size / LIST_ALWAYS_UP_TO successful writes on average (8
//! beside 10,000 files on ext4).
//!
//! `counter` needs none of this: it names its temporary file `.NAME.rf-counter`,
//! one fixed name, while it holds FILE.lock. A holder releases the lock only after
//! renaming or removing that name, or by dying, so whoever holds the lock and finds
//! the name there has found a dead holder's and removes it.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use nix::dir::{Dir, Type};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::owner::{self, Here, Identity, Process, Verdict};

/// How long a temporary file whose writer cannot be judged from here (another host)
/// must stay unmodified before a successful write removes it.
pub const FOREIGN_AGE: Duration = Duration::from_secs(60 * 60);

/// The directory size (st_size) up to which every successful write lists FILE's
/// directory; a bigger one is listed by a share of the writes (see the module's
/// comment).
pub const LIST_ALWAYS_UP_TO: u64 = 32 << 10;

/// Whether to list a directory of `size` bytes this time, `draw` a random number:
/// always up to [`LIST_ALWAYS_UP_TO`], else with probability LIST_ALWAYS_UP_TO / size.
pub fn worth_listing(size: u64, draw: u64) -> bool {
    size <= LIST_ALWAYS_UP_TO || draw % size < LIST_ALWAYS_UP_TO
}

/// The bytes of FILE's name kept in its temporary files' names, so that the longest
/// name (NAME and a 63-byte suffix) stays within NAME_MAX (255).
const MAX_STEM: usize = 180;

/// Who made a temporary file, as its name says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub host: String,
    pub boot: String,
    pub pid: i32,
    pub start: u64,
}

impl Identity for Stamp {
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

/// `.NAME.rf-`: what every temporary file of FILE's name starts with.
pub fn prefix(file: &CStr) -> Vec<u8> {
    let stem = file.to_bytes();
    let mut p = b".".to_vec();
    p.extend_from_slice(&stem[..stem.len().min(MAX_STEM)]);
    p.extend_from_slice(b".rf-");
    p
}

/// A fresh name for a temporary file of `file`, made by this process. Where this
/// process cannot tell who it is (no /proc), the name is unstamped and falls under
/// the age rule, as another host's would.
pub fn stamped_name(file: &CStr) -> CString {
    let mut name = prefix(file);
    name.extend_from_slice(stamp().as_bytes());
    CString::new(name).expect("no NUL in a file name")
}

/// A fresh `HOST-BOOT-PID-START-RAND` naming this process (see the module's
/// comment), which [`parse`] reads back; 16 random hex digits where this process
/// cannot tell who it is. `lock --nfs` names its record asides with it too.
pub fn stamp() -> String {
    match this_process() {
        Ok(me) => format!(
            "{}-{}-{}-{}-{:08x}",
            me.host,
            me.boot,
            std::process::id(),
            me.start,
            random_u64() as u32
        ),
        Err(_) => format!("{:016x}", random_u64()),
    }
}

/// This process as [`stamp`] names it, and what [`decide`] compares against; a
/// process that cannot tell who it is judges no writer its own, only ages.
pub fn judge_from_here() -> Here {
    this_process().unwrap_or_else(|_| Here {
        host: String::new(),
        boot: String::new(),
        start: 0,
    })
}

/// `.NAME.rf-counter`: the one temporary name a counter uses, under its lock.
pub fn locked_name(file: &CStr) -> CString {
    let mut name = prefix(file);
    name.extend_from_slice(b"counter");
    CString::new(name).expect("no NUL in a file name")
}

/// This process as its temporary files name it, and what judging them compares
/// against: read once per process (see [`owner::here`] for why per pid).
fn this_process() -> anyhow::Result<Here> {
    static CACHE: std::sync::Mutex<Option<(u32, Here)>> = std::sync::Mutex::new(None);
    let pid = std::process::id();
    let mut cached = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, h)) = cached.as_ref()
        && *p == pid
    {
        return Ok(h.clone());
    }
    let here = owner::here()?;
    // The pid namespace belongs with the host: a container in another one shares the
    // kernel's boot id, but its pids mean nothing in our /proc.
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap_or_default();
    let tagged = Here {
        host: host_tag(here.host.as_bytes(), ns.as_os_str().as_bytes()),
        boot: here
            .boot
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(8)
            .collect(),
        start: here.start,
    };
    *cached = Some((pid, tagged.clone()));
    Ok(tagged)
}

/// 64 random bits, for the names of temporary files and lock tokens.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // libc's getrandom: nix does not wrap it.
    // SAFETY: buf is valid for 8 bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), 8, 0) };
    if n != 8 {
        // No getrandom (very old kernel): time and pid still make a unique-enough
        // name, and O_EXCL catches the rest.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ ((std::process::id() as u64) << 32);
    }
    u64::from_ne_bytes(buf)
}

/// This process as its temporary files name it, for tests that make names as a
/// dead writer would have.
#[cfg(test)]
pub(crate) fn this_process_tag() -> Here {
    this_process().unwrap()
}

/// 8 hex digits naming a host name and pid namespace: FNV-1a, written out because
/// the tag must be the same from every build on every host that shares a directory,
/// which std's hasher does not promise.
fn host_tag(host: &[u8], pid_ns: &[u8]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for &b in host.iter().chain(&[0]).chain(pid_ns) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// What a name after `.NAME.rf-` is.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Stamped(Stamp),
    /// 16 hex digits, as racefree before 0.2 named them: no writer recorded.
    Unstamped,
    /// Not a name this rule touches (a counter's, or no temporary file at all).
    Other,
}

/// Parses the part of a temporary file's name after `.NAME.rf-`.
pub fn parse(rest: &[u8]) -> Kind {
    let Ok(rest) = std::str::from_utf8(rest) else {
        return Kind::Other;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let dec = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if hex(rest, 16) {
        return Kind::Unstamped;
    }
    let f: Vec<&str> = rest.split('-').collect();
    match f[..] {
        [host, boot, pid, start, rand]
            if hex(host, 8) && hex(boot, 8) && dec(pid) && dec(start) && hex(rand, 8) =>
        {
            match (pid.parse(), start.parse()) {
                (Ok(pid), Ok(start)) if pid > 0 => Kind::Stamped(Stamp {
                    host: host.into(),
                    boot: boot.into(),
                    pid,
                    start,
                }),
                _ => Kind::Other,
            }
        }
        _ => Kind::Other,
    }
}

/// Whether the rule removes a temporary file of this kind, last modified `age` ago.
/// Pure: `here` and `probe` stand for this host and its /proc.
pub fn decide(
    kind: &Kind,
    age: Duration,
    here: &Here,
    probe: impl Fn(i32) -> Option<Process>,
) -> bool {
    let foreign = match kind {
        Kind::Other => return false,
        Kind::Unstamped => true,
        Kind::Stamped(stamp) => match owner::judge(stamp, here, probe) {
            Verdict::Live => return false,
            Verdict::Stale(_) => return true,
            Verdict::Unknown(_) => true,
        },
    };
    foreign && age >= FOREIGN_AGE
}

/// Removes the temporary files of `file` in `dir` that [`decide`] says are dead.
/// Best effort: a file that cannot be examined or removed stays for a later call.
pub fn remove_dead(dir: &OwnedFd, file: &CStr) {
    match nix::sys::stat::fstat(dir) {
        Ok(st) if worth_listing(st.st_size.max(0) as u64, random_u64()) => {}
        _ => return,
    }
    let here = judge_from_here();
    let prefix = prefix(file);
    let Ok(mut listing) = Dir::openat(
        dir.as_fd(),
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let now = SystemTime::now();
    for entry in listing.iter().flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        if !matches!(entry.file_type(), None | Some(Type::File)) {
            continue;
        }
        let kind = parse(rest);
        if kind == Kind::Other {
            continue;
        }
        // A temporary file is a regular file with one name; anything else is not ours.
        let Some((age, 1)) = regular_file_age(dir, name, now) else {
            continue;
        };
        if decide(&kind, age, &here, owner::process) {
            let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// How long ago the regular file `name` in `dir` was last modified, and its link
/// count; `None` for anything else (or nothing) at that name.
pub fn regular_file_age(dir: &OwnedFd, name: &CStr, now: SystemTime) -> Option<(Duration, u64)> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let modified =
        SystemTime::UNIX_EPOCH + Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
    Some((
        now.duration_since(modified).unwrap_or_default(),
        st.st_nlink as u64,
    ))
}

/// A hidden knob for the tests that kill a call between its link and its rename:
/// with `RACEFREE_TEST_KILL_BEFORE_RENAME=1` in its environment, the process kills
/// itself with SIGKILL just before the rename, where a random SIGKILL leaks a file.
pub const KILL_BEFORE_RENAME_ENV: &str = "RACEFREE_TEST_KILL_BEFORE_RENAME";

/// Dies of SIGKILL if [`KILL_BEFORE_RENAME_ENV`] says so.
pub fn maybe_die_before_rename() {
    static KILL: OnceLock<bool> = OnceLock::new();
    let kill = *KILL.get_or_init(|| {
        std::env::var_os(KILL_BEFORE_RENAME_ENV).is_some_and(|v| v == OsStr::new("1"))
    });
    if kill {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests;
