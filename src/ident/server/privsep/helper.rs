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
mod tests {
    use super::super::record::{REPLY_LEN, channel, decode_reply, encode_request};
    use super::*;
    use nix::sys::socket::{AddressFamily, ControlMessage, SockFlag};
    use std::io::IoSlice;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn only_a_connected_tcp_socket_names_a_tuple_and_its_own_addresses_are_used() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let t = tuple_of(accepted.as_fd(), 80, 4000).unwrap();
        let expect_local = SocketAddr::new(listener.local_addr().unwrap().ip(), 80);
        assert_eq!(
            t,
            Tuple::new(expect_local, SocketAddr::new(peer.ip(), 4000))
        );
        assert!(tuple_of(listener.as_fd(), 80, 4000).is_none(), "a listener");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.connect(client.local_addr().unwrap()).unwrap();
        assert!(tuple_of(udp.as_fd(), 80, 4000).is_none(), "UDP");
        let file = tempfile::tempfile().unwrap();
        assert!(tuple_of(file.as_fd(), 80, 4000).is_none(), "a file");
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(tuple_of(a.as_fd(), 80, 4000).is_none(), "a Unix socket");
    }

    /// A worker on one end of a socketpair, as in the helper (no fork needed).
    fn worker() -> (OwnedFd, thread::JoinHandle<i32>) {
        let (ours, theirs) = channel().unwrap();
        let config = ServerConfig::default();
        let t = thread::spawn(move || {
            let log = Logger::new(LogTarget::None);
            serve_requests(&theirs, &log, &|t| owner::find(t, &config, &log), &|| {})
        });
        (ours, t)
    }

    fn request(channel: &OwnedFd, id: u64, ports: (u16, u16), fds: &[RawFd]) -> Findings {
        let r = encode_request(
            id,
            Ask::Lookup {
                server_port: ports.0,
                client_port: ports.1,
            },
        );
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
        sock::sendmsg::<()>(
            channel.as_raw_fd(),
            &[IoSlice::new(&r)],
            cmsgs,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut buf = [0u8; REPLY_LEN];
        assert_eq!(
            sock::recv(channel.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(),
            REPLY_LEN
        );
        let (got_id, findings) = decode_reply(&buf);
        assert_eq!(got_id, id);
        findings
    }

    #[test]
    fn the_helper_answers_only_about_the_passed_connections_own_addresses() {
        let (channel, t) = worker();
        // A service and its client: the client's end is the connection asked about.
        let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(service.local_addr().unwrap()).unwrap();
        let (_served, _) = service.accept().unwrap();
        let (sp, cp) = (
            client.local_addr().unwrap().port(),
            service.local_addr().unwrap().port(),
        );
        // An ident connection from 127.0.0.1 to 127.0.0.1: the pair matches.
        let identd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _querier = std::net::TcpStream::connect(identd.local_addr().unwrap()).unwrap();
        let (ident_conn, _) = identd.accept().unwrap();
        let me = nix::unistd::Uid::effective().as_raw();
        assert!(matches!(
            request(&channel, 1, (sp, cp), &[ident_conn.as_raw_fd()]),
            Findings::Owner { uid, .. } if uid == me
        ));
        // The same ports asked on an ident connection from 127.0.0.2: not its business.
        let from2 = nix::sys::socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let two: SocketAddr = "127.0.0.2:0".parse().unwrap();
        sock::bind(from2.as_raw_fd(), &SockaddrStorage::from(two)).unwrap();
        sock::connect(
            from2.as_raw_fd(),
            &SockaddrStorage::from(identd.local_addr().unwrap()),
        )
        .unwrap();
        let (ident_conn2, _) = identd.accept().unwrap();
        assert_eq!(
            request(&channel, 2, (sp, cp), &[ident_conn2.as_raw_fd()]),
            Findings::NoOwner
        );
        // No descriptor, two, a listener, a port 0: refused, never answered.
        assert_eq!(request(&channel, 3, (sp, cp), &[]), Findings::LookupFailed);
        assert_eq!(
            request(
                &channel,
                4,
                (sp, cp),
                &[ident_conn.as_raw_fd(), ident_conn2.as_raw_fd()]
            ),
            Findings::LookupFailed
        );
        assert_eq!(
            request(&channel, 5, (sp, cp), &[identd.as_raw_fd()]),
            Findings::LookupFailed
        );
        assert_eq!(
            request(&channel, 6, (0, cp), &[ident_conn.as_raw_fd()]),
            Findings::LookupFailed
        );
        // A record of the wrong size ends the helper: it trusts nothing after that.
        sock::send(channel.as_raw_fd(), &[0u8; 3], MsgFlags::empty()).unwrap();
        assert_eq!(t.join().unwrap(), 1);
    }

    /// A reload request makes the worker call `reload` and send nothing back; one
    /// with a descriptor, or any request the encoder never writes, is refused.
    #[test]
    fn a_reload_request_reloads_without_a_reply_and_a_malformed_one_is_refused() {
        let (ours, theirs) = channel().unwrap();
        let reloads = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&reloads);
        let t = thread::spawn(move || {
            let log = Logger::new(LogTarget::None);
            let reload = || {
                counted.fetch_add(1, Ordering::SeqCst);
            };
            serve_requests(&theirs, &log, &|_| Findings::NoOwner, &reload)
        });
        let send = |record: &[u8], fds: &[RawFd]| {
            let cmsg = [ControlMessage::ScmRights(fds)];
            let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
            sock::sendmsg::<()>(
                ours.as_raw_fd(),
                &[IoSlice::new(record)],
                cmsgs,
                MsgFlags::empty(),
                None,
            )
            .unwrap();
        };
        let reply = || {
            let mut buf = [0u8; REPLY_LEN];
            assert_eq!(
                sock::recv(ours.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(),
                REPLY_LEN
            );
            decode_reply(&buf)
        };
        let identd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _querier = std::net::TcpStream::connect(identd.local_addr().unwrap()).unwrap();
        let (conn, _) = identd.accept().unwrap();
        let lookup = |id| {
            encode_request(
                id,
                Ask::Lookup {
                    server_port: 1,
                    client_port: 2,
                },
            )
        };
        send(&encode_request(1, Ask::Reload), &[]);
        // One worker answers in order: the reply to the next lookup comes after
        // the reload has run, and is the first reply there is.
        send(&lookup(2), &[conn.as_raw_fd()]);
        assert_eq!(reply(), (2, Findings::NoOwner));
        assert_eq!(reloads.load(Ordering::SeqCst), 1);
        send(&encode_request(3, Ask::Reload), &[conn.as_raw_fd()]);
        assert_eq!(
            reply(),
            (3, Findings::LookupFailed),
            "a reload with a descriptor"
        );
        let mut padded = lookup(4);
        padded[15] = 1;
        send(&padded, &[conn.as_raw_fd()]);
        assert_eq!(
            reply(),
            (4, Findings::LookupFailed),
            "a request with padding set"
        );
        assert_eq!(reloads.load(Ordering::SeqCst), 1);
        drop(ours);
        assert_eq!(t.join().unwrap(), 0);
    }

    #[test]
    fn the_helper_ends_when_the_network_side_closes_its_end() {
        let (channel, t) = worker();
        drop(channel);
        assert_eq!(t.join().unwrap(), 0);
    }
}
