//! Racers that are programs of their own (stress exec): each started held at the
//! gate right before its execve, all released together; what each did is kept, its
//! output bounded, and a round that runs past its time has its racers' process
//! groups killed.
//!
//! A racer is forked with a `pre_exec` step that waits at the gate, a pipe the round
//! shares, and notes the instant it got through just before std calls execve: the
//! start spread measured is the programs' own, not their forks'. std's
//! `Command::spawn` returns only once its child has exec'd, so each racer is spawned
//! by a thread of its own, which then reads the child's output and reaps it; that
//! thread must live as long as its child anyway, since the child's parent-death
//! signal follows the thread that forked it. Each racer leads a process group of its
//! own: a hung racer and whatever it started die together.

mod held;
pub mod stage;
mod watch;

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use self::held::{Gate, Held, Widening, spawn_and_watch};
use self::watch::{Slots, lock};
use super::cleanup::{interrupted, stopping};
use super::gate;
use super::widen::Widen;

/// One racer's program: what it runs, where, with what added to racefree's own
/// environment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Program {
    pub argv: Vec<String>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
}

/// Bytes kept of each racer's stdout and of its stderr; past them only counted.
pub const OUTPUT_KEPT: usize = 4096;

/// Racers one round may hold: each holds three descriptors here while it waits at
/// the gate (its stdout, its stderr, and std's pipe for its exec's error), and the
/// soft limit on descriptors is often 1024.
pub const MAX_PROGRAMS: u32 = 256;

/// The start of one stream's output, and how long it was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    /// The first [`OUTPUT_KEPT`] bytes, invalid UTF-8 replaced.
    pub head: String,
    pub bytes: u64,
}

/// What one program did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Exited {
    /// When it passed the gate, right before its execve (ns since the epoch).
    pub started_ns: u64,
    /// Its exit status, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// It was still running when the round's time was up, and was killed.
    pub timed_out: bool,
    /// Why its execve failed, when it did.
    pub error: Option<String>,
    pub stdout: Kept,
    pub stderr: Kept,
}

impl Exited {
    /// Whether it ran and exited with `code`.
    pub fn exited_with(&self, code: i32) -> bool {
        !self.timed_out && self.error.is_none() && self.code == Some(code)
    }

    /// How it ended, in words: `exited 1`, `killed by signal 9`, ...
    pub fn how(&self, timeout: Duration) -> String {
        if self.timed_out {
            return format!("hung: killed after {} s", timeout.as_secs_f64());
        }
        if let Some(e) = &self.error {
            return format!("could not start: {e}");
        }
        match (self.code, self.signal) {
            (Some(c), _) => format!("exited {c}"),
            (None, Some(s)) => match Signal::try_from(s) {
                Ok(sig) => format!("killed by signal {s} ({})", sig.as_str()),
                Err(_) => format!("killed by signal {s}"),
            },
            (None, None) => "ended without a status".into(),
        }
    }
}

impl Exited {
    /// What it said: the first `n` lines of its stderr (else of its stdout) and,
    /// when there are more, its last (a traceback ends with the error), each made
    /// safe to print: a control character shows as an escape, never reaches the
    /// terminal.
    pub fn said(&self, n: usize) -> Vec<String> {
        let text = match self.stderr.head.trim() {
            "" => &self.stdout.head,
            _ => &self.stderr.head,
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let safe = |l: &str| -> String {
            l.chars()
                .take(200)
                .flat_map(|c| match c.is_control() {
                    true => c.escape_default().collect(),
                    false => vec![c],
                })
                .collect()
        };
        let mut out: Vec<String> = lines.iter().take(n).map(|l| safe(l)).collect();
        if lines.len() > n {
            if lines.len() > n + 1 {
                out.push("...".into());
            }
            out.push(safe(lines[lines.len() - 1]));
        }
        out
    }
}

impl Exited {
    /// It as racer `racer` that failed, with `n` lines of what it said.
    pub fn failed(&self, racer: u32, timeout: Duration, n: usize) -> Failed {
        Failed {
            racer,
            how: self.how(timeout),
            said: self.said(n),
        }
    }
}

/// A racer that failed: how it ended, and what it said ([`Exited::said`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub racer: u32,
    pub how: String,
    pub said: Vec<String>,
}

impl Failed {
    /// In a line: `racer 2 exited 1: LAST LINE IT SAID`.
    pub fn line(&self) -> String {
        format!("racer {} {}{}", self.racer, self.how, gist(&self.said))
    }
}

/// The line that sums up what a program said ([`Exited::said`]), as `: LINE`: its
/// last.
pub fn gist(said: &[String]) -> String {
    said.last().map_or(String::new(), |l| format!(": {l}"))
}

/// Runs `sh -c CMD` as `template` would run (its directory and environment), not
/// held; returns what failed, in a line starting with `what`, if it did.
pub fn shell(
    what: &str,
    cmd: &str,
    template: Program,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    let p = Program {
        argv: vec!["sh".into(), "-c".into(), cmd.into()],
        ..template
    };
    let e = run(&p, timeout)?;
    Ok((!e.exited_with(0)).then(|| format!("{what} {}{}", e.how(timeout), gist(&e.said(1)))))
}

/// Whether `command` names a program this host can run: a path, or a name on PATH.
pub fn findable(command: &str) -> bool {
    let runnable = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        return runnable(std::path::Path::new(command));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| runnable(&d.join(command))))
}

/// Held by the race under way (see [`race`]).
static ONE_RACE: Mutex<()> = Mutex::new(());

