//! `racefree ident serve --nat` and `lookup --nat`, for real: network namespaces,
//! veth pairs, an nftables MASQUERADE rule and the kernel's conntrack.
//!
//! Topology (all addresses in 198.18.0.0/15, only inside namespaces made here and
//! deleted at the end, pass or fail, by [`Net`]'s Drop):
//!
//! ```text
//!  ctr 198.18.N.2 ──┐                       ┌── 198.19.0.2 irc (the IRC server)
//!  (container: own  ├─ host 198.18.N.1      │   198.19.0.3 (a third party)
//!   /etc/passwd)    │       198.18.2.1      │
//!  lan 198.18.2.2 ──┘       198.19.0.1 ─────┘   masquerade out of irc0
//!  (another host, its own identd --proxy 198.18.2.1)
//! ```
//!
//! Clients are perl processes (IO::Socket, in every Debian) run inside the
//! container with `unshare --mount` and a bind-mounted test passwd, so the name
//! can only come from the container's database. Where namespaces cannot be made
//! (not root, no nftables NAT), each test is listed as ignored; under CI=true it
//! runs and fails naming what is missing (tests/testenv/preconditions.rs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::testenv::{Precondition, require};
use crate::util::racefree_path;

const HOST_IRC: &str = "198.19.0.1";
const IRC: &str = "198.19.0.2";
const THIRD_PARTY: &str = "198.19.0.3";
const LAN: &str = "198.18.2.2";
const LAN_GATEWAY: &str = "198.18.2.1";
const IRC_PORT: u16 = 6667;

/// A wrapper for the NAT host's identd when it forwards: a PID namespace of its own,
/// where it sees none of the test's processes, so the LAN host is another machine
/// to it, not a container.
const BLIND: &[&str] = &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"];

/// How long any one wait here may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// uids of the test's users: a name only the container's passwd has, and nobody.
const CTR_UID: u32 = 4242;
const CTR_NAME: &str = "rfctruser";
const NOBODY: u32 = 65534;
/// A uid no passwd names, for the host behind the NAT.
const LAN_UID: u32 = 4343;

/// Builds the topology; the machine must have what it takes (checked first, so a
/// failure names the missing precondition), and a topology that cannot be built
/// on such a machine fails the test.
fn net() -> Net {
    require(&[Precondition::Root, Precondition::NatNamespaces]);
    Net::build().unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"))
}

