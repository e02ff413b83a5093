//! What every integration test shares (fd's `tests/testenv` is the model): the
//! binary under test, a [`TestEnv`] owning a temporary tree that runs it and asserts
//! its exact output with a readable diff, the preconditions a test may need
//! ([`require`]), one test run under several settings ([`for_each_setting`]), the
//! socket helpers the ident tests use (a server under test, reply readers, socket
//! inodes, another user's sockets), and the fixtures: `stress` instances standing
//! in for hosts (`hosts.rs`), and a network of namespaces behind a NAT ([`netns`]).

mod accounts;
mod hosts;
pub mod netns;
mod seccomp;
// The probes are shared with build.rs, which uses parts the tests do not.
#[allow(dead_code)]
mod preconditions;

use std::ffi::OsStr;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use assert_cmd::assert::Assert;
pub use hosts::{report_fails_with, report_passes};
pub use preconditions::Precondition;
use racefree::ident::server::ServeChild;
pub use seccomp::{deny_ipv6, deny_sock_diag};

/// How long any one network step of a test may take before it is a failure.
pub const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Preconditions

/// Fails the test unless the machine has every one of `needs`.
///
/// A test calling this also carries `#[cfg_attr(not(has_...), ignore = "...")]`, so
/// outside CI a machine lacking the precondition lists it as ignored, and this is
/// reached only when build.rs found it, or under CI, where a missing one must fail.
#[track_caller]
pub fn require(needs: &[Precondition]) {
    let missing: Vec<String> = needs
        .iter()
        .filter_map(|p| {
            p.probe()
                .err()
                .map(|why| format!("{} ({why})", p.describe()))
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    let hint = if preconditions::under_ci() {
        "CI=true: a missing precondition is a failure, not a skip"
    } else {
        probe_again_at_next_build();
        "build.rs found it when the tests were built; the machine has changed since, \
         and the next build probes again"
    };
    panic!("precondition missing: {}; {hint}", missing.join(", "));
}

/// Whether build.rs set `p`'s cfg: it found `p` when the tests were built (or
/// CI=true set them all).
fn built_with(p: Precondition) -> bool {
    env!("RACEFREE_TEST_PRECONDITIONS")
        .split_whitespace()
        .any(|cfg| cfg == p.cfg())
}

/// Touches the stamp build.rs watches (see preconditions.rs), so the next build
/// runs the probes again and rebuilds what their cfgs decide.
fn probe_again_at_next_build() {
    let stamp = Path::new(env!("OUT_DIR")).join(preconditions::REPROBE_STAMP);
    let touched = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&stamp)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    if let Err(e) = touched {
        note(&format!(
            "cannot touch {}: {e}; touch build.rs to probe again",
            stamp.display()
        ));
    }
}

pub use accounts::{
    IDENTD_ACCOUNT, IdentdAccount, OwnedConnection, PrivateHomeUser, assert_private_from_nobody,
    connection_owned_by, connection_owned_by_to, socket_owned_by,
};
pub use preconditions::{LIBIDENT_TESTER, OIDENTD, cargo, under_ci};

/// Prints a line on the terminal even when the test passes (timings, what was
/// looked at instead of what was asked): straight to fd 2, not `eprintln!`, which
/// libtest captures for passing tests.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The xinetd binary (see [`Precondition::Xinetd`]).
pub fn xinetd_path() -> PathBuf {
    preconditions::xinetd_path().unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------
// One behaviour under several settings

/// Runs `test` under each of `settings` in turn (a label and a value), for a
/// behaviour that must hold alike under all of them; every setting runs, and the
/// failure names each one that failed, with its panic message.
#[track_caller]
pub fn for_each_setting<T: Copy>(settings: &[(&str, T)], test: impl Fn(T)) {
    let failed: Vec<String> = settings
        .iter()
        .filter_map(|&(label, setting)| {
            let panic =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(setting))).err()?;
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            Some(format!("{label}: {why}"))
        })
        .collect();
    assert!(failed.is_empty(), "failed {}", failed.join("\nfailed "));
}

// ---------------------------------------------------------------------------
// The binary under test

/// The built `racefree` binary, found through cargo (never a hard-coded path).
pub fn racefree() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("racefree")
}

/// The path of the built binary, for tests that spawn many processes themselves.
pub fn racefree_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin!("racefree").to_path_buf()
}

