//! SIGHUP reads `--config`'s system file again, as it does oidentd's.
//!
//! The handler only writes a byte to a pipe (write(2) is async-signal-safe); a
//! thread of its own reads the pipe and reloads, outside any signal context.
//! Signals that arrive while a reload runs leave one byte or more waiting, so
//! each is followed by a reload that starts after it: none is lost, and a burst
//! costs few reloads.

use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;

use anyhow::Context;
use libc::c_int;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::signal::SaFlags;

use crate::signals::{self, Replace};

/// The pipe's write end, for the handler; -1 until [`reload_on_sighup`] runs.
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn wake(_: c_int) {
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = [1u8];
        // SAFETY: write(2) is async-signal-safe; `fd` is the pipe's write end, open
        // for the life of the process. It does not block (O_NONBLOCK): a full pipe
        // already holds a wake-up.
        unsafe { libc::write(fd, byte.as_ptr().cast(), 1) };
    }
}

/// From now on, each SIGHUP makes `reload` run, on a thread of its own. Once a
/// process. A SIGHUP this process was started ignoring stays ignored (nohup's),
/// as every handler racefree installs leaves it.
pub fn reload_on_sighup(reload: impl Fn() + Send + 'static) -> anyhow::Result<()> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    nix::fcntl::fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .context("making the pipe's write end non-blocking")?;
    thread::Builder::new()
        .name("identd-reload".into())
        .spawn(move || reload_each_wake(&read, &reload))
        .context("starting the reload thread")?;
    // Kept open for good: the handler may run at any time from now on.
    let previous = WAKE.swap(write.into_raw_fd(), Ordering::SeqCst);
    anyhow::ensure!(previous < 0, "SIGHUP's reload was set up twice");
    // SAFETY: `wake` makes one write(2) to a descriptor held in an atomic.
    unsafe {
        signals::install(
            libc::SIGHUP,
            wake,
            SaFlags::SA_RESTART,
            Replace::UnlessIgnored,
        )
    }
    .context("installing the SIGHUP handler")?;
    Ok(())
}

fn reload_each_wake(read: &OwnedFd, reload: &dyn Fn()) {
    // Big enough to take a burst of wake-ups in one read: one reload for them all.
    let mut buf = [0u8; 64];
    loop {
        match nix::unistd::read(read, &mut buf) {
            Ok(0) => return,
            Ok(_) => reload(),
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
