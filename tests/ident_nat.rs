//! `racefree ident serve --nat` and `lookup --nat`, for real, on the network of
//! namespaces in `testenv::netns` (a container, a host behind the NAT, an IRC
//! server, a masquerading host between them). Where namespaces cannot be made (not
//! root, no nftables NAT), each test is listed as ignored; under CI=true it runs
//! and fails naming what is missing (tests/testenv/preconditions.rs).

use crate::testenv::netns::{
    BLIND, CTR_NAME, CTR_UID, HOST_IRC, IRC, IRC_PORT, LAN, LAN_GATEWAY, LAN_UID, Net, THIRD_PARTY,
    read_output_line,
};
use crate::testenv::{NOBODY, for_each_setting, proc_status_field, racefree, racefree_path};

fn check_passwd_is_not_the_hosts(net: &Net) {
    // The name must come from the container's database: the host has no such user.
    assert!(
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(CTR_UID))
            .unwrap()
            .is_none(),
        "this host has a uid {CTR_UID}; the test needs it unnamed here"
    );
    assert!(net.container_passwd().exists());
}

/// `--user nobody`: the process that reads queries runs as nobody, and `--nat`
/// runs in the privileged helper.
const AS_NOBODY: &[&str] = &["--user", "nobody"];

/// The identd's options each NAT behaviour is tested under: it must hold alike
/// whether the network side does the work itself or asks the privileged helper.
const USER_SETTINGS: &[(&str, &[&str])] =
    &[("without --user", &[]), ("with --user nobody", AS_NOBODY)];

/// The IRC server, and the host's `ident serve --nat` (with `user`'s options, whose
/// drop is checked): the identd's address.
fn nat_identd(net: &mut Net, user: &[&str]) -> String {
    net.start_irc_server();
    let identd = net.identd(
        "host",
        &[],
        &format!("{HOST_IRC}:0"),
        &[&["--nat"], user].concat(),
    );
    if !user.is_empty() {
        assert_last_identd_runs_as_nobody(net);
    }
    identd
}

/// The identd started last (not through a wrapper) reads the network as nobody:
/// `--user` was not ignored, so its answers came from the helper.
fn assert_last_identd_runs_as_nobody(net: &Net) {
    assert_eq!(
        proc_status_field(net.last_pid(), "Uid"),
        vec![NOBODY.to_string(); 4],
    );
}

/// Under each of [`USER_SETTINGS`].
#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_names_container_users_from_the_containers_passwd_in_any_state() {
    for_each_setting(USER_SETTINGS, container_users_are_named);
}

fn container_users_are_named(user: &[&str]) {
    let mut net = Net::new();
    check_passwd_is_not_the_hosts(&net);
    let identd = nat_identd(&mut net, user);

    let named = net.client("ctr", CTR_UID, false);
    let nobody = net.client("ctr", NOBODY, false);
    let half = net.client("ctr", CTR_UID, true);
    let nobody_half = net.client("ctr", NOBODY, true);
    named.wait_for_state("01");
    nobody.wait_for_state("01");
    half.wait_for_state("05");
    nobody_half.wait_for_state("05");

    // Masquerade keeps the source port when it is free, which it is here; the
    // IRC server sees 198.19.0.1:<port>.
    net.query(&identd, IRC, named.port)
        .success()
        .stdout(format!("{CTR_NAME}\n"));
    net.query(&identd, IRC, nobody.port)
        .success()
        .stdout("nobody\n");
    net.query(&identd, IRC, half.port)
        .success()
        .stdout(format!("{CTR_NAME}\n"));
    net.query(&identd, IRC, nobody_half.port)
        .success()
        .stdout("nobody\n");
    // Still half-closed after the queries: the answers were about FIN_WAIT2 sockets.
    half.wait_for_state("05");
    nobody_half.wait_for_state("05");

    // The same through `ident lookup --nat` on the host, with JSON.
    let local = format!("{HOST_IRC}:{}", half.port);
    let remote = format!("{IRC}:{IRC_PORT}");
    net.lookup(&["--nat", &local, &remote])
        .success()
        .stdout(format!("{CTR_NAME}\n"));
    // ctnetlink's exact GET finds the same entry as the /proc file's scan.
    net.lookup(&["--nat", "--source", "netlink", &local, &remote])
        .success()
        .stdout(format!("{CTR_NAME}\n"));
    net.lookup(&["--nat", "--numeric", &local, &remote])
        .success()
        .stdout(format!("{CTR_UID}\n"));
    let out = net.lookup(&["--nat", "--json", &local, &remote]).success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("JSON");
    assert_eq!(json["user"], CTR_NAME);
    assert_eq!(json["uid"], CTR_UID);
    assert_eq!(json["state"], "FIN_WAIT2");
    assert_eq!(json["pid"], half.pid);
    assert_eq!(
        json["original_local"],
        format!("{}:{}", net.ctr_addr(), half.port)
    );
    // Without --nat the host has no such socket.
    net.lookup(&[&local, &remote])
        .code(1)
        .stdout("")
        .stderr(format!(
            "racefree: error: no owner for the connection {local} to {remote}\n"
        ));
}

