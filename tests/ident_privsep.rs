//! `ident serve --user`: privilege separation, and who is named (issue 7, part 1).
//!
//! As root, these tests make sockets owned by other users (a thread's filesystem
//! uid is a new socket's owner, and setfsuid is per thread), create a throwaway
//! user whose 0700 home they control (removed again, pass or fail), and check that
//! a server that dropped to nobody still names everyone who has no `.noident`.
//! Without root they are listed as ignored; under CI (`CI=true`) they run, and a
//! missing precondition is a failure (see tests/testenv/preconditions.rs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use nix::sys::socket::{self as sock, SockaddrStorage};
use racefree::ident::{Source, Tuple, lookup_owner};

use crate::testenv::{
    DEADLINE, Identd, LIBIDENT_TESTER, NOBODY, Precondition, PrivateHomeUser, connection_owned_by,
    proc_status_field, racefree_path, require, socket_holders, socket_owned_by,
};

/// The reply of `identd` about the connection whose end on this host is `end`,
/// without the port pair it repeats.
fn ask_about(identd: &Identd, end: &TcpStream) -> String {
    let (l, r) = (end.local_addr().unwrap(), end.peer_addr().unwrap());
    let text = identd.ask_line(format!("{}, {}\r\n", l.port(), r.port()).as_bytes());
    let prefix = format!("{}, {} : ", l.port(), r.port());
    text.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{text:?}"))
        .trim_end()
        .to_string()
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root to make sockets and a user for others, and a user nobody"
)]
fn a_server_that_dropped_to_nobody_names_private_homes_and_honours_noident() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let user = PrivateHomeUser::create("ps");
    let served = Identd::start("127.0.0.1:0", &["--user", "nobody"]);
    let (root_conn, _a, _l1) = connection_owned_by(0);
    let (user_conn, _b, _l2) = connection_owned_by(user.uid);
    let (nobody_conn, _c, _l3) = connection_owned_by(NOBODY);
    // nobody cannot search /root or the user's 0700 home; the helper can.
    assert_eq!(ask_about(&served, &root_conn), "USERID : UNIX : root");
    assert_eq!(
        ask_about(&served, &user_conn),
        format!("USERID : UNIX : {}", user.name)
    );
    assert_eq!(ask_about(&served, &nobody_conn), "USERID : UNIX : nobody");
    // The user asks to be hidden.
    let noident = user.home.join(".noident");
    std::fs::write(&noident, "").unwrap();
    assert_eq!(ask_about(&served, &user_conn), "ERROR : HIDDEN-USER");
    assert_eq!(ask_about(&served, &root_conn), "USERID : UNIX : root");
    // The same server without --user answers alike.
    let unseparated = Identd::start("127.0.0.1:0", &[]);
    assert_eq!(ask_about(&unseparated, &user_conn), "ERROR : HIDDEN-USER");
    std::fs::remove_file(&noident).unwrap();
    assert_eq!(
        ask_about(&unseparated, &user_conn),
        format!("USERID : UNIX : {}", user.name)
    );
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root and a user nobody for --user nobody"
)]
fn under_inetd_a_server_with_user_answers_by_name_and_closes_the_connection() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let (root_conn, _a, _l) = connection_owned_by(0);
    let (l, r) = (
        root_conn.local_addr().unwrap(),
        root_conn.peer_addr().unwrap(),
    );
    // inetd nowait: the accepted ident connection is stdin, stdout and stderr.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut querier = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let fd: OwnedFd = accepted.into();
    let mut child = Command::new(racefree_path())
        .args(["ident", "serve", "--user", "nobody", "--log", "none"])
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd.try_clone().unwrap()))
        .stderr(Stdio::from(fd))
        .spawn()
        .unwrap();
    write!(querier, "{}, {}\r\n", l.port(), r.port()).unwrap();
    querier.shutdown(std::net::Shutdown::Write).unwrap();
    // End of file, not a timeout: the helper holds no copy of the connection.
    let mut got = String::new();
    querier.read_to_string(&mut got).unwrap();
    assert_eq!(
        got,
        format!("{}, {} : USERID : UNIX : root\r\n", l.port(), r.port())
    );
    assert!(child.wait().unwrap().success());
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root and a user nobody for --user nobody"
)]
fn the_process_holding_the_client_socket_keeps_no_privilege() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let served = Identd::start("127.0.0.1:0", &["--user", "nobody"]);
    // An ident connection, held open without a request: the server holds its end.
    let querier = served.connect();
    let server_end = Tuple::new(served.addr, querier.local_addr().unwrap());
    let deadline = std::time::Instant::now() + DEADLINE;
    let holders = loop {
        let owner = lookup_owner(&server_end, Source::Proc).unwrap();
        let holders = owner.map(|o| socket_holders(o.inode)).unwrap_or_default();
        if !holders.is_empty() || std::time::Instant::now() > deadline {
            break holders;
        }
        std::thread::yield_now();
    };
    assert_eq!(
        holders,
        [served.server.pid()],
        "only the network side holds it"
    );
    let pid = holders[0];
    let (uid, gid) = (nobody.uid.to_string(), nobody.gid.to_string());
    assert_eq!(proc_status_field(pid, "Uid"), [uid.as_str(); 4]);
    assert_eq!(proc_status_field(pid, "Gid"), [gid.as_str(); 4]);
    assert_eq!(proc_status_field(pid, "Groups"), [gid.as_str()]);
    for cap in ["CapEff", "CapPrm", "CapAmb"] {
        assert_eq!(proc_status_field(pid, cap), ["0000000000000000"], "{cap}");
    }
    assert_eq!(proc_status_field(pid, "NoNewPrivs"), ["1"]);
    // The privileged helper is the server's child, and holds no listener or client.
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let helper: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(proc_status_field(helper, "Uid"), ["0"; 4]);
    let helper_fds: Vec<String> = std::fs::read_dir(format!("/proc/{helper}/fd"))
        .unwrap()
        .flatten()
        .map(|fd| {
            std::fs::read_link(fd.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let sockets = helper_fds
        .iter()
        .filter(|l| l.starts_with("socket:"))
        .count();
    assert_eq!(
        sockets, 1,
        "the helper holds its channel alone: {helper_fds:?}"
    );
    // And it dies with the network side.
    drop(served);
    let deadline = std::time::Instant::now() + DEADLINE;
    while std::path::Path::new(&format!("/proc/{helper}/status")).exists()
        && proc_status_field(helper, "State")[0] != "Z"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the helper outlived the server"
        );
        std::thread::yield_now();
    }
    drop(querier);
}

