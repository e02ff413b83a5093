//! What some tests need from the machine, probed with the standard library alone.
//!
//! This file is compiled twice: by `build.rs` (through `#[path]`), which turns each
//! precondition it finds into a `has_*` cfg, and by the test binary, whose
//! [`require`] probes again at run time. Why both:
//!
//! libtest cannot mark a test ignored once it runs, and a test that returns early
//! counts as passed. So the decision is taken when the test binary is built: a test
//! carries `#[cfg_attr(not(has_root), ignore = "needs root")]`, and `cargo test`
//! lists it as ignored, with that reason, where the machine lacks root. Under CI
//! (`CI=true`) the build script emits every cfg whatever it found, so every such
//! test runs, and [`require`] fails it naming what is missing: CI cannot go green
//! by skipping. (A custom harness such as libtest-mimic could ignore at run time,
//! but only by taking every test of the one integration binary out of `#[test]`.)
//!
//! When the build probes again. Every rerun of a build script rebuilds the whole
//! package (library, binary, examples, tests), even when its output is the same,
//! so `build.rs` watches no file of the machine: a full test run adds a user and
//! installs the package, and watching /etc/passwd or dpkg's status rebuilt the
//! crate after each run. The test binary finds a stale build instead, both ways: a
//! precondition built in but gone fails the tests that [`require`] it, and one
//! missing at build time but here now fails the test that looks for it (in
//! `testenv`); either touches [`REPROBE_STAMP`] in the build script's `OUT_DIR`,
//! the one file `build.rs` watches, so the next build probes again.

use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Effective uid 0: to create a socket as another user, bind port 113, drop
    /// privileges, run xinetd.
    Root,
    /// A user named `nobody` in the password database.
    Nobody,
    /// `[::1]` can be bound.
    Ipv6Loopback,
    /// A socket bound to `[::]` accepts an IPv4 client (IPV6_V6ONLY off).
    DualStack,
    /// Perl's Net::Ident (Debian libnet-ident-perl), a client this project did not write.
    NetIdent,
    /// xinetd, a real superserver to run `ident serve` under.
    Xinetd,
    /// libident's test client `/usr/sbin/in.identtestd` (Debian libident).
    LibidentTester,
    /// Network namespaces with an nftables masquerade rule in them, and the tools
    /// the NAT tests drive them with (ip, nft, unshare, setpriv, perl). Needs root.
    NatNamespaces,
    /// dpkg, dpkg-deb and systemd-analyze, to install the package and check its units.
    DebTools,
    /// man(1), to render the man pages as a reader would.
    Man,
    /// cargo-deb, the `cargo deb` subcommand that builds the package.
    CargoDeb,
    /// No `racefree` Debian package installed: the package test installs its own
    /// and purges it afterwards, which must not remove one someone installed.
    NoRacefreePackage,
    /// Open MPI's mpirun, to run the mpirun launcher recipe for real.
    OpenMpi,
    /// kubernetes-validate (pip), to check the Kubernetes Job against the schema.
    KubernetesValidate,
    /// moreutils' sponge, to run `write`'s script forms beside the tool it replaces.
    Sponge,
    /// Debian's oidentd, unpacked (not installed) at [`OIDENTD`], to ask beside racefree.
    Oidentd,
}

impl Precondition {
    pub const ALL: [Precondition; 16] = [
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Ipv6Loopback,
        Precondition::DualStack,
        Precondition::NetIdent,
        Precondition::Xinetd,
        Precondition::LibidentTester,
        Precondition::NatNamespaces,
        Precondition::DebTools,
        Precondition::Man,
        Precondition::CargoDeb,
        Precondition::NoRacefreePackage,
        Precondition::OpenMpi,
        Precondition::KubernetesValidate,
        Precondition::Sponge,
        Precondition::Oidentd,
    ];

