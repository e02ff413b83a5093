//! Regression tests for what a hostile tester broke in `ident serve` and `ident
//! query` (issue 9, items 8 and 9; issue 14, item 4: link-local addresses). Each
//! failed before its fix.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage};
use predicates::prelude::*;

use crate::testenv::netns::TwoLinks;
use crate::testenv::{NOBODY, Precondition, as_fsuid, inode_of, racefree, racefree_path, require};

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
