//! Regression tests for what a hostile tester broke in `ident serve` and `ident
//! query` (issue 9, items 8 and 9). Each failed before its fix.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use predicates::prelude::*;

use crate::testenv::{racefree, racefree_path};

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
