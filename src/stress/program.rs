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

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::cleanup::{ChildGuard, interrupted, stopping};
use super::gate;
use super::widen::{self, Filter, Widen};
use crate::child::die_with_parent;

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
    let mut gate = Gate::new()?;
    // The children get the gate's descriptors by number at their fork; this thread
    // keeps the gate itself, to close its ends once every racer is done.
    let fds = (
        gate.gate_r.as_raw_fd(),
        gate.gate_w.as_ref().expect("open").as_raw_fd(),
        gate.news_w.as_raw_fd(),
    );
    let slots = Mutex::new(Slots {
        pids: vec![None; programs.len()],
        killed: vec![false; programs.len()],
        expired: false,
    });
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
        let filter = widening
            .as_ref()
            .map(|w| (w.filter.clone(), w.for_racers.as_raw_fd()));
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

/// A round's widening ([`widen`]): the filter each racer installs, the socket
/// they hand their listeners over, and the pipe whose closing ends the thread
/// that answers them.
struct Widening {
    filter: Arc<Filter>,
    /// The end racers send on, and the end the answering thread reads.
    for_racers: OwnedFd,
    for_widener: OwnedFd,
    widen: Widen,
    racers: usize,
    /// The directory whose changes are held: the racers' own.
    scope: PathBuf,
}

/// What stays with the round while the answering thread runs; dropped, it ends it.
struct Held {
    filter: Arc<Filter>,
    for_racers: OwnedFd,
    _stop: OwnedFd,
}

impl Widening {
    fn new(widen: Widen, racers: usize, scope: PathBuf) -> anyhow::Result<Widening> {
        let (for_racers, for_widener) = widen::channel().context("making the widening's socket")?;
        Ok(Widening {
            filter: Arc::new(Filter::new()),
            for_racers,
            for_widener,
            widen,
            racers,
            scope,
        })
    }

