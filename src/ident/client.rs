//! The RFC 1413 client: ask a host's identd who owns one connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage, sockopt};

use super::proto::{self, MAX_REPLY_LINE};
pub use super::proto::{Reply, ReplyKind};

/// Asks the identd at `server` who owns the connection between port `server_port`
/// on that host and port `client_port` on this one. The whole exchange (connect,
/// send, reply) must finish within `timeout`. A reply is returned only if it is
/// well formed and echoes the ports asked for.
pub fn query(
    server: SocketAddr,
    server_port: u16,
    client_port: u16,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    query_from(None, server, server_port, client_port, timeout)
}

/// [`query`] from a chosen local address (its port is usually 0, any; a link-local
/// IPv6 one carries its interface as scope id). identd answers only about connections
/// between itself and the querier's address, so a host with several addresses must
/// ask from the one the connection uses.
pub fn query_from(
    bind: Option<SocketAddr>,
    server: SocketAddr,
    server_port: u16,
    client_port: u16,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    let exchange = ask_from(bind, server, server_port, client_port, timeout)?;
    match exchange.verdict {
        Verdict::Reply(reply) => Ok(reply),
        Verdict::Malformed(bad) => {
            Err(bad).with_context(|| format!("identd at {server} sent a malformed reply"))
        }
        Verdict::OtherPorts(reply) => bail!(
            "identd at {server} answered for ports {}, {} instead of {server_port}, {client_port}",
            reply.server_port,
            reply.client_port
        ),
    }
}

/// One question to an identd and its answer line as it came, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Our end of the ident connection: the address the identd saw the question from.
    pub local: SocketAddr,
    /// The reply line as received, its terminator removed.
    pub line: Vec<u8>,
    pub verdict: Verdict,
}

/// What a reply line is worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Well formed, for the ports asked about.
    Reply(Reply),
    /// Not a reply this client accepts (see [`proto::parse_reply`]).
    Malformed(proto::BadReply),
    /// Well formed, but about other ports than those asked about.
    OtherPorts(Reply),
}

/// [`query_from`], keeping the reply line and the verdict on it: an error only when
/// no line came (refused, timed out, closed unanswered, a line over the limit).
pub fn ask_from(
    bind: Option<SocketAddr>,
    server: SocketAddr,
    server_port: u16,
    client_port: u16,
    timeout: Duration,
) -> anyhow::Result<Exchange> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(bind, server, deadline)
        .with_context(|| format!("connecting to identd at {server}"))?;
    let local = stream.local_addr()?;
    let request = format!("{server_port}, {client_port}\r\n");
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("sending a request to identd at {server}"))?;
    let line = read_line(&mut stream, deadline)
        .with_context(|| format!("reading the reply of identd at {server}"))?;
    let verdict = match proto::parse_reply(&line) {
        Err(bad) => Verdict::Malformed(bad),
        Ok(reply) if (reply.server_port, reply.client_port) != (server_port, client_port) => {
            Verdict::OtherPorts(reply)
        }
        Ok(reply) => Verdict::Reply(reply),
    };
    Ok(Exchange {
        local,
        line,
        verdict,
    })
}

/// A connect bounded by `timeout`: started non-blocking, then waited for with poll,
/// so neither a slow host nor a signal (EINTR) can stretch or break it.
fn connect(
    bind: Option<SocketAddr>,
    server: SocketAddr,
    deadline: Instant,
) -> io::Result<TcpStream> {
    let family = if server.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd: OwnedFd = sock::socket(family, SockType::Stream, flags, None)?;
    if let Some(local) = bind {
        sock::bind(fd.as_raw_fd(), &SockaddrStorage::from(local))?;
    }
    match sock::connect(fd.as_raw_fd(), &SockaddrStorage::from(server)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS | Errno::EINTR) => wait_connected(&fd, deadline)?,
        Err(e) => return Err(e.into()),
    }
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

fn wait_connected(fd: &OwnedFd, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => break,
            Err(e) => return Err(e.into()),
        }
    }
    match sock::getsockopt(fd, sockopt::SocketError)? {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Reads one reply line, ended by CRLF, LF or CR (or by the server closing).
fn read_line(stream: &mut TcpStream, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time"));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time"));
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            if line.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed without a reply",
                ));
            }
            return Ok(line);
        }
        if let Some(end) = buf[..n].iter().position(is_line_end) {
            line.extend_from_slice(&buf[..end]);
        } else {
            line.extend_from_slice(&buf[..n]);
        }
        if line.len() > MAX_REPLY_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "reply line too long",
            ));
        }
        if end_seen(&buf[..n]) {
            return Ok(line);
        }
    }
}

fn is_line_end(b: &u8) -> bool {
    *b == b'\r' || *b == b'\n'
}

fn end_seen(bytes: &[u8]) -> bool {
    bytes.iter().any(is_line_end)
}
