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

/// `ident query --json` and its exit status, parsed.
fn query_json(port: &str, ports: (u16, u16), extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = racefree()
        .args(["ident", "query", "--json", "127.0.0.1"])
        .args([ports.0.to_string(), ports.1.to_string()])
        .args(["--port", port, "--timeout", "10"])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "--json says everything on stdout"
    );
    // Nothing a terminal could be driven by: JSON escapes control characters.
    assert!(!out.stdout.contains(&0x1b), "{:?}", out.stdout);
    let json = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code(), json)
}

#[test]
fn query_json_carries_every_field_and_the_verdict() {
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let (sp, cp) = (cl.port(), cr.port());
    let identd = Identd::start("127.0.0.1:0", &["--charset", "UTF-8"]);
    let port = identd.addr.port().to_string();
    let (code, json) = query_json(&port, (sp, cp), &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        json,
        serde_json::json!({
            "identd": identd.addr.to_string(),
            "server_port": sp,
            "client_port": cp,
            "verdict": "USERID",
            "os": "UNIX",
            "charset": "UTF-8",
            "user": my_name(),
            "line": format!("{sp}, {cp} : USERID : UNIX,UTF-8 : {}", my_name()),
        })
    );
    // Nobody's connection: ERROR, and the token as sent; no charset field to carry.
    let plain = Identd::start("127.0.0.1:0", &[]);
    let (code, json) = query_json(&plain.addr.port().to_string(), (1, 1), &[]);
    assert_eq!(code, Some(1));
    assert_eq!(json["verdict"], "ERROR");
    assert_eq!(json["error"], "NO-USER");
    assert_eq!(json["line"], "1, 1 : ERROR : NO-USER");
    assert_eq!(json.get("charset"), None);
    assert_eq!(json.get("hint"), None);
    // Lines the client refuses: invalid, with the reason and the line itself.
    for (reply, reason, line) in [
        (
            &b"1, 2 : USERID : UNIX : \x1b[31mroot\r\n"[..],
            "reply contains a control character",
            serde_json::json!("1, 2 : USERID : UNIX : \u{1b}[31mroot"),
        ),
        (
            b"3, 4 : USERID : UNIX : mallory\r\n",
            "answered for ports 3, 4",
            serde_json::json!("3, 4 : USERID : UNIX : mallory"),
        ),
    ] {
        let (port, responder) = fake_identd(reply);
        let (code, json) = query_json(&port, (1, 2), &[]);
        responder.join().unwrap();
        assert_eq!(code, Some(1));
        assert_eq!(json["verdict"], "invalid", "{json}");
        assert_eq!(json["reason"], reason, "{json}");
        assert_eq!(json["line"], line, "{json}");
        assert_eq!(json.get("user"), None, "{json}");
    }
    // Not UTF-8: the bytes, in hex.
    let (port, responder) = fake_identd(b"1, 2 : USERID : UNIX : \xff\r\n");
    let (code, json) = query_json(&port, (1, 2), &[]);
    responder.join().unwrap();
    assert_eq!(code, Some(1));
    assert_eq!(json["reason"], "reply is not UTF-8");
    assert_eq!(
        json["line_hex"],
        "312c2032203a20555345524944203a20554e4958203a20ff"
    );
    assert_eq!(json.get("line"), None);
}

/// A connection from 127.0.0.1 to a service on 127.0.0.2, asked about at
/// 127.0.0.2's identd with its two ports swapped: NO-USER, and a hint naming the
/// connection this host does have and the question that asks about it.
#[test]
fn no_user_for_swapped_ports_says_they_may_be_the_wrong_way_round() {
    let service = "127.0.0.2".parse().unwrap();
    let c = connect_to(
        TcpListener::bind(SocketAddr::new(service, 0)).unwrap(),
        Some("127.0.0.1".parse().unwrap()),
    );
    let (cl, cr) = c.client_end();
    let (here, there) = (cl.port(), cr.port());
    let identd = Identd::start("127.0.0.2:0", &[]);
    let hint = format!(
        "the ports may be the wrong way round: port {here} of this host is connected to \
         port {there} of 127.0.0.2, which `racefree ident query 127.0.0.2 {there} {here}` \
         asks about"
    );
    identd
        .query(here, there, Some("127.0.0.1"))
        .code(1)
        .stdout("")
        .stderr(format!(
            "racefree: error: NO-USER (identd at {}, for {here}, {there}); {hint}\n",
            identd.addr
        ));
    let (code, json) = query_json_at(&identd, (here, there));
    assert_eq!(
        (code, &json["error"], &json["hint"]),
        (Some(1), &"NO-USER".into(), &hint.into())
    );
    // The question it suggests is answered.
    identd
        .query(there, here, Some("127.0.0.1"))
        .success()
        .stdout(format!("{}\n", my_name()));
    // NO-USER for ports that name nothing here either way: no hint.
    identd
        .query(1, 1, Some("127.0.0.1"))
        .code(1)
        .stderr(format!(
            "racefree: error: NO-USER (identd at {}, for 1, 1)\n",
            identd.addr
        ));
}

/// [`query_json`] against `identd` on its own address, from 127.0.0.1.
fn query_json_at(identd: &Identd, ports: (u16, u16)) -> (Option<i32>, serde_json::Value) {
    let out = racefree()
        .args(["ident", "query", "--json", &identd.addr.ip().to_string()])
        .args([ports.0.to_string(), ports.1.to_string()])
        .args([
            "--port",
            &identd.addr.port().to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}