/// The namespaces, and every process started in them; all gone on drop.
struct Net {
    prefix: String,
    /// The container's subnet is 198.18.<ctr_subnet>.0/24.
    ctr_subnet: u32,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

impl Net {
    fn build() -> Result<Net, String> {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let net = Net {
            prefix: format!("rfnat{}-{serial}", std::process::id()),
            // Each test's container gets its own address: the identd searches every
            // namespace of the machine, and tests running at once could otherwise
            // hold the same 4-tuple (an ambiguity it rightly refuses to resolve).
            ctr_subnet: 16 + serial,
            children: Vec::new(),
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        // From here on, Drop removes whatever was made, however far we got.
        for ns in ["host", "ctr", "lan", "irc"] {
            run(&["ip", "netns", "add", &net.ns(ns)])?;
            run(&["ip", "-n", &net.ns(ns), "link", "set", "lo", "up"])?;
        }
        let host = net.ns("host");
        let ctr_gateway = format!("198.18.{}.1", net.ctr_subnet);
        let (ctr_host_addr, ctr_addr) = (
            format!("{ctr_gateway}/24"),
            format!("{}/24", net.ctr_addr()),
        );
        for (ns, host_if, host_addr, addr) in [
            ("ctr", "ctr0", ctr_host_addr.as_str(), ctr_addr.as_str()),
            ("lan", "lan0", "198.18.2.1/24", "198.18.2.2/24"),
            ("irc", "irc0", "198.19.0.1/24", "198.19.0.2/24"),
        ] {
            let other = net.ns(ns);
            run(&[
                "ip", "link", "add", host_if, "netns", &host, "type", "veth", "peer", "name",
                "eth0", "netns", &other,
            ])?;
            run(&["ip", "-n", &host, "addr", "add", host_addr, "dev", host_if])?;
            run(&["ip", "-n", &host, "link", "set", host_if, "up"])?;
            run(&["ip", "-n", &other, "addr", "add", addr, "dev", "eth0"])?;
            run(&["ip", "-n", &other, "link", "set", "eth0", "up"])?;
        }
        run(&[
            "ip",
            "-n",
            &net.ns("irc"),
            "addr",
            "add",
            "198.19.0.3/24",
            "dev",
            "eth0",
        ])?;
        run(&[
            "ip",
            "-n",
            &net.ns("ctr"),
            "route",
            "add",
            "default",
            "via",
            &ctr_gateway,
        ])?;
        run(&[
            "ip",
            "-n",
            &net.ns("lan"),
            "route",
            "add",
            "default",
            "via",
            LAN_GATEWAY,
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            &host,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            &host,
            "nft",
            "add table ip racefree_nat; \
             add chain ip racefree_nat post { type nat hook postrouting priority 100; }; \
             add rule ip racefree_nat post oifname irc0 masquerade",
        ])?;
        // The container's /etc: its own passwd over the host's other files, mode
        // 0755 so the clients' users can still read /etc/protocols through it.
        let etc = net.dir.path().join("etc");
        std::fs::create_dir(&etc).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&etc, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        std::fs::write(
            etc.join("passwd"),
            format!(
                "root:x:0:0:root:/root:/bin/sh\n\
                 {CTR_NAME}:x:{CTR_UID}:{CTR_UID}:container user:/home/{CTR_NAME}:/bin/sh\n\
                 nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(net)
    }

    fn ctr_addr(&self) -> String {
        format!("198.18.{}.2", self.ctr_subnet)
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `ip netns exec NS` + `args`, with stdin and stdout piped.
    fn spawn(&mut self, ns: &str, args: &[&str]) -> (usize, BufReader<std::process::ChildStdout>) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning ip netns exec");
        let out = BufReader::new(child.stdout.take().unwrap());
        self.children.push(child);
        (self.children.len() - 1, out)
    }

    /// The IRC server: accepts on 198.19.0.2:6667 and holds every connection open
    /// (never closes, so a client that half-closes stays in FIN_WAIT2).
    fn start_irc_server(&mut self) {
        let script = format!(
            "use IO::Socket::INET; $|=1; \
             my $s = IO::Socket::INET->new(LocalAddr => '{IRC}:{IRC_PORT}', Listen => 16, ReuseAddr => 1) or die \"listen: $!\"; \
             print \"ready\\n\"; my @held; while (my $c = $s->accept) {{ push @held, $c }}"
        );
        let (_, mut out) = self.spawn("irc", &["perl", "-e", &script]);
        assert_eq!(read_line(&mut out), "ready");
    }

    /// A client connection to the IRC server from namespace `ns`, owned by `uid`,
    /// in a process with its own mount namespace where `/etc/passwd` is the test's
    /// (the container's database). `half_close` shuts its sending side down.
    ///
    /// The test's passwd is laid over the whole of `/etc` (an overlay), not
    /// bind-mounted on the file: `useradd` in a concurrent test renames the host's
    /// `/etc/passwd`, and since Linux 3.18 that detaches a mount on that file in
    /// every other mount namespace, silently giving the container the host's database.
    fn client(&mut self, ns: &str, uid: u32, half_close: bool) -> Client {
        let etc = self.dir.path().join("etc");
        let script = format!(
            "use IO::Socket::INET; $|=1; \
             my $c = IO::Socket::INET->new(PeerAddr => '{IRC}:{IRC_PORT}') or die \"connect: $!\"; \
             {} print $c->sockport, \"\\n\"; while (<STDIN>) {{}}",
            if half_close { "shutdown($c, 1);" } else { "" }
        );
        let inner = format!(
            "mount -t overlay overlay -o \"lowerdir=$1:/etc\" /etc && \
             exec setpriv --reuid={uid} --regid={uid} --clear-groups perl -e \"$2\""
        );
        let (index, mut out) = self.spawn(
            ns,
            &[
                "unshare",
                "--mount",
                "sh",
                "-c",
                &inner,
                "sh",
                etc.to_str().unwrap(),
                &script,
            ],
        );
        let port: u16 = read_line(&mut out).parse().expect("the client's port");
        let child = &mut self.children[index];
        Client {
            pid: child.id(),
            port,
            _stdin: child.stdin.take().unwrap(),
        }
    }

    /// `racefree ident serve` in namespace `ns`; returns its address.
    fn identd(&mut self, ns: &str, wrapper: &[&str], listen: &str, extra: &[&str]) -> String {
        let exe = racefree_path();
        let mut args: Vec<&str> = wrapper.to_vec();
        args.extend([
            exe.to_str().unwrap(),
            "ident",
            "serve",
            "--listen",
            listen,
            "--log",
            "stderr",
        ]);
        args.extend(extra);
        let (_, mut out) = self.spawn(ns, &args);
        let line = read_line(&mut out);
        line.strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("identd did not start: {line:?}"))
            .to_string()
    }

    /// `racefree ident query` from the IRC namespace, from address `bind`.
    fn query(&self, identd: &str, bind: &str, server_port: u16) -> assert_cmd::assert::Assert {
        let (ip, port) = identd.rsplit_once(':').unwrap();
        assert_cmd::Command::new("ip")
            .args(["netns", "exec", &self.ns("irc")])
            .arg(racefree_path())
            .args([
                "ident",
                "query",
                "--bind",
                bind,
                "--port",
                port,
                "--timeout",
                "10",
                ip,
            ])
            .args([server_port.to_string(), IRC_PORT.to_string()])
            .timeout(DEADLINE)
            .assert()
    }

    /// `racefree ident lookup` on the NAT host.
    fn lookup(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        assert_cmd::Command::new("ip")
            .args(["netns", "exec", &self.ns("host")])
            .arg(racefree_path())
            .args(["ident", "lookup"])
            .args(args)
            .timeout(DEADLINE)
            .assert()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything still in the namespaces: a server that dropped privileges under
        // `unshare --kill-child` survives it (setuid clears the parent-death signal).
        for ns in ["host", "ctr", "lan", "irc"] {
            let Ok(out) = Command::new("ip")
                .args(["netns", "pids", &self.ns(ns)])
                .stderr(Stdio::null())
                .output()
            else {
                continue;
            };
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for ns in ["host", "ctr", "lan", "irc"] {
            let _ = run(&["ip", "netns", "del", &self.ns(ns)]);
        }
    }
}

/// A client process holding one connection (until its stdin closes).
struct Client {
    pid: u32,
    port: u16,
    _stdin: ChildStdin,
}

impl Client {
    /// Waits (bounded) until the connection is in `state` (hex, as /proc prints
    /// it) in its own namespace's table: the kernel acks a FIN asynchronously.
    fn wait_for_state(&self, state: &str) {
        let path = PathBuf::from(format!("/proc/{}/net/tcp", self.pid));
        let needle = format!(":{:04X} ", self.port);
        let start = Instant::now();
        loop {
            let table = std::fs::read_to_string(&path).unwrap();
            let row = table.lines().find(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(&needle[..needle.len() - 1]))
            });
            if let Some(row) = row
                && row.split_whitespace().nth(3) == Some(state)
            {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "connection from port {} never reached state {state}: {row:?}",
                self.port
            );
            std::thread::yield_now();
        }
    }
}

fn read_line(out: &mut impl BufRead) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

fn check_passwd_is_not_the_hosts(dir: &Path) {
    // The name must come from the container's database: the host has no such user.
    assert!(
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(CTR_UID))
            .unwrap()
            .is_none(),
        "this host has a uid {CTR_UID}; the test needs it unnamed here"
    );
    assert!(dir.join("etc/passwd").exists());
}

/// `--user nobody`: the process that reads queries runs as nobody, and `--nat`
/// runs in the privileged helper.
const AS_NOBODY: &[&str] = &["--user", "nobody"];

impl Net {
    /// The IRC server, and the host's `ident serve --nat` (with `user`'s options, whose
    /// drop is checked): the identd's address.
    fn nat_identd(&mut self, user: &[&str]) -> String {
        self.start_irc_server();
        let identd = self.identd(
            "host",
            &[],
            &format!("{HOST_IRC}:0"),
            &[&["--nat"], user].concat(),
        );
        if !user.is_empty() {
            self.assert_last_identd_runs_as_nobody();
        }
        identd
    }

