//! Signals sent to racefree while COMMAND runs: passed on to COMMAND, or left to it,
//! never the death of racefree alone. If racefree died of one, a lock it holds for
//! COMMAND (with -o, or a link lock) would be released while COMMAND still runs.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, Signal, kill};
use nix::unistd::Pid;

use crate::signals::{self, Replace};

/// Signals that, sent to racefree while COMMAND runs, go on to COMMAND, as
/// timeout(1) passes them on: racefree then waits for COMMAND and reports its status.
pub const PASSED_ON: [libc::c_int; 5] = [
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
];
/// Signals racefree does not act on while COMMAND runs, as system(3) ignores them:
/// the terminal delivers them to COMMAND as well, which decides.
pub const LEFT_TO_COMMAND: [libc::c_int; 2] = [libc::SIGINT, libc::SIGQUIT];

/// COMMAND's pid once it is known; 0 before.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal to pass on that arrived before COMMAND's pid was known.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_pass_on(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        pass_on(pid, sig);
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

extern "C" fn on_left(_sig: libc::c_int) {}

/// Sends `sig` to COMMAND. Async-signal-safe: the handler calls it.
fn pass_on(pid: i32, sig: libc::c_int) {
    if let Ok(sig) = Signal::try_from(sig) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Installs racefree's handlers, before COMMAND is let run. A handler, not SIG_IGN,
/// even for the signals left to COMMAND: exec resets a caught signal to its default
/// in COMMAND, but an ignored one would stay ignored there. A signal we were
/// started with ignored stays ignored, and so it is in COMMAND.
pub fn catch() {
    let handlers = PASSED_ON
        .iter()
        .map(|&sig| (sig, on_pass_on as extern "C" fn(libc::c_int)))
        .chain(
            LEFT_TO_COMMAND
                .iter()
                .map(|&sig| (sig, on_left as extern "C" fn(libc::c_int))),
        );
    for (sig, handler) in handlers {
        // SAFETY: the handlers only call kill(2) and touch atomics, which is
        // async-signal-safe.
        let _ =
            unsafe { signals::install(sig, handler, SaFlags::SA_RESTART, Replace::UnlessIgnored) };
    }
}

/// The signals of [`PASSED_ON`] go to COMMAND from now on, and one that arrived
/// while COMMAND was being started goes to it now. racefree lock is single-threaded
/// here, so the handler runs either wholly before the store below (and leaves
/// PENDING for the swap) or wholly after it (and signals COMMAND itself).
pub fn to(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    let sig = PENDING.swap(0, Ordering::SeqCst);
    if sig != 0 {
        pass_on(pid, sig);
    }
}
