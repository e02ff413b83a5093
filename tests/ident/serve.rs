//! `racefree ident serve`: standalone, under inetd and systemd, asked by a
//! client this project did not write, and as contrib/'s service files start it.

use super::*;
use racefree::ident::server::child::{Said, StartError};

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

/// A standalone server started here (not through [`ServeChild::start`], so `cmd`
/// can carry a sandbox), with its stderr kept apart: `--log stderr`. Returns it,
/// once it said where it listens, and its stderr, to read after it is stopped.
fn standalone_logging_to_stderr(cmd: &mut Command) -> (Identd, std::process::ChildStderr) {
    standalone_on("127.0.0.1:0", cmd)
}

/// [`standalone_logging_to_stderr`] listening on `listen`.
fn standalone_on(listen: &str, cmd: &mut Command) -> (Identd, std::process::ChildStderr) {
    cmd.args(["ident", "serve", "--listen", listen, "--log", "stderr"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|a| a.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("the server said {line:?}"));
    (Identd::adopt(child, addr), stderr)
}

/// Everything a stopped server wrote on stderr.
fn stopped(identd: Identd, mut stderr: std::process::ChildStderr) -> String {
    drop(identd);
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn standalone_says_where_it_listens_on_stdout_alone() {
    let (identd, stderr) = standalone_logging_to_stderr(&mut Command::new(racefree_path()));
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    assert_served(&identd, cl, cr, Some(&my_name()));
    let log = stopped(identd, stderr);
    // The log does go to stderr (the query is in it); the address does not.
    assert!(log.contains(&format!("about {}", cl.port())), "{log}");
    assert!(!log.contains("listening on"), "{log}");
}

/// In a sandbox that refuses sock_diag, the default source reads /proc, and says
/// once why; for a passing failure (EMFILE) it reads /proc too, saying nothing of a
/// refusal. Either way every live state is answered and TIME_WAIT is nobody's.
#[test]
fn a_server_in_a_sandbox_without_sock_diag_answers_from_proc() {
    let me = my_name();
    for (errno, refused) in [
        (libc::EACCES, true),
        (libc::EPROTONOSUPPORT, true),
        (libc::EMFILE, false),
    ] {
        let mut cmd = Command::new(racefree_path());
        deny_sock_diag(&mut cmd, errno);
        let (identd, stderr) = standalone_logging_to_stderr(&mut cmd);
        let fw1 = fin_wait1_conn();
        let (cl, cr) = fw1.client_end();
        wait_for_state(cl, cr, TcpState::FinWait1);
        assert_served(&identd, cl, cr, Some(&me));
        let half = connect_pair("127.0.0.1:0", None);
        half.client.shutdown(std::net::Shutdown::Write).unwrap();
        let (hl, hr) = half.client_end();
        let (sl, sr) = half.server_end();
        wait_for_state(hl, hr, TcpState::FinWait2);
        assert_served(&identd, hl, hr, Some(&me));
        assert_served(&identd, sl, sr, Some(&me));
        let (tl, tr) = time_wait_end();
        assert_served(&identd, tl, tr, None);
        wait_for_state(cl, cr, TcpState::FinWait1);
        let log = stopped(identd, stderr);
        let why = std::io::Error::from_raw_os_error(errno).to_string();
        let said = log.lines().any(|l| {
            l.contains("--source auto reads /proc/net/tcp{,6}: netlink sock_diag is refused here")
                && l.contains(&why)
        });
        assert_eq!(said, refused, "errno {errno}:\n{log}");
        assert!(!log.contains("UNKNOWN-ERROR"), "errno {errno}:\n{log}");
    }
}

/// inetd starts `ident serve` per query, so main parses its command line against
/// serve's own arguments alone (as for lock); it must parse every line exactly as
/// the full parser does, and leave to it every line it does not accept.
#[test]
fn the_fast_parser_agrees_with_the_full_one_for_serve() {
    use clap::Parser;
    use racefree::cli::{Cli, parse_primitive_fast};
    let argv = |line: &[&str]| -> Vec<std::ffi::OsString> {
        ["racefree", "ident", "serve"]
            .iter()
            .chain(line)
            .map(Into::into)
            .collect()
    };
    let lines: &[&[&str]] = &[
        &[],
        &["--user", "nobody", "--log", "none"],
        &[
            "--listen",
            ":113",
            "--listen",
            "127.0.0.1:0",
            "--max-conns",
            "8",
        ],
        &["-e", "-r", "unknown", "-o", "-c", "UTF-8"],
        &["-R", "x", "--other=VMS"],
        &[
            "--nat",
            "--forward",
            "--source",
            "proc",
            "--hide",
            "root",
            "--numeric",
        ],
    ];
    for line in lines {
        let fast = parse_primitive_fast(&argv(line))
            .unwrap_or_else(|| panic!("fast parse refused {line:?}"));
        let full = Cli::try_parse_from(argv(line)).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line:?}");
    }
    let refused: &[&[&str]] = &[
        &["--help"],
        &["-h"],
        &["--version"],
        &["--listen", "bogus"],
        &["-R", "x", "-r", "y"],
        &["--forward"],
    ];
    for line in refused {
        assert!(parse_primitive_fast(&argv(line)).is_none(), "{line:?}");
    }
    let other: Vec<std::ffi::OsString> = ["racefree", "ident", "lookup", "1.2.3.4:5", "1.2.3.4:6"]
        .iter()
        .map(Into::into)
        .collect();
    assert!(parse_primitive_fast(&other).is_none());
}

/// Why a server did not start, as its wrapper reports it (for the stress harness as
/// for these tests): its stderr, kept whole and also in the one-line message.
fn start_error(listen: &str) -> (String, StartError) {
    let Err(e) = Identd::try_start(listen, &[]) else {
        panic!("a server started on {listen}")
    };
    let line = format!("{e:#}");
    (line, e.downcast().expect("a StartError"))
}

#[test]
fn a_server_that_cannot_bind_is_reported_with_its_error_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (line, e) = start_error(&addr.to_string());
    let why = format!("racefree: error: binding {addr}: Address already in use (os error 98)");
    assert_eq!(e.said, Said::Nothing);
    assert_eq!(e.status.and_then(|s| s.code()), Some(1));
    assert_eq!(e.stderr, format!("{why}\n"));
    assert_eq!(
        line,
        format!(
            "starting {} ident serve: the server exited before listening (exit status: 1): {why}",
            racefree_path().display()
        )
    );
}

