//! Releasing racers together, and measuring how closely they started.
//!
//! Threads wait at a [`StartLine`]. Processes read their round from stdin and block
//! there until the parent, having started every one of them, closes all the pipes. Instances on
//! different hosts meet at a barrier file on the shared tree. Each racer notes the
//! wall-clock instant it was released, so the report can say how close the start was.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use super::cleanup::{ChildGuard, interrupted, stopping};
use crate::child::die_with_parent;

/// Nanoseconds since the epoch: comparable across threads, processes and (with
/// synchronised clocks) hosts.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// For a racer process: read the round (all of stdin: the parent writes it, then
/// closes the pipe to release every racer at once) and return it with the release
/// instant.
pub fn read_round_and_wait() -> io::Result<(Vec<u8>, u64)> {
    let mut round = Vec::new();
    io::stdin().lock().read_to_end(&mut round)?;
    Ok((round, now_ns()))
}

/// Where threads wait to be released together: opened once, to go or to give up
/// (when a racer could not be started, those already waiting must not wait forever).
pub struct StartLine {
    state: Mutex<Option<bool>>,
    opened: Condvar,
}

impl Default for StartLine {
    fn default() -> Self {
        StartLine {
            state: Mutex::new(None),
            opened: Condvar::new(),
        }
    }
}

impl StartLine {
    /// Blocks until the line is opened; true to go, false to give up.
    pub fn wait(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(go) = *state {
                return go;
            }
            state = self.opened.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn open(&self, go: bool) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(go);
        self.opened.notify_all();
    }
}

/// Racer processes of this binary, each blocked reading its stdin. Dropped before
/// they were all waited for (an error on the way), the rest are killed and reaped.
pub struct Racers {
    children: Vec<(Child, ChildGuard)>,
}

impl Racers {
    /// Starts one process per argument list, `racefree <args...>`, and writes `round`
    /// to each one's stdin (it blocks reading until [`Racers::release`]).
    pub fn spawn(
        arg_lists: impl IntoIterator<Item = Vec<std::ffi::OsString>>,
        round: &[u8],
    ) -> anyhow::Result<Racers> {
        let exe =
            std::env::current_exe().context("finding this binary to start racer processes")?;
        let mut racers = Racers {
            children: Vec::new(),
        };
        for args in arg_lists {
            if stopping() {
                return Err(interrupted());
            }
            let mut child = die_with_parent(&mut Command::new(&exe))
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting a racer process")?;
            let guard = ChildGuard::new(child.id());
            let written = child
                .stdin
                .as_mut()
                .expect("piped")
                .write_all(round)
                .context("handing a racer process its round");
            racers.children.push((child, guard));
            written?;
        }
        Ok(racers)
    }

    /// Closes every stdin at once: the racers start.
    pub fn release(&mut self) {
        for (c, _) in &mut self.children {
            drop(c.stdin.take());
        }
    }

    /// Waits for every racer; a failed racer is an error.
    pub fn wait_all(mut self) -> anyhow::Result<Vec<Output>> {
        let mut outputs = Vec::with_capacity(self.children.len());
        while !self.children.is_empty() {
            let (child, guard) = self.children.remove(0);
            let out = child
                .wait_with_output()
                .context("waiting for a racer process")?;
            drop(guard);
            if stopping() {
                return Err(interrupted());
            }
            if !out.status.success() {
                bail!("a racer process failed: {}", out.status);
            }
            outputs.push(out);
        }
        Ok(outputs)
    }
}

