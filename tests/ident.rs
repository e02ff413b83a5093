//! `racefree ident` through the built binary.
//!
//! Every connection here is real and on loopback. A test that needs a connection in
//! some TCP state puts it there, then reads the state back from the kernel with
//! procfs (a reader racefree does not use for lookups) and, where a transition is
//! asynchronous, polls for it with a deadline. Servers listen on port 0 or on a
//! loopback address no other test uses, so the tests run in parallel.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage, sockopt};
use predicates::prelude::*;
use procfs::net::TcpState;
use racefree::ident::{self, Source};

use crate::util::{racefree, racefree_path};

const DEADLINE: Duration = Duration::from_secs(10);

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

fn inode_of(fd: &impl AsRawFd) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    let link = link.to_str().unwrap();
    link.strip_prefix("socket:[")
        .and_then(|s| s.strip_suffix(']'))
        .unwrap()
        .parse()
        .unwrap()
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn my_name() -> String {
    ident::user_name(euid())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn netlink_works() -> bool {
    let ok = ident::lookup::resolve(Source::Netlink).is_ok();
    if !ok {
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

// ---------------------------------------------------------------------------
// The lookup subcommand

/// `racefree ident lookup --json` must find this end with this inode and state.
fn assert_lookup_finds(local: SocketAddr, remote: SocketAddr, inode: u64, state: &str) {
    for source in sources() {
        let out = racefree()
            .args([
                "ident",
                "lookup",
                "--json",
                "--source",
                source,
                &local.to_string(),
                &remote.to_string(),
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["uid"], euid(), "{source}: {json}");
        assert_eq!(json["user"], my_name(), "{source}: {json}");
        assert_eq!(json["inode"], inode, "{source}: {json}");
        assert_eq!(json["state"], state, "{source}: {json}");
        let used = match source {
            "auto" if netlink_works() => "netlink",
            "auto" => "proc",
            s => s,
        };
        assert_eq!(json["source"], used, "{source}: {json}");
    }
}

fn assert_lookup_finds_nobody(local: SocketAddr, remote: SocketAddr) {
    for source in sources() {
        racefree()
            .args([
                "ident",
                "lookup",
                "--source",
                source,
                &local.to_string(),
                &remote.to_string(),
            ])
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(
                "racefree: error: no owner for the connection",
            ));
    }
}

#[test]
fn lookup_finds_an_established_connection_from_either_end() {
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let (sl, sr) = c.server_end();
    assert_eq!(
        wait_for_state(cl, cr, TcpState::Established).inode,
        inode_of(&c.client)
    );
    assert_lookup_finds(cl, cr, inode_of(&c.client), "ESTABLISHED");
    assert_lookup_finds(sl, sr, inode_of(&c.server), "ESTABLISHED");
    racefree()
        .args(["ident", "lookup", &cl.to_string(), &cr.to_string()])
        .assert()
        .success()
        .stdout(format!("{}\n", my_name()));
    racefree()
        .args([
            "ident",
            "lookup",
            "--numeric",
            &cl.to_string(),
            &cr.to_string(),
        ])
        .assert()
        .success()
        .stdout(format!("{}\n", euid()));
    // The same ports the other way round are the other end, not this one.
    let swapped = racefree()
        .args([
            "ident",
            "lookup",
            "--json",
            &cr.to_string(),
            &cl.to_string(),
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&swapped.stdout).unwrap();
    assert_eq!(json["inode"], inode_of(&c.server));
}

#[test]
fn lookup_finds_half_closed_connections_in_fin_wait2_and_close_wait() {
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let (sl, sr) = c.server_end();
    c.client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_for_state(cl, cr, TcpState::FinWait2);
    wait_for_state(sl, sr, TcpState::CloseWait);
    assert_lookup_finds(cl, cr, inode_of(&c.client), "FIN_WAIT2");
    assert_lookup_finds(sl, sr, inode_of(&c.server), "CLOSE_WAIT");
    // The classic ESTABLISHED-only matcher (stress's control arm) misses both: the
    // bug racefree exists to avoid, shown to be real on this kernel.
    for (l, r) in [(cl, cr), (sl, sr)] {
        let t = ident::Tuple::new(l, r);
        assert_eq!(
            ident::lookup_owner_established_only(&t, Source::Proc).unwrap(),
            None
        );
        assert!(ident::lookup_owner(&t, Source::Proc).unwrap().is_some());
    }
    // Still the same states: the lookups above saw them, not later ones.
    wait_for_state(cl, cr, TcpState::FinWait2);
    wait_for_state(sl, sr, TcpState::CloseWait);
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

#[test]
fn lookup_finds_a_connection_held_in_fin_wait1() {
    let c = fin_wait1_conn();
    let (cl, cr) = c.client_end();
    wait_for_state(cl, cr, TcpState::FinWait1);
    assert_lookup_finds(cl, cr, inode_of(&c.client), "FIN_WAIT1");
    let t = ident::Tuple::new(cl, cr);
    assert_eq!(
        ident::lookup_owner_established_only(&t, Source::Proc).unwrap(),
        None
    );
    wait_for_state(cl, cr, TcpState::FinWait1);
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

#[test]
fn lookup_answers_no_owner_for_time_wait_never_root() {
    let (cl, cr) = time_wait_end();
    assert_lookup_finds_nobody(cl, cr);
    wait_for_state(cl, cr, TcpState::TimeWait);
}

#[test]
fn lookup_finds_ipv6_loopback_connections() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("note: no IPv6 loopback here; skipping");
        return;
    };
    let c = connect_to(listener, None);
    let (cl, cr) = c.client_end();
    assert!(cl.is_ipv6());
    wait_for_state(cl, cr, TcpState::Established);
    assert_lookup_finds(cl, cr, inode_of(&c.client), "ESTABLISHED");
    let (sl, sr) = c.server_end();
    assert_lookup_finds(sl, sr, inode_of(&c.server), "ESTABLISHED");
}

#[test]
fn lookup_finds_an_ipv4_client_of_a_dual_stack_listener_in_both_notations() {
    let Ok(listener) = TcpListener::bind("[::]:0") else {
        eprintln!("note: no IPv6 here; skipping");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let client = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("note: [::] is not dual-stack here ({e}); skipping");
            return;
        }
    };
    let (server, _) = listener.accept().unwrap();
    let (sl, sr) = (server.local_addr().unwrap(), server.peer_addr().unwrap());
    // The premise: the server end is an IPv6 socket that sees mapped addresses, in tcp6.
    assert!(sl.ip().to_string().starts_with("::ffff:"), "{sl}");
    assert!(
        procfs::net::tcp6()
            .unwrap()
            .iter()
            .any(|r| r.inode == inode_of(&server))
    );
    assert_lookup_finds(sl, sr, inode_of(&server), "ESTABLISHED");
    assert_lookup_finds(unmap(sl), unmap(sr), inode_of(&server), "ESTABLISHED");
    let (cl, cr) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    assert_lookup_finds(cl, cr, inode_of(&client), "ESTABLISHED");
}

#[test]
fn lookup_reports_the_real_owner_not_the_caller() {
    if !is_root() {
        eprintln!("note: needs root to create a socket as another user; skipping");
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").unwrap() else {
        eprintln!("note: no user named nobody; skipping");
        return;
    };
    // A socket's owner is the creating thread's fsuid. setfsuid is per thread, so
    // only this helper thread (never the test harness's) changes identity.
    let uid = nobody.uid.as_raw();
    let client = std::thread::spawn(move || {
        let old = unsafe { libc::setfsuid(uid) };
        let fd = sock::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        );
        unsafe { libc::setfsuid(old as libc::uid_t) };
        fd.unwrap()
    })
    .join()
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    sock::connect(
        client.as_raw_fd(),
        &SockaddrStorage::from(listener.local_addr().unwrap()),
    )
    .unwrap();
    let client = TcpStream::from(client);
    let (_server, _) = listener.accept().unwrap();
    let (cl, cr) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    let row = wait_for_state(cl, cr, TcpState::Established);
    assert_eq!(
        row.uid, uid,
        "the premise: the kernel records nobody as the owner"
    );
    for source in sources() {
        racefree()
            .args([
                "ident",
                "lookup",
                "--source",
                source,
                &cl.to_string(),
                &cr.to_string(),
            ])
            .assert()
            .success()
            .stdout(format!("{}\n", nobody.name));
    }
    // Through the server: nobody's home (Debian's is /nonexistent) cannot hold a
    // ~/.noident, so nobody is named, as oidentd and pidentd name it.
    let identd = Identd::start("127.0.0.1:0", &[]);
    let reply = identd.ask_line(format!("{}, {}\r\n", cl.port(), cr.port()).as_bytes());
    assert_eq!(reply, userid(cl.port(), cr.port(), &nobody.name));
}

#[test]
fn lookup_refuses_bad_input_with_status_2() {
    racefree()
        .args(["ident", "lookup", "127.0.0.1:0", "127.0.0.1:80"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "racefree: error: LOCAL 127.0.0.1:0: port 0 names no connection",
        ));
    racefree()
        .args(["ident", "lookup", "127.0.0.1:1", "[::1]:80"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "LOCAL and REMOTE must both be IPv4 or both IPv6",
        ));
    racefree()
        .args(["ident", "lookup", "localhost:80", "127.0.0.1:80"])
        .assert()
        .code(2);
    racefree()
        .args(["ident", "lookup", "::1:80", "127.0.0.1:80"])
        .assert()
        .code(2);
    racefree()
        .args(["ident", "lookup", "127.0.0.1:1"])
        .assert()
        .code(2);
    racefree()
        .args([
            "ident",
            "lookup",
            "--numeric",
            "--json",
            "127.0.0.1:1",
            "127.0.0.1:2",
        ])
        .assert()
        .code(2);
}

#[test]
fn lookup_of_a_connection_that_does_not_exist_exits_1() {
    // A listener with no client: its port, paired with any remote, is no connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let l = listener.local_addr().unwrap();
    assert_lookup_finds_nobody(l, "127.0.0.1:9".parse().unwrap());
}

// ---------------------------------------------------------------------------
// The server

/// `racefree ident serve --listen ADDR` as a child, stopped when dropped.
struct Identd {
    child: Child,
    addr: SocketAddr,
}

impl Identd {
    fn start(listen: &str, extra: &[&str]) -> Identd {
        Self::try_start(listen, extra)
            .unwrap_or_else(|e| panic!("starting identd on {listen}: {e}"))
    }

    /// Starts the server; `Err` carries its stderr when it exits before listening.
    fn try_start(listen: &str, extra: &[&str]) -> Result<Identd, String> {
        let mut child = Command::new(racefree_path())
            .args(["ident", "serve", "--listen", listen, "--log", "none"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line.trim_end().strip_prefix("listening on ") else {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            child.wait().unwrap();
            return Err(err);
        };
        Ok(Identd {
            addr: addr.parse().unwrap(),
            child,
        })
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s
    }

    /// Sends `request` on a fresh connection and returns the first reply line.
    fn ask_line(&self, request: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        read_line(&mut s)
    }

    /// `racefree ident query` against this server.
    fn query(
        &self,
        server_port: u16,
        client_port: u16,
        bind: Option<&str>,
    ) -> assert_cmd::assert::Assert {
        let mut cmd = racefree();
        cmd.args(["ident", "query", &self.addr.ip().to_string()])
            .args([server_port.to_string(), client_port.to_string()])
            .args(["--port", &self.addr.port().to_string(), "--timeout", "10"]);
        if let Some(b) = bind {
            cmd.args(["--bind", b]);
        }
        cmd.assert()
    }
}

impl Drop for Identd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One reply line, CRLF included.
fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "reading a reply after {:?}: {e}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    String::from_utf8(line).unwrap()
}

/// Everything the peer sends until it closes; a reset after a refusal counts as closed.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return all,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "waiting for the server to close: {e} (got {:?})",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

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

#[test]
fn standalone_server_prints_its_port_and_answers_in_every_live_state() {
    let identd = Identd::start("127.0.0.1:0", &[]);
    assert_eq!(identd.addr.ip(), IpAddr::from(Ipv4Addr::LOCALHOST));
    assert_ne!(identd.addr.port(), 0);
    let me = my_name();

    let est = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = est.client_end();
    wait_for_state(cl, cr, TcpState::Established);
    assert_served(&identd, cl, cr, Some(&me));
    let (sl, sr) = est.server_end();
    assert_served(&identd, sl, sr, Some(&me));

    let half = connect_pair("127.0.0.1:0", None);
    half.client.shutdown(std::net::Shutdown::Write).unwrap();
    let (cl, cr) = half.client_end();
    let (sl, sr) = half.server_end();
    wait_for_state(cl, cr, TcpState::FinWait2);
    wait_for_state(sl, sr, TcpState::CloseWait);
    assert_served(&identd, cl, cr, Some(&me));
    assert_served(&identd, sl, sr, Some(&me));
    wait_for_state(cl, cr, TcpState::FinWait2);

    let fw1 = fin_wait1_conn();
    let (cl, cr) = fw1.client_end();
    wait_for_state(cl, cr, TcpState::FinWait1);
    assert_served(&identd, cl, cr, Some(&me));
    wait_for_state(cl, cr, TcpState::FinWait1);

    let (cl, cr) = time_wait_end();
    assert_served(&identd, cl, cr, None);
    wait_for_state(cl, cr, TcpState::TimeWait);
}

#[test]
fn server_answers_over_ipv6_and_for_ipv4_clients_of_dual_stack_listeners() {
    let Ok(identd) = Identd::try_start("[::1]:0", &[]) else {
        eprintln!("note: no IPv6 loopback here; skipping");
        return;
    };
    let me = my_name();
    let c = connect_pair("[::1]:0", None);
    let (cl, cr) = c.client_end();
    assert_served(&identd, cl, cr, Some(&me));

    // identd itself on a dual-stack [::] socket, asked over IPv4 about an IPv4
    // connection: its addresses are mapped on the ident socket but not in /proc/net/tcp.
    let Ok(mut v4) = Identd::try_start("[::]:0", &[]) else {
        eprintln!("note: no dual-stack socket here; skipping the rest");
        return;
    };
    v4.addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), v4.addr.port());
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    assert_served(&v4, cl, cr, Some(&me));
}

#[test]
fn a_connection_between_two_other_addresses_is_no_users_business() {
    // 127.0.0.2:a <-> 127.0.0.3:b, identd on 127.0.0.2, asked from 127.0.0.4.
    let c = connect_pair("127.0.0.3:0", Some("127.0.0.2".parse().unwrap()));
    let (cl, cr) = c.client_end();
    assert_eq!(cl.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    let identd = Identd::start("127.0.0.2:0", &[]);
    let (a, b) = (cl.port(), cr.port());
    identd
        .query(a, b, Some("127.0.0.4"))
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("racefree: error: NO-USER"));
    // Raw, from 127.0.0.4: the same.
    let mut s = connect_from("127.0.0.4".parse().unwrap(), identd.addr);
    s.write_all(format!("{a}, {b}\r\n").as_bytes()).unwrap();
    assert_eq!(read_line(&mut s), error(a, b, "NO-USER"));
    // The control: from the connection's real peer, 127.0.0.3, the owner is told.
    identd
        .query(a, b, Some("127.0.0.3"))
        .success()
        .stdout(format!("{}\n", my_name()));
}

#[test]
fn hide_hide_all_and_numeric_change_the_answer() {
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let (sp, cp) = (cl.port(), cr.port());
    let req = format!("{sp},{cp}\r\n");
    let me = my_name();
    let uid = euid().to_string();
    for extra in [
        vec!["--hide", me.as_str()],
        vec!["--hide", uid.as_str()],
        vec!["--hide-all"],
    ] {
        let identd = Identd::start("127.0.0.1:0", &extra);
        assert_eq!(
            identd.ask_line(req.as_bytes()),
            error(sp, cp, "HIDDEN-USER"),
            "{extra:?}"
        );
    }
    let identd = Identd::start("127.0.0.1:0", &["--numeric"]);
    let line = identd.ask_line(req.as_bytes());
    assert!(
        line == format!("{sp}, {cp} : USERID : OTHER : {}\r\n", euid())
            || line == error(sp, cp, "HIDDEN-USER"),
        "{line:?}"
    );
    racefree()
        .args([
            "ident",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--hide",
            "no-such-user-racefree",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "racefree: error: --hide: no user named no-such-user-racefree",
        ));
}

#[test]
fn requests_are_parsed_strictly_and_answered_in_order_on_one_connection() {
    let identd = Identd::start("127.0.0.1:0", &[]);
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let (sp, cp) = (cl.port(), cr.port());
    let me = my_name();
    let mut s = identd.connect();
    // Nothing is sent before a request arrives.
    let quiet_until = Instant::now() + Duration::from_millis(200);
    let mut probe = [0u8; 1];
    loop {
        let left = quiet_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut probe) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            other => panic!("the server spoke before any request: {other:?}"),
        }
    }
    s.set_read_timeout(Some(DEADLINE)).unwrap();

    let requests: Vec<(Vec<u8>, String)> = vec![
        (format!("{sp}, {cp}\r\n").into_bytes(), userid(sp, cp, &me)),
        (
            format!("\t{sp} ,\t{cp} \n").into_bytes(),
            userid(sp, cp, &me),
        ),
        (format!("{sp},{cp}\r").into_bytes(), userid(sp, cp, &me)),
        // A lone LF right after a CR-ended request completes its CRLF: no reply of
        // its own, so the next reply read must be for "0, 23", not "0, 0".
        (b"\n".to_vec(), String::new()),
        (b"0, 23\r\n".to_vec(), error(0, 23, "INVALID-PORT")),
        (b"hello\r\n".to_vec(), error(0, 0, "INVALID-PORT")),
        (
            b"65536, 23\r\n".to_vec(),
            "65536, 23 : ERROR : INVALID-PORT\r\n".to_string(),
        ),
        (b"+1, 23\r\n".to_vec(), error(0, 0, "INVALID-PORT")),
        (b"123456, 23\r\n".to_vec(), error(0, 0, "INVALID-PORT")),
        (
            format!("{sp},\0{cp}\r\n").into_bytes(),
            error(0, 0, "INVALID-PORT"),
        ),
        (
            format!("\0\0{sp},{cp}\0\r\n").into_bytes(),
            error(0, 0, "INVALID-PORT"),
        ),
        (b"\xff\xfe\xfd\r\n".to_vec(), error(0, 0, "INVALID-PORT")),
        (format!("{cp}, {sp}\r\n").into_bytes(), userid(cp, sp, &me)),
        (b"1, 1\r\n".to_vec(), error(1, 1, "NO-USER")),
    ];
    for (req, want) in &requests {
        s.write_all(req).unwrap();
        if want.is_empty() {
            continue;
        }
        assert_eq!(
            read_line(&mut s),
            *want,
            "request {:?}",
            String::from_utf8_lossy(req)
        );
    }
    // Pipelined: two requests in one write, two replies in order.
    s.write_all(format!("{sp},{cp}\r\n1,1\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut s), userid(sp, cp, &me));
    assert_eq!(read_line(&mut s), error(1, 1, "NO-USER"));
    // A blank line on its own is a malformed request.
    s.write_all(b"\r\n").unwrap();
    assert_eq!(read_line(&mut s), error(0, 0, "INVALID-PORT"));
    // The client closes: the server closes too, having sent nothing more.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_until_closed(&mut s), b"");
}

#[test]
fn an_overlong_line_is_refused_and_the_connection_closed() {
    let identd = Identd::start("127.0.0.1:0", &[]);
    // Exactly 1,000 bytes and an end of line: a (malformed) request, answered.
    let mut s = identd.connect();
    let mut exact = vec![b' '; 1000];
    exact.extend_from_slice(b"\r\n");
    s.write_all(&exact).unwrap();
    assert_eq!(read_line(&mut s), error(0, 0, "INVALID-PORT"));
    // 1,001 bytes with no end of line: no reply, closed.
    s.write_all(&[b'1'; 1001]).unwrap();
    assert_eq!(read_until_closed(&mut s), b"");
    // Megabytes of digits: the same, without waiting for them all.
    let mut s = identd.connect();
    let flood = vec![b'7'; 1 << 20];
    let _ = s.write_all(&flood); // the server may close (and reset) mid-write
    assert_eq!(read_until_closed(&mut s), b"");
}

#[test]
fn a_request_never_finished_times_out_silently() {
    let identd = Identd::start("127.0.0.1:0", &["--timeout", "1"]);
    let mut s = identd.connect();
    s.write_all(b"12, 34").unwrap();
    let start = Instant::now();
    assert_eq!(read_until_closed(&mut s), b"");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the timeout"
    );
    assert!(took < DEADLINE, "not closed after {took:?}");
}