#[test]
fn a_listen_address_clap_refuses_is_reported_on_one_line() {
    let (line, e) = start_error("bogus");
    assert_eq!(e.status.and_then(|s| s.code()), Some(2));
    assert!(
        e.stderr.starts_with(
            "racefree: error: invalid value 'bogus' for '--listen <ADDR:PORT>': \
             expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT\n"
        ),
        "{}",
        e.stderr
    );
    assert!(
        line.ends_with(
            "(exit status: 2): racefree: error: invalid value 'bogus' for '--listen <ADDR:PORT>': \
             expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT"
        ),
        "{line}"
    );
}

#[test]
fn a_listen_value_that_cannot_be_parsed_says_what_is_wrong() {
    for (value, why) in [
        (
            "127.0.0.1",
            "no port; expected ADDR:PORT, [V6ADDR]:PORT, :PORT or PORT",
        ),
        (
            "::1:113",
            "an IPv6 address goes in brackets: [::1:113]:PORT",
        ),
        ("70000", "port 70000 is out of range (0 to 65535)"),
        (
            "localhost:113",
            "\"localhost\" is not an IP address (names are not resolved)",
        ),
    ] {
        racefree()
            .args(["ident", "serve", "--listen", value])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with(format!(
                "racefree: error: invalid value '{value}' for '--listen <ADDR:PORT>': {why}"
            )));
    }
}