/// A connection from `from` (an address of this host, as the client host) to a
/// service on 127.0.0.1 (as the server host), whose client socket belongs to
/// nobody and has half-closed: FIN_WAIT2. Returns (client, accepted, listener).
fn nobody_half_closed_from(from: &str) -> (TcpStream, TcpStream, TcpListener) {
    let fd = socket_owned_by(NOBODY);
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    sock::bind(fd.as_raw_fd(), &SockaddrStorage::from(from)).unwrap();
    sock::connect(
        fd.as_raw_fd(),
        &SockaddrStorage::from(service.local_addr().unwrap()),
    )
    .unwrap();
    let client = TcpStream::from(fd);
    let (accepted, _) = service.accept().unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut eof = [0u8; 1];
    accepted.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!((&accepted).read(&mut eof).unwrap(), 0, "the FIN arrived");
    (client, accepted, service)
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_libident_tester)),
    ignore = "needs root (port 113, a socket for nobody) and libident's in.identtestd"
)]
fn libidents_test_client_gets_nobody_for_a_nobody_owned_half_closed_connection() {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::LibidentTester,
    ]);
    let tester = std::path::Path::new(LIBIDENT_TESTER);
    // in.identtestd asks port 113 of the host its client came from: 127.0.0.11.
    let _served = Identd::start("127.0.0.11:113", &["--user", "nobody"]);
    let (mut client, accepted, _service) = nobody_half_closed_from("127.0.0.11");
    // Started as inetd would: the accepted connection is its stdin and stdout.
    let fd: OwnedFd = accepted.into();
    let mut tester = Command::new(tester)
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut said = String::new();
    client.read_to_string(&mut said).unwrap();
    assert!(tester.wait().unwrap().success());
    assert!(said.contains("Opsys........ UNIX"), "{said}");
    assert!(said.contains("Identifier... nobody\r\n"), "{said}");
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_net_ident)),
    ignore = "needs root (port 113, a socket for nobody) and Perl's Net::Ident"
)]
fn perls_net_ident_gets_nobody_for_a_nobody_owned_half_closed_connection() {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::NetIdent,
    ]);
    // Net::Ident always asks port 113: a loopback address no other test uses.
    let served = Identd::start("127.0.0.10:113", &["--user", "nobody"]);
    let (_client, accepted, _service) = nobody_half_closed_from("127.0.0.10");
    let script = r#"
        use Net::Ident; use Socket;
        my ($lport, $rport) = @ARGV;
        my $local = pack_sockaddr_in($lport, inet_aton("127.0.0.1"));
        my $remote = pack_sockaddr_in($rport, inet_aton("127.0.0.10"));
        my ($user, $os, $err) = Net::Ident::lookupFromInAddr($local, $remote, 10);
        print defined $user ? "user=$user os=$os\n" : "error=$err\n";
    "#;
    let out = Command::new("perl")
        .args(["-e", script])
        .arg(accepted.local_addr().unwrap().port().to_string())
        .arg(accepted.peer_addr().unwrap().port().to_string())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "user=nobody os=UNIX\n"
    );
    drop(served);
}

