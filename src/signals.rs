//! Installing a signal handler: the one way every command does it.
//!
//! A command first reads the disposition it was given and leaves some alone (see
//! [`Replace`]), so reading and installing are two sigaction(2) calls. nix's
//! `sigaction` cannot make the first (it always installs an action), and its
//! `Signal` has no real-time signals (lock's deadline timer uses SIGRTMAX), so the
//! one system call below is libc's; the actions are built with nix's types.

use std::mem::MaybeUninit;
use std::ptr;

use libc::c_int;
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet};

/// Which dispositions [`install`] may replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Any but SIG_IGN: a signal that was ignored when we were started (nohup, a
    /// background job) stays ignored.
    UnlessIgnored,
    /// Only SIG_DFL: a handler the application installed stays its own.
    OnlyDefault,
}

/// A disposition [`install`] replaced, which [`Previous::restore`] puts back.
pub struct Previous {
    sig: c_int,
    action: libc::sigaction,
}

/// sigaction(2): installs `new` if given, and returns the disposition before.
fn sigaction(sig: c_int, new: Option<&libc::sigaction>) -> nix::Result<libc::sigaction> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    let new = new.map_or(ptr::null(), |n| n as *const libc::sigaction);
    // SAFETY: `new` is null or a complete sigaction (built by nix's SigAction, or one
    // the kernel returned); `old` is valid for writing.
    Errno::result(unsafe { libc::sigaction(sig, new, old.as_mut_ptr()) })?;
    // SAFETY: on success the kernel has filled `old` in.
    Ok(unsafe { old.assume_init() })
}

fn set(sig: c_int, handler: SigHandler, flags: SaFlags) -> nix::Result<libc::sigaction> {
    let action = SigAction::new(handler, flags, SigSet::empty());
    sigaction(sig, Some(&action.into()))
}

/// Installs `handler` for `sig`, with an empty mask and `flags` (SA_RESTART, or
/// none so that a blocking system call the signal interrupts fails with EINTR),
/// unless the disposition it finds is one `replace` leaves alone: then `Ok(None)`.
/// Returns the disposition it replaced.
///
/// # Safety
///
/// `handler` may run between any two instructions of any thread: it may call only
/// async-signal-safe functions and share data only through atomics.
pub unsafe fn install(
    sig: c_int,
    handler: extern "C" fn(c_int),
    flags: SaFlags,
    replace: Replace,
) -> nix::Result<Option<Previous>> {
    let found = sigaction(sig, None)?.sa_sigaction;
    let leave = match replace {
        Replace::UnlessIgnored => found == libc::SIG_IGN,
        Replace::OnlyDefault => found != libc::SIG_DFL,
    };
    if leave {
        return Ok(None);
    }
    let action = set(sig, SigHandler::Handler(handler), flags)?;
    Ok(Some(Previous { sig, action }))
}

impl Previous {
    /// Puts back the disposition [`install`] replaced.
    pub fn restore(self) -> nix::Result<()> {
        sigaction(self.sig, Some(&self.action)).map(drop)
    }
}

/// Gives `sig` its default action again. Async-signal-safe: a handler that has
/// cleaned up calls it, then raises the signal to die of it.
pub fn reset_to_default(sig: c_int) -> nix::Result<()> {
    set(sig, SigHandler::SigDfl, SaFlags::empty()).map(drop)
}

/// Ignores `sig` from now on.
pub fn ignore(sig: c_int) -> nix::Result<()> {
    set(sig, SigHandler::SigIgn, SaFlags::empty()).map(drop)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::*;

    static CAUGHT: AtomicI32 = AtomicI32::new(0);

    extern "C" fn record(sig: c_int) {
        CAUGHT.store(sig, Ordering::SeqCst);
    }

    extern "C" fn other(_: c_int) {}

    // Each test uses its own real-time signal, which nothing else in the test
    // process handles (lock's deadline takes SIGRTMAX).
    fn disposition(sig: c_int) -> libc::sigaction {
        sigaction(sig, None).unwrap()
    }

    #[test]
    fn a_handler_replaces_the_default_and_restore_puts_the_default_back() {
        let sig = libc::SIGRTMIN() + 1;
        assert_eq!(disposition(sig).sa_sigaction, libc::SIG_DFL);
        // SAFETY: record only stores to an atomic.
        let previous = unsafe { install(sig, record, SaFlags::empty(), Replace::OnlyDefault) }
            .unwrap()
            .expect("the default is replaced");
        let now = disposition(sig);
        assert_eq!(now.sa_sigaction, record as extern "C" fn(c_int) as usize);
        assert_eq!(
            now.sa_flags & libc::SA_RESTART,
            0,
            "no SA_RESTART unless asked"
        );
        // SAFETY: raising a signal whose handler only stores to an atomic.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
        assert_eq!(CAUGHT.load(Ordering::SeqCst), sig);
        previous.restore().unwrap();
        assert_eq!(disposition(sig).sa_sigaction, libc::SIG_DFL);
    }

    #[test]
    fn only_default_leaves_a_handler_someone_else_installed() {
        let sig = libc::SIGRTMIN() + 2;
        // SAFETY: `other` does nothing.
        let theirs = unsafe { install(sig, other, SaFlags::SA_RESTART, Replace::OnlyDefault) }
            .unwrap()
            .unwrap();
        let now = disposition(sig);
        assert_ne!(now.sa_flags & libc::SA_RESTART, 0, "SA_RESTART when asked");
        // SAFETY: record only stores to an atomic.
        let ours = unsafe { install(sig, record, SaFlags::empty(), Replace::OnlyDefault) };
        assert!(ours.unwrap().is_none());
        assert_eq!(disposition(sig).sa_sigaction, now.sa_sigaction);
        // UnlessIgnored does replace another handler.
        // SAFETY: record only stores to an atomic.
        let ours = unsafe { install(sig, record, SaFlags::empty(), Replace::UnlessIgnored) };
        ours.unwrap()
            .expect("a handler is not SIG_IGN")
            .restore()
            .unwrap();
        assert_eq!(disposition(sig).sa_sigaction, now.sa_sigaction);
        theirs.restore().unwrap();
    }

    #[test]
    fn unless_ignored_leaves_an_ignored_signal_ignored() {
        let sig = libc::SIGRTMIN() + 3;
        ignore(sig).unwrap();
        // SAFETY: record only stores to an atomic.
        let ours = unsafe { install(sig, record, SaFlags::SA_RESTART, Replace::UnlessIgnored) };
        assert!(ours.unwrap().is_none());
        assert_eq!(disposition(sig).sa_sigaction, libc::SIG_IGN);
        reset_to_default(sig).unwrap();
        assert_eq!(disposition(sig).sa_sigaction, libc::SIG_DFL);
    }
}
