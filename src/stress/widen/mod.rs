//! Widening race windows, for racers that are programs of their own (stress exec's
//! `--widen`): each racer's system calls that change the filesystem (mkdir, an open
//! for writing, rename, link, unlink, ...) are held back before they run. A
//! check-then-act race has its window between the check and the change the check
//! decided; with the change held back, the other racers' checks land in it. Two
//! ways ([`Widen`]): hold every racer's first change until all racers have reached
//! theirs, then let them go together (every check comes before any change), or
//! delay every change a while.
//!
//! Delaying a call only chooses one of the schedules the kernel could have chosen
//! itself (a process may be descheduled for longer at any instant), so a failure
//! seen under it is a real race, and a command that holds under it holds without.
//!
//! The mechanism is seccomp's user notification: before its execve each racer
//! installs a filter that reports those calls to a listener, and hands the listener
//! to this process over a socket; a thread here answers each report after the
//! delay, letting the call run as it was made (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`,
//! Linux 5.5). Nothing is changed or refused. A racer's delays add up to at most a
//! budget per round, past which its calls run at once.

mod filter;
mod scope;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, socketpair,
};
use serde::{Deserialize, Serialize};

pub use self::filter::Filter;
use self::scope::in_scope;

/// Injected delay one racer may accumulate in a round; past it, its calls run at once.
pub const BUDGET: Duration = Duration::from_millis(250);

/// The socket racers send their listeners on: the children's end, and the end the
/// answering thread reads.
pub fn channel() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// How a round widens its racers' windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Widen {
    /// Each racer's first change is held until every racer has reached one (or
    /// ended), at most `cap`, and then all go together: every racer's checks come
    /// before any racer's change. Its later changes run at once.
    Align { cap: Duration },
    /// Every change waits this long (within [`BUDGET`] per racer).
    Delay(Duration),
}

/// The longest the first changes are held for the racers still to come.
pub const ALIGN_CAP: Duration = Duration::from_secs(2);

impl Widen {
    /// How round `n` widens, with at most `max_ms` of delay per call and racers
    /// that may run `timeout`: rounds take turns, the first changes aligned, every
    /// change delayed `max_ms`, and none held (the kernel's own schedule). `None`
    /// for that last turn, or when `max_ms` is 0.
    pub fn in_turn(n: u64, max_ms: u32, timeout: Duration) -> Option<Widen> {
        match (max_ms, n % 3) {
            (0, _) | (_, 2) => None,
            (_, 0) => Some(Widen::Align {
                cap: ALIGN_CAP.min(timeout / 2),
            }),
            _ => Some(Widen::Delay(Duration::from_millis(max_ms.into()))),
        }
    }
}

/// One racer's listener, and what it has been given this round.
struct Listener {
    fd: OwnedFd,
    spent: Duration,
    /// Its first change is held, or was let go with the others.
    arrived: bool,
    /// Every process that held its filter has ended.
    gone: bool,
}

/// The answering thread's state.
struct Answers {
    widen: Widen,
    racers: usize,
    /// The directory whose changes are held, as given and resolved.
    scope: Vec<PathBuf>,
    listeners: Vec<Listener>,
    /// Delayed answers, soonest first: (due, report id, listener).
    pending: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    /// First changes held at the barrier, and since when the first was.
    held: Vec<(usize, u64)>,
    since: Option<Instant>,
    open: bool,
}

impl Answers {
    fn report(&mut self, l: usize, notif: &libc::seccomp_notif) {
        let (now, id) = (Instant::now(), notif.id);
        if !in_scope(notif, &self.scope) {
            answer(&self.listeners[l].fd, id);
            return;
        }
        match self.widen {
            Widen::Align { .. } if !self.open && !self.listeners[l].arrived => {
                self.listeners[l].arrived = true;
                self.held.push((l, id));
                self.since.get_or_insert(now);
            }
            Widen::Align { .. } => answer(&self.listeners[l].fd, id),
            Widen::Delay(d) if self.listeners[l].spent + d <= BUDGET => {
                self.listeners[l].spent += d;
                self.pending.push(Reverse((now + d, id, l)));
            }
            Widen::Delay(_) => answer(&self.listeners[l].fd, id),
        }
    }

