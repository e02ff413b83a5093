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
//! by skipping. The run-time probe also catches a stale build (the cfg says
//! present, the machine no longer has it): a failure, never a silent pass.
//! (A custom harness such as libtest-mimic could ignore at run time, but only by
//! taking every test of the one integration binary out of `#[test]`.)

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
}

impl Precondition {
    pub const ALL: [Precondition; 6] = [
        Precondition::Root,
        Precondition::Nobody,
        Precondition::Ipv6Loopback,
        Precondition::DualStack,
        Precondition::NetIdent,
        Precondition::Xinetd,
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