    fn start<'scope>(
        self,
        s: &'scope std::thread::Scope<'scope, '_>,
    ) -> anyhow::Result<(std::thread::ScopedJoinHandle<'scope, ()>, Held)> {
        let (stop_r, stop_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("making a pipe")?;
        let (theirs, widen, racers, scope) =
            (self.for_widener, self.widen, self.racers, self.scope);
        let thread = std::thread::Builder::new()
            .name("widener".into())
            .spawn_scoped(s, move || {
                widen::serve(theirs, stop_r, widen, racers, &scope)
            })
            .context("starting the widener")?;
        Ok((
            thread,
            Held {
                filter: self.filter,
                for_racers: self.for_racers,
                _stop: stop_w,
            },
        ))
    }
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

/// The racers' process groups, for the clock to kill.
struct Slots {
    pids: Vec<Option<i32>>,
    killed: Vec<bool>,
    /// The round's time is up: a racer that registers now is killed at once.
    expired: bool,
}

impl Slots {
    fn expire(&mut self) {
        self.expired = true;
        for (pid, killed) in self.pids.iter().zip(&mut self.killed) {
            if let Some(p) = pid {
                let _ = killpg(Pid::from_raw(*p), Signal::SIGKILL);
                *killed = true;
            }
        }
    }

    fn register(&mut self, i: usize, pid: i32) {
        self.pids[i] = Some(pid);
        if self.expired {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            self.killed[i] = true;
        }
    }
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(|e| e.into_inner())
}

/// The round's gate: a pipe each held child reads from, and a pipe the children
/// tell the round on, in fixed-size records: waiting at the gate, released at an
/// instant.
///
/// The gate opens by closing its last write end: the end of a pipe wakes every
/// reader at once, where data wakes one, which wakes the next as it reads (a chain
/// that spread eight racers' starts over 7 ms on a loaded 2-core machine). Each
/// child closes the copy of the write end it inherited before it waits; this
/// process closes its own once every child waits. A byte read instead of the end
/// tells a child to give up (its spawn fails).
struct Gate {
    gate_r: OwnedFd,
    gate_w: Option<OwnedFd>,
    news_r: Option<OwnedFd>,
    news_w: OwnedFd,
}

const GIVE_UP: u8 = b'x';
const WAITING: u32 = 1;
const RELEASED: u32 = 2;
const RECORD: usize = 16;

impl Gate {
    fn new() -> anyhow::Result<Gate> {
        // Close-on-exec: a child's copies go at its execve, and no other child of
        // this process inherits them past its own.
        let (gate_r, gate_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("making the gate")?;
        let (news_r, news_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("making the gate")?;
        Ok(Gate {
            gate_r,
            gate_w: Some(gate_w),
            news_r: Some(news_r),
            news_w,
        })
    }

    /// A thread that reads the children's records until every copy of the news
    /// pipe's write end is closed, and passes them on.
    fn news_reader<'scope>(
        &mut self,
        s: &'scope std::thread::Scope<'scope, '_>,
        tx: mpsc::Sender<Event>,
    ) -> anyhow::Result<std::thread::ScopedJoinHandle<'scope, ()>> {
        let mut news = File::from(self.news_r.take().expect("read once"));
        std::thread::Builder::new()
            .name("gate-news".into())
            .spawn_scoped(s, move || {
                let mut rec = [0u8; RECORD];
                while news.read_exact(&mut rec).is_ok() {
                    let kind = u32::from_ne_bytes(rec[0..4].try_into().expect("4 bytes"));
                    let racer = u32::from_ne_bytes(rec[4..8].try_into().expect("4 bytes"));
                    let ns = u64::from_ne_bytes(rec[8..16].try_into().expect("8 bytes"));
                    let event = match kind {
                        WAITING => Event::Waiting,
                        _ => Event::Released(racer as usize, ns),
                    };
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            })
            .context("starting the gate's reader")
    }

    /// Lets every held child through at once. Only once every child waits: each
    /// has closed its copy of the write end by then.
    fn release(&mut self) {
        self.gate_w = None;
    }

    /// Makes `n` children give up, those held and those yet to come.
    fn give_up(&self, n: usize) {
        let Some(w) = &self.gate_w else { return };
        let bytes = vec![GIVE_UP; n];
        let mut left = &bytes[..];
        while !left.is_empty() {
            match nix::unistd::write(w, left) {
                Ok(n) => left = &left[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }
}

/// One racer's thread: spawns its program held at the gate (spawn returns once it
/// has exec'd, after the release), then reads its output and reaps it.
fn spawn_and_watch(
    i: usize,
    program: &Program,
    (gate_r, gate_w, news_w): (RawFd, RawFd, RawFd),
    widen: Option<(Arc<Filter>, RawFd)>,
    slots: &Mutex<Slots>,
) -> io::Result<Exited> {
    let Some((exe, args)) = program.argv.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty command",
        ));
    };
    let racer = i as u32;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .current_dir(&program.dir)
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    // SAFETY: the hook runs in the child between fork and exec; it makes only the
    // close, read, write, clock_gettime, prctl, seccomp and sendmsg system calls,
    // which are async-signal-safe, on descriptors the child inherited (the gate's
    // write end is still open in this process while any racer forks) and memory
    // made before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            close_copy(gate_w);
            if let Some((filter, sock)) = &widen {
                filter.install(*sock)?;
            }
            hold_at_gate(gate_r, news_w, racer)
        });
    }
    let child = cmd.spawn()?;
    watch(i, child, slots)
}

/// In the child, after fork: closes its own copy of a descriptor it inherited.
fn close_copy(fd: RawFd) {
    // SAFETY: the descriptor is the child's own copy, closed once.
    unsafe { libc::close(fd) };
}