#[test]
#[cfg_attr(
    not(all(has_ipv6_loopback, has_dual_stack)),
    ignore = "needs IPv6 loopback and dual-stack sockets"
)]
fn a_port_alone_listens_on_every_address_ipv4_and_ipv6() {
    require(&[Precondition::Ipv6Loopback, Precondition::DualStack]);
    let me = my_name();
    for listen in [":0", "0"] {
        let mut identd = Identd::start(listen, &[]);
        assert_eq!(
            identd.addr.ip(),
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
        );
        let port = identd.addr.port();
        assert_ne!(port, 0);
        for (here, on) in [("127.0.0.1", "127.0.0.1:0"), ("::1", "[::1]:0")] {
            identd.addr = SocketAddr::new(here.parse().unwrap(), port);
            let c = connect_pair(on, None);
            let (cl, cr) = c.client_end();
            assert_served(&identd, cl, cr, Some(&me));
        }
    }
}

#[test]
fn a_port_alone_on_a_host_without_ipv6_listens_on_every_ipv4_address() {
    let mut cmd = Command::new(racefree_path());
    let (mut identd, stderr) = standalone_on(":0", crate::testenv::deny_ipv6(&mut cmd));
    assert_eq!(identd.addr.ip(), IpAddr::from(Ipv4Addr::UNSPECIFIED));
    identd.addr.set_ip(Ipv4Addr::LOCALHOST.into());
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    assert_served(&identd, cl, cr, Some(&my_name()));
    let log = stopped(identd, stderr);
    assert!(!log.contains("error"), "{log}");
}