/// The privileged helper of the server `pid`: its child, found in /proc once forked.
fn helper_of(pid: u32) -> u32 {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        if let Some(child) = children.split_whitespace().next() {
            let helper = child.parse().unwrap();
            assert_eq!(proc_status_field(helper, "Uid"), ["0"; 4], "root's child");
            return helper;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server {pid} forked no helper"
        );
        std::thread::yield_now();
    }
}

fn sigkill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// Waits, within [`DEADLINE`], for `child` to exit; kills it if it does not.
fn exit_status(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait().unwrap()));
    rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        sigkill(pid);
        panic!("the server did not exit within {DEADLINE:?}")
    })
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root and a user nobody for --user nobody"
)]
fn a_standalone_server_whose_helper_is_killed_exits_non_zero_saying_why() {
    // Before: it answered UNKNOWN-ERROR forever, logging "the privileged helper is
    // gone (Ok(0))"; no supervisor could see anything wrong.
    require(&[Precondition::Root, Precondition::Nobody]);
    let mut server = Command::new(racefree_path())
        .args(["ident", "serve", "--listen", "127.0.0.1:0"])
        .args(["--user", "nobody", "--log", "stderr"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("listening on "), "{first:?}");
    let mut stderr = server.stderr.take().unwrap();
    let helper = helper_of(server.id());
    sigkill(helper);
    let status = exit_status(server);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    let why = format!(
        "the privileged helper (pid {helper}) was killed by SIGKILL; no owner can be looked up"
    );
    assert!(
        log.contains(&format!(
            "racefree ident: error: {why}; stopping the server\n"
        )),
        "{log}"
    );
    assert!(log.ends_with(&format!("racefree: error: {why}\n")), "{log}");
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root and a user nobody for --user nobody"
)]
fn under_inetd_a_server_whose_helper_is_killed_answers_an_error_and_exits_non_zero() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut querier = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let fd: OwnedFd = accepted.into();
    let child = Command::new(racefree_path())
        .args(["ident", "serve", "--user", "nobody", "--log", "none"])
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd.try_clone().unwrap()))
        .stderr(Stdio::from(fd))
        .spawn()
        .unwrap();
    sigkill(helper_of(child.id()));
    querier.write_all(b"1, 1\r\n").unwrap();
    querier.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    querier.read_to_string(&mut got).unwrap();
    assert_eq!(got, "1, 1 : ERROR : UNKNOWN-ERROR\r\n");
    assert_eq!(exit_status(child).code(), Some(1));
}

/// The privileged helper forked by the server `pid`, once its threads are
/// `workers` workers (named identd-helper), a thread waiting on each (unnamed,
/// called like the process) and its main thread: the shape it takes when it has
/// started them all. Fails if it never takes that shape.
fn wait_for_helper_with_workers(pid: u32, workers: usize) -> u32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let helper: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let start = std::time::Instant::now();
    loop {
        let names = helper_thread_names(helper);
        let named = names.iter().filter(|n| *n == "identd-helper").count();
        if named == workers && names.len() == 1 + 2 * workers {
            return helper;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the helper never had {workers} workers: {names:?}"
        );
        std::thread::yield_now();
    }
}

fn helper_thread_names(helper: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{helper}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim_end().to_string())
        .collect()
}

/// A server started per query (inetd nowait) serves one connection, so its helper
/// starts one worker; a standalone one starts a worker per connection it may serve
/// at once (up to 32).
#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root and a user nobody for --user nobody"
)]
fn a_server_for_one_connection_starts_one_helper_worker() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let (root_conn, _a, _l) = connection_owned_by(0);
    let (l, r) = (
        root_conn.local_addr().unwrap(),
        root_conn.peer_addr().unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut querier = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let fd: OwnedFd = accepted.into();
    let mut child = Command::new(racefree_path())
        .args(["ident", "serve", "--user", "nobody", "--log", "none"])
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd.try_clone().unwrap()))
        .stderr(Stdio::from(fd))
        .spawn()
        .unwrap();
    let ask = |querier: &mut TcpStream| {
        write!(querier, "{}, {}\r\n", l.port(), r.port()).unwrap();
        let mut reply = [0u8; 64];
        let n = querier.read(&mut reply).unwrap();
        assert!(reply[..n].ends_with(b" : USERID : UNIX : root\r\n"));
    };
    ask(&mut querier);
    let helper = wait_for_helper_with_workers(child.id(), 1);
    // Still one worker after another answer: none was still being started.
    ask(&mut querier);
    let names = helper_thread_names(helper);
    assert_eq!(names.len(), 3, "{names:?}");
    drop(querier);
    assert!(child.wait().unwrap().success());
    // Standalone with the default --max-conns (64): 32 workers.
    let served = Identd::start("127.0.0.1:0", &["--user", "nobody"]);
    assert_eq!(ask_about(&served, &root_conn), "USERID : UNIX : root");
    wait_for_helper_with_workers(served.server.pid(), 32);
}
