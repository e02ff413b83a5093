//! A small network of namespaces for the NAT tests: veth pairs, an nftables
//! MASQUERADE rule, the kernel's conntrack, and stand-in hosts (an IRC server, a
//! host behind the NAT, an identd that answers only when told). And, for the
//! link-local tests, one namespace with two links holding the same link-local
//! addresses ([`TwoLinks`]).
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
//! container with `unshare --mount` and the container's own passwd, so the name can
//! only come from the container's database.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;

use super::{NOBODY, Precondition, racefree_path, require};

/// The NAT host's address on the IRC side: what the IRC server sees as the client.
pub const HOST_IRC: &str = "198.19.0.1";
pub const IRC: &str = "198.19.0.2";
pub const THIRD_PARTY: &str = "198.19.0.3";
pub const LAN: &str = "198.18.2.2";
pub const LAN_GATEWAY: &str = "198.18.2.1";
pub const IRC_PORT: u16 = 6667;

/// A wrapper for the NAT host's identd when it forwards: a PID namespace of its own,
/// where it sees none of the test's processes, so the LAN host is another machine
/// to it, not a container.
pub const BLIND: &[&str] = &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"];

/// uid and name of the container's user: a name only the container's passwd has.
pub const CTR_UID: u32 = 4242;
pub const CTR_NAME: &str = "rfctruser";
/// A uid no passwd names, for the host behind the NAT.
pub const LAN_UID: u32 = 4343;

/// How long any one wait on the network may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

const NAMESPACES: [&str; 4] = ["host", "ctr", "lan", "irc"];

/// The namespaces, and every process started in them; all gone on drop.
pub struct Net {
    prefix: String,
    /// The container's subnet is 198.18.<ctr_subnet>.0/24.
    ctr_subnet: u32,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

/// Runs a set-up command to completion; its stderr is the error.
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
    /// Builds the topology; the machine must have what it takes (checked first, so a
    /// failure names the missing precondition), and a topology that cannot be built
    /// on such a machine fails the test.
    pub fn new() -> Net {
        require(&[Precondition::Root, Precondition::NatNamespaces]);
        Net::build().unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"))
    }

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
        for ns in NAMESPACES {
            run(&["ip", "netns", "add", &net.ns(ns)])?;
            run(&["ip", "-n", &net.ns(ns), "link", "set", "lo", "up"])?;
        }
        let host = net.ns("host");
        let ctr_gateway = net.ctr_gateway();
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

    /// The container's address.
    pub fn ctr_addr(&self) -> String {
        format!("198.18.{}.2", self.ctr_subnet)
    }

    /// The NAT host's address on the container's side.
    pub fn ctr_gateway(&self) -> String {
        format!("198.18.{}.1", self.ctr_subnet)
    }

    /// The container's own password database.
    pub fn container_passwd(&self) -> PathBuf {
        self.dir.path().join("etc/passwd")
    }

