//! A released racer, watched to its end: its output read and kept bounded, what it
//! left behind in its process group killed, its status taken; and the clock that
//! kills the groups of racers still running when the round's time is up.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use super::{Exited, Kept, OUTPUT_KEPT};
use crate::stress::cleanup::ChildGuard;

/// The racers' process groups, for the clock to kill.
pub(super) struct Slots {
    pids: Vec<Option<i32>>,
    killed: Vec<bool>,
    /// The round's time is up: a racer that registers now is killed at once.
    expired: bool,
}

impl Slots {
    pub(super) fn new(racers: usize) -> Slots {
        Slots {
            pids: vec![None; racers],
            killed: vec![false; racers],
            expired: false,
        }
    }

    pub(super) fn expire(&mut self) {
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

pub(super) fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a read of output waits before looking whether the racer itself has
/// ended (a child it left behind may hold the pipes open).
const TICK: u16 = 100;

/// Reads what a racer prints, bounded, until it ends; kills what it left running in
/// its group; reaps it.
pub(super) fn watch(i: usize, mut child: Child, slots: &Mutex<Slots>) -> io::Result<Exited> {
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
