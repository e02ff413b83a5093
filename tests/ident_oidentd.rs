//! `ident serve --config` beside Debian's oidentd 2.5 (issue 15, part 2): the same
//! system file and users' files, the same queries, the same answers; then racefree
//! alone where oidentd cannot look (users' files in 0700 homes), as root and under
//! `--user nobody`.
//!
//! Both run as inetd runs them, one process per query with the ident connection as
//! stdin and stdout: `oidentd -I`, unpacked from its Debian package and never
//! installed (.ci/run does it; its package would start a daemon on port 113), and
//! `racefree ident serve`. oidentd drops to nobody (or a user `oidentd`) and reads
//! users' files as that user, so where it is compared the homes are 0755 and the
//! files 0644.
//!
//! Each test has its own loopback addresses (127.0.N.x), so the fixed ports some
//! rules name (6667, 994, 31xxx) never meet another test's.
//!
//! Without root, nobody or the unpacked oidentd these tests are listed as ignored;
//! under CI (`CI=true`) they run, and a missing precondition is a failure.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::socket::{self as sock, SockaddrStorage};
use racefree::ident::proto::{ReplyKind, parse_reply};

use crate::testenv::{
    DEADLINE, OIDENTD, Precondition, PrivateHomeUser, connection_owned_by_to, racefree_as_nobody,
    racefree_path, require,
};

/// One test's addresses: this host as the querier reaches it (`server`), the
/// querier, and one more of each for the host rules.
#[derive(Clone, Copy)]
struct Net(u8);

impl Net {
    fn addr(self, host: u8) -> IpAddr {
        IpAddr::from([127, 0, self.0, host])
    }
    fn server(self) -> IpAddr {
        self.addr(1)
    }
    fn querier(self) -> IpAddr {
        self.addr(2)
    }
    fn other_server(self) -> IpAddr {
        self.addr(3)
    }
    fn other_querier(self) -> IpAddr {
        self.addr(4)
    }
}

/// A query: about the connection from `server`:`lport` (0: any port) to
/// `querier`:`fport`, asked by `querier` of `server`.
#[derive(Clone, Copy, Debug)]
struct Query {
    server: IpAddr,
    querier: IpAddr,
    lport: u16,
    fport: u16,
}

impl Query {
    fn to(net: Net, fport: u16) -> Query {
        Query {
            server: net.server(),
            querier: net.querier(),
            lport: 0,
            fport,
        }
    }
    fn lport(self, lport: u16) -> Query {
        Query { lport, ..self }
    }
    fn between(self, server: IpAddr, querier: IpAddr) -> Query {
        Query {
            server,
            querier,
            ..self
        }
    }
}

/// A connection of `uid`'s as `query` describes it; (client, accepted) kept open
/// while it is asked about.
fn connection(uid: u32, query: Query) -> (TcpStream, TcpStream) {
    let service = TcpListener::bind(SocketAddr::new(query.querier, query.fport)).unwrap();
    let from = SocketAddr::new(query.server, query.lport);
    let (client, accepted, _) = connection_owned_by_to(uid, Some(from), service);
    (client, accepted)
}

/// A TCP connection from `from` (port 0) to `to`.
fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let fd = sock::socket(
        sock::AddressFamily::Inet,
        sock::SockType::Stream,
        sock::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    sock::bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(from, 0)),
    )
    .unwrap();
    sock::connect(fd.as_raw_fd(), &SockaddrStorage::from(to)).unwrap();
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Asks about `conn` (its local port, and `fport`) on the ident connection
/// `querier`, then closes its sending side; the answer as `USERID:OS:NAME` or
/// `ERROR:TOKEN`, or what went wrong, with `context` (the identd's stderr).
fn ask_on(
    mut querier: TcpStream,
    conn: &TcpStream,
    fport: u16,
    context: &dyn Fn() -> String,
) -> String {
    let lport = conn.local_addr().unwrap().port();
    write!(querier, "{lport} , {fport}\r\n").unwrap();
    querier.shutdown(std::net::Shutdown::Write).unwrap();
    let mut said = String::new();
    if let Err(e) = querier.read_to_string(&mut said) {
        panic!("reading the reply: {e}; {}", context());
    }
    let line = said
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("not one reply line: {said:?}; {}", context()));
    let reply =
        parse_reply(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}; {}", context()));
    assert_eq!(
        (reply.server_port, reply.client_port),
        (lport, fport),
        "{line:?}"
    );
    match reply.kind {
        ReplyKind::UserId { os, user, .. } => format!("USERID:{os}:{user}"),
        ReplyKind::Error(token) => format!("ERROR:{token}"),
    }
}