impl Drop for Racers {
    fn drop(&mut self) {
        for (c, _) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How far apart a set of racers started, in nanoseconds.
pub fn spread_ns(starts: impl IntoIterator<Item = u64>) -> u64 {
    let (mut lo, mut hi) = (u64::MAX, 0);
    for s in starts {
        lo = lo.min(s);
        hi = hi.max(s);
    }
    hi.saturating_sub(lo)
}

/// This instance's id among many hosts: `--id`, else the launcher's rank variable.
/// Open MPI's rank comes before Slurm's: under `mpirun` inside a Slurm allocation
/// every rank inherits the step's one SLURM_PROCID, so the ranks would share an id.
pub fn instance_id(explicit: Option<u32>) -> anyhow::Result<u32> {
    if let Some(id) = explicit {
        return Ok(id);
    }
    for var in [
        "OMPI_COMM_WORLD_RANK",
        "SLURM_PROCID",
        "JOB_COMPLETION_INDEX",
    ] {
        if let Ok(v) = std::env::var(var) {
            return v
                .trim()
                .parse()
                .with_context(|| format!("{var}={v:?} is not an instance number"));
        }
    }
    Ok(0)
}

/// How far ahead of the moment the last instance arrived the common start is set:
/// long enough for every instance to poll the barrier directory and read the start
/// time before it comes, whatever one poll costs on a loaded host or a network
/// filesystem, and short enough that nobody notices the wait.
const START_LEAD: Duration = Duration::from_millis(100);

/// A start time read back from `PATH.start` must lie within this much of now: a
/// file from an earlier run, or one someone wrote by hand, is refused, not obeyed.
const START_FUTURE_LIMIT: Duration = Duration::from_secs(60);

/// A barrier on a shared filesystem: each instance creates `PATH.arrived.ID`
/// (O_EXCL, so two instances claiming one id is caught), then waits until `expect`
/// arrival files exist. Distinct files, not appends to one file: O_APPEND is not
/// atomic over NFS.
///
/// Released by polling alone, instances would start as far apart as their polls
/// land (one descheduled host starts late, and a short run on it may not overlap
/// the others at all). So the first instance to see every arrival publishes a
/// common start time, a little ahead, as `PATH.start` (written aside, then
/// link(2)ed into place: the file appears whole or not at all, and of two
/// instances publishing at once exactly one wins, on NFS too); every instance
/// then waits for that instant on its own clock. The spread left is the hosts'
/// clock skew plus one wake-up, which the report measures. Returns the instant
/// this instance was released (nanoseconds since the epoch).
pub fn barrier_file(path: &Path, id: u32, expect: u32, timeout: Duration) -> anyhow::Result<u64> {
    wait_until_ns(meet(path, id, expect, timeout)?)?;
    // The instant this instance really started, not the one it aimed at: a late
    // wake-up shows in the report's spread.
    Ok(now_ns())
}

/// [`barrier_file`] up to the common start: returns that instant without waiting
/// for it, so that what must be ready by then (racers held at a gate) can be made
/// ready meanwhile.
pub fn meet(path: &Path, id: u32, expect: u32, timeout: Duration) -> anyhow::Result<u64> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = path
        .file_name()
        .with_context(|| format!("--barrier-file '{}' names no file", path.display()))?
        .to_string_lossy()
        .into_owned();
    let prefix = format!("{stem}.arrived.");
    let mine: PathBuf = dir.join(format!("{prefix}{id}"));
    let start_file = dir.join(format!("{stem}.start"));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&mine)
        .with_context(|| format!("arriving at barrier '{}' as instance {id}", mine.display()))?;
    let deadline = Instant::now() + timeout;
    let start_ns = loop {
        let arrived = fs::read_dir(dir)
            .with_context(|| format!("reading barrier directory '{}'", dir.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count() as u32;
        if arrived > expect {
            bail!(
                "barrier '{}': {arrived} arrivals for --expect {expect}; files left by an earlier run? \
                 use a fresh --barrier-file for each run",
                path.display()
            );
        }
        if arrived == expect {
            break publish_start(&start_file, id, timeout)?;
        }
        if stopping() {
            return Err(interrupted());
        }
        if Instant::now() >= deadline {
            bail!(
                "barrier '{}': only {arrived} of {expect} instances arrived within {}s",
                path.display(),
                timeout.as_secs()
            );
        }
        // Waiting for other hosts to arrive, not racing anything: poll gently.
        std::thread::sleep(Duration::from_millis(2));
    };
    Ok(start_ns)
}

/// Across hosts, a barrier of one round: every instance meets the others at
/// `work/sync-N/NAME`, as at [`barrier_file`] (stress exec's instances meet before
/// each round, to release their racers together once instance 0 has set it up,
/// and after it, so that instance 0 checks it once all are done).
pub struct RoundBarrier<'a> {
    pub work: &'a Path,
    pub round: u64,
    pub name: &'a str,
    pub instance: u32,
    pub expect: u32,
    pub timeout: Duration,
}

impl RoundBarrier<'_> {
    fn path(&self) -> anyhow::Result<PathBuf> {
        let dir = self.work.join(format!("sync-{}", self.round));
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                Err(e).with_context(|| format!("creating '{}'", dir.display()))
            }
            _ => Ok(dir.join(self.name)),
        }
    }

    /// Waits until every instance is there, and returns the instant they agreed
    /// to start at, without waiting for it.
    pub fn start(&self) -> anyhow::Result<u64> {
        meet(&self.path()?, self.instance, self.expect, self.timeout)
    }

    /// Waits until every instance is there, and for the instant they agreed on.
    pub fn wait(&self) -> anyhow::Result<u64> {
        barrier_file(&self.path()?, self.instance, self.expect, self.timeout)
    }
}

/// Publishes a start time `START_LEAD` from now as `start_file`, unless another
/// instance already has; either way returns the one published, validated.
fn publish_start(start_file: &Path, id: u32, timeout: Duration) -> anyhow::Result<u64> {
    let aside = start_file.with_file_name(format!(
        "{}.{id}",
        start_file.file_name().unwrap_or_default().to_string_lossy()
    ));
    let proposed = now_ns() + START_LEAD.as_nanos() as u64;
    fs::write(&aside, format!("{proposed}\n"))
        .with_context(|| format!("writing '{}'", aside.display()))?;
    let linked = fs::hard_link(&aside, start_file);
    let _ = fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(proposed),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_start(start_file, timeout),
        Err(e) => Err(e).with_context(|| format!("publishing '{}'", start_file.display())),
    }
}

