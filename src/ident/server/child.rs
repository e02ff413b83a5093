//! `racefree ident serve --listen ADDR` as a child process: the server the stress
//! harness races against and the server the integration tests ask. One place starts
//! it, reads where it listens, and stops it.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

use anyhow::Context;

use crate::quote::quote_if_needed;

/// Longer than any `listening on ADDR` line (a scoped IPv6 address and port fit
/// in 70 bytes): the first line is read no further than this.
const MAX_FIRST_LINE: u64 = 128;

/// A running identd, ours to stop: killed and reaped when dropped.
///
/// Started by [`ServeChild::start`], it also dies with us: the kernel kills it when
/// the thread that started it exits ([`crate::child::die_with_parent`]), so a run
/// killed by SIGKILL leaves no server behind. Start it from a thread that lives as
/// long as the server should.
///
/// **stderr is captured, then copied.** Until the server says where it listens its
/// stderr is a pipe we hold, so a server that exits first (an address in use, a bad
/// option) is reported with what it wrote: [`StartError`] carries it, for a stress
/// user as much as for a test. Once it listens, a thread copies that pipe to our
/// stderr as it comes, until the server is gone: a pipe left unread would block a
/// server that logs to stderr once 64 KiB were waiting, and copying shows a late
/// error where an inherited stderr would have. One behaviour for every caller, so
/// no caller can pick the one that hangs.
///
/// **stdout**: the first line must be exactly `listening on ADDR`. The pipe is then
/// held unread until the drop: the server writes nothing more on it (one more line
/// per further `--listen`, which fits in the pipe), and a closed pipe would make such
/// a line fail.
pub struct ServeChild {
    child: Child,
    addr: SocketAddr,
    _stdout: Option<BufReader<ChildStdout>>,
}

impl ServeChild {
    /// Runs `EXE ident serve --listen LISTEN ARGS...` and waits until it says where it
    /// listens. `LISTEN` is passed as given, so a caller may pass one the server will
    /// refuse. Fails with a [`StartError`] (the server's stderr in it) when the server
    /// exits or says anything else first.
    pub fn start<I, S>(exe: &Path, listen: &str, args: I) -> anyhow::Result<ServeChild>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(exe);
        crate::child::die_with_parent(&mut cmd)
            .args(["ident", "serve", "--listen", listen])
            .args(args);
        Self::start_command(cmd, io::stderr())
            .with_context(|| format!("starting {} ident serve", quote_if_needed(exe)))
    }

    /// Spawns `cmd` with stdin on /dev/null and stdout and stderr piped, reads its
    /// first line and, once it listens, copies its stderr to `copy_to`. The seam where
    /// the unit tests put a shell in place of the server.
    fn start_command(
        mut cmd: Command,
        copy_to: impl Write + Send + 'static,
    ) -> anyhow::Result<ServeChild> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = Vec::new();
        let first = (&mut stdout)
            .take(MAX_FIRST_LINE)
            .read_until(b'\n', &mut line);
        let addr = match first {
            Ok(_) => parse_listening(&line),
            Err(_) => None,
        };
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let Some(addr) = addr else {
            // It exited (end of file on stdout comes at its exit, after its error
            // line), or it is running but said something else: either way it is not
            // a server to use. Killed, its stderr ends, so reading it cannot hang.
            let _ = child.kill();
            let mut written = Vec::new();
            let _ = stderr.read_to_end(&mut written);
            let status = child.wait().ok();
            return Err(StartError {
                said: match first {
                    Err(e) => Said::Unreadable(e.to_string()),
                    Ok(0) => Said::Nothing,
                    Ok(_) => Said::Line(String::from_utf8_lossy(&line).into_owned()),
                },
                status,
                stderr: String::from_utf8_lossy(&written).into_owned(),
            }
            .into());
        };
        // Owned from here, so that an error below kills it.
        let served = ServeChild {
            child,
            addr,
            _stdout: Some(stdout),
        };
        copy_stderr(stderr, copy_to)?;
        Ok(served)
    }

    /// A server the caller started some other way (as inetd in wait mode or systemd
    /// would, on a socket it bound itself at `addr`): stopped like one from
    /// [`start`](Self::start) when dropped. Whether it dies with us and where its
    /// output goes is the caller's spawn's to decide.
    pub fn adopt(child: Child, addr: SocketAddr) -> ServeChild {
        ServeChild {
            child,
            addr,
            _stdout: None,
        }
    }

    /// Where it listens, as it said.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the server's stderr to `copy_to` as it comes, on a detached thread that
/// ends at end of file, when the server (and any helper it forked, which dies with
/// it) is gone. A failed write to `copy_to` stops the copying but not the draining.
fn copy_stderr(
    mut stderr: impl Read + Send + 'static,
    copy_to: impl Write + Send + 'static,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("identd-stderr".into())
        .spawn(move || {
            let mut ours = Some(copy_to);
            let mut buf = [0u8; 4096];
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if ours
                            .as_mut()
                            .is_some_and(|o| o.write_all(&buf[..n]).is_err())
                        {
                            ours = None;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        })
        .context("starting the thread that copies the server's stderr")?;
    Ok(())
}

/// The address in `listening on ADDR\n`, the whole line and nothing else: no other
/// text around it, no CR, and a port (0 is not a place a client can connect to).
pub fn parse_listening(line: &[u8]) -> Option<SocketAddr> {
    let addr: SocketAddr = std::str::from_utf8(line)
        .ok()?
        .strip_suffix('\n')?
        .strip_prefix("listening on ")?
        .parse()
        .ok()?;
    (addr.port() != 0).then_some(addr)
}

/// The server did not get as far as listening.
#[derive(Debug)]
pub struct StartError {
    /// What its stdout gave instead of `listening on ADDR`.
    pub said: Said,
    /// How it ended (it is killed if it was still running); `None` if waiting failed.
    pub status: Option<ExitStatus>,
    /// Everything it wrote on stderr, usually the one line saying why.
    pub stderr: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Said {
    /// End of file: it exited (or closed stdout) first.
    Nothing,
    /// A line that is not `listening on ADDR` (with its newline, if it had one).
    Line(String),
    /// Reading stdout failed.
    Unreadable(String),
}

/// One line, whatever the server wrote: its stderr's lines are joined with "; " and
/// anything else that is not printable ASCII is escaped (`\u{1b}`), so it cannot
/// forge output or reach the terminal.
impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.said {
            Said::Nothing => f.write_str("the server exited before listening")?,
            Said::Line(l) => write!(f, "the server said {l:?}, not 'listening on ADDR'")?,
            Said::Unreadable(e) => write!(f, "reading the server's stdout: {e}")?,
        }
        if let Some(status) = self.status {
            write!(f, " ({status})")?;
        }
        let lines: Vec<String> = self
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(printable)
            .collect();
        if lines.is_empty() {
            f.write_str("; it wrote nothing on stderr")
        } else {
            write!(f, ": {}", lines.join("; "))
        }
    }
}

impl std::error::Error for StartError {}

/// `line` with everything outside printable ASCII escaped, as in the C locale.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| {
            if (' '..='~').contains(&c) {
                c.to_string()
            } else {
                c.escape_default().to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