/// A command running the built binary as `nobody` when we are root, so permission
/// checks apply (root bypasses them); as anyone else, as ourselves. The binary is
/// copied into `dir` (made searchable by all), because the build tree may sit below
/// a directory nobody cannot enter, such as a 0700 mktemp clone in CI.
pub fn racefree_as_nobody(dir: &Path) -> Command {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let exe = dir.join("racefree-bin");
    if !exe.exists() {
        // Copied by cp, not std::fs::copy: the copy's write descriptor must never be
        // open in this multi-threaded process, or a child another test thread forks
        // at that instant inherits it, and exec of the copy fails with ETXTBSY
        // until that child has exec'd.
        let status = Command::new("cp")
            .arg(racefree_path())
            .arg(&exe)
            .status()
            .unwrap();
        assert!(status.success(), "cp of the binary failed");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new(&exe);
    cmd.current_dir(dir);
    if is_root() {
        // SAFETY: setgroups/setgid/setuid are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

/// nobody's uid and gid on Debian.
pub const NOBODY: u32 = 65534;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

// ---------------------------------------------------------------------------
// A temporary tree, the binary run in it, and exact output

/// A temporary directory, removed when dropped, in which the binary runs.
pub struct TestEnv {
    dir: tempfile::TempDir,
}

/// What a run must produce, exactly.
pub struct Expected<'a> {
    pub code: i32,
    pub stdout: &'a str,
    pub stderr: &'a str,
}

impl Expected<'static> {
    /// Exit 0 and nothing on either stream.
    pub const QUIET: Expected<'static> = Expected {
        code: 0,
        stdout: "",
        stderr: "",
    };
}

impl<'a> Expected<'a> {
    /// Exit 0, exactly `stdout`, nothing on stderr.
    pub fn success(stdout: &'a str) -> Expected<'a> {
        Expected {
            code: 0,
            stdout,
            stderr: "",
        }
    }

    /// Exit `code`, exactly `stderr`, nothing on stdout.
    pub fn failure(code: i32, stderr: &'a str) -> Expected<'a> {
        Expected {
            code,
            stdout: "",
            stderr,
        }
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `rel` (parents created), returning its full path.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.root().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Makes the directory `rel` and any missing parents, returning its full path.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.root().join(rel);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Sets the permission bits of `rel` (`.` is the tree itself) to `mode`.
    pub fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.root().join(rel), std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {mode:o} {rel}: {e}"));
    }

    /// The binary with `args`, its working directory this tree.
    pub fn racefree<I, S>(&self, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = racefree();
        cmd.current_dir(self.root()).args(args);
        cmd
    }

    /// Runs the binary with `args` and asserts its exit code and both streams exactly;
    /// on a mismatch, the failure shows every difference as a line diff.
    #[track_caller]
    pub fn assert_run<I, S>(&self, args: I, want: &Expected) -> Assert
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let assert = self.racefree(args).assert();
        assert_output(assert.get_output(), want);
        assert
    }

    /// [`assert_run`](Self::assert_run) with `stdin` as the binary's standard input.
    #[track_caller]
    pub fn assert_run_with_stdin<I, S>(
        &self,
        args: I,
        stdin: impl Into<Vec<u8>>,
        want: &Expected,
    ) -> Assert
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let assert = self.racefree(args).write_stdin(stdin).assert();
        assert_output(assert.get_output(), want);
        assert
    }

    /// The binary with `args` in this tree as a plain [`Command`], for a test that
    /// controls the process itself (its pipes, a `pre_exec`, many at once).
    pub fn racefree_process<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(racefree_path());
        cmd.current_dir(self.root()).args(args);
        cmd
    }

    /// [`assert_run`](Self::assert_run) with the child's umask set to `umask`.
    #[track_caller]
    pub fn assert_run_under_umask<I, S>(&self, umask: u32, args: I, want: &Expected)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.racefree_process(args);
        set_umask(&mut cmd, umask);
        assert_output(&cmd.output().unwrap(), want);
    }

    /// The binary with `args` in this tree, as `nobody` when we are root (see
    /// [`racefree_as_nobody`]). The tree itself is 0700 as created: a test first
    /// opens it as far as nobody needs.
    pub fn racefree_as_nobody<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = racefree_as_nobody(self.root());
        cmd.args(args);
        cmd
    }

    /// [`assert_run`](Self::assert_run) as `nobody` (see [`racefree_as_nobody`](Self::racefree_as_nobody)).
    #[track_caller]
    pub fn assert_run_as_nobody<I, S>(&self, args: I, want: &Expected)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        assert_output(&self.racefree_as_nobody(args).output().unwrap(), want);
    }

    /// Asserts that `rel` is a directory (not a symbolic link to one) whose
    /// permission bits, set-id and sticky bits included, are exactly `mode`.
    #[track_caller]
    pub fn assert_dir_mode(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(self.root().join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(meta.is_dir(), "{rel} is not a directory");
        let got = meta.permissions().mode() & 0o7777;
        assert!(got == mode, "{rel}: mode {got:04o}, expected {mode:04o}");
    }
}

