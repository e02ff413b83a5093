//! A process killed at a chosen instant: the crash arm's calls, SIGKILLed
//! mid-operation, alone or with what they started.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::signal::{Signal, kill as kill_one, killpg};
use nix::sys::time::TimeSpec;
use nix::unistd::Pid;

use crate::child::die_with_parent;
use crate::stress::cleanup::ChildGuard;

/// When [`run_killing`] kills the process it starts.
#[derive(Clone, Copy, Debug)]
pub struct Kill {
    /// How long after its start.
    pub after: Duration,
    /// SIGKILL its whole process group (what it started, too), not it alone.
    pub group: bool,
}

/// How a process [`run_killing`] started ended.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The SIGKILL was sent while it ran (it may have exited on its own first:
    /// `status` tells).
    pub killed: bool,
    /// From its start to its end.
    pub took: Duration,
}

impl Ran {
    /// Whether it died of SIGKILL.
    pub fn died_of_sigkill(&self) -> bool {
        self.status.signal() == Some(libc::SIGKILL)
    }
}

/// Runs `cmd` as the leader of a process group of its own and SIGKILLs it (or its
/// group) `kill.after` its start, unless it has ended by then. It is not reaped
/// before the kill, so its pid cannot have passed to another process; it dies with
/// the calling thread and with an interrupted run.
pub fn run_killing(cmd: &mut Command, kill: Option<Kill>) -> anyhow::Result<Ran> {
    let start = Instant::now();
    let mut child = die_with_parent(cmd)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let guard = ChildGuard::new(child.id());
    let mut killed = false;
    if let Some(k) = kill
        && !ended_within(&mut child, k.after)?
    {
        let pid = Pid::from_raw(child.id() as i32);
        // ESRCH: it has just exited, unreaped; nothing else can hold its pid.
        let _ = match k.group {
            true => killpg(pid, Signal::SIGKILL),
            false => kill_one(pid, Signal::SIGKILL),
        };
        killed = true;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {:?}", cmd.get_program()))?;
    drop(guard);
    Ok(Ran {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
        killed,
        took: start.elapsed(),
    })
}

/// Whether `child` ends within `span`: waits on its pidfd, to the microsecond (an
/// arm's calls last milliseconds). Without pidfds (Linux before 5.3), sleeps the
/// span, then looks.
fn ended_within(child: &mut Child, span: Duration) -> anyhow::Result<bool> {
    let Ok(pidfd) = pidfd_open(child.id()) else {
        std::thread::sleep(span);
        return Ok(child.try_wait()?.is_some());
    };
    let end = Instant::now() + span;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting on a child's pidfd"),
        }
    }
}

/// A pidfd for `pid`, which becomes readable when the process ends.
fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags, reads no memory, and returns a
    // new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_killed_at_its_instant_with_its_group_and_one_that_ended_is_not() {
        let mut cmd = Command::new("sh");
        // The background sleep holds stdout: only a group kill lets the read end.
        cmd.args(["-c", "sleep 30 & wait"])
            .stdout(std::process::Stdio::piped());
        let kill = Kill {
            after: Duration::from_millis(100),
            group: true,
        };
        let ran = run_killing(&mut cmd, Some(kill)).unwrap();
        assert!(ran.killed && ran.died_of_sigkill(), "{ran:?}");
        assert!(ran.took < Duration::from_secs(20), "{ran:?}");
        let kill = Kill {
            after: Duration::from_secs(60),
            group: false,
        };
        let ran = run_killing(&mut Command::new("true"), Some(kill)).unwrap();
        assert!(!ran.killed && ran.status.success(), "{ran:?}");
        assert!(
            ran.took < Duration::from_secs(20),
            "waited out the span: {ran:?}"
        );
    }
}
