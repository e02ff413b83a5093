//! What arms share: a round's directory, a counter file read and stored the plain
//! way (the control arms' building blocks) or read back for the verdict, the order
//! each racer takes, the checksummed versions a file is written with and read back,
//! a process killed at a chosen instant, the temporary files racefree names, and a
//! lock holder that logs and checks its hold.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::signal::{Signal, kill as kill_one, killpg};
use nix::sys::time::TimeSpec;
use nix::unistd::Pid;

use crate::child::die_with_parent;
use crate::stress::cleanup::ChildGuard;
use crate::stress::race::RoundCtx;
use crate::stress::tree;

/// Makes a round's directory; across hosts every instance may, so one that is
/// already there (and is a directory, not a symlink) is fine.
pub fn make_round_dir(ctx: &RoundCtx) -> anyhow::Result<()> {
    match std::fs::create_dir(&ctx.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && ctx.shared => {
            if std::fs::symlink_metadata(&ctx.dir)?.is_dir() {
                Ok(())
            } else {
                bail!("'{}' is not a directory", ctx.dir.display())
            }
        }
        Err(e) => Err(e).with_context(|| format!("creating '{}'", ctx.dir.display())),
    }
}

/// Reads a counter file without any lock; an absent file is 0.
pub fn read_value(file: &Path) -> anyhow::Result<i64> {
    match std::fs::read(file) {
        Ok(bytes) => crate::counter::parse(&bytes)
            .map_err(|why| anyhow::anyhow!("'{}' does not hold a number: {why}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading '{}'", file.display())),
    }
}

/// An atomic store: the value goes to a temporary file beside `file`, renamed over
/// it. Readers never see a torn number; a read-modify-write around it is still
/// not atomic.
pub fn store_atomically(file: &Path, value: i64) -> anyhow::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in '{}'", dir.display()))?;
    writeln!(tmp, "{value}")?;
    tmp.persist(file)
        .with_context(|| format!("renaming over '{}'", file.display()))?;
    Ok(())
}

/// The number a round left in the counter file `work/rel`, read for the verdict
/// without following a symlink.
pub fn counter_on_disk(work: &Path, rel: &Path) -> anyhow::Result<i64> {
    let bytes = tree::read_file(work, rel, crate::counter::MAX_LEN as u64)?;
    crate::counter::parse(&bytes)
        .map_err(|why| anyhow::anyhow!("'{}' does not hold a number: {why}", rel.display()))
}

/// A deterministic shuffle (xorshift64), so each racer takes its own order and a
/// failing run can be replayed.
pub fn shuffle<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut s = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

/// FNV-1a, 64 bits: enough to tell one version from a torn mixture.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One whole version: `racefree-stress-write ID LEN SUM\n`, then LEN bytes.
pub fn version(id: &str) -> Vec<u8> {
    let seed = checksum(id.as_bytes());
    let len = 1024 * (1 + (seed % 64) as usize);
    let mut s = seed | 1;
    let body: Vec<u8> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            b'a' + (s % 26) as u8
        })
        .collect();
    let mut v = format!(
        "racefree-stress-write {id} {len} {:016x}\n",
        checksum(&body)
    )
    .into_bytes();
    v.extend(body);
    v
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    Complete,
    Empty,
    Torn(String),
}

/// Whether `bytes` is exactly one complete version.
pub fn verify(bytes: &[u8]) -> Seen {
    if bytes.is_empty() {
        return Seen::Empty;
    }
    let Some(nl) = bytes.iter().take(200).position(|&b| b == b'\n') else {
        return Seen::Torn(format!("{} bytes with no header line", bytes.len()));
    };
    let header = String::from_utf8_lossy(&bytes[..nl]);
    let body = &bytes[nl + 1..];
    let fields: Vec<&str> = header.split(' ').collect();
    let (len, sum) = match fields.as_slice() {
        ["racefree-stress-write", _, len, sum] => {
            (len.parse::<usize>(), u64::from_str_radix(sum, 16))
        }
        _ => return Seen::Torn(format!("a header that is not one: {header:?}")),
    };
    match (len, sum) {
        (Ok(len), _) if len != body.len() => Seen::Torn(format!(
            "version {} says {len} bytes, {} follow",
            fields[1],
            body.len()
        )),
        (Ok(_), Ok(sum)) if sum == checksum(body) => Seen::Complete,
        _ => Seen::Torn(format!("version {}: checksum mismatch", fields[1])),
    }
}

/// The control writer: truncate FILE, then write the new content into it through
/// a buffer, the way `cat > FILE` or `File::create` + `write_all` do.
pub fn write_in_place(file: &Path, content: &[u8]) -> anyhow::Result<()> {
    let f =
        std::fs::File::create(file).with_context(|| format!("creating '{}'", file.display()))?;
    let mut w = std::io::BufWriter::new(f);
    w.write_all(content)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing '{}'", file.display()))
}

/// When [`run_killing`] kills the process it starts.
#[derive(Clone, Copy, Debug)]
pub struct Kill {
    /// How long after its start.
    pub after: Duration,
    /// SIGKILL its whole process group (what it started, too), not it alone.
    pub group: bool,
}