/// Reads a start time another instance published, as strictly as an argument: one
/// decimal number of nanoseconds and a newline, no older than the barrier's timeout
/// and no further ahead than `START_FUTURE_LIMIT`.
fn read_start(start_file: &Path, timeout: Duration) -> anyhow::Result<u64> {
    let text =
        fs::read(start_file).with_context(|| format!("reading '{}'", start_file.display()))?;
    let bad = |why: &str| {
        anyhow::anyhow!(
            "barrier start file '{}' {why}; use a fresh --barrier-file for each run",
            start_file.display()
        )
    };
    let digits = text
        .strip_suffix(b"\n")
        .filter(|d| !d.is_empty() && d.len() <= 20 && d.iter().all(u8::is_ascii_digit))
        .ok_or_else(|| bad("does not hold a start time"))?;
    let ns: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| bad("does not hold a start time"))?;
    let now = now_ns();
    if ns < now.saturating_sub(timeout.as_nanos() as u64 + START_LEAD.as_nanos() as u64) {
        return Err(bad("names a start long past"));
    }
    if ns > now + START_FUTURE_LIMIT.as_nanos() as u64 {
        return Err(bad("names a start more than a minute ahead"));
    }
    Ok(ns)
}

/// Waits for the wall-clock instant `ns`: sleeps most of the way, then watches the
/// clock for the last stretch so that the wake-up lands on the instant itself.
pub fn wait_until_ns(ns: u64) -> anyhow::Result<()> {
    const WATCH: u64 = 2_000_000;
    loop {
        let now = now_ns();
        if now >= ns {
            return Ok(());
        }
        if stopping() {
            return Err(interrupted());
        }
        let left = ns - now;
        if left > WATCH {
            std::thread::sleep(Duration::from_nanos((left - WATCH).min(10_000_000)));
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_last_minus_first() {
        assert_eq!(spread_ns([5, 3, 9]), 6);
        assert_eq!(spread_ns([7]), 0);
    }

    #[test]
    fn barrier_file_releases_once_all_have_arrived_and_refuses_a_duplicate_id() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("go");
        let handles: Vec<_> = (0..3)
            .map(|id| {
                let b = b.clone();
                std::thread::spawn(move || {
                    barrier_file(&b, id, 3, Duration::from_secs(20)).unwrap()
                })
            })
            .collect();
        let starts: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(starts.len(), 3);
        let published: u64 = fs::read_to_string(t.path().join("go.start"))
            .unwrap()
            .trim_end()
            .parse()
            .unwrap();
        assert!(
            starts.iter().all(|&s| s >= published),
            "nobody starts before the published start {published}: {starts:?}"
        );
        let left: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with("go.arrived.") && n != "go.start")
            .collect();
        assert!(left.is_empty(), "no aside file is left: {left:?}");
        let err = barrier_file(&b, 1, 3, Duration::from_secs(1)).unwrap_err();
        assert!(
            format!("{err:#}").contains("arriving at barrier"),
            "{err:#}"
        );
    }

    #[test]
    fn barrier_file_times_out_with_a_count() {
        let t = tempfile::tempdir().unwrap();
        let err = barrier_file(&t.path().join("b"), 0, 2, Duration::from_millis(50)).unwrap_err();
        assert!(
            err.to_string().contains("only 1 of 2 instances arrived"),
            "{err}"
        );
    }

    #[test]
    fn a_start_file_that_is_garbage_or_stale_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("b.start");
        let timeout = Duration::from_secs(300);
        let now = now_ns();
        for (content, why) in [
            ("".to_string(), "does not hold a start time"),
            ("12x\n".to_string(), "does not hold a start time"),
            (format!("{now}"), "does not hold a start time"),
            (
                "99999999999999999999999\n".to_string(),
                "does not hold a start time",
            ),
            ("1\n".to_string(), "names a start long past"),
            (
                format!("{}\n", now + 3_600_000_000_000),
                "more than a minute ahead",
            ),
        ] {
            fs::write(&f, &content).unwrap();
            let err = read_start(&f, timeout).unwrap_err().to_string();
            assert!(err.contains(why), "{content:?}: {err}");
            assert!(err.contains("b.start"), "{err}");
        }
        fs::write(&f, format!("{}\n", now + 1000)).unwrap();
        assert_eq!(read_start(&f, timeout).unwrap(), now + 1000);
    }

    #[test]
    fn a_start_published_earlier_is_the_one_every_late_instance_takes() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("b.start");
        let first = publish_start(&f, 0, Duration::from_secs(5)).unwrap();
        let second = publish_start(&f, 1, Duration::from_secs(5)).unwrap();
        assert_eq!(first, second);
        assert!(!t.path().join("b.start.1").exists());
    }
}