#[test]
fn a_request_trickled_byte_by_byte_is_cut_off_at_the_timeout() {
    // One blank every 200 ms: no read ever waits a whole second, but the line as a
    // whole must arrive within --timeout or the slot is given back.
    let identd = Identd::start("127.0.0.1:0", &["--timeout", "1"]);
    let mut s = identd.connect();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "still connected after {:?}",
            start.elapsed()
        );
        if s.write_all(b" ").is_err() {
            break;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let took = start.elapsed();
    assert_eq!(got, b"", "the trickled request was answered");
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the timeout"
    );
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
}

#[test]
fn a_connection_is_closed_after_100_requests() {
    let identd = Identd::start("127.0.0.1:0", &[]);
    let mut s = identd.connect();
    let requests: String = (1..=101).map(|i| format!("{i},{i}\r\n")).collect();
    s.write_all(requests.as_bytes()).unwrap();
    let got = String::from_utf8(read_until_closed(&mut s)).unwrap();
    let expected: String = (1..=100).map(|i| error(i, i, "NO-USER")).collect();
    assert_eq!(got, expected);
}

#[test]
fn past_max_conns_new_connections_are_closed_at_once() {
    let identd = Identd::start("127.0.0.1:0", &["--max-conns", "1"]);
    let mut first = identd.connect();
    // The first is being served: it has been answered.
    first.write_all(b"1,1\r\n").unwrap();
    assert_eq!(read_line(&mut first), error(1, 1, "NO-USER"));
    let mut second = identd.connect();
    let _ = second.write_all(b"1,1\r\n");
    assert_eq!(
        read_until_closed(&mut second),
        b"",
        "a second connection was served"
    );
    // The first is still served.
    first.write_all(b"2,2\r\n").unwrap();
    assert_eq!(read_line(&mut first), error(2, 2, "NO-USER"));
    // Once it closes, its slot is free again (the server notices asynchronously).
    first.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_until_closed(&mut first), b"");
    let start = Instant::now();
    loop {
        let mut s = identd.connect();
        let _ = s.write_all(b"3,3\r\n");
        let got = read_until_closed_or_line(&mut s);
        if got == error(3, 3, "NO-USER") {
            break;
        }
        assert_eq!(got, "", "unexpected reply");
        assert!(start.elapsed() < DEADLINE, "the slot was never given back");
    }
}