    /// Answers what is due: delayed answers, and the barrier's once every racer is
    /// there (or gone) or the cap is up.
    fn answer_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((due, id, l))) = self.pending.peek().copied()
            && due <= now
        {
            self.pending.pop();
            answer(&self.listeners[l].fd, id);
        }
        if let Widen::Align { cap } = self.widen
            && !self.open
        {
            let all = self.listeners.len() == self.racers
                && self.listeners.iter().all(|l| l.arrived || l.gone);
            if all || self.since.is_some_and(|t| now >= t + cap) {
                self.open = true;
                for (l, id) in std::mem::take(&mut self.held) {
                    answer(&self.listeners[l].fd, id);
                }
            }
        }
    }

    /// How long until something is due.
    fn timeout(&self) -> PollTimeout {
        let now = Instant::now();
        let barrier = match self.widen {
            Widen::Align { cap } if !self.open => self.since.map(|t| t + cap),
            _ => None,
        };
        let due = self.pending.peek().map(|Reverse((d, ..))| *d);
        match due.into_iter().chain(barrier).min() {
            Some(d) => {
                let ms = d.saturating_duration_since(now).as_micros().div_ceil(1000);
                PollTimeout::try_from(ms as u64).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        }
    }

    /// At the end of the round: whatever is still held goes now.
    fn answer_all(self) {
        for Reverse((_, id, l)) in self.pending {
            answer(&self.listeners[l].fd, id);
        }
        for (l, id) in self.held {
            answer(&self.listeners[l].fd, id);
        }
    }
}