/// Under each of [`USER_SETTINGS`].
#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_refuses_a_third_party_and_says_no_user_without_a_conntrack_entry() {
    for_each_setting(USER_SETTINGS, third_party_and_untracked);
}

fn third_party_and_untracked(user: &[&str]) {
    let mut net = Net::new();
    let identd = nat_identd(&mut net, user);
    let named = net.client("ctr", CTR_UID, false);
    named.wait_for_state("01");

    let no_user = |port: u16| {
        format!("racefree: error: NO-USER (identd at {identd}, for {port}, {IRC_PORT})\n")
    };
    // The IRC server itself is answered...
    net.query(&identd, IRC, named.port)
        .success()
        .stdout(format!("{CTR_NAME}\n"));
    // ...a third party asking about the same connection is not.
    net.query(&identd, THIRD_PARTY, named.port)
        .code(1)
        .stdout("")
        .stderr(no_user(named.port));
    // A port no connection was translated for: no conntrack entry, NO-USER.
    let untracked = if named.port == 65535 {
        1024
    } else {
        named.port + 1
    };
    net.query(&identd, IRC, untracked)
        .code(1)
        .stdout("")
        .stderr(no_user(untracked));
    net.lookup(&[
        "--nat",
        &format!("{HOST_IRC}:{untracked}"),
        &format!("{IRC}:{IRC_PORT}"),
    ])
    .code(1)
    .stdout("")
    .stderr(format!(
        "racefree: error: no owner for the connection {HOST_IRC}:{untracked} to {IRC}:{IRC_PORT}: \
             no conntrack entry has it as its reply direction\n"
    ));
    // Without --nat the translated connection is no socket of this host.
    let plain = net.identd("host", &[], &format!("{HOST_IRC}:0"), user);
    net.query(&plain, IRC, named.port).code(1).stderr(format!(
        "racefree: error: NO-USER (identd at {plain}, for {}, {IRC_PORT})\n",
        named.port
    ));
}

/// Under each of [`USER_SETTINGS`].
#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_forward_relays_the_answer_of_the_host_behind() {
    for_each_setting(USER_SETTINGS, forward_relays);
}

/// `--nat --forward` on the NAT host and `--proxy` on the host behind it, both
/// with `user`'s options.
fn forward_relays(user: &[&str]) {
    let mut net = Net::new();
    net.start_irc_server();
    // The LAN host's own identd, trusting the NAT host's forwarded queries.
    let lan_identd = net.identd(
        "lan",
        &[],
        &format!("{LAN}:0"),
        &[&["--proxy", LAN_GATEWAY], user].concat(),
    );
    if !user.is_empty() {
        assert_last_identd_runs_as_nobody(&net);
    }
    let lan_port = lan_identd.rsplit_once(':').unwrap().1.to_string();
    let forward = format!("--forward={lan_port}");
    let identd = net.identd(
        "host",
        BLIND,
        &format!("{HOST_IRC}:0"),
        &[&["--nat", &forward], user].concat(),
    );
    let without = net.identd(
        "host",
        BLIND,
        &format!("{HOST_IRC}:0"),
        &[&["--nat"], user].concat(),
    );

    let lan = net.client("lan", LAN_UID, false);
    lan.wait_for_state("01");
    // The LAN identd answers `USERID : OTHER : 4343` (no passwd entry there) about
    // its ports; the NAT host relays it about the translated ones.
    net.query(&identd, IRC, lan.port)
        .success()
        .stdout(format!("{LAN_UID}\n"));
    // Without --forward: NO-USER.
    net.query(&without, IRC, lan.port).code(1).stderr(format!(
        "racefree: error: NO-USER (identd at {without}, for {}, {IRC_PORT})\n",
        lan.port
    ));
    // The LAN identd still refuses anyone it does not trust to ask by ports.
    net.query_from(
        "host",
        &lan_identd,
        &net.ctr_gateway(),
        (lan.port, IRC_PORT),
    )
    .code(1)
    .stderr(format!(
        "racefree: error: NO-USER (identd at {lan_identd}, for {}, {IRC_PORT})\n",
        lan.port
    ));
}