/// In the child, after fork (its copy of the gate's write end closed, its widening
/// filter installed): tell the round it waits, wait for the gate's end, and note the
/// instant it came, right before std's execve.
fn hold_at_gate(gate: RawFd, news: RawFd, racer: u32) -> io::Result<()> {
    write_record(news, WAITING, racer, 0)?;
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a local.
        match unsafe { libc::read(gate, (&raw mut byte).cast(), 1) } {
            0 => break,
            1 => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
            _ => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the time into a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let ns = (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64);
    write_record(news, RELEASED, racer, ns)
}

/// One record on the news pipe, in one write: below PIPE_BUF, it never interleaves
/// with another child's.
fn write_record(fd: RawFd, kind: u32, racer: u32, ns: u64) -> io::Result<()> {
    let mut rec = [0u8; RECORD];
    rec[0..4].copy_from_slice(&kind.to_ne_bytes());
    rec[4..8].copy_from_slice(&racer.to_ne_bytes());
    rec[8..16].copy_from_slice(&ns.to_ne_bytes());
    loop {
        // SAFETY: writes RECORD bytes from a local array.
        let n = unsafe { libc::write(fd, rec.as_ptr().cast(), RECORD) };
        if n == RECORD as isize {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if n >= 0 || e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// How long a read of output waits before looking whether the racer itself has
/// ended (a child it left behind may hold the pipes open).
const TICK: u16 = 100;

/// Reads what a racer prints, bounded, until it ends; kills what it left running in
/// its group; reaps it.
fn watch(i: usize, mut child: Child, slots: &Mutex<Slots>) -> io::Result<Exited> {
    let pid = child.id() as i32;
    let _guard = ChildGuard::group(child.id());
    lock(slots).register(i, pid);
    let mut streams = [
        Stream::new(child.stdout.take().map(OwnedFd::from)),
        Stream::new(child.stderr.take().map(OwnedFd::from)),
    ];
    while streams.iter().any(|s| s.fd.is_some()) {
        if read_some(&mut streams, PollTimeout::from(TICK))? == 0 && ended(pid) {
            break;
        }
    }
    // Wait for it to end without reaping it: its pid, the group's id, stays ours
    // until the leftovers are killed.
    while let Err(nix::errno::Errno::EINTR) = waitid(
        Id::Pid(Pid::from_raw(pid)),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
    ) {}
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    // What the leftovers wrote before they died; one that left the group may hold a
    // pipe open, so this is bounded.
    let drain_until = Instant::now() + Duration::from_secs(1);
    while streams.iter().any(|s| s.fd.is_some()) && Instant::now() < drain_until {
        read_some(&mut streams, PollTimeout::from(TICK))?;
    }
    let killed = {
        let mut s = lock(slots);
        s.pids[i] = None;
        s.killed[i]
    };
    let status = child.wait()?;
    let [stdout, stderr] = streams.map(|s| s.kept);
    Ok(Exited {
        started_ns: 0,
        code: status.code(),
        signal: status.signal(),
        timed_out: killed,
        error: None,
        stdout,
        stderr,
    })
}

/// Whether the racer has ended (left as a zombie, not reaped).
fn ended(pid: i32) -> bool {
    !matches!(
        waitid(
            Id::Pid(Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG
        ),
        Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR)
    )
}

/// One output stream of a racer, read until its end, the start kept.
struct Stream {
    fd: Option<OwnedFd>,
    kept: Kept,
    head: Vec<u8>,
}

impl Stream {
    fn new(fd: Option<OwnedFd>) -> Stream {
        Stream {
            fd,
            kept: Kept::default(),
            head: Vec::new(),
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        self.kept.bytes += bytes.len() as u64;
        let room = OUTPUT_KEPT.saturating_sub(self.head.len());
        if room > 0 {
            self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
            self.kept.head = String::from_utf8_lossy(&self.head).into_owned();
        }
    }
}

/// Waits up to `timeout` for output on the open streams and reads what came; a
/// stream at its end is closed. Returns how many streams were ready (0: none, in
/// time, or none left open).
fn read_some(streams: &mut [Stream; 2], timeout: PollTimeout) -> io::Result<usize> {
    let open: Vec<usize> = (0..2).filter(|&k| streams[k].fd.is_some()).collect();
    if open.is_empty() {
        return Ok(0);
    }
    let mut fds: Vec<PollFd> = open
        .iter()
        .map(|&k| {
            PollFd::new(
                streams[k].fd.as_ref().expect("open").as_fd(),
                PollFlags::POLLIN,
            )
        })
        .collect();
    let ready = match poll(&mut fds, timeout) {
        Ok(n) => n as usize,
        Err(nix::errno::Errno::EINTR) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let revents: Vec<bool> = fds
        .iter()
        .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
        .collect();
    drop(fds);
    let mut buf = [0u8; 8192];
    for (&k, ready) in open.iter().zip(revents) {
        if !ready {
            continue;
        }
        let fd = streams[k].fd.as_ref().expect("open");
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => streams[k].fd = None,
            Ok(n) => streams[k].take(&buf[..n]),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ready)
}

/// An error's system message alone ("No such file or directory"), as a shell says it.
fn errno_words(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, dir: &std::path::Path) -> Program {
        Program {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            dir: dir.to_path_buf(),
            env: vec![("RACEFREE_TEST".into(), "yes".into())],
        }
    }

    #[test]
    fn racers_are_released_together_and_each_status_and_output_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let programs: Vec<Program> = (0..4)
            .map(|i| {
                sh(
                    &format!("echo out$RACEFREE_TEST; echo err >&2; exit {i}"),
                    t.path(),
                )
            })
            .collect();
        let done = race(&programs, Duration::from_secs(30), None, None).unwrap();
        for (i, e) in done.iter().enumerate() {
            assert_eq!(e.code, Some(i as i32), "{e:?}");
            assert!(e.exited_with(i as i32));
            assert_eq!(e.stdout.head, "outyes\n");
            assert_eq!(e.stderr.head, "err\n");
            assert!(e.started_ns > 0);
        }
        assert!(gate::spread_ns(done.iter().map(|e| e.started_ns)) < 5_000_000_000);
    }

    #[test]
    fn output_is_kept_up_to_its_bound_and_counted_past_it() {
        let t = tempfile::tempdir().unwrap();
        let e = run(
            &sh("head -c 100000 /dev/zero | tr '\\0' a", t.path()),
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(e.stdout.bytes, 100_000);
        assert_eq!(e.stdout.head.len(), OUTPUT_KEPT);
    }

    #[test]
    fn a_hung_racer_and_what_it_started_are_killed_when_the_time_is_up() {
        let t = tempfile::tempdir().unwrap();
        let begin = Instant::now();
        let done = race(
            &[
                sh("sleep 300 & sleep 300; echo never", t.path()),
                sh("exit 0", t.path()),
            ],
            Duration::from_millis(300),
            None,
            None,
        )
        .unwrap();
        assert!(begin.elapsed() < Duration::from_secs(60));
        assert!(done[0].timed_out, "{:?}", done[0]);
        assert_eq!(done[0].signal, Some(libc::SIGKILL));
        assert!(done[0].how(Duration::from_millis(300)).starts_with("hung"));
        assert!(done[1].exited_with(0), "{:?}", done[1]);
    }

    #[test]
    fn a_child_left_behind_holding_the_output_does_not_hold_the_round() {
        let t = tempfile::tempdir().unwrap();
        let begin = Instant::now();
        let e = run(
            &sh("sleep 300 & echo started", t.path()),
            Duration::from_secs(120),
        )
        .unwrap();
        assert!(
            begin.elapsed() < Duration::from_secs(60),
            "{:?}",
            begin.elapsed()
        );
        assert!(e.exited_with(0), "{e:?}");
        assert_eq!(e.stdout.head, "started\n");
    }

    #[test]
    fn what_a_program_said_is_shown_briefly_and_cannot_reach_the_terminal() {
        let e = Exited {
            stderr: Kept {
                head: "\n  \nbad\x1b[31m red\nsecond\n".into(),
                bytes: 0,
            },
            ..Exited::default()
        };
        assert_eq!(e.said(1), vec!["bad\\u{1b}[31m red", "second"]);
        let e = Exited {
            stdout: Kept {
                head: "only out\n".into(),
                bytes: 9,
            },
            ..Exited::default()
        };
        assert_eq!(e.said(3), vec!["only out"]);
        let e = Exited {
            stderr: Kept {
                head: "Traceback\n a\n b\n c\nFileExistsError: 'out/a'\n".into(),
                bytes: 0,
            },
            ..Exited::default()
        };
        assert_eq!(
            e.said(2),
            vec!["Traceback", " a", "...", "FileExistsError: 'out/a'"]
        );
        assert_eq!(gist(&e.said(2)), ": FileExistsError: 'out/a'");
    }

    #[test]
    fn a_command_is_found_on_path_or_by_its_path() {
        assert!(findable("sh"));
        assert!(findable("/bin/sh"));
        assert!(!findable("racefree-no-such-command"));
        assert!(!findable("/nonexistent/sh"));
    }

    #[test]
    fn a_program_that_cannot_be_run_says_why() {
        let t = tempfile::tempdir().unwrap();
        let p = Program {
            argv: vec!["/nonexistent/racefree-no-such-program".into()],
            dir: t.path().to_path_buf(),
            env: Vec::new(),
        };
        let e = run(&p, Duration::from_secs(30)).unwrap();
        assert_eq!(e.error.as_deref(), Some("No such file or directory"));
        assert!(!e.exited_with(0));
        // A directory that is not there fails before the gate: an error of the round.
        let p = Program {
            dir: t.path().join("missing"),
            ..sh("true", t.path())
        };
        assert!(run(&p, Duration::from_secs(30)).is_err());
    }
}
