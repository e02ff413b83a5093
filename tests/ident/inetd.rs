//! `racefree ident serve` under a real superserver: xinetd, from Debian, started by
//! the test with a private configuration on loopback, in `wait = no` (one server
//! per connection, the connection on fd 0) and `wait = yes` (one server accepting
//! on the listening socket xinetd hands it). Asked by racefree's own client and by
//! Perl's Net::Ident; and the process holding the querier's connection must keep
//! no trace of root: uids, gids, groups and capabilities, read from /proc.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use super::*;
use crate::testenv::{
    IdentdAccount, NOBODY, OwnedConnection, PrivateHomeUser, TestEnv, as_fsuid,
    assert_private_from_nobody, proc_status_field, socket_holders, xinetd_path,
};

/// A uid with no password entry: every design of the server answers it with
/// `USERID : OTHER : <uid>` (no name, no home that could hold a .noident).
const UNNAMED_UID: u32 = 3_999_999_001;

/// xinetd in the foreground on a private configuration; on drop, it and every
/// server it started are stopped, within a bounded time.
struct Xinetd {
    child: Child,
    env: TestEnv,
}

/// One service of a private xinetd configuration.
struct Service {
    name: &'static str,
    addr: SocketAddr,
    wait: bool,
}

impl Xinetd {
    fn start(services: &[Service]) -> Xinetd {
        let mut conf = String::new();
        for s in services {
            // user = root, so that dropping privileges is racefree's own --user.
            conf += &format!(
                "service {}\n{{\n\ttype = UNLISTED\n\tsocket_type = stream\n\tprotocol = tcp\n\
                 \twait = {}\n\tuser = root\n\tbind = {}\n\tport = {}\n\tserver = {}\n\
                 \tserver_args = ident serve --user nobody\n\tdisable = no\n}}\n",
                s.name,
                if s.wait { "yes" } else { "no" },
                s.addr.ip(),
                s.addr.port(),
                racefree_path().display(),
            );
        }
        let addrs: Vec<SocketAddr> = services.iter().map(|s| s.addr).collect();
        Xinetd::start_services(&conf, &addrs)
    }

