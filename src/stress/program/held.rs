//! A round's gate, from both sides: the pipes the held racers wait at and report
//! on, the step each child takes between fork and exec, and the widening each
//! installs there.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context;
use nix::fcntl::OFlag;

use super::watch::{Slots, watch};
use super::{Event, Exited, Program};
use crate::child::die_with_parent;
use crate::stress::widen::{self, Filter, Widen};

/// A round's widening ([`widen`]): the filter each racer installs, the socket
/// they hand their listeners over, and the pipe whose closing ends the thread
/// that answers them.
pub(super) struct Widening {
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
pub(super) struct Held {
    filter: Arc<Filter>,
    for_racers: OwnedFd,
    _stop: OwnedFd,
}

impl Held {
    /// What a racer's child needs of the widening: the filter, and the socket's
    /// end to send its listener on.
    pub(super) fn for_child(&self) -> (Arc<Filter>, RawFd) {
        (self.filter.clone(), self.for_racers.as_raw_fd())
    }
}

impl Widening {
    pub(super) fn new(widen: Widen, racers: usize, scope: PathBuf) -> anyhow::Result<Widening> {
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

    pub(super) fn start<'scope>(
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
pub(super) struct Gate {
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
    pub(super) fn new() -> anyhow::Result<Gate> {
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
    pub(super) fn news_reader<'scope>(
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
    /// The descriptors a child uses by number: the gate's read and write ends,
    /// and the news pipe's write end.
    pub(super) fn fds(&self) -> (RawFd, RawFd, RawFd) {
        (
            self.gate_r.as_raw_fd(),
            self.gate_w.as_ref().expect("open").as_raw_fd(),
            self.news_w.as_raw_fd(),
        )
    }

    pub(super) fn release(&mut self) {
        self.gate_w = None;
    }

    /// Makes `n` children give up, those held and those yet to come.
    pub(super) fn give_up(&self, n: usize) {
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
pub(super) fn spawn_and_watch(
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