/// Sets the umask of `cmd`'s child only: the test process's umask is shared by
/// every test thread.
pub fn set_umask(cmd: &mut Command, umask: u32) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        })
    }
}

/// Asserts a finished process's exit code, stdout and stderr exactly, byte for
/// byte, with a line diff of each stream that differs.
#[track_caller]
pub fn assert_output(out: &std::process::Output, want: &Expected) {
    let mut problems = Vec::new();
    if out.status.code() != Some(want.code) {
        problems.push(format!(
            "exit status: expected {}, got {}",
            want.code, out.status
        ));
    }
    for (name, got, want) in [
        ("stdout", &out.stdout, want.stdout),
        ("stderr", &out.stderr, want.stderr),
    ] {
        if got.as_slice() != want.as_bytes() {
            let got = String::from_utf8_lossy(got);
            let why = if got == want {
                " (equal only once invalid UTF-8 is read as U+FFFD)"
            } else {
                ""
            };
            problems.push(format!(
                "{name} (- expected, + actual){why}:\n{}",
                line_diff(want, &got)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A line diff of two texts: common lines indented, removed `-`, added `+`, each
/// line debug-quoted so trailing blanks and control bytes show.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (
        expected.split_inclusive('\n').collect(),
        actual.split_inclusive('\n').collect(),
    );
    // Longest common subsequence, by the classic table; test output is short.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out += &format!("  {:?}\n", a[i]);
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out += &format!("- {:?}\n", a[i]);
            i += 1;
        } else {
            out += &format!("+ {:?}\n", b[j]);
            j += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Sockets

/// The inode of a socket descriptor of this process (`socket:[N]` in /proc).
pub fn inode_of(fd: &impl AsRawFd) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    socket_inode(&link).unwrap()
}

/// `socket:[N]` as a /proc fd link shows it, to N.
pub fn socket_inode(link: &Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every process holding the socket with this inode, by /proc/PID/fd. (A process
/// that exits mid-scan is skipped: its descriptors are gone with it.)
pub fn socket_holders(inode: u64) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|link| socket_inode(&link) == Some(inode))
        {
            pids.push(pid);
        }
    }
    pids
}

/// One field of /proc/PID/status, split on white space (`Uid:` gives four ids).
pub fn proc_status_field(pid: u32, name: &str) -> Vec<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Runs `f` on a helper thread whose file-system uid is `uid`, so the sockets it
/// creates belong to `uid`. fsuid is per thread: the test harness's own threads
/// never change identity.
pub fn as_fsuid<T: Send + 'static>(uid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: setfsuid changes only this thread's credentials and returns the old fsuid.
        let old = unsafe { libc::setfsuid(uid) };
        let out = f();
        unsafe { libc::setfsuid(old as libc::uid_t) };
        out
    })
    .join()
    .unwrap()
}

/// One reply line, CRLF included.
pub fn read_line(s: &mut TcpStream) -> String {
    read_line_until(s, false)
}

/// One reply line, or "" when the server closes (or resets) without one.
pub fn read_until_closed_or_line(s: &mut TcpStream) -> String {
    read_line_until(s, true)
}

/// Bytes up to CRLF or end of file; a reset ends the line when `reset_is_close`,
/// and is a failure otherwise.
fn read_line_until(s: &mut TcpStream, reset_is_close: bool) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if reset_is_close && e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "reading a reply after {:?}: {e}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    String::from_utf8(line).unwrap()
}

/// Everything the peer sends until it closes; a reset after a refusal counts as closed.
pub fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return all,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "waiting for the server to close: {e} (got {:?})",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// The server under test

/// `racefree ident serve --listen ADDR --log none` as a [`ServeChild`] (the library's
/// wrapper, which the stress harness uses too), with what a test asks of it.
pub struct Identd {
    pub server: ServeChild,
    /// Where the tests connect: where it said it listens, unless a test points
    /// elsewhere (an IPv4 address of a dual-stack server).
    pub addr: SocketAddr,
}