    /// xinetd with these service entries, once it accepts on every one of `addrs`.
    fn start_services(services: &str, addrs: &[SocketAddr]) -> Xinetd {
        let env = TestEnv::new();
        let log = env.root().join("xinetd.log");
        let conf = format!(
            "defaults\n{{\n\tlog_type = FILE {}\n\tlog_on_failure = HOST\n\tcps = 1000 1\n}}\n{services}",
            log.display()
        );
        let conf_path = env.write("xinetd.conf", &conf);
        let pidfile = env.root().join("xinetd.pid");
        let child = Command::new(xinetd_path())
            .arg("-dontfork")
            .arg("-f")
            .arg(&conf_path)
            .arg("-pidfile")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(env.root().join("xinetd.stderr")).unwrap(),
            ))
            // Its own process group, so a stray server cannot outlive the test.
            .process_group(0)
            .spawn()
            .unwrap();
        let xinetd = Xinetd { child, env };
        // Ready when every service accepts (a nowait server started by a probe sees
        // end of file at once and exits; a wait server stays, as it would anyway).
        for &addr in addrs {
            let start = Instant::now();
            while TcpStream::connect(addr).is_err() {
                assert!(
                    start.elapsed() < DEADLINE,
                    "xinetd never listened on {addr}:\n{}",
                    xinetd.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        xinetd
    }

    /// What xinetd logged and printed, for failure messages.
    fn log(&self) -> String {
        ["xinetd.log", "xinetd.stderr"]
            .iter()
            .map(|f| std::fs::read_to_string(self.env.root().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Xinetd {
    fn drop(&mut self) {
        // xinetd and every process it started, however deep (a server may fork a
        // helper, or leave xinetd's process group), killed, then xinetd reaped.
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let xinetd = self.child.id();
        let _ = kill(Pid::from_raw(xinetd as i32), Signal::SIGSTOP);
        for pid in descendants(xinetd) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(-(xinetd as i32)), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every live process descended from `root` (by the parent field of /proc/PID/stat).
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A free port on `ip` for xinetd to bind (the kernel picked it; nothing else
/// binds explicit loopback addresses like this one).
fn free_port(ip: IpAddr) -> SocketAddr {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap()
}

/// The inode of the one socket with this local address, in this state, or with
/// this remote address.
fn server_socket_inode(local: SocketAddr, remote: Option<SocketAddr>) -> u64 {
    let start = Instant::now();
    loop {
        let mut rows = procfs::net::tcp().unwrap();
        rows.extend(procfs::net::tcp6().unwrap());
        let found: Vec<u64> = rows
            .iter()
            .filter(|r| {
                unmap(r.local_address) == local
                    && match remote {
                        Some(peer) => unmap(r.remote_address) == peer,
                        None => r.state == TcpState::Listen,
                    }
                    && r.inode != 0
            })
            .map(|r| r.inode)
            .collect();
        if let [inode] = found[..] {
            return inode;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no single socket {local} to {remote:?}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn exe_of(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default()
}

/// The process is racefree, and nothing of root is left in it.
fn assert_unprivileged_racefree(pid: u32, what: &str) {
    let racefree = std::fs::canonicalize(racefree_path()).unwrap();
    assert_eq!(exe_of(pid), racefree, "{what}: pid {pid} is not racefree");
    let nobody = NOBODY.to_string();
    assert_eq!(
        proc_status_field(pid, "Uid"),
        [nobody.as_str(); 4],
        "{what}: pid {pid}"
    );
    assert_eq!(
        proc_status_field(pid, "Gid"),
        [nobody.as_str(); 4],
        "{what}: pid {pid}"
    );
    let groups = proc_status_field(pid, "Groups");
    assert!(
        groups.iter().all(|g| *g == nobody),
        "{what}: pid {pid} keeps groups {groups:?}"
    );
    for caps in ["CapEff", "CapPrm", "CapAmb"] {
        let value = proc_status_field(pid, caps);
        assert_eq!(
            u64::from_str_radix(&value[0], 16),
            Ok(0),
            "{what}: pid {pid} keeps {caps} {value:?}"
        );
    }
}

/// Every process holding the server's end of `querier`'s connection (the
/// network-facing one, whatever the server's design) is racefree without privilege.
fn assert_connection_held_unprivileged(querier: &TcpStream, what: &str) -> Vec<u32> {
    let inode = server_socket_inode(
        querier.peer_addr().unwrap(),
        Some(querier.local_addr().unwrap()),
    );
    let holders = socket_holders(inode);
    assert!(
        !holders.is_empty(),
        "{what}: no process holds socket {inode}"
    );
    for &pid in &holders {
        assert_unprivileged_racefree(pid, what);
    }
    holders
}

/// A connection from `ip` (the identd host) to a service on 127.0.0.1, its
/// client socket owned by [`UNNAMED_UID`]. Returns it and its (identd host, querier
/// host) ends.
fn unnamed_connection(ip: IpAddr) -> (TcpStream, TcpStream, SocketAddr, SocketAddr) {
    let fd = as_fsuid(UNNAMED_UID, || {
        sock::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap()
    });
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    sock::bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(ip, 0)),
    )
    .unwrap();
    sock::connect(
        fd.as_raw_fd(),
        &SockaddrStorage::from(service.local_addr().unwrap()),
    )
    .unwrap();
    let client = TcpStream::from(fd);
    let (server, _) = service.accept().unwrap();
    let (here, there) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    let row = wait_for_state(here, there, TcpState::Established);
    assert_eq!(
        row.uid, UNNAMED_UID,
        "the premise: the kernel records the uid"
    );
    (client, server, here, there)
}

/// racefree's identd under xinetd on `ip`, in wait or nowait mode, answers raw
/// requests, `racefree ident query` and Net::Ident, and the process serving the
/// querier holds no privilege.
fn serve_under_xinetd(ip: &str, wait: bool) {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Xinetd,
        Precondition::NetIdent,
    ]);
    assert!(
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(UNNAMED_UID))
            .unwrap()
            .is_none(),
        "the premise: uid {UNNAMED_UID} has no password entry"
    );
    let ip: IpAddr = ip.parse().unwrap();
    let high = free_port(ip);
    let port113 = SocketAddr::new(ip, 113);
    let xinetd = Xinetd::start(&[
        Service {
            name: "racefree-ident-high",
            addr: high,
            wait,
        },
        Service {
            name: "racefree-ident-113",
            addr: port113,
            wait,
        },
    ]);
    let mode = if wait { "wait" } else { "nowait" };
    let (_client, _server, here, there) = unnamed_connection(ip);
    let (sp, cp) = (here.port(), there.port());
    let want = format!("{sp}, {cp} : USERID : OTHER : {UNNAMED_UID}\r\n");

    // The raw protocol, from the connection's peer (127.0.0.1); the connection
    // stays open while the process serving it is inspected.
    let mut querier = connect_from("127.0.0.1".parse().unwrap(), high);
    querier.set_read_timeout(Some(DEADLINE)).unwrap();
    querier
        .write_all(format!("{sp} , {cp}\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut querier), want, "{mode}:\n{}", xinetd.log());
    let holders = assert_connection_held_unprivileged(&querier, mode);
    // Still served after the inspection: a second request on the same connection.
    querier.write_all(b"1,1\r\n").unwrap();
    assert_eq!(read_line(&mut querier), error(1, 1, "NO-USER"));

    // The mode is the one configured: in wait mode a racefree process holds the
    // listening socket xinetd handed over; in nowait mode only xinetd holds it.
    let listening = socket_holders(server_socket_inode(high, None));
    let binary = std::fs::canonicalize(racefree_path()).unwrap();
    let served_by_racefree: Vec<u32> = listening
        .iter()
        .copied()
        .filter(|&p| exe_of(p) == binary)
        .collect();
    if wait {
        // (Which of racefree's processes holds it is the server's design: with
        // privilege separation it may be the privileged one, which never reads
        // from the network. The connection's holders were checked above.)
        assert!(
            !served_by_racefree.is_empty(),
            "wait: no racefree process holds the listening socket (holders {listening:?})"
        );
    } else {
        assert_eq!(
            served_by_racefree,
            Vec::<u32>::new(),
            "nowait: racefree holds the listening socket"
        );
        assert!(listening.contains(&xinetd.child.id()));
    }
    drop(querier);

    // racefree's client, from the connection's peer.
    racefree()
        .args(["ident", "query", &ip.to_string()])
        .args([sp.to_string(), cp.to_string()])
        .args(["--port", &high.port().to_string(), "--bind", "127.0.0.1"])
        .args(["--timeout", "10"])
        .assert()
        .code(0)
        .stdout(format!("{UNNAMED_UID}\n"))
        .stderr("");

    // Perl's Net::Ident, which always asks port 113: the service on 127.0.0.1 asks
    // about its client on `ip`.
    let script = r#"
        use Net::Ident; use Socket;
        my ($ip, $lport, $rport) = @ARGV;
        my $local = pack_sockaddr_in($lport, inet_aton("127.0.0.1"));
        my $remote = pack_sockaddr_in($rport, inet_aton($ip));
        my ($user, $os, $err) = Net::Ident::lookupFromInAddr($local, $remote, 10);
        print defined $user ? "user=$user os=$os\n" : "error=$err\n";
    "#;
    let out = Command::new("perl")
        .args(["-e", script, &ip.to_string()])
        .args([cp.to_string(), sp.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("user={UNNAMED_UID} os=OTHER\n"),
        "{mode}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        xinetd.log()
    );
    // Nothing was left running with privilege: whatever served is still unprivileged
    // (in wait mode the same long-lived server).
    for pid in holders {
        if std::path::Path::new(&format!("/proc/{pid}")).exists() && exe_of(pid) == binary {
            assert_unprivileged_racefree(pid, mode);
        }
    }
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_xinetd, has_net_ident)),
    ignore = "needs root, a user named nobody, xinetd and Perl's Net::Ident"
)]
fn under_xinetd_nowait_it_serves_both_clients_and_keeps_no_privilege() {
    serve_under_xinetd("127.0.0.20", false);
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_xinetd, has_net_ident)),
    ignore = "needs root, a user named nobody, xinetd and Perl's Net::Ident"
)]
fn under_xinetd_wait_it_serves_both_clients_and_keeps_no_privilege() {
    serve_under_xinetd("127.0.0.21", true);
}

/// `text` with its one occurrence of `from` replaced by `to`: a shipped file changed
/// where a test must, and nowhere else.
#[track_caller]
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in:\n{text}");
    text.replacen(from, to, 1)
}

/// contrib/xinetd.d/racefree-identd as shipped, changed only where a test must (the
/// binary's path, and a port of its own where the file says `auth`, 113), under
/// a real xinetd, names a user whose home is 0700 and root: the file starts racefree
/// as root and drops with --user, so the privileged helper can look into those
/// homes for a .noident, where a server run as nobody answers HIDDEN-USER.
#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_xinetd, has_dual_stack)),
    ignore = "needs root, a user named nobody, xinetd and dual-stack sockets (the file says IPv6)"
)]
fn the_shipped_xinetd_service_names_users_with_private_homes_and_root() {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Xinetd,
        Precondition::DualStack,
    ]);
    let _account = IdentdAccount::present();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/xinetd.d/racefree-identd"),
    )
    .unwrap();
    // `flags = IPv6`: xinetd binds [::] on the port, every address of the host.
    let port = free_port("::".parse().unwrap()).port();
    let service = replace_once(
        &shipped,
        "\tserver\t\t= /usr/bin/racefree\n",
        &format!("\tserver\t\t= {}\n", racefree_path().display()),
    );
    let service = replace_once(
        &service,
        "service auth\n{\n",
        &format!("service auth\n{{\n\ttype\t\t= UNLISTED\n\tport\t\t= {port}\n"),
    );
    let ip: IpAddr = "127.0.0.22".parse().unwrap();
    let xinetd = Xinetd::start_services(&service, &[SocketAddr::new(ip, port)]);

    let user = PrivateHomeUser::create("xi");
    assert_private_from_nobody(std::path::Path::new("/root"));
    for (uid, name) in [(user.uid, user.name.as_str()), (0, "root")] {
        let conn = OwnedConnection::new(uid, ip);
        assert_eq!(
            conn.ask_identd(port),
            format!("USERID : UNIX : {name}"),
            "{}",
            xinetd.log()
        );
    }
}