#[test]
#[cfg_attr(
    not(all(has_ipv6_loopback, has_dual_stack)),
    ignore = "needs IPv6 loopback and dual-stack sockets"
)]
fn server_answers_over_ipv6_and_for_ipv4_clients_of_dual_stack_listeners() {
    require(&[Precondition::Ipv6Loopback, Precondition::DualStack]);
    let identd = Identd::start("[::1]:0", &[]);
    let me = my_name();
    let c = connect_pair("[::1]:0", None);
    let (cl, cr) = c.client_end();
    assert_served(&identd, cl, cr, Some(&me));

    // identd itself on a dual-stack [::] socket, asked over IPv4 about an IPv4
    // connection: its addresses are mapped on the ident socket but not in /proc/net/tcp.
    let mut v4 = Identd::start("[::]:0", &[]);
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

/// oidentd's reply options, spelled as a migration from it spells them: `-r` for a
/// failed lookup, `-e` hiding which error, `-R` for every query, `-o` and `-c` for
/// the OS and charset fields.
#[test]
fn oidentds_reply_options_shape_the_answers() {
    let me = my_name();
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let (sp, cp) = (cl.port(), cr.port());
    let owned = format!("{sp}, {cp}\r\n");
    // 127.0.0.1:1 to 127.0.0.1:1 is nobody's connection.
    let unowned = b"1, 1\r\n";
    let malformed = b"no ports here\r\n";
    let ask = |args: &[&str]| {
        let identd = Identd::start("127.0.0.1:0", args);
        [
            identd.ask_line(owned.as_bytes()),
            identd.ask_line(unowned),
            identd.ask_line(malformed),
        ]
    };
    let user = |u: &str| userid(sp, cp, u);
    assert_eq!(
        ask(&[]),
        [
            user(&me),
            error(1, 1, "NO-USER"),
            error(0, 0, "INVALID-PORT")
        ]
    );
    // -r: a lookup that finds nobody answers the fixed user id; an owner is named.
    assert_eq!(
        ask(&["-r", "unknown"]),
        [
            user(&me),
            userid(1, 1, "unknown"),
            error(0, 0, "INVALID-PORT")
        ]
    );
    // ...and a hidden owner stays hidden.
    assert_eq!(
        ask(&["--reply", "unknown", "--hide", &me])[0],
        error(sp, cp, "HIDDEN-USER")
    );
    // -e: every error is UNKNOWN-ERROR, so hidden, absent and malformed look alike.
    let unknown = |a, b| error(a, b, "UNKNOWN-ERROR");
    assert_eq!(
        ask(&["-e", "--hide", &me]),
        [unknown(sp, cp), unknown(1, 1), unknown(0, 0)]
    );
    assert_eq!(ask(&["--error"])[0], user(&me));
    // -r before -e: the failed lookup is answered, not hidden.
    assert_eq!(ask(&["-e", "-r", "unknown"])[1], userid(1, 1, "unknown"));
    // -R: every well-formed request gets the one user id; nothing is looked up.
    assert_eq!(
        ask(&["-R", "ircuser"]),
        [
            user("ircuser"),
            userid(1, 1, "ircuser"),
            error(0, 0, "INVALID-PORT")
        ]
    );
    // -o without a value is OTHER; -c names the charset after it.
    let fields = |os: &str, id: &str| format!("{sp}, {cp} : USERID : {os} : {id}\r\n");
    assert_eq!(ask(&["-o", "-c", "UTF-8"])[0], fields("OTHER,UTF-8", &me));
    assert_eq!(
        ask(&["--other=UNIX", "--numeric"])[0],
        fields("UNIX", &euid().to_string())
    );
    assert_eq!(ask(&["-oVMS"])[0], fields("VMS", &me));
    // What the client makes of such a reply: the user id, as always.
    Identd::start("127.0.0.1:0", &["--other", "--charset", "UTF-8"])
        .query(sp, cp, None)
        .success()
        .stdout(format!("{me}\n"));
}

#[test]
fn reply_values_that_could_not_go_on_the_wire_are_usage_errors() {
    for (args, message) in [
        (
            &["-r", "a b"][..],
            "invalid value 'a b' for '--reply <USERID>'",
        ),
        (
            &["-R", "x:y"],
            "invalid value 'x:y' for '--reply-all <USERID>'",
        ),
        (
            &["-c", "UTF 8"],
            "invalid value 'UTF 8' for '--charset <CHARSET>'",
        ),
        (
            &["--other=UNIX,UTF-8"],
            "invalid value 'UNIX,UTF-8' for '--other [<OS>]'",
        ),
        (
            &["-R", "x", "--hide-all"],
            "'--reply-all <USERID>' cannot be used with '--hide-all'",
        ),
    ] {
        racefree()
            .args(["ident", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(message));
    }
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
            // A SIGCHLD handler in this test process (another test's child exiting)
            // interrupts the read: not the server's doing.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
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

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root (for --user) and a user named nobody"
)]
fn serve_drops_privileges_with_user() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let identd = Identd::start("127.0.0.1:0", &["--user", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", identd.server.pid())).unwrap();
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
    let identd = Identd::adopt(cmd.spawn().unwrap(), addr);
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
    let identd = Identd::adopt(systemd_child(listener.into()), addr);
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
// A client this project did not write

#[test]
#[cfg_attr(
    not(all(has_net_ident, has_root)),
    ignore = "needs Perl's Net::Ident (libnet-ident-perl) and root (to bind port 113)"
)]
fn perls_net_ident_gets_the_owner_from_our_server() {
    // Net::Ident always asks port 113, so the server needs a loopback address of its
    // own on 113 (root, or CAP_NET_BIND_SERVICE).
    require(&[Precondition::NetIdent, Precondition::Root]);
    let identd = Identd::start("127.0.0.9:113", &[]);
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
#[cfg_attr(
    not(has_root),
    ignore = "needs root: the service files start as root and drop to _racefree-identd"
)]
fn contrib_service_files_run_the_server_they_describe() {
    require(&[Precondition::Root]);
    // The account their --user names, as the package's postinst makes it.
    let _account = crate::testenv::IdentdAccount::present();
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
