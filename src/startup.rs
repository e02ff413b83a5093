//! What the binary does before parsing its arguments, in place of Rust's own
//! start-up (see src/main.rs for why that is skipped).

use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

/// Makes the process ready to run a command: fds 0, 1 and 2 open, SIGPIPE ignored.
///
/// A standard descriptor that was closed when we were started (for example
/// `racefree lock L cmd` run with stdout closed) is opened on /dev/null, as Rust's
/// start-up would: otherwise the next file we open takes its number, and output
/// meant for stdout (ours or COMMAND's) is written into it, a lock file or a
/// counter. If even /dev/null cannot be opened there, the process aborts rather
/// than run with its output going who knows where.
///
/// Which of them were closed is remembered ([`was_closed`]): a command that reads
/// standard input must not take /dev/null's empty input for the user's.
///
/// SIGPIPE is ignored, so that a reader that went away is an EPIPE error each
/// command reports, not a silent death. Children get it back at its default: std's
/// Command resets it when it spawns them.
pub fn init() {
    // libc's poll and fcntl, not nix's: nix's take a BorrowedFd, which promises an
    // open descriptor, and whether 0, 1 and 2 are open is the question asked here.
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: fds is a valid array of three pollfd for the length passed.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if polled < 0 {
        // poll itself failed (EINTR, ENOMEM): check each descriptor instead.
        for p in &mut fds {
            // SAFETY: F_GETFD on any int is harmless.
            if unsafe { libc::fcntl(p.fd, libc::F_GETFD) } < 0 {
                p.revents = libc::POLLNVAL;
            }
        }
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            CLOSED.fetch_or(1 << p.fd, Ordering::Relaxed);
            match open(c"/dev/null", OFlag::O_RDWR, Mode::empty()) {
                // It stays open, as that standard descriptor, for the process's life.
                Ok(fd) if fd.as_raw_fd() == p.fd => {
                    let _ = fd.into_raw_fd();
                }
                _ => std::process::abort(),
            }
        }
    }
    let _ = crate::signals::ignore(libc::SIGPIPE);
}

/// Bit N set: standard descriptor N was closed when the process started.
static CLOSED: AtomicU8 = AtomicU8::new(0);

/// Whether standard descriptor `fd` (0, 1 or 2) was closed when the process started
/// (it is open on /dev/null now). Always false where [`init`] did not run: in the
/// library called from another program, and in unit tests.
pub fn was_closed(fd: RawFd) -> bool {
    (0..3).contains(&fd) && CLOSED.load(Ordering::Relaxed) & (1 << fd) != 0
}
