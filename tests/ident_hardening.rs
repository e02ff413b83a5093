//! Regression tests for what a hostile tester broke in `ident serve` and `ident
//! query` (issue 9, items 8 and 9; issue 14, item 4: one address starving the
//! others, and link-local addresses). Each failed before its fix.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage};
use predicates::prelude::*;
use racefree::ident::server::ServeChild;

use crate::testenv::netns::TwoLinks;
use crate::testenv::{
    Identd, NOBODY, Precondition, as_fsuid, inode_of, note, racefree, racefree_path,
    read_until_closed_or_line, require,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// `racefree ident serve ARGS` with a connected socket as stdin, stdout and stderr,
/// as inetd nowait starts it; returns the child and the querier's end.
fn served_on_stdin(args: &[&str]) -> (std::process::Child, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let querier = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let fd: OwnedFd = accepted.into();
    let mut cmd = Command::new(racefree_path());
    cmd.args(["ident", "serve"])
        .args(args)
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd.try_clone().unwrap()))
        .stderr(Stdio::from(fd));
    let child = cmd.spawn().unwrap();
    drop(cmd);
    (child, querier)
}

#[test]
fn listen_with_a_socket_on_stdin_is_a_quiet_usage_error() {
    // Under inetd, --listen would have written "listening on ..." and its log onto
    // the client's socket and gone on as a daemon.
    let (mut child, mut querier) = served_on_stdin(&["--listen", "127.0.0.1:0"]);
    let mut got = Vec::new();
    querier
        .read_to_end(&mut got)
        .expect("the server neither closed the socket nor exited");
    assert_eq!(String::from_utf8_lossy(&got), "", "nothing on the socket");
    assert_eq!(child.wait().unwrap().code(), Some(2));
    // With --mode standalone it is what the operator asked for: it serves.
    let (mut child, mut querier) = served_on_stdin(&[
        "--listen",
        "127.0.0.1:0",
        "--mode",
        "standalone",
        "--log",
        "none",
    ]);
    let mut line = [0u8; 13];
    querier.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"listening on ");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A one-shot identd on loopback that reads a request and sends `reply` verbatim.
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
fn query_refuses_unicode_format_characters_in_a_reply() {
    // U+202E RIGHT-TO-LEFT OVERRIDE makes "root" print as something else; U+200B
    // ZERO WIDTH SPACE and U+2066 LEFT-TO-RIGHT ISOLATE hide in plain sight.
    for reply in [
        "1, 2 : USERID : UNIX : \u{202e}toor\r\n",
        "1, 2 : USERID : UNIX : ro\u{200b}ot\r\n",
        "1, 2 : ERROR : NO-USER\u{2066}\r\n",
        "1, 2 : USERID : UNIX : root\u{2028}admin\r\n",
    ] {
        let (port, responder) = fake_identd(reply.as_bytes().to_vec().leak());
        racefree()
            .args(["ident", "query", "127.0.0.1", "1", "2", "--port", &port])
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(
                "malformed reply: reply contains an invisible Unicode format or separator character",
            ))
            .stderr(predicate::str::contains("oo").not());
        responder.join().unwrap();
    }
}

// ---------------------------------------------------------------------------
// One address cannot starve the others (issue 14, item 4)

/// Idle connections held by one address in the slowloris tests: far more than the
/// server's table.
const IDLE: usize = 2000;

/// Raises this process's soft descriptor limit to its hard limit, which must leave
/// room for `needed` descriptors.
fn room_for_descriptors(needed: u64) {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert!(
        hard >= needed,
        "RLIMIT_NOFILE's hard limit, {hard}, leaves no room for {needed} descriptors"
    );
}

/// Opens `count` connections from 127.0.0.2 to `identd`, each sending one byte and
/// no line end (slowloris), counting them in `opened`, until `stop`; returns them,
/// held open.
fn idle_connections(
    identd: SocketAddr,
    count: usize,
    opened: &AtomicUsize,
    stop: &AtomicBool,
) -> Vec<TcpStream> {
    let from = SockaddrStorage::from("127.0.0.2:0".parse::<SocketAddr>().unwrap());
    let mut held = Vec::new();
    while held.len() < count && !stop.load(Ordering::SeqCst) {
        let fd = sock::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        sock::bind(fd.as_raw_fd(), &from).unwrap();
        // A blocking connect gives up after the send timeout (a server that stopped
        // accepting leaves SYNs unanswered for minutes otherwise).
        let bound = nix::sys::time::TimeVal::new(DEADLINE.as_secs() as i64, 0);
        sock::setsockopt(&fd, sock::sockopt::SendTimeout, &bound).unwrap();
        if let Err(e) = sock::connect(fd.as_raw_fd(), &SockaddrStorage::from(identd)) {
            panic!("connection {} from 127.0.0.2: {e}", held.len() + 1);
        }
        let mut s = TcpStream::from(fd);
        // The server may have closed it already, to make room for the next.
        let _ = s.write_all(b"1");
        opened.fetch_add(1, Ordering::SeqCst);
        held.push(s);
    }
    held
}

