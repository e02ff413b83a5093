//! How the server was started: inetd nowait (stdin is the connection), inetd wait
//! (stdin listens), systemd socket activation (LISTEN_FDS), or standalone
//! (`--listen`); and keeping fd 2 quiet when it may be the client's socket.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::Context;
use nix::sys::socket::{self as sock, sockopt};

use super::log::Logger;

/// How the server was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// stdin is the connection: serve it on fd 0/1 and exit.
    InetdNowait,
    /// stdin is a listening socket: accept on it.
    InetdWait,
    /// `LISTEN_FDS` sockets from systemd, listening (Accept=no) or connected (Accept=yes).
    Systemd,
    /// `--listen` addresses bound here.
    Standalone,
}

impl Mode {
    /// Modes in which fd 2 may be the client's socket.
    pub fn is_quiet(self) -> bool {
        self != Mode::Standalone
    }
}

/// `--mode`: detect, or insist on one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// systemd if LISTEN_FDS is for us, else standalone if --listen is given, else by stdin
    Auto,
    /// stdin is one accepted connection: serve it, then exit
    InetdNowait,
    /// stdin is a listening socket: accept on it
    InetdWait,
    /// sockets passed as fds 3.. (LISTEN_FDS, LISTEN_PID)
    Systemd,
    /// bind every --listen address here
    Standalone,
}

/// What a descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    NotSocket,
    Listening,
    Connected,
}

/// Classifies a descriptor: a TCP-capable stream socket that listens, one that is
/// connected, or anything else.
pub fn classify(fd: BorrowedFd<'_>) -> SocketKind {
    match sock::getsockopt(&fd, sockopt::SockType) {
        Ok(sock::SockType::Stream) => {}
        _ => return SocketKind::NotSocket,
    }
    match sock::getsockopt(&fd, sockopt::AcceptConn) {
        Ok(true) => SocketKind::Listening,
        Ok(false) if sock::getpeername::<sock::SockaddrStorage>(fd.as_raw_fd()).is_ok() => {
            SocketKind::Connected
        }
        _ => SocketKind::NotSocket,
    }
}

/// The mode to run in, from `--mode`, whether `--listen` was given, whether systemd
/// passed sockets for this process, and what stdin is. Errors are usage errors.
pub fn decide_mode(
    choice: ModeChoice,
    listen: bool,
    systemd: bool,
    stdin: SocketKind,
) -> Result<Mode, String> {
    if listen && !matches!(choice, ModeChoice::Auto | ModeChoice::Standalone) {
        return Err("--listen is only for standalone mode".into());
    }
    if listen && choice == ModeChoice::Auto && stdin != SocketKind::NotSocket {
        // inetd started us (stdin is a socket) with --listen in the command line:
        // serving standalone would write to and log on the client's socket.
        return Err(
            "--listen with a socket on stdin (inetd?): give --mode standalone \
                    to listen anyway"
                .into(),
        );
    }
    match choice {
        ModeChoice::Auto if systemd => Ok(Mode::Systemd),
        ModeChoice::Auto if listen => Ok(Mode::Standalone),
        ModeChoice::Auto => match stdin {
            SocketKind::Connected => Ok(Mode::InetdNowait),
            SocketKind::Listening => Ok(Mode::InetdWait),
            SocketKind::NotSocket => Err(
                "nothing to serve: give --listen ADDR:PORT, or start under inetd \
                                          (stdin a socket) or systemd socket activation"
                    .into(),
            ),
        },
        ModeChoice::Standalone if listen => Ok(Mode::Standalone),
        ModeChoice::Standalone => {
            Err("standalone mode needs at least one --listen ADDR:PORT".into())
        }
        ModeChoice::InetdNowait if stdin == SocketKind::Connected => Ok(Mode::InetdNowait),
        ModeChoice::InetdNowait => {
            Err("--mode inetd-nowait: stdin is not a connected stream socket".into())
        }
        ModeChoice::InetdWait if stdin == SocketKind::Listening => Ok(Mode::InetdWait),
        ModeChoice::InetdWait => {
            Err("--mode inetd-wait: stdin is not a listening stream socket".into())
        }
        ModeChoice::Systemd if systemd => Ok(Mode::Systemd),
        ModeChoice::Systemd => {
            Err("--mode systemd: LISTEN_FDS/LISTEN_PID do not pass sockets to this process".into())
        }
    }
}

