//! What the binary does before parsing its arguments, in place of Rust's own
//! start-up (see src/main.rs for why that is skipped).

use std::ffi::CStr;

/// Makes the process ready to run a command: fds 0, 1 and 2 open, SIGPIPE ignored.
///
/// A standard descriptor that was closed when we were started (for example
/// `racefree lock L cmd` run with stdout closed) is opened on /dev/null, as Rust's
/// start-up would: otherwise the next file we open takes its number, and output
/// meant for stdout (ours or COMMAND's) is written into it, a lock file or a
/// counter. If even /dev/null cannot be opened there, the process aborts rather
/// than run with its output going who knows where.
///
/// SIGPIPE is ignored, so that a reader that went away is an EPIPE error each
/// command reports, not a silent death. Children get it back at its default: std's
/// Command resets it when it spawns them.
pub fn init() {
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
    const DEV_NULL: &CStr = c"/dev/null";
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            // SAFETY: a valid NUL-terminated path; the flags are constants.
            let fd = unsafe { libc::open(DEV_NULL.as_ptr(), libc::O_RDWR) };
            if fd != p.fd {
                std::process::abort();
            }
        }
    }
    let _ = crate::signals::ignore(libc::SIGPIPE);
}