/// Runs one program, not held, and returns what it did (killed, after `timeout`).
pub fn run(program: &Program, timeout: Duration) -> anyhow::Result<Exited> {
    Ok(race(std::slice::from_ref(program), timeout, None, None)?.remove(0))
}

/// Starts every program held right before its execve; once all are waiting, releases
/// them together (at `release_ns`, when given: the instant hosts agreed on), and
/// returns what each did, in order. Past `timeout` after the release, the process
/// groups of those still running are killed and they count as hung. With `widen`,
/// each racer's calls that change the filesystem are held back ([`widen`]).
pub fn race(
    programs: &[Program],
    timeout: Duration,
    release_ns: Option<u64>,
    widen: Option<Widen>,
) -> anyhow::Result<Vec<Exited>> {
    if programs.len() > MAX_PROGRAMS as usize {
        bail!(
            "{} programs in one round; at most {MAX_PROGRAMS}",
            programs.len()
        );
    }
    // One race at a time in a process. A child held at a gate holds a copy of every
    // pipe open at its fork, another race's gate among them, which then cannot end
    // until this child's exec: two races at once could each hold the other's shut.
    let _one = ONE_RACE.lock().unwrap_or_else(|e| e.into_inner());
    let mut gate = Gate::new()?;
    // The children get the gate's descriptors by number at their fork; this thread
    // keeps the gate itself, to close its ends once every racer is done.
    let fds = gate.fds();
    let slots = Mutex::new(Slots::new(programs.len()));
    let widening = match widen {
        Some(w) if !programs.is_empty() => {
            Some(Widening::new(w, programs.len(), programs[0].dir.clone())?)
        }
        _ => None,
    };
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let news = gate.news_reader(s, tx.clone())?;
        let mut gate = gate;
        let (widener, widening) = match widening {
            Some(w) => {
                let (thread, held) = w.start(s)?;
                (Some(thread), Some(held))
            }
            None => (None, None),
        };
        let filter = widening.as_ref().map(Held::for_child);
        let mut racers = Vec::with_capacity(programs.len());
        for (i, p) in programs.iter().enumerate() {
            let (tx, slots, filter) = (tx.clone(), &slots, filter.clone());
            let started = std::thread::Builder::new()
                .name("racer".into())
                .spawn_scoped(s, move || {
                    let result = spawn_and_watch(i, p, fds, filter, slots);
                    let _ = tx.send(Event::Ended);
                    result
                })
                .context("starting a racer thread");
            match started {
                Ok(h) => racers.push(h),
                Err(e) => {
                    gate.give_up(racers.len());
                    return Err(e);
                }
            }
        }
        drop(tx);
        let all_waiting = all_waiting(&rx, programs.len());
        let go = all_waiting && !stopping();
        if go && let Some(ns) = release_ns {
            gate::wait_until_ns(ns)?;
        }
        if go {
            gate.release();
        } else {
            gate.give_up(programs.len());
        }
        let mut starts = vec![0; programs.len()];
        if go {
            watch_clock(&rx, &slots, programs.len(), timeout, &mut starts);
        }
        let results: Vec<io::Result<Exited>> = racers
            .into_iter()
            .map(|h| h.join().expect("a racer thread panicked"))
            .collect();
        // Every child has exec'd or died, so with ours closed the news pipe ends.
        drop(gate);
        drop(widening);
        if let Some(w) = widener {
            w.join().expect("the widener panicked");
        }
        for e in rx.iter() {
            if let Event::Released(i, ns) = e {
                starts[i] = ns;
            }
        }
        news.join().expect("the news reader panicked");
        if stopping() {
            return Err(interrupted());
        }
        results
            .into_iter()
            .zip(starts)
            .enumerate()
            .map(|(i, (r, started_ns))| match r {
                Ok(e) => Ok(Exited { started_ns, ..e }),
                // Past the gate, a failed spawn is a failed execve: that racer's result.
                Err(e) if go && started_ns != 0 => Ok(Exited {
                    started_ns,
                    error: Some(errno_words(&e)),
                    ..Exited::default()
                }),
                Err(e) => Err(e)
                    .with_context(|| format!("starting racer {i}: {}", programs[i].argv.join(" "))),
            })
            .collect()
    })
}

/// What the racers' threads and the children's news tell the round.
enum Event {
    Waiting,
    Released(usize, u64),
    Ended,
}

/// Waits until every racer waits at the gate; false if one ended before (its spawn
/// failed) or a signal stops the run.
fn all_waiting(rx: &mpsc::Receiver<Event>, n: usize) -> bool {
    let mut waiting = 0;
    while waiting < n {
        match rx.recv() {
            Ok(Event::Waiting) => waiting += 1,
            Ok(Event::Released(..)) => {}
            Ok(Event::Ended) | Err(_) => return false,
        }
    }
    true
}

/// After the release: collects the start instants until every racer has ended,
/// killing the groups of those still running when `timeout` is up.
fn watch_clock(
    rx: &mpsc::Receiver<Event>,
    slots: &Mutex<Slots>,
    n: usize,
    timeout: Duration,
    starts: &mut [u64],
) {
    let deadline = Instant::now() + timeout;
    let mut ended = 0;
    while ended < n {
        let event = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(e) => e,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                lock(slots).expire();
                match rx.recv() {
                    Ok(e) => e,
                    Err(_) => return,
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        match event {
            Event::Released(i, ns) => starts[i] = ns,
            Event::Ended => ended += 1,
            Event::Waiting => {}
        }
    }
}

/// An error's system message alone ("No such file or directory"), as a shell says it.
fn errno_words(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests;