/// One reply line, or "" when the server closes without one.
fn read_until_closed_or_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{e}"),
        }
    }
    String::from_utf8(line).unwrap()
}

#[test]
fn serve_drops_privileges_with_user() {
    if !is_root() {
        eprintln!("note: --user needs root; skipping");
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").unwrap() else {
        eprintln!("note: no user named nobody; skipping");
        return;
    };
    let identd = Identd::start("127.0.0.1:0", &["--user", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", identd.child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let (uid, gid) = (nobody.uid.to_string(), nobody.gid.to_string());
    assert_eq!(field("Uid:"), [uid.as_str(); 4]);
    assert_eq!(field("Gid:"), [gid.as_str(); 4]);
    assert_eq!(field("Groups:"), [gid.as_str()]);
    // Still serving after the drop.
    assert_eq!(identd.ask_line(b"1,1\r\n"), error(1, 1, "NO-USER"));

    racefree()
        .args([
            "ident",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "no-such-user-racefree",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "racefree: error: --user: no user named no-such-user-racefree",
        ));
}

#[test]
fn serve_with_nothing_to_serve_is_a_usage_error() {
    racefree()
        .args(["ident", "serve"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "racefree: error: nothing to serve",
        ));
    racefree()
        .args(["ident", "serve", "--mode", "inetd-nowait"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a connected stream socket"));
    racefree()
        .args([
            "ident",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "0",
        ])
        .assert()
        .code(2);
    racefree()
        .args([
            "ident",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-conns",
            "0",
        ])
        .assert()
        .code(2);
}

#[test]
fn serve_reports_a_failed_bind_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    racefree()
        .args(["ident", "serve", "--listen", &addr])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with(format!(
            "racefree: error: binding {addr}: "
        )));
}

// ---------------------------------------------------------------------------
// inetd and systemd: the socket is fd 0 (and 1 and 2)

/// The ident connection, accepted here, as the server's stdin, stdout and stderr;
/// the returned stream is the querier's end. `identd` is the address it connected to.
fn inetd_child(args: &[&str]) -> (Child, TcpStream, SocketAddr) {
    inetd_child_argv(&[["ident", "serve"].as_slice(), args].concat())
}

/// [`inetd_child`] with the whole argument list (after the program name) given.
fn inetd_child_argv(argv: &[&str]) -> (Child, TcpStream, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let querier = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let fd: OwnedFd = accepted.into();
    let mut cmd = Command::new(racefree_path());
    cmd.args(argv)
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd.try_clone().unwrap()))
        .stderr(Stdio::from(fd));
    let child = cmd.spawn().unwrap();
    // The Command holds our copies of the socket; only the child's may remain, so
    // the querier sees end of file when the child exits.
    drop(cmd);
    (child, querier, listener.local_addr().unwrap())
}

