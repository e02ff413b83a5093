//! `racefree ident lookup`.

use super::*;
use crate::testenv::as_fsuid;

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

#[test]
fn lookup_answers_no_owner_for_time_wait_never_root() {
    let (cl, cr) = time_wait_end();
    assert_lookup_finds_nobody(cl, cr);
    wait_for_state(cl, cr, TcpState::TimeWait);
}

#[test]
#[cfg_attr(not(has_ipv6_loopback), ignore = "needs IPv6 loopback")]
fn lookup_finds_ipv6_loopback_connections() {
    require(&[Precondition::Ipv6Loopback]);
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let c = connect_to(listener, None);
    let (cl, cr) = c.client_end();
    assert!(cl.is_ipv6());
    wait_for_state(cl, cr, TcpState::Established);
    assert_lookup_finds(cl, cr, inode_of(&c.client), "ESTABLISHED");
    let (sl, sr) = c.server_end();
    assert_lookup_finds(sl, sr, inode_of(&c.server), "ESTABLISHED");
}

#[test]
#[cfg_attr(not(has_dual_stack), ignore = "needs dual-stack sockets")]
fn lookup_finds_an_ipv4_client_of_a_dual_stack_listener_in_both_notations() {
    require(&[Precondition::DualStack]);
    let listener = TcpListener::bind("[::]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
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
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root (to create a socket as another user) and a user named nobody"
)]
fn lookup_reports_the_real_owner_not_the_caller() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    // A socket's owner is the creating thread's fsuid.
    let uid = nobody.uid.as_raw();
    let client = as_fsuid(uid, || {
        sock::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap()
    });
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

/// `racefree ident lookup` with no `--source` (auto) where opening a sock_diag
/// socket fails with `errno`, as in a sandbox whose seccomp filter blocks it.
fn lookup_in_sandbox(errno: i32, source: Option<&str>, l: SocketAddr, r: SocketAddr) -> Assert {
    use assert_cmd::prelude::OutputAssertExt;
    let mut cmd = Command::new(racefree_path());
    deny_sock_diag(&mut cmd, errno).args(["ident", "lookup", "--json"]);
    if let Some(s) = source {
        cmd.args(["--source", s]);
    }
    cmd.args([l.to_string(), r.to_string()]).assert()
}

#[test]
fn the_default_source_is_sock_diag_where_the_kernel_offers_it() {
    let c = connect_pair("127.0.0.1:0", None);
    let (cl, cr) = c.client_end();
    let out = racefree()
        .args([
            "ident",
            "lookup",
            "--json",
            &cl.to_string(),
            &cr.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = if netlink_works() { "netlink" } else { "proc" };
    assert_eq!(json["source"], expected, "{json}");
    assert_eq!(json["inode"], inode_of(&c.client));
}

/// A sandbox that refuses sock_diag (no such protocol, or a seccomp filter saying
/// EACCES or EPERM) still gets answers from the default source, read from /proc by
/// the same rule: any live state has its owner, TIME_WAIT none. A passing failure
/// (EMFILE) is answered from /proc too. `--source netlink` is the control: the
/// filter does refuse it, naming the error.
#[test]
fn auto_answers_from_proc_where_a_sandbox_refuses_sock_diag() {
    let est = connect_pair("127.0.0.1:0", None);
    let fw1 = fin_wait1_conn();
    let (fl, fr) = fw1.client_end();
    wait_for_state(fl, fr, TcpState::FinWait1);
    let half = connect_pair("127.0.0.1:0", None);
    half.client.shutdown(std::net::Shutdown::Write).unwrap();
    let (hl, hr) = half.client_end();
    wait_for_state(hl, hr, TcpState::FinWait2);
    let (tl, tr) = time_wait_end();
    let (el, er) = est.client_end();
    let ends = [
        (el, er, inode_of(&est.client), "ESTABLISHED"),
        (fl, fr, inode_of(&fw1.client), "FIN_WAIT1"),
        (hl, hr, inode_of(&half.client), "FIN_WAIT2"),
    ];
    for errno in [
        libc::EPROTONOSUPPORT,
        libc::EACCES,
        libc::EPERM,
        libc::EMFILE,
    ] {
        for (l, r, inode, state) in ends {
            let out = lookup_in_sandbox(errno, None, l, r).success();
            let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
            assert_eq!(json["source"], "proc", "errno {errno}: {json}");
            assert_eq!(json["inode"], inode, "errno {errno}: {json}");
            assert_eq!(json["state"], state, "errno {errno}: {json}");
            assert_eq!(json["uid"], euid(), "errno {errno}: {json}");
        }
        lookup_in_sandbox(errno, None, tl, tr)
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains("no owner for the connection"));
        let why = std::io::Error::from_raw_os_error(errno).to_string();
        lookup_in_sandbox(errno, Some("netlink"), el, er)
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(
                "racefree: error: netlink sock_diag is unavailable: ",
            ))
            .stderr(predicate::str::contains(format!(
                "opening a NETLINK_SOCK_DIAG socket: {why}"
            )));
    }
    // The states the lookups saw are still the states.
    wait_for_state(fl, fr, TcpState::FinWait1);
    wait_for_state(hl, hr, TcpState::FinWait2);
    wait_for_state(tl, tr, TcpState::TimeWait);
}