    /// The cfg `build.rs` sets when the precondition holds (or under CI).
    pub fn cfg(self) -> &'static str {
        match self {
            Precondition::Root => "has_root",
            Precondition::Nobody => "has_nobody",
            Precondition::Ipv6Loopback => "has_ipv6_loopback",
            Precondition::DualStack => "has_dual_stack",
            Precondition::NetIdent => "has_net_ident",
            Precondition::Xinetd => "has_xinetd",
            Precondition::LibidentTester => "has_libident_tester",
            Precondition::NatNamespaces => "has_nat_namespaces",
            Precondition::DebTools => "has_deb_tools",
            Precondition::Man => "has_man",
            Precondition::CargoDeb => "has_cargo_deb",
            Precondition::NoRacefreePackage => "has_no_racefree_package",
            Precondition::OpenMpi => "has_open_mpi",
            Precondition::KubernetesValidate => "has_kubernetes_validate",
            Precondition::Sponge => "has_sponge",
            Precondition::Oidentd => "has_oidentd",
        }
    }

    /// What is needed, as a failure names it.
    pub fn describe(self) -> &'static str {
        match self {
            Precondition::Root => "root (effective uid 0)",
            Precondition::Nobody => "a user named nobody",
            Precondition::Ipv6Loopback => "IPv6 loopback ([::1] bindable)",
            Precondition::DualStack => "dual-stack sockets ([::] reachable over IPv4)",
            Precondition::NetIdent => {
                "Perl's Net::Ident (Debian package libnet-ident-perl; .ci/run installs it)"
            }
            Precondition::Xinetd => "xinetd (Debian package xinetd; .ci/run installs it)",
            Precondition::LibidentTester => {
                "libident's /usr/sbin/in.identtestd (Debian package libident; .ci/run installs it)"
            }
            Precondition::NatNamespaces => {
                "network namespaces with nftables NAT (root; ip, nft, unshare, setpriv, perl: \
                 Debian packages iproute2, nftables, util-linux, perl; .ci/run installs them)"
            }
            Precondition::DebTools => {
                "dpkg, dpkg-deb and systemd-analyze (Debian packages dpkg, systemd; \
                 .ci/run installs them)"
            }
            Precondition::Man => "man (Debian package man-db; .ci/run installs it)",
            Precondition::CargoDeb => {
                "cargo-deb (cargo install --locked cargo-deb; .ci/run installs it)"
            }
            Precondition::NoRacefreePackage => {
                "no racefree Debian package installed already (the test installs its own, \
                 then purges it)"
            }
            Precondition::OpenMpi => {
                "Open MPI's mpirun (Debian package openmpi-bin; .ci/run installs it)"
            }
            Precondition::KubernetesValidate => {
                "kubernetes-validate (pip install kubernetes-validate==1.37.0; .ci/run installs it)"
            }
            Precondition::Sponge => "sponge (Debian package moreutils; .ci/run installs it)",
            Precondition::Oidentd => {
                "Debian's oidentd unpacked in target/oidentd (apt-get download oidentd, dpkg -x, \
                 and Debian package libnetfilter-conntrack3; .ci/run does it)"
            }
        }
    }

    /// `Ok` when the machine has it; `Err` says what was found instead.
    pub fn probe(self) -> Result<(), String> {
        match self {
            Precondition::Root => match effective_uid() {
                Some(0) => Ok(()),
                Some(uid) => Err(format!("running as uid {uid}")),
                None => Err("cannot read the effective uid from /proc/self/status".into()),
            },
            Precondition::Nobody => succeeds("getent", &["passwd", "nobody"]),
            Precondition::Ipv6Loopback => std::net::TcpListener::bind("[::1]:0")
                .map(drop)
                .map_err(|e| format!("binding [::1]:0: {e}")),
            Precondition::DualStack => {
                let listener = std::net::TcpListener::bind("[::]:0")
                    .map_err(|e| format!("binding [::]:0: {e}"))?;
                let port = listener.local_addr().map_err(|e| e.to_string())?.port();
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map(drop)
                    .map_err(|e| format!("connecting to [::]:{port} over IPv4: {e}"))
            }
            Precondition::NetIdent => succeeds("perl", &["-MNet::Ident", "-e", "1"]),
            Precondition::Xinetd => xinetd_path().map(drop),
            Precondition::LibidentTester => {
                let tester = std::path::Path::new(LIBIDENT_TESTER);
                if tester.is_file() {
                    Ok(())
                } else {
                    Err(format!("no {LIBIDENT_TESTER}"))
                }
            }
            Precondition::NatNamespaces => {
                for tool in ["ip", "nft", "unshare", "setpriv", "perl"] {
                    succeeds("sh", &["-c", &format!("command -v {tool}")])?;
                }
                // A network namespace of its own, gone when unshare exits, with the
                // kind of rule the tests add: it fails without root, without
                // nftables' NAT in the kernel, or in a sandbox that forbids it.
                succeeds(
                    "unshare",
                    &[
                        "--net",
                        "sh",
                        "-ec",
                        "ip link set lo up; nft add table ip rfprobe; \
                         nft 'add chain ip rfprobe post { type nat hook postrouting priority 100; }'; \
                         nft add rule ip rfprobe post masquerade",
                    ],
                )
            }
            Precondition::DebTools => {
                for tool in ["dpkg", "dpkg-deb", "systemd-analyze"] {
                    succeeds(tool, &["--version"])?;
                }
                Ok(())
            }
            Precondition::Man => succeeds("man", &["--version"]),
            Precondition::CargoDeb => succeeds(&cargo(), &["deb", "--version"]),
            Precondition::NoRacefreePackage => match succeeds("dpkg", &["-s", "racefree"]) {
                Ok(()) => Err("the racefree package is installed (dpkg -s racefree)".into()),
                Err(_) => Ok(()),
            },
            Precondition::OpenMpi => match Command::new("mpirun").arg("--version").output() {
                Ok(o) if String::from_utf8_lossy(&o.stdout).contains("Open MPI") => Ok(()),
                Ok(o) => Err(format!(
                    "`mpirun --version` is not Open MPI's: {:?}",
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                )),
                Err(e) => Err(format!("cannot run mpirun: {e}")),
            },
            Precondition::KubernetesValidate => succeeds("kubernetes-validate", &["--version"]),
            Precondition::Sponge => succeeds("sh", &["-c", "command -v sponge"]),
            // -v prints its build and exits: the binary is there and its libraries load.
            Precondition::Oidentd => succeeds(OIDENTD, &["-v"]),
        }
    }
}

/// The xinetd binary: on PATH, or in /usr/sbin (not on a non-root PATH).
pub fn xinetd_path() -> Result<std::path::PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|d| d.join("xinetd"))
        .find(|p| p.is_file())
        .ok_or_else(|| "no xinetd on PATH or in /usr/sbin".to_string())
}

/// The file in the build script's `OUT_DIR` that the tests touch to make the next
/// build probe again.
pub const REPROBE_STAMP: &str = "reprobe-preconditions";

/// Debian's oidentd, where .ci/run unpacks its package.
pub const OIDENTD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/oidentd/usr/sbin/oidentd"
);

/// libident's test client, started as inetd would start it.
pub const LIBIDENT_TESTER: &str = "/usr/sbin/in.identtestd";

/// The cargo running the build or the tests (`$CARGO`), else `cargo` on PATH.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// True when the run is CI's: `CI=true` (or `1`), as CI services and .ci/run set it.
pub fn under_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

fn succeeds(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{program} {}` {s}", args.join(" "))),
        Err(e) => Err(format!("cannot run {program}: {e}")),
    }
}