/// Sets its flag when dropped: tells a helper thread to stop when the test fails.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A connection of this host's and the request line about it, as 127.0.0.1 would
/// ask; and the reply it must get. (The connection is returned: it must stay open.)
fn a_question_with_an_answer() -> ((TcpStream, TcpListener), String, String) {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(service.local_addr().unwrap()).unwrap();
    let (here, there) = (
        client.local_addr().unwrap().port(),
        service.local_addr().unwrap().port(),
    );
    let me = racefree::ident::user_name(nix::unistd::geteuid().as_raw());
    (
        (client, service),
        format!("{here}, {there}\r\n"),
        format!("{here}, {there} : USERID : UNIX : {me}\r\n"),
    )
}

/// Asks `identd` on a fresh connection from 127.0.0.1; the reply must be
/// `expected`. Returns how long the answer took.
fn ask_from_127_0_0_1(identd: SocketAddr, request: &str, expected: &str) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect(identd).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    // Written to a connection the server closed, the request fails; the reply says so.
    let _ = s.write_all(request.as_bytes());
    let got = read_until_closed_or_line(&mut s);
    assert_eq!(got, expected, "a query from 127.0.0.1 was not answered");
    start.elapsed()
}

/// Queries from 127.0.0.1, each answered, while 127.0.0.2 opens [`IDLE`] idle
/// connections and once it holds them all; returns their latencies.
fn answered_while_127_0_0_2_holds_idle_connections(identd: SocketAddr) -> Vec<Duration> {
    let (_connection, request, expected) = a_question_with_an_answer();
    let (opened, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    std::thread::scope(|scope| {
        let attacker = scope.spawn(|| idle_connections(identd, IDLE, &opened, &stop));
        let _stop = StopOnDrop(&stop);
        // Once it holds more than any table: while it opens the rest, and after.
        let start = Instant::now();
        while opened.load(Ordering::SeqCst) < 300 {
            assert!(!attacker.is_finished(), "the attacker stopped early");
            assert!(start.elapsed() < DEADLINE, "300 connections took too long");
            std::thread::yield_now();
        }
        let mut latencies: Vec<Duration> = (0..20)
            .map(|_| ask_from_127_0_0_1(identd, &request, &expected))
            .collect();
        let held = attacker.join().unwrap();
        assert_eq!(held.len(), IDLE);
        latencies.extend((0..20).map(|_| ask_from_127_0_0_1(identd, &request, &expected)));
        latencies
    })
}

fn p50_and_max(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    format!(
        "p50 {:.1} ms, max {:.1} ms",
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    )
}

#[test]
fn idle_connections_from_one_address_starve_no_other() {
    // Before: its first 64 idle connections took every slot, and each query from
    // another address was closed unanswered.
    room_for_descriptors(IDLE as u64 + 256);
    let identd = Identd::start("127.0.0.1:0", &[]);
    let latencies = answered_while_127_0_0_2_holds_idle_connections(identd.addr);
    note(&format!(
        "identd: 40 queries from 127.0.0.1 answered while 127.0.0.2 held {IDLE} idle \
         connections: {}",
        p50_and_max(latencies)
    ));
}

#[test]
fn a_table_larger_than_the_descriptor_limit_allows_is_bounded_and_said_so() {
    // --max-conns 5000 needs about 15,000 descriptors; the server may have 512.
    // Before, it took connections until accept() failed with EMFILE, and then
    // answered no one.
    room_for_descriptors(IDLE as u64 + 256);
    let mut cmd = Command::new(racefree_path());
    cmd.args(["ident", "serve", "--listen", "127.0.0.1:0"])
        .args(["--max-conns", "5000", "--log", "stderr"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let limit = libc::rlimit {
                rlim_cur: 512,
                rlim_max: 512,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Drained as it comes: one line per connection evicted would fill the pipe.
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut all);
        all
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: SocketAddr = first
        .trim_end()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the server did not start: {first:?}"));
    let server = ServeChild::adopt(child, addr);
    answered_while_127_0_0_2_holds_idle_connections(addr);
    drop(server);
    let log = log.join().unwrap();
    // 512 descriptors: 64 for the process, 3 a connection.
    assert!(
        log.contains(
            "the descriptor limit (RLIMIT_NOFILE) leaves room for 149 connections, not \
             --max-conns 5000: serving at most 149 at once, 75 from one address"
        ),
        "{log}"
    );
    assert!(!log.contains("Too many open files"), "{log}");
}

#[test]
fn a_first_request_line_must_arrive_sooner_than_the_next_ones() {
    // --first-line-timeout 1: a connection that never sends a line is closed after
    // a second; one that was answered may wait --timeout for its next line.
    let identd = Identd::start(
        "127.0.0.1:0",
        &["--first-line-timeout", "1", "--timeout", "30"],
    );
    let mut idle = identd.connect();
    let start = Instant::now();
    assert_eq!(read_until_closed_or_line(&mut idle), "");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
    let mut used = identd.connect();
    used.write_all(b"1, 1\r\n").unwrap();
    assert_eq!(
        read_until_closed_or_line(&mut used),
        "1, 1 : ERROR : NO-USER\r\n"
    );
    // Two seconds later, past the first-line timeout, it is still open...
    used.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let waited = used.read(&mut [0u8; 1]).map_err(|e| e.kind());
    assert!(
        matches!(waited, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{waited:?}"
    );
    // ...and answers.
    used.set_read_timeout(Some(DEADLINE)).unwrap();
    used.write_all(b"2, 2\r\n").unwrap();
    assert_eq!(
        read_until_closed_or_line(&mut used),
        "2, 2 : ERROR : NO-USER\r\n"
    );
    // The defaults are in --help (its words rewrapped to one line here).
    let help = racefree().args(["ident", "serve", "-h"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for said in [
        "--first-line-timeout <SECS> Seconds a new connection may take",
        "(at most --timeout) [default: 10]",
        "--max-conns-per-addr <N> Connections one address may hold",
        "[default: half of --max-conns]",
        "--max-conns <N> Standalone and inetd wait",
        "[default: 256]",
    ] {
        assert!(help.contains(said), "{said:?} is not in: {help}");
    }
}

// ---------------------------------------------------------------------------
// Link-local addresses: the interface is part of the connection (issue 14, item 4)

#[test]
fn a_link_local_address_may_name_its_interface() {
    // Before: a usage error. Now the interface is looked up, and matched.
    racefree()
        .args([
            "ident",
            "lookup",
            "--source",
            "netlink",
            "[fe80::1%lo]:22",
            "[fe80::2%lo]:1",
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "racefree: error: no owner for the connection",
        ));
    racefree()
        .args(["ident", "lookup", "--source", "proc"])
        .args(["[fe80::1%lo]:22", "[fe80::2%lo]:1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "/proc/net/tcp6 does not say which interface a connection is on",
        ));
    racefree()
        .args(["ident", "lookup", "[fe80::1%no-such-if0]:22", "[fe80::2]:1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no network interface named 'no-such-if0'",
        ));
    racefree()
        .args(["ident", "lookup", "[fe80::1%lo]:22", "[fe80::2%1234567]:1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "LOCAL and REMOTE name different interfaces",
        ));
    racefree()
        .args(["ident", "query", "fe80::1%no-such-if0", "1", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no network interface named 'no-such-if0'",
        ));
}

/// One connection on each of `net`'s links, with the same addresses and ports:
/// from fe80::1 (this host, its socket owned by nobody on ll0, by root on ll1) to
/// a service on fe80::2. Returns (client, accepted, listener) for each link.
fn the_same_connection_on_both_links(net: &TwoLinks) -> Vec<(TcpStream, TcpStream, TcpListener)> {
    let indexes = TwoLinks::LINKS.map(|l| net.index(l));
    net.inside(|| {
        let (mut client_port, mut service_port) = (0, 0);
        indexes
            .iter()
            .zip([NOBODY, 0])
            .map(|(&index, owner)| {
                let at = |ip: &str, port| {
                    SocketAddr::V6(std::net::SocketAddrV6::new(
                        ip.parse().unwrap(),
                        port,
                        0,
                        index,
                    ))
                };
                let service = TcpListener::bind(at("fe80::2", service_port)).unwrap();
                service_port = service.local_addr().unwrap().port();
                // This thread is in the namespace, and so is the one as_fsuid starts.
                let fd = as_fsuid(owner, || {
                    sock::socket(
                        AddressFamily::Inet6,
                        SockType::Stream,
                        SockFlag::SOCK_CLOEXEC,
                        None,
                    )
                    .unwrap()
                });
                sock::bind(
                    fd.as_raw_fd(),
                    &SockaddrStorage::from(at("fe80::1", client_port)),
                )
                .unwrap();
                sock::connect(
                    fd.as_raw_fd(),
                    &SockaddrStorage::from(service.local_addr().unwrap()),
                )
                .unwrap();
                let client = TcpStream::from(fd);
                client_port = client.local_addr().unwrap().port();
                let (accepted, _) = service.accept().unwrap();
                (client, accepted, service)
            })
            .collect()
    })
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_nat_namespaces)),
    ignore = "needs root, a user nobody, and network namespaces (ip) for two links"
)]
fn a_link_local_connection_is_known_by_its_interface() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let net = TwoLinks::new();
    let conns = the_same_connection_on_both_links(&net);
    let (port, service_port) = (
        conns[0].0.local_addr().unwrap().port(),
        conns[0].2.local_addr().unwrap().port(),
    );
    assert_eq!(
        (port, service_port),
        (
            conns[1].0.local_addr().unwrap().port(),
            conns[1].2.local_addr().unwrap().port()
        ),
        "the premise: the same ports on both links"
    );
    for ((link, conn), user) in TwoLinks::LINKS.iter().zip(&conns).zip(["nobody", "root"]) {
        // sock_diag tells the two apart, the interface named or numbered.
        let index = net.index(link).to_string();
        for scope in [*link, index.as_str()] {
            let out = net
                .racefree()
                .args(["ident", "lookup", "--json", "--source", "netlink"])
                .arg(format!("[fe80::1%{scope}]:{port}"))
                .arg(format!("[fe80::2%{scope}]:{service_port}"))
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{out:?}");
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["inode"], inode_of(&conn.0), "on {scope}: {json}");
            assert_eq!(json["user"], user, "on {scope}: {json}");
        }
        // /proc cannot: it refuses rather than name either.
        net.racefree()
            .args(["ident", "lookup", "--source", "proc"])
            .arg(format!("[fe80::1%{link}]:{port}"))
            .arg(format!("[fe80::2%{link}]:{service_port}"))
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(
                "/proc/net/tcp6 does not say which interface a connection is on",
            ));
    }
    // The server knows the link a query came in on: a querier on each link learns
    // about the connection on its own link only.
    let identd = net.identd("[::]:0", &["--source", "netlink"]);
    let identd_port = identd.addr().port().to_string();
    let scoped = net.identd("[fe80::1%ll1]:0", &["--source", "netlink"]);
    let scoped_port = scoped.addr().port().to_string();
    for (link, user) in TwoLinks::LINKS.iter().zip(["nobody", "root"]) {
        let ports = [port.to_string(), service_port.to_string()];
        net.racefree()
            .args(["ident", "query", "--bind", &format!("fe80::2%{link}")])
            .args(["--port", &identd_port, &format!("fe80::1%{link}")])
            .args(&ports)
            .assert()
            .success()
            .stdout(format!("{user}\n"));
        // A server listening on one link only is reached there, and not elsewhere.
        let on_ll1 = net
            .racefree()
            .args(["ident", "query", "--timeout", "5"])
            .args(["--bind", &format!("fe80::2%{link}")])
            .args(["--port", &scoped_port, &format!("[fe80::1%{link}]")])
            .args(&ports)
            .assert();
        if *link == "ll1" {
            on_ll1.success().stdout("root\n");
        } else {
            on_ll1.code(1).stdout("");
        }
    }
    // With --source proc the server cannot tell, and says so rather than guess.
    let proc_identd = net.identd("[::]:0", &["--source", "proc"]);
    net.racefree()
        .args(["ident", "query", "--bind", "fe80::2%ll0"])
        .args([
            "--port",
            &proc_identd.addr().port().to_string(),
            "fe80::1%ll0",
        ])
        .args([port.to_string(), service_port.to_string()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("UNKNOWN-ERROR"));
}
