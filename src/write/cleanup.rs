//! Names of temporary files that exist right now, for a signal handler to unlink.
//!
//! A fixed table of atomic pointers: registering and unregistering never lock, and
//! the handler only loads, swaps and calls unlink(2), all async-signal-safe. Whoever
//! swaps a pointer out of its slot owns it: the handler takes it and never frees it
//! (the process is about to die), so it can never read freed memory.

use std::ffi::{CStr, CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use nix::sys::signal::{SaFlags, Signal, raise};
use nix::unistd::unlink;

use crate::signals::{self, Replace};

/// Concurrent replacements one process can protect; more still work, unprotected
/// against signals (the O_TMPFILE path needs a slot only for microseconds).
const SLOTS: usize = 64;

static TABLE: [AtomicPtr<c_char>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];

/// A registered name; dropping it unregisters (without unlinking).
pub struct Slot(Option<usize>);

/// Registers `dir/name` as a file to unlink if a fatal signal arrives.
pub fn register(dir: &Path, name: &CString) -> Slot {
    let mut full = dir.as_os_str().as_bytes().to_vec();
    full.push(b'/');
    full.extend_from_slice(name.as_bytes());
    let raw = CString::new(full).expect("no NUL").into_raw();
    for (i, slot) in TABLE.iter().enumerate() {
        if slot
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return Slot(Some(i));
        }
    }
    // SAFETY: raw came from into_raw above and was never shared.
    drop(unsafe { CString::from_raw(raw) });
    Slot(None)
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            let p = TABLE[i].swap(ptr::null_mut(), Ordering::AcqRel);
            if !p.is_null() {
                // SAFETY: p came from CString::into_raw in register, and the swap
                // made us its only owner.
                drop(unsafe { CString::from_raw(p) });
            }
        }
    }
}

/// Unlinks every registered name. Async-signal-safe: for signal handlers.
pub fn unlink_all() {
    for slot in &TABLE {
        let p = slot.swap(ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: a valid C string we now own (and deliberately leak).
            let _ = unlink(unsafe { CStr::from_ptr(p) });
        }
    }
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    unlink_all();
    // Die of the same signal, so the parent sees what happened: it is blocked while
    // this handler runs, and delivered with its default action as the handler returns.
    let _ = signals::reset_to_default(sig);
    if let Ok(sig) = Signal::try_from(sig) {
        let _ = raise(sig);
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP, except where the signal was
/// ignored when we started (nohup, a background job): that stays ignored. SIGPIPE
/// needs none: Rust's runtime ignores it, so a broken pipe is an EPIPE error that
/// takes the ordinary error path, which unlinks the temporary file as well.
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only swaps atomics and calls unlink(2), sigaction(2)
        // and raise(3), which are async-signal-safe.
        let _ = unsafe {
            signals::install(
                sig,
                on_fatal_signal,
                SaFlags::SA_RESTART,
                Replace::UnlessIgnored,
            )
        };
    }
}