/// How a process [`run_killing`] started ended.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The SIGKILL was sent while it ran (it may have exited on its own first:
    /// `status` tells).
    pub killed: bool,
    /// From its start to its end.
    pub took: Duration,
}

impl Ran {
    /// Whether it died of SIGKILL.
    pub fn died_of_sigkill(&self) -> bool {
        self.status.signal() == Some(libc::SIGKILL)
    }
}

/// Runs `cmd` as the leader of a process group of its own and SIGKILLs it (or its
/// group) `kill.after` its start, unless it has ended by then. It is not reaped
/// before the kill, so its pid cannot have passed to another process; it dies with
/// the calling thread and with an interrupted run.
pub fn run_killing(cmd: &mut Command, kill: Option<Kill>) -> anyhow::Result<Ran> {
    let start = Instant::now();
    let mut child = die_with_parent(cmd)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let guard = ChildGuard::new(child.id());
    let mut killed = false;
    if let Some(k) = kill
        && !ended_within(&mut child, k.after)?
    {
        let pid = Pid::from_raw(child.id() as i32);
        // ESRCH: it has just exited, unreaped; nothing else can hold its pid.
        let _ = match k.group {
            true => killpg(pid, Signal::SIGKILL),
            false => kill_one(pid, Signal::SIGKILL),
        };
        killed = true;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {:?}", cmd.get_program()))?;
    drop(guard);
    Ok(Ran {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
        killed,
        took: start.elapsed(),
    })
}

/// Whether `child` ends within `span`: waits on its pidfd, to the microsecond (an
/// arm's calls last milliseconds). Without pidfds (Linux before 5.3), sleeps the
/// span, then looks.
fn ended_within(child: &mut Child, span: Duration) -> anyhow::Result<bool> {
    let Ok(pidfd) = pidfd_open(child.id()) else {
        std::thread::sleep(span);
        return Ok(child.try_wait()?.is_some());
    };
    let end = Instant::now() + span;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting on a child's pidfd"),
        }
    }
}

/// A pidfd for `pid`, which becomes readable when the process ends.
fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags, reads no memory, and returns a
    // new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// xorshift64 seeded at random: a racer's own stream of instants and choices.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        Rng(crate::write::random_u64() | 1)
    }

    pub fn draw(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn one_in(&mut self, n: u64) -> bool {
        self.draw() % n == 0
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.draw() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What is wrong with `file` as one whole version ([`version`]), if anything.
pub fn not_one_version(file: &Path) -> Option<String> {
    match std::fs::read(file) {
        Ok(bytes) => match verify(&bytes) {
            Seen::Complete => None,
            Seen::Empty => Some(format!("'{}' is empty", file.display())),
            Seen::Torn(why) => Some(format!("'{}' is torn: {why}", file.display())),
        },
        Err(e) => Some(format!("reading '{}': {e}", file.display())),
    }
}

/// The temporary files racefree's `write` and `counter` name after `names` (see
/// `write::leftovers`) that are in `dir`.
pub fn temporaries(dir: &Path, names: &[&str]) -> anyhow::Result<Vec<String>> {
    let prefixes: Vec<String> = names.iter().map(|n| format!(".{n}.rf-")).collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing '{}'", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            found.push(name);
        }
    }
    Ok(found)
}

/// A lock holder, the COMMAND a lock arm runs under `racefree lock`: logs its entry
/// in `log`, works a while (up to 2 ms, as a real holder would, so that a second
/// holder let in early acts before it leaves), then logs its exit, each line one
/// append. At its entry and at its exit it checks that it holds the lock itself,
/// as COMMAND must to outlive racefree's death ([`holds_lock`]); [`read_log`]
/// judges the log.
pub fn hold(log: &Path, lockfile: &Path, nfs: bool) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .with_context(|| format!("opening '{}'", log.display()))?;
    let id = crate::write::random_u64();
    let line = |what: &str| {
        let unheld = if holds_lock(lockfile, nfs) {
            ""
        } else {
            " unheld"
        };
        format!("{what} {id:016x}{unheld}\n")
    };
    f.write_all(line("enter").as_bytes())?;
    std::thread::sleep(Duration::from_micros(id % 2000));
    f.write_all(line("exit").as_bytes())?;
    Ok(())
}

/// Whether this process holds the lock on `lockfile` itself: a link lock whose
/// record names it (`--nfs`, or a filesystem without flock), or, unless `nfs`, a
/// write lock held by a descriptor it has (the kernel lists each open file's
/// locks in /proc/self/fdinfo).
pub fn holds_lock(lockfile: &Path, nfs: bool) -> bool {
    let me = format!("holder {} ", std::process::id());
    let named = std::fs::read_to_string(crate::lock::nfs::dotlock_path(lockfile))
        .is_ok_and(|r| r.lines().any(|l| l.starts_with(&me)));
    if named || nfs {
        return named;
    }
    let (Ok(want), Ok(fds)) = (
        std::fs::metadata(lockfile),
        std::fs::read_dir("/proc/self/fd"),
    ) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        let info = Path::new("/proc/self/fdinfo").join(fd.file_name());
        std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == (want.dev(), want.ino()))
            && std::fs::read_to_string(info).is_ok_and(|i| {
                i.lines()
                    .any(|l| l.starts_with("lock:") && l.contains(" WRITE "))
            })
    })
}

