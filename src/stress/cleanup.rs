//! Ctrl-C and SIGTERM during a run: stop, kill the racer processes, remove what the
//! run made in `$TMPDIR` (or `--dir`), then die by the same signal.
//!
//! SIGINT and SIGTERM are blocked in every thread of a run (threads inherit the mask
//! of the thread that made them, so the mask is set before any is started) and one
//! thread waits for them with `sigwait`. On a signal it records which, and kills
//! every racer process still registered; the run notices [`stopping`] at its next
//! step, returns, and its guards remove the work directory as on any early return.
//! Only then is the signal raised again, with its default action, so the caller
//! sees the run die by it (exit status 128+N in a shell). Child processes start with
//! an empty mask (std's spawn resets it), so racer processes die of the signal as
//! usual.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::unistd::Pid;

/// The signal caught, or 0.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

/// Racer and server processes alive right now (a negative id: a process group),
/// killed when a signal arrives.
static CHILDREN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread it starts from
/// now on) and starts the thread that waits for them. Call once, from the main
/// thread, before any other thread of the run exists.
pub fn install() -> anyhow::Result<()> {
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals()), None)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(|| {
            loop {
                let Ok(sig) = signals().wait() else { continue };
                CAUGHT.store(sig as i32, Ordering::SeqCst);
                for &pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        })?;
    Ok(())
}

/// Whether a signal asked the run to stop.
pub fn stopping() -> bool {
    CAUGHT.load(Ordering::SeqCst) != 0
}

/// An error for a step that stopped because a signal asked it to.
pub fn interrupted() -> anyhow::Error {
    anyhow::anyhow!("interrupted by a signal")
}

/// If a signal was caught, dies by it now (after the run's guards have cleaned up).
pub fn die_if_caught() {
    let sig = CAUGHT.load(Ordering::SeqCst);
    let Ok(signal) = Signal::try_from(sig) else {
        return;
    };
    let _ = crate::signals::reset_to_default(sig);
    let mut one = SigSet::empty();
    one.add(signal);
    let _ = nix::sys::signal::raise(signal);
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&one), None);
    // Not reached: the signal's default action ends the process once unblocked.
    std::process::exit(128 + sig);
}

/// Registers a child to be killed on a signal; unregistered when dropped.
pub struct ChildGuard(i32);

impl ChildGuard {
    pub fn new(pid: u32) -> ChildGuard {
        ChildGuard::register(pid as i32)
    }

    /// Registers a child that leads a process group of its own (stress exec's
    /// racers): a signal kills the whole group, what the child started included.
    pub fn group(pid: u32) -> ChildGuard {
        ChildGuard::register(-(pid as i32))
    }

    /// `pid` as kill(2) takes it: negative for a process group.
    fn register(pid: i32) -> ChildGuard {
        CHILDREN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);
        // A signal that arrived while the child was being started.
        if stopping() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        ChildGuard(pid)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        CHILDREN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}