/// The answer `identd` (a command run as inetd runs it) gives about `conn`, asked
/// from `query.querier` of `query.server`, as `USERID:OS:NAME` or `ERROR:TOKEN`;
/// on anything else the test fails, with the identd's stderr.
fn ask(mut identd: Command, query: Query, conn: &TcpStream) -> String {
    let listener = TcpListener::bind(SocketAddr::new(query.server, 0)).unwrap();
    let querier = connect_from(query.querier, listener.local_addr().unwrap());
    let (accepted, _) = listener.accept().unwrap();
    let fd: OwnedFd = accepted.into();
    let mut child = identd
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command holds its copies of the connection until dropped: the reply's
    // end of file comes only when the identd's are the last.
    drop(identd);
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ask_on(querier, conn, query.fport, &|| {
            "the identd did not say".into()
        })
    }));
    let _ = child.kill();
    let _ = child.wait();
    let stderr = stderr.join().unwrap();
    answer.unwrap_or_else(|panic| {
        let why = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        panic!("{why}; its stderr: {stderr}")
    })
}

/// An identd to ask: its name in failures, and its command given the system file.
type Identd<'a> = (&'a str, &'a dyn Fn(&Path) -> Command);

/// Debian's oidentd with `system` as its system file.
fn oidentd(system: &Path) -> Command {
    let mut cmd = Command::new(OIDENTD);
    cmd.args(["-I", "-S", "-C"]).arg(system);
    cmd
}

/// `racefree ident serve --config=SYSTEM` with `extra` options.
fn racefree(system: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(racefree_path());
    cmd.args(["ident", "serve", "--log", "none"])
        .arg(format!("--config={}", system.display()))
        .args(extra);
    cmd
}

/// racefree as inetd runs it, as root and under `--user nobody`.
fn racefree_identds() -> [Identd<'static>; 2] {
    [
        ("racefree", &|system: &Path| racefree(system, &[])),
        ("racefree --user nobody", &|system: &Path| {
            racefree(system, &["--user", "nobody"])
        }),
    ]
}

/// What an answer should be: `real` (the owner's name), `hidden`, `uid` (oidentd's
/// numeric: the uid under UNIX), `random` (11 letters and digits),
/// `random_numeric` (`user` and a number below 100,000), or `name:X`.
fn check(want: &str, owner: (&str, u32), got: &str) -> bool {
    let user = |name: &str| format!("USERID:UNIX:{name}");
    let generated = got.strip_prefix("USERID:UNIX:");
    match want {
        "real" => got == user(owner.0),
        "hidden" => got == "ERROR:HIDDEN-USER",
        "uid" => got == user(&owner.1.to_string()),
        "random" => {
            generated.is_some_and(|n| n.len() == 11 && n.bytes().all(|b| b.is_ascii_alphanumeric()))
        }
        "random_numeric" => generated.is_some_and(|n| {
            n.strip_prefix("user")
                .and_then(|d| d.parse::<u32>().ok())
                .is_some_and(|d| d < 100_000)
        }),
        _ => got == user(want.strip_prefix("name:").expect("a known word")),
    }
}

/// Whose connection a case asks about.
#[derive(Clone, Copy)]
enum Who {
    A,
    B,
    Root,
}

/// One case: a system file, what user A's file says (`None`: no file), whose
/// connection, the query, and the answer wanted.
struct Case<'a> {
    what: &'a str,
    system: String,
    file: Option<&'a str>,
    who: Who,
    query: Query,
    want: &'a str,
}

/// Two users with files oidentd can read too (0755 homes, 0644 files), A and B,
/// and a directory for the system file.
struct Host {
    a: PrivateHomeUser,
    b: PrivateHomeUser,
    dir: tempfile::TempDir,
}

