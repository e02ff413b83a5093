//! Child processes racefree starts (stress racers, the ident server the stress
//! harness and the tests run): none may outlive the run that started it.

use std::os::unix::process::CommandExt;
use std::process::Command;

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
