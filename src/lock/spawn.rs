//! Starting COMMAND: at once, or held at a gate until the lock's record names it,
//! and saying why it could not be run.
//!
//! A link lock's record must name COMMAND before COMMAND runs: if racefree were
//! killed between starting COMMAND and writing its pid, COMMAND would run under a
//! record naming only a dead racefree, and the next locker would break the lock.
//! So [`Gated`] starts COMMAND first and holds it between fork and exec: the child
//! sends its pid, then waits to be let through. If racefree dies before that, the
//! gate's pipe closes and the child exits without running COMMAND.
//!
//! std's `spawn` returns only once the child has exec'd, so the gated spawn runs on
//! a thread of its own while this one reads the pid, takes the lock and opens the
//! gate. The child is forked with std's Command like any other (its PATH search, its
//! descriptors, its report of an exec failure).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::quote::quote;

/// COMMAND forked, its pid known, waiting at the gate to exec.
pub struct Gated {
    pid: i32,
    /// The gate: a byte written lets COMMAND run; closed without one, it exits.
    gate: OwnedFd,
    spawner: JoinHandle<io::Result<Child>>,
}

/// Forks `cmd` and holds it at the gate; returns once its pid is known.
pub fn start_gated(mut cmd: Command) -> io::Result<Gated> {
    let (hello_r, hello_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (gate_r, gate_w) = pipe2(OFlag::O_CLOEXEC)?;
    let fds = (hello_w.as_raw_fd(), gate_r.as_raw_fd(), gate_w.as_raw_fd());
    // SAFETY: the hook runs in the child between fork and exec and makes only the
    // close, getpid, write and read system calls, which are async-signal-safe; it
    // allocates nothing.
    unsafe {
        cmd.pre_exec(move || wait_at_gate(fds.0, fds.1, fds.2));
    }
    let spawner = std::thread::spawn(move || {
        let child = cmd.spawn();
        // Once forked, our copies go: an exec failure is then an EOF for the reader.
        drop((hello_w, gate_r));
        child
    });
    let mut pid = [0u8; 4];
    match std::fs::File::from(hello_r).read_exact(&mut pid) {
        Ok(()) => Ok(Gated {
            pid: i32::from_ne_bytes(pid),
            gate: gate_w,
            spawner,
        }),
        // The fork failed, or the child before it reached the gate: std says why.
        Err(_) => {
            drop(gate_w);
            match join(spawner) {
                Err(e) => Err(e),
                Ok(mut child) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(io::Error::other("COMMAND did not reach the gate"))
                }
            }
        }
    }
}

/// The child's side, between fork and exec.
fn wait_at_gate(hello: RawFd, gate_r: RawFd, gate_w: RawFd) -> io::Result<()> {
    // SAFETY: closing the child's copy of the gate's write end, which nothing in
    // the child uses: racefree's is then the only one, so racefree's death is EOF.
    unsafe { libc::close(gate_w) };
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() }.to_ne_bytes();
    // SAFETY: writing 4 bytes from a live local array to a pipe (atomic below
    // PIPE_BUF).
    if unsafe { libc::write(hello, pid.as_ptr().cast(), pid.len()) } != pid.len() as isize {
        return Err(io::Error::last_os_error());
    }
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a live local.
        match unsafe { libc::read(gate_r, (&raw mut byte).cast(), 1) } {
            1 => return Ok(()),
            0 => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
            _ if Errno::last() == Errno::EINTR => {}
            _ => return Err(io::Error::last_os_error()),
        }
    }
}

impl Gated {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets COMMAND exec; returns it running, or why it could not run.
    pub fn open(self) -> io::Result<Child> {
        let written = nix::unistd::write(&self.gate, b"g");
        drop(self.gate);
        let child = join(self.spawner);
        written?;
        child
    }

    /// COMMAND will not run: the child exits at the gate.
    pub fn abandon(self) {
        drop(self.gate);
        if let Ok(mut child) = join(self.spawner) {
            // It was killed at the gate, which std cannot tell from an exec.
            let _ = child.wait();
        }
    }
}