/// The answering thread of a round of `racers` racers: takes their listeners from
/// `sock`, and answers each report of a change below `scope` as `widen` says (the
/// rest at once), until `stop` is readable or closed; then answers what is left.
pub fn serve(sock: OwnedFd, stop: OwnedFd, widen: Widen, racers: usize, scope: &Path) {
    let mut dirs = vec![scope.to_path_buf()];
    dirs.extend(std::fs::canonicalize(scope).ok().filter(|c| c != scope));
    let mut a = Answers {
        widen,
        racers,
        scope: dirs,
        listeners: Vec::new(),
        pending: BinaryHeap::new(),
        held: Vec::new(),
        since: None,
        open: false,
    };
    let mut sock = Some(sock);
    loop {
        a.answer_due();
        // Listeners whose racers have all ended report POLLHUP for good: they stay
        // (their slots number the pending answers) but leave the poll set.
        let live: Vec<usize> = (0..a.listeners.len())
            .filter(|&l| !a.listeners[l].gone)
            .collect();
        let mut fds = vec![PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        if let Some(s) = &sock {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        fds.extend(
            live.iter()
                .map(|&l| PollFd::new(a.listeners[l].fd.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, a.timeout()) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
        let ready: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !ready[0].is_empty() {
            break;
        }
        let mut at = 1;
        if let Some(s) = &sock {
            match ready[1] {
                r if r.contains(PollFlags::POLLIN) => match receive_fd(s) {
                    Some(fd) => a.listeners.push(Listener {
                        fd,
                        spent: Duration::ZERO,
                        arrived: false,
                        gone: false,
                    }),
                    None => sock = None,
                },
                r if !r.is_empty() => sock = None,
                _ => {}
            }
            at = 2;
        }
        for (&l, r) in live.iter().zip(&ready[at..]) {
            if r.contains(PollFlags::POLLIN) {
                if let Some(notif) = receive_report(&a.listeners[l].fd) {
                    a.report(l, &notif);
                }
            } else if !r.is_empty() {
                a.listeners[l].gone = true;
            }
        }
    }
    a.answer_all();
}

/// Reads one listener's fd from the socket; `None` at its end.
fn receive_fd(sock: &OwnedFd) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    if msg.bytes == 0 {
        return None;
    }
    msg.cmsgs().ok()?.find_map(|c| match c {
        // SAFETY: the kernel installed this descriptor for us with the message.
        ControlMessageOwned::ScmRights(fds) => {
            fds.first().map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        }
        _ => None,
    })
}

/// Takes one report from a listener; `None` if there was none to take (the racer
/// that made it died meanwhile).
fn receive_report(listener: &OwnedFd) -> Option<libc::seccomp_notif> {
    // SAFETY: the kernel requires a zeroed seccomp_notif, which it fills.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV writes one seccomp_notif into `notif`.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &raw mut notif,
        )
    };
    (r == 0).then_some(notif)
}

/// Lets the reported call run as it was made. A racer that died meanwhile makes
/// this fail, which is nothing to answer for.
fn answer(listener: &OwnedFd, id: u64) {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads one seccomp_notif_resp.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &raw const resp,
        )
    };
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::stress::program::{Program, race};

    fn sh(script: &str, dir: &Path) -> Program {
        Program {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            dir: dir.to_path_buf(),
            env: Vec::new(),
        }
    }

    /// Widening needs Linux 5.5 and a seccomp policy that lets a process install a
    /// filter with a listener; a host without them runs stress exec unwidened (its
    /// report says so), but cannot run these tests.
    #[track_caller]
    fn require_widening() {
        if let Err(why) = Filter::new().available() {
            panic!("this host refuses seccomp's user notification: {why}");
        }
    }

    #[test]
    fn rounds_take_turns_aligned_delayed_and_left_alone() {
        let t = Duration::from_secs(10);
        let cap = ALIGN_CAP;
        assert_eq!(Widen::in_turn(0, 16, t), Some(Widen::Align { cap }));
        assert_eq!(
            Widen::in_turn(4, 16, t),
            Some(Widen::Delay(Duration::from_millis(16)))
        );
        assert_eq!(Widen::in_turn(5, 16, t), None);
        assert_eq!(Widen::in_turn(0, 0, t), None);
        assert_eq!(
            Widen::in_turn(3, 16, Duration::from_secs(1)),
            Some(Widen::Align {
                cap: Duration::from_millis(500)
            })
        );
    }

    #[test]
    fn aligned_every_racers_check_comes_before_any_racers_change() {
        require_widening();
        let d = tempfile::tempdir().unwrap();
        // Each racer counts the files there (its check), then makes one (its first
        // change), then writes down what it counted.
        let p = sh(
            "n=$(ls | wc -l); : > \"f.$$\"; echo $n > \"n.$$\"",
            d.path(),
        );
        let done = race(
            &vec![p; 4],
            Duration::from_secs(60),
            None,
            Some(Widen::Align {
                cap: Duration::from_secs(30),
            }),
        )
        .unwrap();
        assert!(done.iter().all(|e| e.exited_with(0)), "{done:?}");
        for e in std::fs::read_dir(d.path()).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with("n.") {
                assert_eq!(std::fs::read_to_string(e.path()).unwrap().trim(), "0");
            }
        }
    }

    #[test]
    fn delayed_each_change_below_the_round_waits_and_nothing_else_does() {
        require_widening();
        let d = tempfile::tempdir().unwrap();
        // Three changes of 50 ms each: within the budget.
        let delay = Widen::Delay(Duration::from_millis(50));
        let timed = |script: &str| {
            let begin = Instant::now();
            let done = race(
                &[sh(script, d.path())],
                Duration::from_secs(60),
                None,
                Some(delay),
            )
            .unwrap();
            assert!(done[0].exited_with(0), "{done:?}");
            begin.elapsed()
        };
        let inside = timed("mkdir a && mkdir b && : > c");
        assert!(inside >= Duration::from_millis(150), "{inside:?}");
        let outside = timed("for i in 1 2 3 4 5 6 7 8 9 10; do : > /dev/null; done");
        assert!(outside < inside, "{outside:?} vs {inside:?}");
        assert!(d.path().join("a").is_dir() && d.path().join("c").is_file());
    }
}