impl Host {
    fn new(tag: &str, home_mode: u32) -> Host {
        let host = Host {
            a: PrivateHomeUser::create(&format!("{tag}a")),
            b: PrivateHomeUser::create(&format!("{tag}b")),
            dir: tempfile::tempdir().unwrap(),
        };
        host.a.set_home_mode(home_mode);
        host.b.set_home_mode(home_mode);
        std::fs::set_permissions(
            host.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        host
    }

    /// Writes the system file; `A` and `B` in it stand for the users' names.
    fn system(&self, text: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("oidentd.conf");
        let text = text
            .replace("{A}", &self.a.name)
            .replace("{B}", &self.b.name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        path
    }

    /// A's `~/.oidentd.conf`, with `mode`; `None` removes it.
    fn file(&self, text: Option<&str>, mode: u32) {
        match text {
            Some(text) => {
                let text = text.replace("{B}", &self.b.name);
                self.a.write(".oidentd.conf", &text, mode);
            }
            None => self.a.remove(".oidentd.conf"),
        }
    }

    fn owner(&self, who: Who) -> (&str, u32) {
        match who {
            Who::A => (&self.a.name, self.a.uid),
            Who::B => (&self.b.name, self.b.uid),
            Who::Root => ("root", 0),
        }
    }

    /// Runs `case` through each of `identds` after setting the files up (A's
    /// 0644), and says how each answer that is not the one wanted differs.
    fn run(&self, case: &Case, identds: &[Identd]) -> Vec<String> {
        self.run_with(case, 0o644, identds)
    }

    /// [`Host::run`], A's file written with `file_mode`.
    fn run_with(&self, case: &Case, file_mode: u32, identds: &[Identd]) -> Vec<String> {
        self.run_prepared(case, identds, &|| self.file(case.file, file_mode))
    }

    /// [`Host::run`], A's files set up by `prepare` instead.
    fn run_prepared(&self, case: &Case, identds: &[Identd], prepare: &dyn Fn()) -> Vec<String> {
        let system = self.system(&case.system);
        prepare();
        let want = case.want.replace("{B}", &self.b.name);
        let owner = self.owner(case.who);
        let (conn, _accepted) = connection(owner.1, case.query);
        identds
            .iter()
            .filter_map(|(name, identd)| {
                let got = ask(identd(&system), case.query, &conn);
                (!check(&want, owner, &got)).then(|| {
                    format!(
                        "{}: {name} answered {got}, wanted {want} ({} to {:?})",
                        case.what, owner.0, case.query
                    )
                })
            })
            .collect()
    }
}

const DENY_ALL: &str = "default { default { deny spoof deny spoof_all deny spoof_privport \
                        deny random deny random_numeric deny numeric deny hide deny forward } }";

/// A system file whose `default` block grants `caps` (each `allow`ed, or a
/// directive as it is when it has a space: `force hide`).
fn granting(caps: &[&str]) -> String {
    let directives: Vec<String> = caps
        .iter()
        .map(|c| match c.contains(' ') {
            true => c.to_string(),
            false => format!("allow {c}"),
        })
        .collect();
    format!("default {{ default {{ {} }} }}", directives.join(" "))
}

fn cases(net: Net) -> Vec<Case<'static>> {
    let irc = Query::to(net, 6667);
    let privileged = Query::to(net, 994);
    // ZNC's identfile module as its users set oidentd up: A may spoof, no one else.
    let znc = |caps: &str| format!("{DENY_ALL}\nuser \"{{A}}\" {{ default {{ {caps} }} }}");
    let spoof = granting(&["spoof"]);
    let force_a = format!("{spoof}\nuser \"{{A}}\" {{ default {{ force reply \"UNKNOWN\" }} }}");
    let force_root = format!("{DENY_ALL}\nuser root {{ default {{ force reply \"UNKNOWN\" }} }}");
    let ranges = "global { reply \"other\" }\n\
                  fport 6660:6669 { reply \"ircnet\" }\n\
                  lport 31000:31999 { reply \"low\" }";
    let system_range = format!(
        "{spoof}\nuser \"{{B}}\" {{ default {{ allow spoof }} \
         lport 31000:31999 {{ force reply \"sysrange\" }} }}"
    );
    let hosts = format!(
        "{spoof}\nuser \"{{A}}\" {{ default {{ allow spoof }} \
         to {} {{ force reply \"toq\" }} from {} {{ force reply \"fromother\" }} }}",
        net.querier(),
        net.other_server()
    );
    let zncuser = Some("global { reply \"zncuser\" }");
    let as_b = Some("global { reply \"{B}\" }");
    let case = |what, system: &str, file, who, query, want| Case {
        what,
        system: system.to_string(),
        file,
        who,
        query,
        want,
    };
    use Who::{A, B, Root};
    #[rustfmt::skip]
    let cases = vec![
        case("znc", &znc("allow spoof"), zncuser, A, irc, "name:zncuser"),
        case("znc, no file", &znc("allow spoof"), None, A, irc, "real"),
        case("znc, B (no file)", &znc("allow spoof"), None, B, irc, "real"),
        // Toward a port below 1024, spoofing needs spoof_privport too.
        case("znc, to port 994", &znc("allow spoof"), zncuser, A, privileged, "real"),
        case("znc, spoof_privport", &znc("allow spoof allow spoof_privport"), zncuser, A,
            privileged, "name:zncuser"),
        // Another user's name needs spoof_all.
        case("B's name", &znc("allow spoof"), as_b, A, irc, "real"),
        case("B's name, spoof_all", &znc("allow spoof allow spoof_all"), as_b, A, irc, "name:{B}"),
        // A forced answer, the user's file unread.
        case("force reply for root", &force_root, None, Root, irc, "name:UNKNOWN"),
        case("force over the user's file", &force_a, zncuser, A, irc, "name:UNKNOWN"),
        case("hide", &granting(&["hide"]), Some("global { hide }"), A, irc, "hidden"),
        case("hide, not granted", DENY_ALL, Some("global { hide }"), A, irc, "real"),
        case("force hide", &granting(&["force hide"]), None, A, irc, "hidden"),
        case("random", &granting(&["random"]), Some("global { random }"), A, irc, "random"),
        case("random_numeric", &granting(&["random_numeric"]), Some("global { random_numeric }"),
            A, irc, "random_numeric"),
        case("numeric", &granting(&["numeric"]), Some("global { numeric }"), A, irc, "uid"),
        case("force numeric", &granting(&["force numeric"]), None, B, irc, "uid"),
        // Port ranges, in the user's file and the system file: the last match applies.
        case("fport range", &spoof, Some(ranges), A, irc, "name:ircnet"),
        case("outside it", &spoof, Some(ranges), A, Query::to(net, 7000), "name:other"),
        case("lport range, last", &spoof, Some(ranges), A, irc.lport(31113), "name:low"),
        case("system lport range", &system_range, None, B, irc.lport(31114), "name:sysrange"),
        case("outside the system's", &system_range, None, B, irc, "real"),
        // Host rules, on the ident connection's own addresses.
        case("to the querier", &hosts, zncuser, A, irc, "name:toq"),
        case("from the other address", &hosts, zncuser, A,
            irc.between(net.other_server(), net.other_querier()), "name:fromother"),
        case("neither host", &hosts, zncuser, A,
            irc.between(net.server(), net.other_querier()), "name:zncuser"),
        // Files that are not used: the real name.
        case("a malformed file", &spoof, Some("global { reply }"), A, irc, "real"),
        case("a file cut short", &spoof, Some("global { reply \"x\""), A, irc, "real"),
    ];
    cases
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_oidentd)),
    ignore = "needs root (sockets and users for others), a user nobody and Debian's oidentd unpacked (.ci/run)"
)]
fn racefree_answers_as_oidentd_does_for_the_same_files() {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Oidentd,
    ]);
    let net = Net(61);
    let host = Host::new("oo", 0o755);
    let [plain, separated] = racefree_identds();
    let identds: [Identd; 3] = [("oidentd", &oidentd), plain, separated];
    let failed: Vec<String> = cases(net)
        .iter()
        .flat_map(|case| host.run(case, &identds))
        .collect();
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_oidentd)),
    ignore = "needs root (sockets and users for others), a user nobody and Debian's oidentd unpacked (.ci/run)"
)]
fn a_link_or_someone_elses_file_is_refused_as_oidentd_refuses_it() {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Oidentd,
    ]);
    let net = Net(62);
    let host = Host::new("ol", 0o755);
    let [plain, separated] = racefree_identds();
    let identds: [Identd; 3] = [("oidentd", &oidentd), plain, separated];
    let case = |what, file, want| Case {
        what,
        system: "default { default { allow spoof } }".into(),
        file,
        who: Who::A,
        query: Query::to(net, 6667),
        want,
    };
    let mut failed = Vec::new();
    // The user's ~/.oidentd.conf is a link to a file only root may read.
    let linked = || {
        host.a.remove(".oidentd.conf");
        let link = host.a.home.join(".oidentd.conf");
        std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
        host.a.chown(&link);
    };
    linked();
    failed.extend(host.run_prepared(
        &case("a link to /etc/shadow", None, "real"),
        &identds,
        &linked,
    ));
    // ~/.config/oidentd.conf is the link: ~/.oidentd.conf is read instead.
    let xdg_linked = || {
        host.a
            .write(".oidentd.conf", "global { reply \"dotfile\" }", 0o644);
        host.a.remove(".config/oidentd.conf");
        host.a.write(".config/placeholder", "", 0o644);
        let link = host.a.home.join(".config/oidentd.conf");
        std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
        host.a.chown(&link);
    };
    failed.extend(host.run_prepared(
        &case("~/.config/oidentd.conf a link", None, "name:dotfile"),
        &identds,
        &xdg_linked,
    ));
    // A file in the user's home that root owns: planted, not the user's.
    let planted = || {
        host.a.remove(".config");
        host.a.remove(".oidentd.conf");
        let path = host.a.home.join(".oidentd.conf");
        std::fs::write(&path, "global { reply \"planted\" }").unwrap();
    };
    failed.extend(host.run_prepared(&case("a file root owns", None, "real"), &identds, &planted));
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_oidentd)),
    ignore = "needs root (sockets and users for others), a user nobody and Debian's oidentd unpacked (.ci/run)"
)]
fn a_file_in_a_private_home_counts_where_oidentd_cannot_read_it() {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Oidentd,
    ]);
    let net = Net(63);
    let host = Host::new("op", 0o700);
    let irc = Query::to(net, 6667);
    let [plain, separated] = racefree_identds();
    let as_nobody_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        as_nobody_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // racefree started as nobody, as an inetd line with `user = nobody` starts it.
    let unprivileged = |system: &Path| {
        let mut cmd = racefree_as_nobody(as_nobody_dir.path());
        cmd.args(["ident", "serve", "--log", "none"])
            .arg(format!("--config={}", system.display()));
        cmd
    };
    let znc = format!(
        "{DENY_ALL}\nuser \"{{A}}\" {{ default {{ allow spoof allow hide allow random }} }}"
    );
    let case = |what, file, want| Case {
        what,
        system: znc.clone(),
        file,
        who: Who::A,
        query: irc,
        want,
    };
    let mut failed = Vec::new();
    for (file, want) in [
        ("global { reply \"zncuser\" }", "name:zncuser"),
        ("global { hide }", "hidden"),
        ("global { random }", "random"),
    ] {
        let private = case("a 0600 file in a 0700 home", Some(file), want);
        failed.extend(host.run_with(&private, 0o600, &[plain, separated]));
        // oidentd, as nobody, cannot look in the home: it answers the real name.
        let unread = Case {
            want: "real",
            ..case("oidentd", Some(file), want)
        };
        failed.extend(host.run_with(&unread, 0o600, &[("oidentd", &oidentd)]));
        // Nor can racefree started as nobody, which cannot tell whether a
        // ~/.noident is there either: HIDDEN-USER, as without --config.
        let unchecked = Case {
            want: "hidden",
            ..case("racefree as nobody", Some(file), want)
        };
        failed.extend(host.run_with(&unchecked, 0o600, &[("racefree as nobody", &unprivileged)]));
    }
    // What is never read, whoever reads: a FIFO (the query is answered, at once)
    // and a gigabyte.
    let fifo = || {
        host.a.remove(".oidentd.conf");
        let path = host.a.home.join(".oidentd.conf");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        host.a.chown(&path);
    };
    failed.extend(host.run_prepared(&case("a FIFO", None, "real"), &[plain, separated], &fifo));
    let huge = || {
        let path = host
            .a
            .write(".oidentd.conf", "global { reply \"zncuser\" }\n", 0o600);
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
    };
    failed.extend(host.run_prepared(
        &case("a 1 GB file", None, "real"),
        &[plain, separated],
        &huge,
    ));
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