impl Identd {
    pub fn start(listen: &str, extra: &[&str]) -> Identd {
        Self::try_start(listen, extra)
            .unwrap_or_else(|e| panic!("starting identd on {listen}: {e:#}"))
    }

    /// Starts the server; a failed start's error is a [`StartError`] with its stderr.
    ///
    /// [`StartError`]: racefree::ident::server::child::StartError
    pub fn try_start(listen: &str, extra: &[&str]) -> anyhow::Result<Identd> {
        let server = ServeChild::start(
            &racefree_path(),
            listen,
            ["--log", "none"].iter().chain(extra),
        )?;
        Ok(Identd {
            addr: server.addr(),
            server,
        })
    }

    /// A server the test started itself (as inetd in wait mode, or systemd), on a
    /// socket it bound at `addr`; stopped when dropped like the others.
    pub fn adopt(child: Child, addr: SocketAddr) -> Identd {
        Identd {
            server: ServeChild::adopt(child, addr),
            addr,
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s
    }

    /// Sends `request` on a fresh connection and returns the first reply line.
    pub fn ask_line(&self, request: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        read_line(&mut s)
    }

    /// `racefree ident query` against this server.
    pub fn query(&self, server_port: u16, client_port: u16, bind: Option<&str>) -> Assert {
        let mut cmd = racefree();
        cmd.args(["ident", "query", &self.addr.ip().to_string()])
            .args([server_port.to_string(), client_port.to_string()])
            .args(["--port", &self.addr.port().to_string(), "--timeout", "10"]);
        if let Some(b) = bind {
            cmd.args(["--bind", b]);
        }
        cmd.assert()
    }
}

/// A precondition build.rs did not find, but the machine has now (installed since),
/// would leave its tests listed as ignored for a reason no longer true: a failure,
/// which makes the next build probe again. (The other way, one found but gone since,
/// fails each test that needs it, in [`require`].)
#[test]
fn no_precondition_missing_at_build_time_has_appeared_since() {
    let appeared: Vec<&str> = Precondition::ALL
        .into_iter()
        .filter(|&p| !built_with(p) && p.probe().is_ok())
        .map(Precondition::describe)
        .collect();
    if !appeared.is_empty() {
        probe_again_at_next_build();
    }
    assert!(
        appeared.is_empty(),
        "missing when the tests were built, so their tests were listed as ignored, and \
         here now: {}; the next build probes again",
        appeared.join(", ")
    );
}

#[test]
fn each_setting_runs_and_a_failure_names_the_settings_that_failed() {
    let ran = std::sync::Mutex::new(Vec::new());
    for_each_setting(&[("one", 1), ("two", 2)], |n| ran.lock().unwrap().push(n));
    assert_eq!(*ran.lock().unwrap(), [1, 2]);
    let failed = std::panic::catch_unwind(|| {
        for_each_setting(
            &[("plain", false), ("with --flag", true), ("again", true)],
            |fail| assert!(!fail, "boom"),
        )
    })
    .expect_err("a failing setting passed");
    assert_eq!(
        failed.downcast_ref::<String>().map(String::as_str),
        Some("failed with --flag: boom\nfailed again: boom")
    );
}

#[test]
fn a_failed_exact_assertion_shows_a_line_diff() {
    assert_eq!(
        line_diff("a\nb\nc\n", "a\nB\nc\nd"),
        "  \"a\\n\"\n- \"b\\n\"\n+ \"B\\n\"\n  \"c\\n\"\n+ \"d\"\n"
    );
    let env = TestEnv::new();
    let out = env.racefree(["no-such-command"]).output().unwrap();
    let failed = std::panic::catch_unwind(|| {
        assert_output(
            &out,
            &Expected {
                code: 0,
                stdout: "",
                stderr: "",
            },
        )
    });
    assert!(failed.is_err(), "a wrong expectation passed");
    // Bytes, not a lossy reading: an invalid byte is not the U+FFFD it reads as.
    let invalid = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(0),
        stdout: b"\xff\n".to_vec(),
        stderr: Vec::new(),
    };
    let failed =
        std::panic::catch_unwind(|| assert_output(&invalid, &Expected::success("\u{fffd}\n")));
    assert!(failed.is_err(), "an invalid byte passed for U+FFFD");
    let list = env.write("list", "x/y\n");
    env.assert_run(
        ["makedirs", "--from", list.to_str().unwrap()],
        &Expected {
            code: 0,
            stdout: "",
            stderr: "",
        },
    );
    assert!(env.root().join("x/y").is_dir());
}
