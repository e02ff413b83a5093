//! The privileged helper: the process forked before the network side drops its
//! privileges, which keeps root to answer one question, who owns this connection
//! and may they be named ([`owner::find`]), and holds nothing else.
//!
//! It holds nothing but its end of the channel (every other descriptor is closed,
//! stdin and stdout point at /dev/null) and dies with the network side (end of file
//! on the channel, and PR_SET_PDEATHSIG). It trusts nothing the network side says
//! beyond the two ports: it reads the querier's address and the local address from
//! the passed ident connection itself, so it can only ever answer about a
//! connection between the querier and the address the querier reached. A request
//! that is not exactly one record with exactly one connected TCP socket is refused;
//! one of the wrong size ends the helper. The one other thing it may be asked is to
//! read `--config`'s system file again (the file it was started with; the request
//! names none), which the network side asks on SIGHUP: the helper ignores SIGHUP
//! itself, since a signal from the network side's user could not reach it anyway.

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    self as sock, ControlMessageOwned, MsgFlags, SockType, SockaddrStorage, sockopt,
};

use super::super::config::ServerConfig;
use super::super::log::{LogTarget, Logger};
use super::super::owner;
use super::super::policy::Findings;
use super::record::{Ask, REQUEST_LEN, decode_request, encode_reply};
use crate::ident::lookup::Tuple;

/// Requests answered at once, at most: the network side's connection limit, up to this.
const MAX_WORKERS: usize = 32;

/// The helper process: answer requests until the network side goes away. Returns
/// the process's exit code.
pub(super) fn main(
    channel: OwnedFd,
    parent: nix::unistd::Pid,
    config: ServerConfig,
    log: LogTarget,
) -> i32 {
    // Die with the network side, even if it is killed before closing its end.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid() != parent
    {
        return 0;
    }
    if isolate(channel.as_raw_fd()).is_err() {
        return 1;
    }
    // A SIGHUP for every racefree process reloads once, through the network side;
    // by default it would end the helper, and with it every lookup.
    if config.oidentd.is_some() && crate::signals::ignore(libc::SIGHUP).is_err() {
        return 1;
    }
    let log = Logger::new(log);
    let channel = Arc::new(channel);
    let workers = config.max_conns.clamp(1, MAX_WORKERS);
    let config = Arc::new(config);
    let threads: Vec<_> = (0..workers)
        .filter_map(|_| {
            let channel = Arc::clone(&channel);
            let config = Arc::clone(&config);
            let log = log.clone_target();
            thread::Builder::new()
                .name("identd-helper".into())
                .spawn(move || {
                    let reload = || {
                        if let Some(files) = &config.oidentd {
                            files.reload_and_log(&log);
                        }
                    };
                    serve_requests(&channel, &log, &|t| owner::find(t, &config, &log), &reload)
                })
                .ok()
        })
        .collect();
    if threads.is_empty() {
        return 1;
    }
    // Each worker returns on end of file or on a request that breaks the protocol;
    // either way the network side is gone or not to be trusted: end the process.
    let (done_tx, done_rx) = mpsc::channel();
    for t in threads {
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            let code = t.join().unwrap_or(1);
            let _ = done_tx.send(code);
        });
    }
    done_rx.recv().unwrap_or(1)
}

/// Leaves the helper holding nothing but its channel (and fd 2, which quiet modes
/// have already pointed at /dev/null): no listener, no client socket. Under inetd
/// stdin is the client's connection, which must close when the network side closes it.
fn isolate(channel: RawFd) -> nix::Result<()> {
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    drop(null);
    let close_range = |first: RawFd, last: RawFd| {
        if first <= last {
            // nix does not wrap close_range(2).
            // SAFETY: close_range closes descriptors this process owns; the only one
            // we keep (the channel) is outside the range.
            unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) };
        }
    };
    close_range(3, channel - 1);
    close_range(channel + 1, RawFd::MAX);
    Ok(())
}

/// One worker: receive a request, check it, answer it with `find` (the helper's is
/// [`owner::find`]), or for a reload call `reload`. Returns the process's exit code
/// when the channel ends (0) or the network side broke the protocol (1).
pub(super) fn serve_requests(
    channel: &OwnedFd,
    log: &Logger,
    find: &dyn Fn(&Tuple) -> Findings,
    reload: &dyn Fn(),
) -> i32 {
    let mut buf = [0u8; REQUEST_LEN + 1];
    loop {
        let received = match receive(channel, &mut buf) {
            Ok(received) => received,
            Err(Errno::EINTR) => continue,
            Err(_) => return 1,
        };
        if received.len == 0 {
            return 0; // The network side closed its end.
        }
        let request = buf
            .first_chunk::<REQUEST_LEN>()
            .expect("the buffer is longer");
        if received.len != REQUEST_LEN || received.truncated {
            log.error("privileged helper: a request of the wrong size; stopping");
            return 1;
        }
        let (id, ask) = decode_request(request);
        let findings = match (ask, received.fds.as_slice()) {
            (
                Some(Ask::Lookup {
                    server_port: server_port @ 1..,
                    client_port: client_port @ 1..,
                }),
                [conn],
            ) => tuple_of(conn.as_fd(), server_port, client_port).map(|tuple| find(&tuple)),
            // Nothing to answer: the network side does not wait for it.
            (Some(Ask::Reload), []) => {
                drop(received);
                reload();
                continue;
            }
            _ => None,
        };
        drop(received);
        let reply = encode_reply(id, findings.as_ref());
        match sock::send(channel.as_raw_fd(), &reply, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return 0,
        }
    }
}

/// One record read from the channel.
struct Received {
    len: usize,
    /// The record or its descriptors did not fit: not a request.
    truncated: bool,
    /// Every descriptor that came with it, owned so that each is closed.
    fds: Vec<OwnedFd>,
}

fn receive(channel: &OwnedFd, buf: &mut [u8]) -> nix::Result<Received> {
    let mut cmsg = nix::cmsg_space!([RawFd; 2]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = sock::recvmsg::<()>(
        channel.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: SCM_RIGHTS installed these descriptors in this process
                // just now; nothing else refers to them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        truncated: msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC),
        fds,
    })
}

/// The tuple asked about on the ident connection `conn`: this host's end of it on
/// `server_port`, the querier's address on `client_port`. None unless `conn` is a
/// connected TCP socket of the Internet families.
fn tuple_of(conn: BorrowedFd<'_>, server_port: u16, client_port: u16) -> Option<Tuple> {
    if sock::getsockopt(&conn, sockopt::SockType).ok()? != SockType::Stream
        || so_protocol(conn)? != libc::IPPROTO_TCP
    {
        return None;
    }
    let inet = |s: SockaddrStorage| -> Option<SocketAddr> {
        if let Some(v4) = s.as_sockaddr_in() {
            Some(SocketAddr::V4((*v4).into()))
        } else {
            s.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
        }
    };
    let mut local = inet(sock::getsockname(conn.as_raw_fd()).ok()?)?;
    let mut peer = inet(sock::getpeername(conn.as_raw_fd()).ok()?)?;
    // set_port keeps a link-local address's scope id, which netlink's lookup needs.
    local.set_port(server_port);
    peer.set_port(client_port);
    Some(Tuple::new(local, peer))
}

/// SO_PROTOCOL, which nix does not wrap: a stream socket may be SCTP, not TCP.
fn so_protocol(fd: BorrowedFd<'_>) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(value)
}

#[cfg(test)]
mod tests;
