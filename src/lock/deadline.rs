//! Waiting for a flock with a deadline, blocked in the kernel.
//!
//! flock(1) arms alarm(2) and blocks in flock(2), so SIGALRM interrupts the wait
//! at the deadline. alarm is process-wide, which a library that many threads call
//! cannot use. This does the same per thread: a POSIX timer that signals this
//! thread alone (SIGEV_THREAD_ID), with a signal whose handler does nothing and is
//! installed without SA_RESTART, so a blocked flock returns EINTR at the deadline.
//!
//! Blocking in the kernel, rather than polling with LOCK_NB, means a release wakes
//! the waiter at once, and the waiter queues with every other blocked waiter (a
//! poller can be passed over again and again by waiters the kernel wakes first).
//!
//! The signal is SIGRTMAX. If the application already handles it, or the timer
//! cannot be made, [`flock_until`] returns `None` and the caller polls instead.
//!
//! The timer and the signal mask are libc's calls, not nix's: nix's `Timer`,
//! `SigEvent` and `SigSet` take its `Signal`, which has no real-time signals.

use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::SaFlags;
use nix::unistd::gettid;

use crate::signals::{self, Replace};

/// After the deadline the timer keeps firing at this interval, so a signal that
/// landed just before flock(2) was entered cannot leave the wait unbounded.
const REPEAT: Duration = Duration::from_millis(10);

extern "C" fn wake(_: libc::c_int) {}

/// The signal the timers use, with our handler installed; `None` if it is taken.
fn signal() -> Option<libc::c_int> {
    static SIGNAL: OnceLock<Option<libc::c_int>> = OnceLock::new();
    *SIGNAL.get_or_init(|| {
        let sig = libc::SIGRTMAX();
        // No SA_RESTART: the point is to interrupt flock. An application that
        // handles or ignores SIGRTMAX keeps it so, and we poll instead.
        // SAFETY: the handler is an extern "C" fn that touches nothing.
        let installed =
            unsafe { signals::install(sig, wake, SaFlags::empty(), Replace::OnlyDefault) };
        matches!(installed, Ok(Some(_))).then_some(sig)
    })
}

/// A POSIX timer aimed at the calling thread; deleted when dropped.
struct ThreadTimer(libc::timer_t);

impl ThreadTimer {
    fn new(sig: libc::c_int) -> Option<ThreadTimer> {
        // SAFETY: a zeroed sigevent with the fields SIGEV_THREAD_ID reads set;
        // timer_create writes the id on success.
        unsafe {
            let mut ev: libc::sigevent = std::mem::zeroed();
            ev.sigev_notify = libc::SIGEV_THREAD_ID;
            ev.sigev_signo = sig;
            ev.sigev_notify_thread_id = gettid().as_raw();
            let mut id: libc::timer_t = std::mem::zeroed();
            (libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut id) == 0)
                .then_some(ThreadTimer(id))
        }
    }

    fn arm(&self, first: Duration) -> bool {
        let ts = |d: Duration| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
        };
        let spec = libc::itimerspec {
            // A zero it_value would disarm the timer: fire at once instead.
            it_value: ts(first.max(Duration::from_nanos(1))),
            it_interval: ts(REPEAT),
        };
        // SAFETY: a timer we created and have not deleted; a valid itimerspec.
        unsafe { libc::timer_settime(self.0, 0, &spec, std::ptr::null_mut()) == 0 }
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // A signal already sent to this thread is delivered as this call returns,
        // to the handler that does nothing: none is left to interrupt later code.
        // SAFETY: deleting the timer we created, once.
        unsafe { libc::timer_delete(self.0) };
    }
}

/// The signal unblocked in this thread for as long as this lives, if it was blocked.
struct Unblocked {
    set: libc::sigset_t,
    was_blocked: bool,
}

impl Unblocked {
    fn new(sig: libc::c_int) -> Unblocked {
        // SAFETY: sigset_t operations on local sets; pthread_sigmask on this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, &mut old);
            Unblocked {
                set,
                was_blocked: libc::sigismember(&old, sig) == 1,
            }
        }
    }
}

impl Drop for Unblocked {
    fn drop(&mut self) {
        if self.was_blocked {
            // SAFETY: restoring this thread's mask for the one signal.
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.set, std::ptr::null_mut()) };
        }
    }
}

/// flock(2) `op` on `fd`, waiting until `deadline` at most: `Some(Err(EWOULDBLOCK))`
/// when it passes, `None` when this thread cannot be given a timer (the caller polls).
pub fn flock_until(fd: RawFd, op: libc::c_int, deadline: Instant) -> Option<Result<(), Errno>> {
    let sig = signal()?;
    let limit = deadline.saturating_duration_since(Instant::now());
    let timer = ThreadTimer::new(sig)?;
    let _unblocked = Unblocked::new(sig);
    if !timer.arm(limit) {
        return None;
    }
    loop {
        let nonblock = if Instant::now() >= deadline {
            libc::LOCK_NB
        } else {
            0
        };
        // libc's flock, for the reason lock/mod.rs's flock gives.
        // SAFETY: plain syscall on a descriptor the caller owns.
        if unsafe { libc::flock(fd, op | nonblock) } == 0 {
            return Some(Ok(()));
        }
        match Errno::last() {
            // Our timer, or any other signal: the deadline decides which.
            Errno::EINTR => {}
            e => return Some(Err(e)),
        }
    }
}
