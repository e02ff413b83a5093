//! `racefree ident` through the built binary: one file per subcommand
//! (`lookup`, `serve`, `query`) and one for the server under a real xinetd
//! (`inetd`); the connections and reply formats they share are here, the server
//! under test and the socket helpers in `crate::testenv`.
//!
//! Every connection here is real and on loopback. A test that needs a connection in
//! some TCP state puts it there, then reads the state back from the kernel with
//! procfs (a reader racefree does not use for lookups) and, where a transition is
//! asynchronous, polls for it with a deadline. Servers listen on port 0 or on a
//! loopback address no other test uses, so the tests run in parallel.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;
use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage, sockopt};
use predicates::prelude::*;
use procfs::net::TcpState;
use racefree::ident::{self, Source};

use crate::testenv::{
    DEADLINE, Identd, Precondition, deny_sock_diag, inode_of, racefree, racefree_path, read_line,
    read_until_closed, read_until_closed_or_line, require,
};
mod inetd;
mod lookup;
mod query;
mod serve;

// ---------------------------------------------------------------------------
// Connections and what the kernel says about them

/// Both ends of a real connection, and the listener it came from.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    _listener: TcpListener,
}

impl Conn {
    /// The client end's tuple: (its local address, its remote address).
    fn client_end(&self) -> (SocketAddr, SocketAddr) {
        (
            self.client.local_addr().unwrap(),
            self.client.peer_addr().unwrap(),
        )
    }

    fn server_end(&self) -> (SocketAddr, SocketAddr) {
        (
            self.server.local_addr().unwrap(),
            self.server.peer_addr().unwrap(),
        )
    }
}

/// A listener on `listen`, a client connecting to it from `from` (any port).
fn connect_pair(listen: &str, from: Option<IpAddr>) -> Conn {
    let listener = TcpListener::bind(listen).unwrap();
    connect_to(listener, from)
}

fn connect_to(listener: TcpListener, from: Option<IpAddr>) -> Conn {
    let mut to = listener.local_addr().unwrap();
    if to.ip().is_unspecified() {
        to.set_ip(if to.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            "::1".parse().unwrap()
        });
    }
    let client = match from {
        Some(ip) => connect_from(ip, to),
        None => TcpStream::connect(to).unwrap(),
    };
    let (server, _) = listener.accept().unwrap();
    Conn {
        client,
        server,
        _listener: listener,
    }
}

/// A client socket bound to `from` before connecting (std cannot bind first).
fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let family = if to.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = sock::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    sock::bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(from, 0)),
    )
    .unwrap();
    sock::connect(fd.as_raw_fd(), &SockaddrStorage::from(to)).unwrap();
    TcpStream::from(fd)
}

fn unmap(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(a, |v4| SocketAddr::new(v4.into(), a.port())),
        IpAddr::V4(_) => a,
    }
}

/// Every row the kernel shows for this tuple, from procfs.
fn kernel_rows(local: SocketAddr, remote: SocketAddr) -> Vec<procfs::net::TcpNetEntry> {
    let (local, remote) = (unmap(local), unmap(remote));
    let mut rows = procfs::net::tcp().unwrap();
    rows.extend(procfs::net::tcp6().unwrap());
    rows.into_iter()
        .filter(|r| unmap(r.local_address) == local && unmap(r.remote_address) == remote)
        .collect()
}

/// The single row of the tuple, polled until it is in `want` (or the deadline).
fn wait_for_state(
    local: SocketAddr,
    remote: SocketAddr,
    want: TcpState,
) -> procfs::net::TcpNetEntry {
    let start = Instant::now();
    loop {
        let rows = kernel_rows(local, remote);
        if let [row] = &rows[..]
            && row.state == want
        {
            return row.clone();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{local} to {remote} never reached {want:?}; the kernel shows {:?}",
            rows.iter().map(|r| r.state.clone()).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn my_name() -> String {
    ident::user_name(euid())
}

fn netlink_works() -> bool {
    // Not a cfg'd precondition: the /proc half of each test runs either way. Under
    // CI the netlink half must run too.
    let ok = ident::lookup::resolve(Source::Netlink).is_ok();
    if !ok {
        assert!(
            !crate::testenv::under_ci(),
            "precondition missing: netlink sock_diag (CI=true: a missing precondition is a failure)"
        );
        eprintln!("note: netlink sock_diag is unavailable here; its half of this test is skipped");
    }
    ok
}

fn sources() -> Vec<&'static str> {
    if netlink_works() {
        vec!["proc", "netlink", "auto"]
    } else {
        vec!["proc", "auto"]
    }
}

/// A connection whose client has shut down writing while the server's receive
/// window is full: the FIN cannot be sent, so the client stays in FIN_WAIT1.
fn fin_wait1_conn() -> Conn {
    let fd = sock::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    // Small before listen(), so the accepted socket inherits it and advertises a tiny window.
    sock::setsockopt(&fd, sockopt::RcvBuf, &2048).unwrap();
    sock::bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from("127.0.0.1:0".parse::<SocketAddr>().unwrap()),
    )
    .unwrap();
    sock::listen(&fd, sock::Backlog::new(1).unwrap()).unwrap();
    let c = connect_to(TcpListener::from(fd), None);
    c.client.set_nonblocking(true).unwrap();
    let chunk = [b'x'; 65536];
    let start = Instant::now();
    loop {
        match (&c.client).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the window: {e}"),
        }
        assert!(start.elapsed() < DEADLINE, "the send buffer never filled");
    }
    c.client.shutdown(std::net::Shutdown::Write).unwrap();
    c
}

/// A connection whose client end is in TIME_WAIT (client closed first, then the server).
fn time_wait_end() -> (SocketAddr, SocketAddr) {
    let mut c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    c.client.shutdown(std::net::Shutdown::Write).unwrap();
    // The server sees our FIN as end of file, then closes: its FIN puts us in TIME_WAIT.
    let mut rest = Vec::new();
    c.server.read_to_end(&mut rest).unwrap();
    drop(c.server);
    let row = wait_for_state(cl, cr, TcpState::TimeWait);
    drop(c.client);
    // The premise: the kernel prints uid 0 and inode 0 for it, which is not root.
    assert_eq!((row.uid, row.inode), (0, 0));
    (cl, cr)
}

// ---------------------------------------------------------------------------
// The server under test, and what it says

fn userid(server_port: u16, client_port: u16, user: &str) -> String {
    format!("{server_port}, {client_port} : USERID : UNIX : {user}\r\n")
}

fn error(server_port: u16, client_port: u16, token: &str) -> String {
    format!("{server_port}, {client_port} : ERROR : {token}\r\n")
}

/// What the server says about the end (local, remote) of one of our connections,
/// asked as its own peer would ask: on the raw protocol and with `ident query`.
fn assert_served(
    identd: &Identd,
    local: SocketAddr,
    remote: SocketAddr,
    expect_user: Option<&str>,
) {
    let (sp, cp) = (local.port(), remote.port());
    let line = identd.ask_line(format!("{sp} , {cp}\r\n").as_bytes());
    match expect_user {
        Some(u) => {
            assert_eq!(line, userid(sp, cp, u));
            identd
                .query(sp, cp, None)
                .success()
                .stdout(format!("{u}\n"));
        }
        None => {
            assert_eq!(line, error(sp, cp, "NO-USER"));
            identd
                .query(sp, cp, None)
                .code(1)
                .stdout("")
                .stderr(predicate::str::contains("NO-USER"));
        }
    }
}