/// Under `--user`, the query to the host behind is made by the side that holds no
/// privilege: while the LAN host's identd (a stub that answers only when told)
/// holds the question, the NAT host's connection to it is owned by nobody, not by
/// root (the helper, which made it before). Its answer is then relayed.
#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_under_user_forward_is_asked_by_the_unprivileged_side() {
    let mut net = Net::new();
    net.start_irc_server();
    let (stub, stub_port, mut stub_out) = net.start_held_identd_stub();
    let forward = format!("--forward={stub_port}");
    let identd = net.identd(
        "host",
        BLIND,
        &format!("{HOST_IRC}:0"),
        &[&["--nat", &forward], AS_NOBODY].concat(),
    );
    let lan = net.client("lan", LAN_UID, false);
    lan.wait_for_state("01");

    let (ip, port) = identd.rsplit_once(':').unwrap();
    let exe = racefree_path();
    let (lan_port, irc_port) = (lan.port.to_string(), IRC_PORT.to_string());
    let (query, mut answer) = net.spawn(
        "irc",
        &[
            exe.to_str().unwrap(),
            "ident",
            "query",
            "--bind",
            IRC,
            "--port",
            port,
            "--timeout",
            "10",
            ip,
            &lan_port,
            &irc_port,
        ],
    );
    // The stub has the question, about the original ports, from the NAT host.
    let asked = read_output_line(&mut stub_out);
    let (peer, line) = asked.split_once(' ').expect("the stub's report");
    assert_eq!(line, format!("{}, {IRC_PORT}", lan.port), "{asked}");
    let (peer_ip, peer_port) = peer.rsplit_once(':').unwrap();
    assert_eq!(peer_ip, LAN_GATEWAY, "{asked}");
    // The NAT host's end of that connection, in the NAT host's own table.
    let uid = net
        .tcp_owner(
            "host",
            &format!("{LAN_GATEWAY}:{peer_port}"),
            &format!("{LAN}:{stub_port}"),
        )
        .expect("the NAT host's connection to the stub");
    assert_eq!(uid, NOBODY, "the forward was made with privilege");
    // Now the stub answers; the NAT host relays it about the ports it was asked.
    net.tell(stub, "answer");
    assert_eq!(read_output_line(&mut answer), "rflanuser");
    assert!(net.wait(query).success());
}

#[test]
fn nat_flags_are_checked_before_anything_runs() {
    racefree()
        .args(["ident", "lookup", "--forward", "127.0.0.1:1", "127.0.0.1:2"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--nat"));
    racefree()
        .args([
            "ident",
            "lookup",
            "--nat",
            "--forward=0",
            "127.0.0.1:1",
            "127.0.0.1:2",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--forward"));
}

/// contrib/systemd/racefree-identd.service's capability bounding set, with what the
/// drop-in in its comment adds for --nat, is what `--nat --user` needs: within it
/// (applied by setpriv, as systemd would apply it; tests/package.rs runs the units
/// themselves so), the host's identd names a container's user, and without any one
/// of the capabilities the drop-in adds, it cannot. The optional CAP_SYS_ADMIN
/// (sock_diag inside the containers) keeps the answer.
#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_under_user_needs_the_capabilities_the_standalone_unit_documents() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib/systemd/racefree-identd.service"),
    )
    .unwrap();
    let settings = |prefix: &str| -> Vec<Vec<String>> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    };
    let [base] = &settings("CapabilityBoundingSet=")[..] else {
        panic!("not one CapabilityBoundingSet=");
    };
    // The drop-in's lines: the capabilities --nat needs, then the optional one.
    let [for_nat, optional] = &settings("#   CapabilityBoundingSet=")[..] else {
        panic!("not two CapabilityBoundingSet= lines in the comment");
    };
    let [drop_in_exec] = &settings("#   ExecStart=/usr/bin/racefree ")[..] else {
        panic!("not one ExecStart= line in the comment");
    };
    let options: Vec<&str> = drop_in_exec
        .iter()
        .map(String::as_str)
        .skip_while(|&a| a != "--nat")
        .collect();
    assert!(options.contains(&"--nat"), "{drop_in_exec:?}");
    let within = |caps: Vec<&String>| -> Vec<String> {
        let caps: String = caps
            .iter()
            .map(|c| format!(",+{}", c.strip_prefix("CAP_").unwrap().to_ascii_lowercase()))
            .collect();
        ["setpriv", "--inh-caps=-all", "--no-new-privs"]
            .map(String::from)
            .into_iter()
            .chain([format!("--bounding-set=-all{caps}")])
            .collect()
    };

    let mut net = Net::new();
    net.start_irc_server();
    let named = net.client("ctr", CTR_UID, false);
    named.wait_for_state("01");
    let serve = |net: &mut Net, caps: Vec<&String>| {
        let wrapper = within(caps);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let extra = [&options[..], AS_NOBODY].concat();
        net.identd("host", &wrapper, &format!("{HOST_IRC}:0"), &extra)
    };
    for extra in [&[][..], &optional[..]] {
        let identd = serve(&mut net, base.iter().chain(for_nat).chain(extra).collect());
        net.query(&identd, IRC, named.port)
            .success()
            .stdout(format!("{CTR_NAME}\n"));
    }
    for cap in for_nat {
        let identd = serve(
            &mut net,
            base.iter().chain(for_nat).filter(|&c| c != cap).collect(),
        );
        let out = net.query(&identd, IRC, named.port).get_output().clone();
        assert_eq!(
            (out.status.code(), String::from_utf8_lossy(&out.stdout)),
            (Some(1), "".into()),
            "without {cap}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