#[test]
fn inetd_nowait_answers_on_stdin_and_never_leaks_diagnostics() {
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let (sp, cp) = (cl.port(), cr.port());
    let (mut child, mut querier, _) = inetd_child(&[]);
    querier
        .write_all(format!("{sp}, {cp}\r\nnonsense\r\n1,1\n").as_bytes())
        .unwrap();
    querier.shutdown(std::net::Shutdown::Write).unwrap();
    let got = String::from_utf8(read_until_closed(&mut querier)).unwrap();
    assert_eq!(
        got,
        [
            userid(sp, cp, &my_name()),
            error(0, 0, "INVALID-PORT"),
            error(1, 1, "NO-USER")
        ]
        .concat()
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn inetd_mode_errors_go_nowhere_near_the_client() {
    for args in [
        vec!["--user", "no-such-user-racefree"],
        vec!["--log", "stderr"],
        vec!["--hide", "no-such-user-racefree"],
        vec!["--mode", "inetd-wait"],
    ] {
        let (mut child, mut querier, _) = inetd_child(&args);
        querier.write_all(b"1,1\r\n").unwrap();
        assert_eq!(
            read_until_closed(&mut querier),
            b"",
            "{args:?} leaked text to the client"
        );
        assert_eq!(child.wait().unwrap().code(), Some(2), "{args:?}");
    }
    // An overlong request: closed, nothing said.
    let (mut child, mut querier, _) = inetd_child(&[]);
    let _ = querier.write_all(&[b'9'; 5000]);
    assert_eq!(read_until_closed(&mut querier), b"");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn inetd_mode_usage_errors_from_the_argument_parser_go_nowhere_near_the_client() {
    // clap refuses these before `serve` runs, so serve's own silencing of fd 2
    // comes too late: main must recognise inetd (stdin a socket) by itself.
    for args in [
        &["ident", "serve", "--max-conns", "0"][..],
        &["ident", "serve", "--no-such-option"],
        &["ident", "serve", "--timeout"],
        &["no-such-command"],
    ] {
        let (mut child, mut querier, _) = inetd_child_argv(args);
        let _ = querier.write_all(b"1,1\r\n");
        assert_eq!(
            String::from_utf8_lossy(&read_until_closed(&mut querier)),
            "",
            "{args:?} leaked text to the client"
        );
        assert_eq!(child.wait().unwrap().code(), Some(2), "{args:?}");
    }
}

#[test]
fn usage_errors_outside_inetd_still_reach_stderr() {
    racefree()
        .args(["ident", "serve", "--max-conns", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--max-conns"));
}

#[test]
fn inetd_wait_accepts_on_a_listening_stdin() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd: OwnedFd = listener.into();
    let mut cmd = Command::new(racefree_path());
    cmd.args(["ident", "serve", "--log", "none"])
        .stdin(Stdio::from(fd))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let identd = Identd {
        child: cmd.spawn().unwrap(),
        addr,
    };
    drop(cmd);
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    for _ in 0..3 {
        assert_served(&identd, cl, cr, Some(&my_name()));
    }
}

/// `racefree ident serve` with `fd` as fd 3 and LISTEN_FDS/LISTEN_PID naming it, as
/// systemd passes sockets. The shell moves stdin to fd 3 and execs, keeping its pid.
fn systemd_child(fd: OwnedFd) -> Child {
    systemd_child_argv(fd, &["ident", "serve"])
}

fn systemd_child_argv(fd: OwnedFd, argv: &[&str]) -> Child {
    let script = r#"exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .arg(racefree_path())
        .args(argv)
        .stdin(Stdio::from(fd))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().unwrap();
    drop(cmd);
    child
}

#[test]
fn systemd_socket_activation_serves_listening_and_accepted_sockets() {
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let me = my_name();

    // Accept=no: a listening socket.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let identd = Identd {
        child: systemd_child(listener.into()),
        addr,
    };
    assert_served(&identd, cl, cr, Some(&me));
    drop(identd);

    // Accept=yes: one connection per instance; LISTEN_PID is checked, so a stray
    // LISTEN_FDS meant for another process changes nothing (covered by auto mode
    // choosing inetd for the tests above, whose environment has none).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut querier = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let mut child = systemd_child(accepted.into());
    querier
        .write_all(format!("{},{}\r\n", cl.port(), cr.port()).as_bytes())
        .unwrap();
    querier.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        String::from_utf8(read_until_closed(&mut querier)).unwrap(),
        userid(cl.port(), cr.port(), &me)
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_listen_pid_for_another_process_is_ignored() {
    racefree()
        .args(["ident", "serve"])
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "1")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing to serve"));
}

// ---------------------------------------------------------------------------
// The query subcommand

#[test]
fn query_fails_with_status_1_when_no_usable_answer_comes() {
    // Nobody listening: refused.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    racefree()
        .args([
            "ident",
            "query",
            "127.0.0.1",
            "1",
            "2",
            "--port",
            &closed.port().to_string(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "racefree: error: connecting to identd at {closed}"
        )));
    // A server that accepts and never answers: timed out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let start = Instant::now();
    racefree()
        .args([
            "ident",
            "query",
            "127.0.0.1",
            "1",
            "2",
            "--port",
            &port,
            "--timeout",
            "1",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no reply in time"));
    assert!(start.elapsed() < DEADLINE);
    // A server answering for other ports, or gibberish.
    for (reply, message) in [
        (
            &b"3, 4 : USERID : UNIX : mallory\r\n"[..],
            "answered for ports 3, 4",
        ),
        (b"so long and thanks\r\n", "malformed reply"),
    ] {
        let (port, responder) = fake_identd(reply);
        racefree()
            .args(["ident", "query", "127.0.0.1", "1", "2", "--port", &port])
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(message));
        responder.join().unwrap();
    }
}

/// A one-shot identd on loopback that reads a request and sends `reply` verbatim.
/// Returns its port and the thread to join.
fn fake_identd(reply: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = fake.local_addr().unwrap().port().to_string();
    let responder = std::thread::spawn(move || {
        let (mut s, _) = fake.accept().unwrap();
        let mut req = [0u8; 64];
        let _ = s.read(&mut req).unwrap();
        s.write_all(reply).unwrap();
    });
    (port, responder)
}

#[test]
fn query_refuses_a_reply_with_control_characters_and_prints_none_of_it() {
    for reply in [
        &b"1, 2 : USERID : UNIX : \x1b[31mroot\r\n"[..],
        b"1, 2 : ERROR : NO-USER\x1b]0;owned\x07\r\n",
    ] {
        let (port, responder) = fake_identd(reply);
        racefree()
            .args(["ident", "query", "127.0.0.1", "1", "2", "--port", &port])
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(
                "malformed reply: reply contains a control character",
            ))
            .stderr(predicate::str::contains("\x1b").not())
            .stderr(predicate::str::contains("root").not());
        responder.join().unwrap();
    }
}

#[test]
fn query_refuses_bad_ports_with_status_2() {
    racefree()
        .args(["ident", "query", "127.0.0.1", "0", "2"])
        .assert()
        .code(2);
    racefree()
        .args(["ident", "query", "127.0.0.1", "1", "65536"])
        .assert()
        .code(2);
    racefree()
        .args(["ident", "query", "127.0.0.1", "1", "2", "--port", "0"])
        .assert()
        .code(2);
    racefree()
        .args(["ident", "query", "127.0.0.1", "1"])
        .assert()
        .code(2);
}

// ---------------------------------------------------------------------------
// A client this project did not write

#[test]
fn perls_net_ident_gets_the_owner_from_our_server() {
    let has_module = Command::new("perl")
        .args(["-MNet::Ident", "-e", "1"])
        .output();
    if !has_module.is_ok_and(|o| o.status.success()) {
        eprintln!("note: Perl's Net::Ident (Debian libnet-ident-perl) is not installed; skipping");
        return;
    }
    // Net::Ident always asks port 113, so the server needs a loopback address of its
    // own on 113 (root, or CAP_NET_BIND_SERVICE).
    let identd = match Identd::try_start("127.0.0.9:113", &[]) {
        Ok(i) => i,
        Err(e) if !is_root() => {
            eprintln!("note: binding port 113 needs root ({}); skipping", e.trim());
            return;
        }
        Err(e) => panic!("starting identd on 127.0.0.9:113: {e}"),
    };
    // Our connection: from 127.0.0.9 (the identd host) to a service on 127.0.0.1
    // (the host that asks, as a server asks about its client).
    let c = connect_pair("127.0.0.1:0", Some("127.0.0.9".parse().unwrap()));
    let (service_end, client_end) = (
        c.server.local_addr().unwrap(),
        c.server.peer_addr().unwrap(),
    );
    let script = r#"
        use Net::Ident; use Socket;
        my ($lport, $rport) = @ARGV;
        my $local = pack_sockaddr_in($lport, inet_aton("127.0.0.1"));
        my $remote = pack_sockaddr_in($rport, inet_aton("127.0.0.9"));
        my ($user, $os, $err) = Net::Ident::lookupFromInAddr($local, $remote, 10);
        print defined $user ? "user=$user os=$os\n" : "error=$err\n";
    "#;
    let out = Command::new("perl")
        .args([
            "-e",
            script,
            &service_end.port().to_string(),
            &client_end.port().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("user={} os=UNIX\n", my_name())
    );
    // And for a port pair that is not a connection, Net::Ident reports NO-USER.
    let out = Command::new("perl")
        .args(["-e", script, "1", &client_end.port().to_string()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("NO-USER"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(identd);
}

// The library API stress calls: a standalone server in-process and the client.
#[test]
fn the_library_server_and_client_work_in_process() {
    let server = ident::Server::new(
        ident::ServerConfig::default(),
        ident::Logger::new(ident::LogTarget::None),
    );
    let handle = server
        .spawn(vec![TcpListener::bind("127.0.0.1:0").unwrap()])
        .unwrap();
    let addr = handle.local_addrs()[0];
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let reply = ident::query(addr, cl.port(), cr.port(), DEADLINE).unwrap();
    assert_eq!(
        (reply.server_port, reply.client_port),
        (cl.port(), cr.port())
    );
    match reply.kind {
        ident::ReplyKind::UserId { os, user, .. } => {
            assert_eq!((os.as_str(), user), ("UNIX", my_name()))
        }
        other => panic!("{other:?}"),
    }
    handle.stop().unwrap();
}

// ---------------------------------------------------------------------------
// contrib/: the service files start the server the way they say

fn contrib(path: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib")
            .join(path),
    )
    .unwrap()
}

/// Runs racefree with `argv` as inetd would and checks it answers about `c`.
fn assert_inetd_argv_serves(argv: &[&str], c: &Conn) {
    let (cl, cr) = c.client_end();
    let (mut child, mut querier, _) = inetd_child_argv(argv);
    querier
        .write_all(format!("{}, {}\r\n", cl.port(), cr.port()).as_bytes())
        .unwrap();
    querier.shutdown(std::net::Shutdown::Write).unwrap();
    let got = String::from_utf8(read_until_closed(&mut querier)).unwrap();
    assert_eq!(got, userid(cl.port(), cr.port(), &my_name()), "{argv:?}");
    assert_eq!(child.wait().unwrap().code(), Some(0), "{argv:?}");
}

#[test]
fn contrib_service_files_run_the_server_they_describe() {
    let c = connect_pair("127.0.0.1:0", None);

    // inetd.conf: service type proto wait user server argv0 args...
    let text = contrib("inetd.conf");
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[..4], ["ident", "stream", "tcp", "nowait"]);
    assert!(
        fields[5].ends_with("/racefree") && fields[6] == "racefree",
        "{line}"
    );
    assert_inetd_argv_serves(&fields[7..], &c);

    // xinetd: server_args, one process per connection.
    let text = contrib("xinetd.d/racefree-identd");
    let setting = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap()
    };
    assert_eq!(setting("wait"), "no");
    assert_eq!(setting("socket_type"), "stream");
    assert!(setting("server").ends_with("/racefree"));
    let args = setting("server_args");
    assert_inetd_argv_serves(&args.split_whitespace().collect::<Vec<_>>(), &c);

    // systemd: Accept=yes, so the instance gets one connected socket as fd 3.
    let socket = contrib("systemd/racefree-identd.socket");
    assert!(socket.lines().any(|l| l.trim() == "Accept=yes"));
    let service = contrib("systemd/racefree-identd@.service");
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut words = exec.split_whitespace();
    assert!(words.next().unwrap().ends_with("/racefree"));
    let argv: Vec<&str> = words.collect();
    let (cl, cr) = c.client_end();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut querier = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let mut child = systemd_child_argv(accepted.into(), &argv);
    querier
        .write_all(format!("{},{}\r\n", cl.port(), cr.port()).as_bytes())
        .unwrap();
    querier.shutdown(std::net::Shutdown::Write).unwrap();
    let got = String::from_utf8(read_until_closed(&mut querier)).unwrap();
    assert_eq!(got, userid(cl.port(), cr.port(), &my_name()));
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