    /// The identd started last (not through a wrapper) reads the network as nobody:
    /// `--user` was not ignored, so its answers came from the helper.
    fn assert_last_identd_runs_as_nobody(&self) {
        let pid = self.children.last().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uids.split_whitespace().skip(1).collect::<Vec<_>>(),
            vec![NOBODY.to_string(); 4],
            "{uids}"
        );
    }
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_names_container_users_from_the_containers_passwd_in_any_state() {
    container_users_are_named(&[]);
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_under_user_names_container_users_from_the_privileged_helper() {
    container_users_are_named(AS_NOBODY);
}

fn container_users_are_named(user: &[&str]) {
    let mut net = net();
    check_passwd_is_not_the_hosts(net.dir.path());
    let identd = net.nat_identd(user);

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

#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_refuses_a_third_party_and_says_no_user_without_a_conntrack_entry() {
    third_party_and_untracked(&[]);
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_under_user_refuses_a_third_party_and_says_no_user_without_a_conntrack_entry() {
    third_party_and_untracked(AS_NOBODY);
}

fn third_party_and_untracked(user: &[&str]) {
    let mut net = net();
    let identd = net.nat_identd(user);
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

#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_forward_relays_the_answer_of_the_host_behind() {
    forward_relays(&[]);
}

/// `--nat --forward` and `--proxy`, each under `--user`.
#[test]
#[cfg_attr(
    not(all(has_root, has_nat_namespaces)),
    ignore = "needs root and network namespaces with nftables NAT"
)]
fn nat_under_user_forward_relays_the_answer_of_the_host_behind() {
    forward_relays(AS_NOBODY);
}

fn forward_relays(user: &[&str]) {
    let mut net = net();
    net.start_irc_server();
    // The LAN host's own identd, trusting the NAT host's forwarded queries.
    let lan_identd = net.identd(
        "lan",
        &[],
        &format!("{LAN}:0"),
        &[&["--proxy", LAN_GATEWAY], user].concat(),
    );
    if !user.is_empty() {
        net.assert_last_identd_runs_as_nobody();
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
    let host_ctr_side = format!("198.18.{}.1", net.ctr_subnet);
    let mut direct = assert_cmd::Command::new("ip");
    direct
        .args(["netns", "exec", &net.ns("host")])
        .arg(racefree_path())
        .args([
            "ident",
            "query",
            "--bind",
            &host_ctr_side,
            "--port",
            &lan_port,
            "--timeout",
            "10",
            LAN,
        ])
        .args([lan.port.to_string(), IRC_PORT.to_string()])
        .timeout(DEADLINE);
    direct.assert().code(1).stderr(format!(
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
    let mut net = net();
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
    let asked = read_line(&mut stub_out);
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
    assert_eq!(read_line(&mut answer), "rflanuser");
    assert!(net.children[query].wait().unwrap().success());
}

impl Net {
    /// An identd on the LAN host that reads one question, prints `PEER QUESTION`,
    /// and answers `USERID : UNIX : rflanuser` only when told (a line on its stdin),
    /// so the connection it was asked on can be looked at while it is held.
    /// Returns its index among the children, its port and its stdout.
    fn start_held_identd_stub(&mut self) -> (usize, u16, BufReader<std::process::ChildStdout>) {
        let script = format!(
            "use IO::Socket::INET; $|=1; \
             my $s = IO::Socket::INET->new(LocalAddr => '{LAN}:0', Listen => 4, ReuseAddr => 1) or die \"listen: $!\"; \
             print $s->sockport, \"\\n\"; \
             my $c = $s->accept or die \"accept: $!\"; \
             my $q = <$c>; $q =~ s/\\r?\\n$//; \
             print $c->peerhost, ':', $c->peerport, ' ', $q, \"\\n\"; \
             my $go = <STDIN>; \
             my ($sp, $cp) = $q =~ /^\\s*(\\d+)\\s*,\\s*(\\d+)\\s*$/ or die \"question: $q\"; \
             print $c \"$sp , $cp : USERID : UNIX : rflanuser\\r\\n\"; close $c; \
             while (<STDIN>) {{}}"
        );
        let (index, mut out) = self.spawn("lan", &["perl", "-e", &script]);
        let port = read_line(&mut out).parse().expect("the stub's port");
        (index, port, out)
    }

    /// Writes `line` to the stdin of child `index`.
    fn tell(&mut self, index: usize, line: &str) {
        use std::io::Write;
        let stdin = self.children[index].stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The uid owning the IPv4 TCP socket from `local` to `remote` in namespace
    /// `ns`, from that namespace's /proc/net/tcp.
    fn tcp_owner(&self, ns: &str, local: &str, remote: &str) -> Option<u32> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns), "cat", "/proc/net/tcp"])
            .output()
            .expect("reading the namespace's /proc/net/tcp");
        assert!(out.status.success());
        let (local, remote) = (proc_net_addr(local), proc_net_addr(remote));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|row| {
                let f: Vec<&str> = row.split_whitespace().collect();
                (f.len() > 7 && f[1] == local && f[2] == remote).then(|| f[7].parse().unwrap())
            })
    }
}

/// `ADDR:PORT` as /proc/net/tcp writes it: the address's bytes as one native
/// word, then the port, in hex.
fn proc_net_addr(addr: &str) -> String {
    let addr: std::net::SocketAddrV4 = addr.parse().unwrap();
    format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(addr.ip().octets()),
        addr.port()
    )
}

#[test]
fn nat_flags_are_checked_before_anything_runs() {
    crate::util::racefree()
        .args(["ident", "lookup", "--forward", "127.0.0.1:1", "127.0.0.1:2"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--nat"));
    crate::util::racefree()
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