/// The number of sockets systemd passed to this process (fds 3, 4, ...), if any:
/// `LISTEN_PID` must be our pid, so variables inherited from a parent do not count.
pub fn systemd_fd_count() -> Option<usize> {
    if !listen_pid_is_ours() {
        return None;
    }
    std::env::var("LISTEN_FDS")
        .ok()?
        .parse()
        .ok()
        .filter(|&n: &usize| n > 0)
}

fn listen_pid_is_ours() -> bool {
    std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id())
}

/// Reports a command-line error that clap found, if inetd or systemd may have
/// started this process, and says whether it did. clap would print it on fd 2,
/// which under inetd is the client's socket, before `serve` could silence it.
/// Instead fd 2 goes to /dev/null (so nothing later can write there either) and the
/// error's first line to syslog, ident `racefree`. `false`, having done nothing,
/// for help and version output and when no superserver is in sight: clap prints it.
pub fn reported_usage_error_quietly(err: &clap::Error) -> bool {
    if !err.use_stderr() || !started_by_a_superserver() {
        return false;
    }
    // If /dev/null cannot be opened there is nothing better to do: we print nothing.
    let _ = silence_stderr();
    let message = err.to_string();
    let first = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    Logger::syslog_as("racefree").error(&format!("usage error: {first}"));
    true
}

/// True when inetd or systemd may have started this process, so that fd 2 may be a
/// client's socket: fd 0 is a socket of any kind, or `LISTEN_PID` names us. Cruder
/// than the mode detection on purpose: it runs before the command line is
/// understood, and a false "yes" costs only an error message sent to syslog.
fn started_by_a_superserver() -> bool {
    let stdin_is_socket = nix::sys::stat::fstat(io::stdin().as_fd()).is_ok_and(|st| {
        nix::sys::stat::SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
            == nix::sys::stat::SFlag::S_IFSOCK
    });
    stdin_is_socket || listen_pid_is_ours()
}

/// Points fd 2 at /dev/null, so nothing (a fatal error printed by `main`, a panic
/// message) can reach a client whose socket fd 2 may be.
pub fn silence_stderr() -> anyhow::Result<()> {
    let null = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    nix::unistd::dup2_stderr(&null).context("pointing fd 2 at /dev/null")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn mode_detection_follows_pidentd() {
        use ModeChoice::*;
        use SocketKind::*;
        assert_eq!(
            decide_mode(Auto, false, false, Connected),
            Ok(Mode::InetdNowait)
        );
        assert_eq!(
            decide_mode(Auto, false, false, Listening),
            Ok(Mode::InetdWait)
        );
        assert_eq!(decide_mode(Auto, false, true, NotSocket), Ok(Mode::Systemd));
        assert_eq!(
            decide_mode(Auto, true, false, NotSocket),
            Ok(Mode::Standalone)
        );
        assert!(decide_mode(Auto, true, false, Connected).is_err());
        assert!(decide_mode(Auto, true, false, Listening).is_err());
        assert_eq!(
            decide_mode(Standalone, true, false, Connected),
            Ok(Mode::Standalone)
        );
        assert!(decide_mode(Auto, false, false, NotSocket).is_err());
        assert!(decide_mode(Standalone, false, false, NotSocket).is_err());
        assert!(decide_mode(InetdNowait, false, false, Listening).is_err());
        assert!(decide_mode(InetdWait, false, false, Connected).is_err());
        assert!(decide_mode(Systemd, false, false, Listening).is_err());
        assert!(decide_mode(InetdNowait, true, false, Connected).is_err());
        assert_eq!(
            decide_mode(InetdWait, false, true, Listening),
            Ok(Mode::InetdWait)
        );
        assert!(
            Mode::InetdNowait.is_quiet()
                && Mode::Systemd.is_quiet()
                && !Mode::Standalone.is_quiet()
        );
    }

    #[test]
    fn descriptors_are_classified_by_what_they_are() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(classify(listener.as_fd()), SocketKind::Listening);
        assert_eq!(classify(client.as_fd()), SocketKind::Connected);
        let file = tempfile::tempfile().unwrap();
        assert_eq!(classify(file.as_fd()), SocketKind::NotSocket);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(classify(udp.as_fd()), SocketKind::NotSocket);
    }
}