    /// The name of namespace `name` (`host`, `ctr`, `lan` or `irc`).
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `ip netns exec NS` + `args`, with stdin and stdout piped: its index among the
    /// children, and its stdout.
    pub fn spawn(&mut self, ns: &str, args: &[&str]) -> (usize, BufReader<ChildStdout>) {
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

    /// The pid of the child started last.
    pub fn last_pid(&self) -> u32 {
        self.children.last().expect("a child").id()
    }

    /// Waits for child `index` to exit.
    pub fn wait(&mut self, index: usize) -> ExitStatus {
        self.children[index].wait().unwrap()
    }

    /// Writes `line` to the stdin of child `index`.
    pub fn tell(&mut self, index: usize, line: &str) {
        let stdin = self.children[index].stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The IRC server: accepts on 198.19.0.2:6667 and holds every connection open
    /// (never closes, so a client that half-closes stays in FIN_WAIT2).
    pub fn start_irc_server(&mut self) {
        let script = format!(
            "use IO::Socket::INET; $|=1; \
             my $s = IO::Socket::INET->new(LocalAddr => '{IRC}:{IRC_PORT}', Listen => 16, ReuseAddr => 1) or die \"listen: $!\"; \
             print \"ready\\n\"; my @held; while (my $c = $s->accept) {{ push @held, $c }}"
        );
        let (_, mut out) = self.spawn("irc", &["perl", "-e", &script]);
        assert_eq!(read_output_line(&mut out), "ready");
    }

    /// A client connection to the IRC server from namespace `ns`, owned by `uid`,
    /// in a process with its own mount namespace where `/etc/passwd` is the test's
    /// (the container's database). `half_close` shuts its sending side down.
    ///
    /// The test's passwd is laid over the whole of `/etc` (an overlay), not
    /// bind-mounted on the file: `useradd` in a concurrent test renames the host's
    /// `/etc/passwd`, and since Linux 3.18 that detaches a mount on that file in
    /// every other mount namespace, silently giving the container the host's database.
    pub fn client(&mut self, ns: &str, uid: u32, half_close: bool) -> Client {
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
        let port: u16 = read_output_line(&mut out)
            .parse()
            .expect("the client's port");
        let child = &mut self.children[index];
        Client {
            pid: child.id(),
            port,
            _stdin: child.stdin.take().unwrap(),
        }
    }

    /// `racefree ident serve` in namespace `ns`, under `wrapper` (a command it is
    /// the argument of, or none); returns its address.
    pub fn identd(&mut self, ns: &str, wrapper: &[&str], listen: &str, extra: &[&str]) -> String {
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
        let line = read_output_line(&mut out);
        line.strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("identd did not start: {line:?}"))
            .to_string()
    }

    /// `racefree ident query` from the IRC namespace, from address `bind`.
    pub fn query(&self, identd: &str, bind: &str, server_port: u16) -> Assert {
        self.query_from("irc", identd, bind, (server_port, IRC_PORT))
    }

    /// `racefree ident query` from namespace `ns` and address `bind` to the identd
    /// at `identd`, about the connection between `ports` (server's, client's).
    pub fn query_from(&self, ns: &str, identd: &str, bind: &str, ports: (u16, u16)) -> Assert {
        let (ip, port) = identd.rsplit_once(':').unwrap();
        assert_cmd::Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
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
            .args([ports.0.to_string(), ports.1.to_string()])
            .timeout(DEADLINE)
            .assert()
    }

    /// `racefree ident lookup` on the NAT host.
    pub fn lookup(&self, args: &[&str]) -> Assert {
        assert_cmd::Command::new("ip")
            .args(["netns", "exec", &self.ns("host")])
            .arg(racefree_path())
            .args(["ident", "lookup"])
            .args(args)
            .timeout(DEADLINE)
            .assert()
    }

    /// An identd on the LAN host that reads one question, prints `PEER QUESTION`,
    /// and answers `USERID : UNIX : rflanuser` only when told (a line on its stdin),
    /// so the connection it was asked on can be looked at while it is held.
    /// Returns its index among the children, its port and its stdout.
    pub fn start_held_identd_stub(&mut self) -> (usize, u16, BufReader<ChildStdout>) {
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
        let port = read_output_line(&mut out).parse().expect("the stub's port");
        (index, port, out)
    }

    /// The uid owning the IPv4 TCP socket from `local` to `remote` in namespace
    /// `ns`, from that namespace's /proc/net/tcp.
    pub fn tcp_owner(&self, ns: &str, local: &str, remote: &str) -> Option<u32> {
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

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything still in the namespaces: a server that dropped privileges under
        // `unshare --kill-child` survives it (setuid clears the parent-death signal).
        for ns in NAMESPACES {
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
        for ns in NAMESPACES {
            let _ = run(&["ip", "netns", "del", &self.ns(ns)]);
        }
    }
}

/// A client process holding one connection (until its stdin closes).
pub struct Client {
    pub pid: u32,
    pub port: u16,
    _stdin: ChildStdin,
}

impl Client {
    /// Waits (bounded) until the connection is in `state` (hex, as /proc prints
    /// it) in its own namespace's table: the kernel acks a FIN asynchronously.
    pub fn wait_for_state(&self, state: &str) {
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

/// One line of a child's output, without its line end.
pub fn read_output_line(out: &mut impl BufRead) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line.trim_end().to_string()
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

/// A network namespace with two links (`ll0`, `ll1`: veth pairs whose other ends
/// are left unaddressed), each holding the same two link-local addresses, fe80::1
/// and fe80::2: so one connection can exist once on each link, with the same
/// addresses and ports. Deleted on drop, pass or fail.
pub struct TwoLinks {
    name: String,
}

impl TwoLinks {
    pub const LINKS: [&'static str; 2] = ["ll0", "ll1"];

    pub fn new() -> TwoLinks {
        require(&[Precondition::Root, Precondition::NatNamespaces]);
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let links = TwoLinks {
            name: format!(
                "rfll{}-{}",
                std::process::id(),
                SERIAL.fetch_add(1, Ordering::Relaxed)
            ),
        };
        links
            .build()
            .unwrap_or_else(|e| panic!("cannot build the namespace: {e}"));
        links
    }

    fn build(&self) -> Result<(), String> {
        let ns = self.name.as_str();
        run(&["ip", "netns", "add", ns])?;
        run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        for link in Self::LINKS {
            let peer = format!("{link}peer");
            run(&[
                "ip", "-n", ns, "link", "add", link, "type", "veth", "peer", "name", &peer,
            ])?;
            for dev in [link, peer.as_str()] {
                run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            }
            // nodad: usable at once, not tentative for a second of duplicate detection.
            for addr in ["fe80::1/64", "fe80::2/64"] {
                run(&["ip", "-n", ns, "addr", "add", addr, "dev", link, "nodad"])?;
            }
        }
        Ok(())
    }

    /// Runs `f` on a thread inside the namespace: the sockets it makes, and the
    /// processes it starts, are the namespace's.
    pub fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = std::fs::File::open(&path).unwrap();
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    f()
                })
                .join()
                .unwrap()
        })
    }

    /// The interface index of `link` in the namespace.
    pub fn index(&self, link: &str) -> u32 {
        self.inside(|| nix::net::if_::if_nametoindex(link).unwrap())
    }

    /// The built binary, run in the namespace.
    pub fn racefree(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(racefree_path())
            .timeout(DEADLINE);
        cmd
    }

    /// `racefree ident serve --listen LISTEN --log none ARGS` in the namespace,
    /// stopped when dropped.
    pub fn identd(&self, listen: &str, args: &[&str]) -> racefree::ident::server::ServeChild {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(racefree_path())
            .args(["ident", "serve", "--listen", listen, "--log", "none"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning ip netns exec");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let line = read_output_line(&mut out);
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("identd did not start: {line:?}"));
        // ip netns exec execs the server: the child is the server itself.
        racefree::ident::server::ServeChild::adopt(child, addr)
    }
}

impl Drop for TwoLinks {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