/// What a holders' log shows.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Holds {
    pub holders: u64,
    /// Holders that entered and never left: killed holding the lock.
    pub died_holding: u64,
    /// Lines of a holder while another held the lock (or no holder's at all).
    pub overlaps: u64,
    /// Holders that found they did not hold the lock.
    pub unheld: u64,
    pub problems: Vec<String>,
}

/// Reads a holders' log ([`hold`]): `enter ID` and `exit ID` lines, `unheld` after
/// them when the holder did not hold the lock. A holder's exit comes right after
/// its own entry: any line between is another holder acting while it held the lock.
pub fn read_log(log: &[u8]) -> Holds {
    let mut h = Holds::default();
    let text = String::from_utf8_lossy(log);
    let (mut entered, mut exited) = (BTreeSet::new(), BTreeSet::new());
    let mut inside = None;
    for (n, line) in text.lines().enumerate() {
        let mut bad = |count: &mut u64, why: String| {
            *count += 1;
            if h.problems.len() < 3 {
                h.problems
                    .push(format!("holders' log, line {}: {why}", n + 1));
            }
        };
        let words: Vec<&str> = line.split(' ').collect();
        let (what, id) = match words[..] {
            [w @ ("enter" | "exit"), id] => (w, id),
            [w @ ("enter" | "exit"), id, "unheld"] => {
                bad(
                    &mut h.unheld,
                    format!("holder {id} did not hold the lock at its {w}"),
                );
                (w, id)
            }
            _ => {
                bad(&mut h.overlaps, format!("{line:?} is no holder's line"));
                inside = None;
                continue;
            }
        };
        if what == "exit" {
            exited.insert(id);
            if inside != Some(id) {
                bad(
                    &mut h.overlaps,
                    format!(
                        "holder {id} left after another holder's line: two held the lock at once"
                    ),
                );
            }
        } else {
            entered.insert(id);
        }
        inside = (what == "enter").then_some(id);
    }
    h.holders = entered.len() as u64;
    h.died_holding = entered.difference(&exited).count() as u64;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_killed_at_its_instant_with_its_group_and_one_that_ended_is_not() {
        let mut cmd = Command::new("sh");
        // The background sleep holds stdout: only a group kill lets the read end.
        cmd.args(["-c", "sleep 30 & wait"])
            .stdout(std::process::Stdio::piped());
        let kill = Kill {
            after: Duration::from_millis(100),
            group: true,
        };
        let ran = run_killing(&mut cmd, Some(kill)).unwrap();
        assert!(ran.killed && ran.died_of_sigkill(), "{ran:?}");
        assert!(ran.took < Duration::from_secs(20), "{ran:?}");
        let kill = Kill {
            after: Duration::from_secs(60),
            group: false,
        };
        let ran = run_killing(&mut Command::new("true"), Some(kill)).unwrap();
        assert!(!ran.killed && ran.status.success(), "{ran:?}");
        assert!(
            ran.took < Duration::from_secs(20),
            "waited out the span: {ran:?}"
        );
    }

    #[test]
    fn the_log_shows_holders_killed_inside_two_at_once_and_one_without_the_lock() {
        let log = b"enter a\nexit a\nenter b\nenter c\nexit c\n";
        let h = read_log(log);
        assert_eq!(
            (h.holders, h.died_holding, h.overlaps, h.unheld),
            (3, 1, 0, 0)
        );
        let h = read_log(b"enter a\nenter b\nexit a\nexit b\n");
        assert_eq!((h.overlaps, h.died_holding), (2, 0));
        assert_eq!(
            h.problems[0],
            "holders' log, line 3: holder a left after another holder's line: two held the lock at once"
        );
        let h = read_log(b"enter a unheld\nexit a\nenter b\nexit\n");
        assert_eq!((h.unheld, h.overlaps), (1, 1));
        assert_eq!(read_log(b""), Holds::default());
    }

    #[test]
    fn a_holder_holds_the_lock_through_its_descriptor_or_its_link_lock_record() {
        let t = tempfile::tempdir().unwrap();
        let lockfile = t.path().join("lock");
        assert!(!holds_lock(&lockfile, false));
        let held = crate::lock::acquire(&lockfile, &crate::lock::Options::default()).unwrap();
        assert!(holds_lock(&lockfile, false));
        // --nfs: the flock is not enough; the link lock's record must name it.
        assert!(!holds_lock(&lockfile, true));
        let record = crate::lock::nfs::dotlock_path(&lockfile);
        std::fs::write(&record, format!("holder {} 1\n", std::process::id())).unwrap();
        assert!(holds_lock(&lockfile, true));
        drop(held);
    }
}