fn join(spawner: JoinHandle<io::Result<Child>>) -> io::Result<Child> {
    spawner
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread starting COMMAND panicked")))
}

/// Why COMMAND could not be run, in words: the system's, unless a file that exists
/// reads as "No such file or directory" because its interpreter does not exist.
pub fn why_not_run(program: &OsStr, e: &io::Error) -> String {
    let system = match e.raw_os_error() {
        Some(n) => Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    };
    if e.kind() == io::ErrorKind::NotFound
        && let Some(file) = locate(program)
        && let Some(why) = missing_interpreter(&file)
    {
        return format!("cannot run {}: {why}", quote(program));
    }
    format!("cannot run {}: {system}", quote(program))
}

/// The file exec would run for `program`: the path itself if it has a slash,
/// else the first executable regular file of that name in PATH.
fn locate(program: &OsStr) -> Option<PathBuf> {
    let is_program = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        return is_program(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_program(p))
}

/// Why `file`, which exists, gave ENOENT: the interpreter its `#!` line names, or
/// (for a program) the dynamic loader it names, does not exist.
fn missing_interpreter(file: &Path) -> Option<String> {
    let mut head = Vec::with_capacity(256);
    std::fs::File::open(file)
        .ok()?
        .take(256)
        .read_to_end(&mut head)
        .ok()?;
    if let Some(line) = head.strip_prefix(b"#!") {
        let interpreter = shebang_interpreter(line)?;
        let exists = std::fs::metadata(OsStr::from_bytes(&interpreter)).is_ok();
        return (!exists).then(|| {
            format!(
                "the interpreter named on its #! line, {}, was not found",
                quote(OsString::from_vec(interpreter))
            )
        });
    }
    head.starts_with(b"\x7fELF").then(|| {
        "No such file or directory (the program exists: the dynamic loader it names was not found)"
            .to_string()
    })
}

/// The interpreter of a `#!` line (what follows the `#!`), as Linux reads it:
/// leading blanks skipped, then up to a blank or the end of the line. A carriage
/// return stays part of the name (a script saved with CRLF line ends).
fn shebang_interpreter(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.split(|&b| b == b'\n').next()?;
    let start = line.iter().position(|&b| b != b' ' && b != b'\t')?;
    let name: Vec<u8> = line[start..]
        .iter()
        .copied()
        .take_while(|&b| b != b' ' && b != b'\t')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_is_read_as_the_kernel_reads_it() {
        assert_eq!(shebang_interpreter(b"/bin/sh\n"), Some(b"/bin/sh".to_vec()));
        assert_eq!(
            shebang_interpreter(b" \t/usr/bin/env python3 -u\nprint()\n"),
            Some(b"/usr/bin/env".to_vec())
        );
        assert_eq!(
            shebang_interpreter(b"/bin/sh\r\n"),
            Some(b"/bin/sh\r".to_vec())
        );
        assert_eq!(shebang_interpreter(b"  \n"), None);
        assert_eq!(shebang_interpreter(b""), None);
    }

    #[test]
    fn a_gated_command_runs_only_once_let_through() {
        let t = tempfile::tempdir().unwrap();
        let mark = t.path().join("ran");
        let mut cmd = Command::new("touch");
        cmd.arg(&mark);
        let gated = start_gated(cmd).unwrap();
        let stat = crate::lock::nfs::holder(gated.pid()).expect("the child is there");
        assert_eq!(stat.pid, gated.pid());
        assert!(!mark.exists(), "not before the gate opens");
        let status = gated.open().unwrap().wait().unwrap();
        assert!(status.success());
        assert!(mark.exists());
    }

    #[test]
    fn an_abandoned_command_never_runs() {
        let t = tempfile::tempdir().unwrap();
        let mark = t.path().join("ran");
        let mut cmd = Command::new("touch");
        cmd.arg(&mark);
        start_gated(cmd).unwrap().abandon();
        assert!(!mark.exists());
    }

    #[test]
    fn a_command_that_is_not_there_fails_when_let_through() {
        let gated = start_gated(Command::new("no-such-command-racefree")).unwrap();
        let e = gated.open().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