/// `racefree ident serve --listen ADDR:0 --config=FILE --log stderr EXTRA`, each
/// line it logs read as it comes; killed when dropped.
struct Logged {
    child: std::process::Child,
    addr: SocketAddr,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Logged {
    fn start(listen: IpAddr, system: &Path, extra: &[&str]) -> Logged {
        use std::io::BufRead;
        let mut cmd = Command::new(racefree_path());
        racefree::child::die_with_parent(&mut cmd)
            .args(["ident", "serve", "--log", "stderr", "--listen"])
            .arg(SocketAddr::new(listen, 0).to_string())
            .arg(format!("--config={}", system.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{first:?}"))
            .parse()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Logged { child, addr, lines }
    }

    /// The next log line that contains `text`, waited for at most [`DEADLINE`].
    #[track_caller]
    fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!(
                    "no log line with {text:?} ({e}); logged:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    fn hup(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    }

    fn ask(&self, querier: IpAddr, conn: &TcpStream, fport: u16) -> String {
        ask_on(connect_from(querier, self.addr), conn, fport, &|| {
            "a standalone server".into()
        })
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root (sockets and users for others) and a user nobody for --user nobody"
)]
fn sighup_reloads_the_system_file_a_bad_one_keeps_the_rules_and_answers_are_logged() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let net = Net(64);
    let host = Host::new("oh", 0o700);
    let a = &host.a;
    let irc = Query::to(net, 6667);
    crate::testenv::for_each_setting(
        &[
            ("in-process", &[][..]),
            ("--user nobody", &["--user", "nobody"][..]),
        ],
        |extra| {
            let system = host.system("default { default { deny spoof } }");
            a.write(".oidentd.conf", "global { reply \"zncuser\" }", 0o600);
            let served = Logged::start(net.server(), &system, extra);
            let (conn, _accepted) = connection(a.uid, irc);
            let real = format!("USERID:UNIX:{}", a.name);
            assert_eq!(served.ask(irc.querier, &conn, irc.fport), real);
            served.wait_for(&format!(
                "error: {}'s file asks for reply, which the system file does not grant here",
                a.name
            ));
            host.system("default { default { allow spoof } }");
            served.hup();
            served.wait_for(&format!("reloaded {}", system.display()));
            assert_eq!(
                served.ask(irc.querier, &conn, irc.fport),
                "USERID:UNIX:zncuser"
            );
            served.wait_for(&format!(
                "answered \"zncuser\" for {} (reply, from the user's file)",
                a.name
            ));
            // A file that no longer parses: logged with its place, the rules stay.
            host.system("default { default { allow spoof }");
            served.hup();
            let line = served.wait_for("error: reloading the configuration");
            assert!(
                line.ends_with(&format!(
                    "the rules read before stay: {}:1:34: end of file, expected `}}`, `default` \
                     or a filter (`to`, `from`, `fport`, `lport`)",
                    system.display()
                )),
                "{line}"
            );
            assert_eq!(
                served.ask(irc.querier, &conn, irc.fport),
                "USERID:UNIX:zncuser"
            );
            // The user's file: malformed, then a link to /etc/shadow.
            let file = a.write(".oidentd.conf", "global { reply }", 0o600);
            assert_eq!(served.ask(irc.querier, &conn, irc.fport), real);
            served.wait_for(&format!(
                "error: {}'s file is not used, answered the real name: {}:1:",
                a.name,
                file.display()
            ));
            a.remove(".oidentd.conf");
            std::os::unix::fs::symlink("/etc/shadow", &file).unwrap();
            a.chown(&file);
            assert_eq!(served.ask(irc.querier, &conn, irc.fport), real);
            served.wait_for(&format!(
                "error: not reading {} for {} (uid {}): it is a symbolic link",
                file.display(),
                a.name,
                a.uid
            ));
        },
    );
}

#[test]
fn a_config_file_missing_or_malformed_stops_the_start_with_where_and_what() {
    let env = crate::testenv::TestEnv::new();
    let missing = env.root().join("missing.conf");
    let want = format!("racefree: error: {}: no such file\n", missing.display());
    for spelling in [
        vec![format!("--config={}", missing.display())],
        vec!["-C".into(), missing.display().to_string()],
    ] {
        env.assert_run(
            ["ident", "serve", "--listen", "127.0.0.1:0"]
                .into_iter()
                .map(String::from)
                .chain(spelling),
            &crate::testenv::Expected::failure(1, &want),
        );
    }
    let bad = env.write("bad.conf", "default {\n  default { allow spoofx }\n}\n");
    let want = format!(
        "racefree: error: {}:2:19: word \"spoofx\", expected a capability (`spoof`, \
         `spoof_all`, `spoof_privport`, `hide`, `random`, `random_numeric`, `numeric` or \
         `forward`)\n",
        bad.display()
    );
    let bad_arg = bad.display().to_string();
    env.assert_run(
        ["ident", "serve", "--listen", "127.0.0.1:0", "-C", &bad_arg],
        &crate::testenv::Expected::failure(1, &want),
    );
    env.racefree([
        "ident",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        "-C",
    ])
    .arg(&bad)
    .assert()
    .code(2)
    .stderr(predicates::str::contains(
        "error: the argument '--config[=<FILE>]' cannot be used with '-C <FILE>'",
    ));
}

/// An identd on `addr` that answers every query `USERID : UNIX : lanuser` and
/// sends each request line it got (trimmed) on the returned channel.
fn lan_identd(addr: SocketAddr) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let listener = TcpListener::bind(addr).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut line = String::new();
            if std::io::BufReader::new(&conn).read_line(&mut line).is_err() {
                continue;
            }
            let line = line.trim_end().to_string();
            let _ = (&conn).write_all(format!("{line} : USERID : UNIX : lanuser\r\n").as_bytes());
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody, has_oidentd)),
    ignore = "needs root (sockets and users for others), a user nobody and Debian's oidentd unpacked (.ci/run)"
)]
fn a_forward_asks_the_same_ports_and_its_answer_is_judged_as_oidentd_judges_it() {
    require(&[
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Oidentd,
    ]);
    let net = Net(65);
    let host = Host::new("of", 0o755);
    let lan = SocketAddr::new(net.addr(9), 1113);
    let asked = lan_identd(lan);
    let [plain, separated] = racefree_identds();
    let identds: [Identd; 3] = [("oidentd", &oidentd), plain, separated];
    let forward = format!("global {{ forward {} {} }}", lan.ip(), lan.port());
    let irc = Query::to(net, 6667);
    let case = |what, system: String, file, want| Case {
        what,
        system,
        file,
        who: Who::A,
        query: irc,
        want,
    };
    let mut failed = Vec::new();
    for case in [
        case(
            "forward and spoof",
            "default { default { allow forward allow spoof } }".into(),
            Some(forward.as_str()),
            "name:lanuser",
        ),
        // The name it got is another name, which needs spoof.
        case(
            "forward, no spoof",
            "default { default { allow forward } }".into(),
            Some(forward.as_str()),
            "real",
        ),
        case(
            "force forward",
            format!(
                "default {{ default {{ force forward {} {} }} }}",
                lan.ip(),
                lan.port()
            ),
            None,
            "name:lanuser",
        ),
    ] {
        failed.extend(host.run(&case, &identds));
        // Each identd asked the host behind about the query's own two ports.
        for (name, _) in &identds {
            let line = asked.recv_timeout(DEADLINE).unwrap();
            let ports: Vec<&str> = line.split(',').map(str::trim).collect();
            assert_eq!(ports.len(), 2, "{name}: {line:?}");
            assert_eq!(ports[1], "6667", "{name}: {line:?}");
        }
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}
