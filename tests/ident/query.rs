//! `racefree ident query`, and the library's client and server in process.

use super::*;

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
