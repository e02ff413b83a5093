//! Child processes racefree starts (stress racers, the ident server the stress
//! harness and the tests run): none may outlive the run that started it. And the
//! statuses a command that runs the user's COMMAND (`write -- COMMAND`) exits with.

use std::ffi::OsStr;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use nix::errno::Errno;
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::getppid;

/// Makes a child die with us (SIGKILL when this thread exits), so a racer or server
/// process never outlives a run that was killed. Spawn from the thread that lives as
/// long as the child should (the main thread, for a run): the signal follows the
/// thread that forked, not the process.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id();
    // SAFETY: the hook, run between fork and exec, makes only the prctl and getppid
    // system calls, which are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            set_pdeathsig(Signal::SIGKILL)?;
            // A parent that died between fork and prctl sent no signal: the child,
            // already reparented, must not run on.
            if u32::try_from(getppid().as_raw()) != Ok(parent) {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        })
    }
}

/// COMMAND exists but could not be run (as env(1) and the shells say).
pub const CANNOT_RUN: u8 = 126;
/// COMMAND was not found.
pub const NOT_FOUND: u8 = 127;

/// The status a shell reports for how COMMAND ended: its exit code, or 128 + N when
/// signal N killed it.
pub fn shell_status(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => 1,
    }
}

/// The error for a COMMAND that could not be started, carrying its exit status:
/// [`NOT_FOUND`] when there is no such program, else [`CANNOT_RUN`].
pub fn spawn_failed(program: &OsStr, e: &io::Error) -> anyhow::Error {
    let status = if e.kind() == io::ErrorKind::NotFound {
        NOT_FOUND
    } else {
        CANNOT_RUN
    };
    let why = match e.raw_os_error() {
        Some(n) => Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    };
    anyhow::Error::new(crate::exit::WithStatus {
        status: crate::exit::Exit::Code(status),
        message: format!("cannot run {}: {why}", crate::quote::quote(program)),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    #[test]
    fn a_child_is_killed_when_the_thread_that_started_it_exits() {
        // If the signal never came, sleep would exit 0 after 30 s and fail the test.
        let mut child = std::thread::spawn(|| {
            super::die_with_parent(&mut Command::new("sleep"))
                .arg("30")
                .spawn()
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn a_child_that_dies_with_its_parent_still_runs_while_the_parent_lives() {
        let out = super::die_with_parent(&mut Command::new("sh"))
            .args(["-c", "echo $PPID"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
