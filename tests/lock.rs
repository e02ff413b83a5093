//! `racefree lock` through the built binary: flock(1)'s interface and statuses,
//! inheritance of the lock, every error, and real contention checked by a witness.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{lchown, symlink};
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};

use predicates::prelude::*;

use crate::testenv::{NOBODY, Precondition, TestEnv, is_root, racefree, racefree_path, require};

/// A process holding the lock on `lockfile` (with extra options) until dropped.
/// Returns once it holds it: it says "ready" from inside the lock.
struct Holder(Child);

impl Holder {
    fn new(env: &TestEnv, opts: &[&str]) -> Holder {
        let mut child = env
            .racefree_process(["lock"])
            .args(opts)
            .args(["l", "--", "sh", "-c", "echo ready; read x"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.stdin.take().unwrap().write_all(b"\n");
        let _ = self.0.wait();
    }
}

fn lock_in(env: &TestEnv) -> assert_cmd::Command {
    env.racefree(["lock"])
}

#[test]
fn commands_status_is_passed_through_and_a_signal_is_128_plus_n() {
    let env = TestEnv::new();
    lock_in(&env)
        .args(["l", "true"])
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    lock_in(&env)
        .args(["l", "--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    lock_in(&env)
        .args(["l", "sh", "-c", "echo out; echo err >&2; exit 0"])
        .assert()
        .success()
        .stdout("out\n")
        .stderr("err\n");
    lock_in(&env)
        .args(["l", "sh", "-c", "kill -KILL $$"])
        .assert()
        .code(137);
    lock_in(&env).args(["-c", "exit 4", "l"]).assert().code(4);
    assert!(env.root().join("l").is_file(), "created, and never removed");
}

#[test]
fn a_held_lock_gives_the_conflict_status_with_n_and_w() {
    let env = TestEnv::new();
    let _holder = Holder::new(&env, &[]);
    // Silent, as flock(1): scripts test the status.
    lock_in(&env)
        .args(["-n", "l", "echo", "ran"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("");
    lock_in(&env)
        .args(["-n", "-E", "42", "l", "true"])
        .assert()
        .code(42);
    let started = std::time::Instant::now();
    lock_in(&env)
        .args(["-w", "0.3", "l", "true"])
        .assert()
        .code(1)
        .stdout("");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    lock_in(&env)
        .args(["--verbose", "-w", "0.05", "l", "true"])
        .assert()
        .code(1)
        .stderr("racefree: lock: timed out after 0.05 s waiting for the lock on 'l'\n");
    lock_in(&env)
        .args(["--verbose", "-n", "l", "true"])
        .assert()
        .code(1)
        .stderr("racefree: lock: 'l' is locked by another process\n");
}

#[test]
fn shared_holders_coexist_and_keep_an_exclusive_one_out() {
    let env = TestEnv::new();
    let _holder = Holder::new(&env, &["-s"]);
    lock_in(&env)
        .args(["-s", "-n", "l", "true"])
        .assert()
        .code(0);
    lock_in(&env)
        .args(["-x", "-n", "l", "true"])
        .assert()
        .code(1);
    lock_in(&env).args(["-n", "l", "true"]).assert().code(1);
}

#[test]
fn command_inherits_the_lock_unless_close() {
    let env = TestEnv::new();
    let list = "for f in /proc/$$/fd/*; do readlink \"$f\"; done";
    let out = lock_in(&env)
        .args(["l", "sh", "-c", list])
        .output()
        .unwrap();
    let fds = String::from_utf8(out.stdout).unwrap();
    let lockfile = fs::canonicalize(env.root()).unwrap().join("l");
    assert!(
        fds.lines().any(|l| Path::new(l) == lockfile),
        "inherited: {fds}"
    );
    let out = lock_in(&env)
        .args(["-o", "l", "sh", "-c", list])
        .output()
        .unwrap();
    let fds = String::from_utf8(out.stdout).unwrap();
    assert!(
        !fds.lines().any(|l| Path::new(l) == lockfile),
        "not with -o: {fds}"
    );
}

#[test]
fn a_background_child_keeps_an_inherited_lock_but_not_with_close() {
    let env = TestEnv::new();
    let bg = "sleep 60 >/dev/null 2>&1 & echo $!";
    for (opts, held_after) in [(&[][..], true), (&["-o"][..], false)] {
        let out = lock_in(&env)
            .args(opts)
            .args(["l", "sh", "-c", bg])
            .output()
            .unwrap();
        assert!(out.status.success());
        let pid: i32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let code = if held_after { 1 } else { 0 };
        lock_in(&env).args(["-n", "l", "true"]).assert().code(code);
        // SAFETY: killing the background child this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[test]
fn sigterm_to_racefree_reaches_command_and_its_status_comes_back() {
    let env = TestEnv::new();
    // Bounded, so a failure cannot leave the shell (and this test) waiting forever.
    let script =
        "trap 'echo got TERM; exit 3' TERM; echo ready; for i in $(seq 400); do sleep 0.05; done";
    let mut child = env
        .racefree_process(["lock", "l", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: signalling our own child (racefree, not the shell).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "got TERM\n");
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

#[test]
#[cfg_attr(
    not(has_root),
    ignore = "needs root to give a symbolic link another owner"
)]
fn a_symlink_at_lockfile_is_refused_and_not_followed() {
    require(&[Precondition::Root]);
    // Someone else's link to a file that does not exist: following it would create
    // a file where they chose, as the caller.
    let env = TestEnv::new();
    symlink("target", env.root().join("l")).unwrap();
    lchown(env.root().join("l"), Some(NOBODY), Some(NOBODY)).unwrap();
    lock_in(&env)
        .args(["l", "echo", "ran"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(
            "racefree: error: refusing to lock 'l': it is a symbolic link owned by uid 65534, who \
             is not you, to 'target', which does not exist (a link someone else may have planted \
             is never followed)\n",
        );
    assert!(!env.root().join("target").exists());
}

/// A symbolic link named `name` in `env` to `target`, owned by `uid`.
fn link_owned_by(env: &TestEnv, target: &str, name: &str, uid: u32) {
    let link = env.root().join(name);
    symlink(target, &link).unwrap();
    lchown(&link, Some(uid), Some(uid)).unwrap();
}

/// Locks `lockfile` while locking `other` with -n: 1 when both name one file.
fn held_through_both(env: &TestEnv, lockfile: &str, other: &str) -> i32 {
    let script = format!("\"$0\" lock -n {other} true; echo $?");
    let out = lock_in(env)
        .args([lockfile, "sh", "-c", &script])
        .arg(racefree_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn ones_own_symlink_at_lockfile_is_followed_as_flock_follows_it() {
    let env = TestEnv::new();
    symlink("target", env.root().join("l")).unwrap();
    lock_in(&env)
        .args(["l", "true"])
        .assert()
        .code(0)
        .stderr("");
    assert!(
        env.root().join("target").is_file(),
        "created through the link"
    );
    assert_eq!(
        held_through_both(&env, "l", "target"),
        1,
        "one file, one lock"
    );
    assert_eq!(held_through_both(&env, "target", "l"), 1);
    // With --nfs the link lock is named after the file too.
    let script = "\"$0\" lock -n --nfs target true; echo $?; ls";
    let out = lock_in(&env)
        .args(["--nfs", "l", "sh", "-c", script])
        .arg(racefree_path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "1\nl\ntarget\ntarget.nfslock\n"
    );
}

#[test]
#[cfg_attr(
    not(has_root),
    ignore = "needs root to give a symbolic link another owner"
)]
fn a_symlink_is_followed_only_where_the_protected_symlinks_rule_allows() {
    require(&[Precondition::Root]);
    let refused = |link: &str, why: &str| {
        format!(
            "racefree: error: refusing to lock '{link}': it is a symbolic link owned by uid \
             65534, {why} (a link someone else may have planted is never followed)\n"
        )
    };
    let env = TestEnv::new();
    env.write("roots", "");
    env.write("nobodys", "");
    lchown(env.root().join("nobodys"), Some(NOBODY), Some(NOBODY)).unwrap();
    // Someone else's link to a file they do not own: refused, the file untouched.
    link_owned_by(&env, "roots", "to-roots", NOBODY);
    lock_in(&env)
        .args(["to-roots", "echo", "ran"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(refused(
            "to-roots",
            "who is neither you nor the owner of 'roots'",
        ));
    // Their link to their own file: they could have let us lock it anyway.
    link_owned_by(&env, "nobodys", "to-nobodys", NOBODY);
    lock_in(&env)
        .args(["to-nobodys", "echo", "ran"])
        .assert()
        .code(0)
        .stdout("ran\n");
    assert_eq!(held_through_both(&env, "to-nobodys", "nobodys"), 1);
    // In a sticky world-writable directory, as /tmp: the same link is refused, as
    // the kernel's protected_symlinks refuses it; one's own is followed.
    env.mkdir("tmp");
    env.chmod("tmp", 0o1777);
    link_owned_by(&env, "../nobodys", "tmp/to-nobodys", NOBODY);
    lock_in(&env)
        .args(["tmp/to-nobodys", "echo", "ran"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(refused(
            "tmp/to-nobodys",
            "who is neither you nor the owner of the sticky world-writable directory it is in",
        ));
    symlink("../roots", env.root().join("tmp/mine")).unwrap();
    lock_in(&env)
        .args(["tmp/mine", "echo", "ran"])
        .assert()
        .code(0)
        .stdout("ran\n");
}

#[test]
fn a_directory_can_be_locked() {
    let env = TestEnv::new();
    env.mkdir("l");
    let _holder = Holder::new(&env, &[]);
    lock_in(&env).args(["-n", "l", "true"]).assert().code(1);
}

#[test]
fn command_not_found_is_127_and_not_executable_is_126() {
    let env = TestEnv::new();
    lock_in(&env)
        .args(["l", "no-such-command-racefree"])
        .assert()
        .code(127)
        .stderr(
            "racefree: error: cannot run 'no-such-command-racefree': No such file or directory\n",
        );
    env.write("script", "#!/bin/sh\n");
    env.chmod("script", 0o644);
    lock_in(&env)
        .args(["l", "./script"])
        .assert()
        .code(126)
        .stderr("racefree: error: cannot run './script': Permission denied\n");
}

#[test]
fn usage_errors_exit_2() {
    racefree()
        .args(["lock", "l"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: the following required arguments were not provided",
        ));
    racefree()
        .args(["lock", "-w", "soon", "l", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid value 'soon' for '--timeout <SECS>': 'soon' is not a number of seconds",
        ));
    racefree()
        .args(["lock", "-w", "-1", "l", "true"])
        .assert()
        .code(2);
    racefree()
        .args(["lock", "-s", "-x", "l", "true"])
        .assert()
        .code(2);
}

#[test]
fn a_lock_file_nobody_may_create_is_status_125() {
    let env = TestEnv::new();
    env.mkdir("ro");
    env.chmod(".", 0o755);
    env.chmod("ro", if is_root() { 0o755 } else { 0o555 });
    let out = env
        .racefree_as_nobody(["lock", "ro/l", "echo", "ran"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot open lock file 'ro/l': Permission denied\n"
    );
}

/// Many processes run a critical section that a witness checks: mkdir of a
/// directory that must not exist (it does if two holders overlap), then rmdir.
fn contend(extra: &[&str]) {
    let env = TestEnv::new();
    let racers = 8;
    let per = 15;
    let opts = extra.join(" ");
    let script = format!(
        "for i in $(seq {per}); do \
           \"$0\" lock {opts} l -- sh -c 'mkdir w || exit 99; echo x >> log; rmdir w' || exit $?; \
         done"
    );
    let children: Vec<_> = (0..racers)
        .map(|_| {
            StdCommand::new("sh")
                .args(["-c", &script])
                .arg(racefree_path())
                .current_dir(env.root())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "99 means two holders at once ({extra:?})"
        );
    }
    let log = fs::read_to_string(env.root().join("log")).unwrap();
    assert_eq!(log.lines().count(), racers * per);
}

#[test]
fn eight_processes_never_hold_the_exclusive_lock_at_once() {
    contend(&[]);
}

#[test]
fn eight_processes_never_hold_the_nfs_link_lock_at_once() {
    contend(&["--nfs"]);
}

#[test]
fn help_documents_the_exit_statuses() {
    racefree()
        .args(["lock", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "  125  the lock could not be taken",
        ));
}

/// main takes a shortcut for lock, counter and write (their own subcommand only,
/// not clap's whole tree); it must parse every line exactly as the full parser does,
/// and leave to it every line it does not accept.
#[test]
fn the_fast_parser_agrees_with_the_full_one() {
    use clap::Parser;
    use racefree::cli::{Cli, parse_primitive_fast};
    let lines: &[&[&str]] = &[
        &["lock", "L", "true"],
        &["lock", "-n", "-E", "3", "L", "--", "sh", "-c", "exit 1"],
        &["lock", "-s", "-w", "0.5", "--verbose", "L", "ls", "-l"],
        &["lock", "-o", "--nfs", "L", "cmd", "--", "x"],
        &["lock", "-c", "echo hi", "L"],
        // The descriptor form: LOCKFILE alone parses, and run() tells a descriptor
        // number from a missing COMMAND.
        &["lock", "L"],
        &["lock", "-n", "9"],
        &["lock", "-u", "9"],
        &["lock", "-s", "-w", "inf", "9"],
        &["lock", "-en", "./x", "./x", "a", "-b"],
        &["lock", "-F", "L", "cmd"],
        &["lock", "-w", "1e19", "L", "true"],
        &["counter", "n"],
        &[
            "counter", "--add", "-3", "--init", "-7", "--sync", "--json", "n",
        ],
        &["counter", "--get", "n"],
        &["write", "-m", "644", "--no-follow", "--no-sync", "f"],
        &["write", "--", "-f"],
    ];
    for line in lines {
        let argv: Vec<std::ffi::OsString> = std::iter::once("racefree")
            .chain(line.iter().copied())
            .map(Into::into)
            .collect();
        let fast =
            parse_primitive_fast(&argv).unwrap_or_else(|| panic!("fast parse refused {line:?}"));
        let full = Cli::try_parse_from(&argv).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line:?}");
    }
    let refused: &[&[&str]] = &[
        &["lock", "--help"],
        &["lock", "-F", "-o", "L", "true"],
        &["lock", "-u", "-s", "9"],
        &["lock", "-w", "nan", "L", "true"],
        &["lock", "-h"],
        &["lock", "--version"],
        &["lock", "-s", "-x", "L", "true"],
        &["counter", "--get", "--add", "1", "n"],
        &["write"],
        &["makedirs", "d"],
    ];
    for line in refused {
        let argv: Vec<std::ffi::OsString> = std::iter::once("racefree")
            .chain(line.iter().copied())
            .map(Into::into)
            .collect();
        assert!(parse_primitive_fast(&argv).is_none(), "{line:?}");
    }
}

#[test]
fn closed_standard_descriptors_are_never_the_lock_file() {
    // Started with stdin, stdout and stderr closed, the lock file would be opened as
    // fd 0 and COMMAND's output (to fd 1, then fd 2) written into it, had racefree
    // not put /dev/null on every closed standard descriptor first.
    let env = TestEnv::new();
    let status = StdCommand::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" lock l -- sh -c 'echo out; echo err >&2' <&- >&- 2>&-"#)
        .arg(racefree_path())
        .current_dir(env.root())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(fs::read(env.root().join("l")).unwrap(), b"");
}

/// A racefree lock process whose COMMAND the test steers: it writes lines to
/// COMMAND's stdin and reads COMMAND's stdout line by line.
struct Steered {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Steered {
    fn start(env: &TestEnv, args: &[&str]) -> Steered {
        let mut child = env
            .racefree_process(["lock"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Steered { child, out }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line
    }

    fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling our own child, the racefree process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }
}

/// The pid blocked in flock(2) on a lock file with inode `ino`, per /proc/locks
/// (a request still waiting is listed with "->"); waits for one, bounded.
fn wait_until_blocked_in_flock(pid: u32, ino: u64) {
    let blocked = |locks: &str| {
        locks.lines().any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.get(1) == Some(&"->")
                && f.get(2) == Some(&"FLOCK")
                && f.get(5) == Some(&pid.to_string().as_str())
                && f.get(6)
                    .is_some_and(|dev_ino| dev_ino.ends_with(&format!(":{ino}")))
        })
    };
    let give_up = std::time::Instant::now() + crate::testenv::DEADLINE;
    loop {
        let locks = fs::read_to_string("/proc/locks").unwrap();
        if blocked(&locks) {
            return;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "pid {pid} never blocked in flock:\n{locks}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_wait_of_any_length_is_a_wait_or_a_usage_error_never_a_panic() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    for secs in ["1e19", "1e308", "inf", "infinity", "18446744073709551615"] {
        lock_in(&env)
            .args(["-w", secs, "l", "echo", "free"])
            .assert()
            .code(0)
            .stdout("free\n")
            .stderr("");
    }
    // Held: a huge wait waits, in the kernel's queue, until the lock is released.
    let ino = fs::metadata(env.root().join("l")).unwrap().ino();
    for secs in ["1e19", "1e308", "inf"] {
        let holder = Holder::new(&env, &[]);
        let waiter = env
            .racefree_process(["lock", "-w", secs, "l", "echo", "got"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until_blocked_in_flock(waiter.id(), ino);
        drop(holder);
        let out = waiter.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "-w {secs}");
        assert_eq!(out.stdout, b"got\n");
    }
    for (secs, why) in [
        ("nan", "'nan' is not a number of seconds"),
        ("NaN", "'NaN' is not a number of seconds"),
        ("-0.5", "'-0.5' is not a number of seconds >= 0"),
        ("-inf", "'-inf' is not a number of seconds >= 0"),
        ("1e", "'1e' is not a number of seconds"),
    ] {
        lock_in(&env)
            .arg(format!("--wait={secs}"))
            .args(["l", "echo", "ran"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!(
                "invalid value '{secs}' for '--timeout <SECS>': {why}"
            )));
    }
}

/// `racefree lock OPTS l sh -c SCRIPT`, SCRIPT printing its own pid first, then
/// waiting for a line on stdin; it appends "done" to `log` when it ends.
fn steered_command(env: &TestEnv, opts: &[&str]) -> (Steered, u32) {
    let mut args = opts.to_vec();
    args.extend(["l", "sh", "-c", "echo $$; read x; echo done >> log"]);
    let mut steered = Steered::start(env, &args);
    let pid = steered.line().trim().parse().unwrap();
    (steered, pid)
}

#[test]
fn sigkill_of_racefree_leaves_the_nfs_lock_to_command_until_it_exits() {
    // -o: COMMAND holds no flock, so only the link lock's record can keep the
    // next locker out; and without -o, where COMMAND inherits the flock.
    for opts in [&["--nfs", "-o"][..], &["--nfs"][..]] {
        let env = TestEnv::new();
        let (mut command, pid) = steered_command(&env, opts);
        let record = fs::read_to_string(env.root().join("l.nfslock")).unwrap();
        assert!(
            record.contains(&format!("\nholder {pid} ")),
            "the record names COMMAND: {record}"
        );
        // Child::wait closes the stdin it holds, which would end COMMAND: keep it.
        let mut stdin = command.child.stdin.take().unwrap();
        command.child.kill().unwrap();
        command.child.wait().unwrap();
        // racefree is dead, COMMAND runs on: the lock is still held.
        lock_in(&env)
            .args(["-n", "--nfs", "l", "echo", "ran"])
            .assert()
            .code(1)
            .stdout("");
        lock_in(&env)
            .args(["--verbose", "-w", "0.2", "--nfs", "l", "echo", "ran"])
            .assert()
            .code(1)
            .stdout("")
            .stderr("racefree: lock: timed out after 0.2 s waiting for the lock on 'l'\n");
        // The next locker waits for COMMAND, and gets the lock once it has ended.
        let next = env
            .racefree_process(["lock", "--nfs", "-w", "60", "l", "cat", "log"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        stdin.write_all(b"\n").unwrap();
        drop(stdin);
        let out = next.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{opts:?}");
        assert_eq!(out.stdout, b"done\n", "{opts:?}: ran after COMMAND ended");
    }
}

#[test]
fn nfs_and_plain_lockers_exclude_each_other() {
    let env = TestEnv::new();
    fs::write(env.root().join("n"), "0\n").unwrap();
    let (racers, rounds) = (4, 50);
    // A read-modify-write with a window: two holders at once lose an update.
    let script = format!(
        "for i in $(seq {rounds}); do \
           \"$0\" lock $1 l -- sh -c 'v=$(cat n); echo $((v + 1)) > n' || exit $?; \
         done"
    );
    let children: Vec<_> = ["-o", "--nfs"]
        .iter()
        .flat_map(|mode| std::iter::repeat_n(*mode, racers))
        .map(|mode| {
            StdCommand::new("sh")
                .args(["-c", &script])
                .arg(racefree_path())
                .arg(mode)
                .current_dir(env.root())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        assert_eq!(c.wait_with_output().unwrap().status.code(), Some(0));
    }
    let n = fs::read_to_string(env.root().join("n")).unwrap();
    assert_eq!(n, format!("{}\n", 2 * racers * rounds), "updates were lost");
}

#[test]
fn a_link_lock_without_a_readable_record_is_an_error_that_says_how_to_clear_it() {
    let env = TestEnv::new();
    for content in ["garbage\n", ""] {
        env.write("l.nfslock", content);
        for wait in [&["-n"][..], &["-w", "1"][..], &[][..]] {
            lock_in(&env)
                .args(wait)
                .args(["--nfs", "l", "echo", "ran"])
                .assert()
                .code(125)
                .stdout("")
                .stderr(
                    "racefree: error: the lock 'l.nfslock' holds no owner record that racefree \
                     can read (it is empty or was not written by racefree), so whether its owner \
                     lives cannot be told; once no process on any host holds the lock, remove it: \
                     rm 'l.nfslock'\n",
                );
        }
        assert_eq!(
            fs::read_to_string(env.root().join("l.nfslock")).unwrap(),
            content
        );
    }
}

#[test]
fn a_script_whose_interpreter_is_missing_names_the_interpreter() {
    let env = TestEnv::new();
    env.write("x.sh", "#!/no/such/interpreter -e\necho hi\n");
    env.chmod("x.sh", 0o755);
    lock_in(&env)
        .args(["l", "./x.sh"])
        .assert()
        .code(127)
        .stdout("")
        .stderr(
            "racefree: error: cannot run './x.sh': the interpreter named on its #! line, \
             '/no/such/interpreter', was not found\n",
        );
    // Saved with CRLF line ends, the interpreter's name ends in a carriage return.
    env.write("crlf.sh", "#!/bin/sh\r\necho hi\r\n");
    env.chmod("crlf.sh", 0o755);
    lock_in(&env)
        .args(["l", "./crlf.sh"])
        .assert()
        .code(127)
        .stderr(
            "racefree: error: cannot run './crlf.sh': the interpreter named on its #! line, \
             '/bin/sh'$'\\r', was not found\n",
        );
    // Found through PATH, the same.
    lock_in(&env)
        .env("PATH", env.root())
        .args(["l", "x.sh"])
        .assert()
        .code(127)
        .stderr(
            "racefree: error: cannot run 'x.sh': the interpreter named on its #! line, \
             '/no/such/interpreter', was not found\n",
        );
}

#[test]
fn signals_that_would_kill_racefree_go_to_command_which_keeps_the_lock() {
    let names = [
        (libc::SIGTERM, "TERM"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGALRM, "ALRM"),
    ];
    for (sig, name) in names {
        for opts in [&["-o"][..], &["--nfs", "-o"][..], &[][..]] {
            let env = TestEnv::new();
            // On the signal, COMMAND first checks that the lock is still held (with
            // -o it holds no descriptor of it: racefree does), then exits 3.
            let script = format!(
                "trap '\"$0\" lock -n {} l true; echo got {name} $?; exit 3' {name}; echo ready; \
                 for i in $(seq 400); do sleep 0.05; done",
                opts.join(" ")
            );
            let exe = racefree_path();
            let mut args = opts.to_vec();
            // sh's $0, the racefree binary, comes after the script.
            args.extend(["l", "sh", "-c", &script, exe.to_str().unwrap()]);
            let mut steered = Steered::start(&env, &args);
            assert_eq!(steered.line(), "ready\n", "{name} {opts:?}");
            steered.signal(sig);
            assert_eq!(steered.line(), format!("got {name} 1\n"), "{opts:?}");
            assert_eq!(
                steered.child.wait().unwrap().code(),
                Some(3),
                "{name} {opts:?}"
            );
        }
    }
}

#[test]
fn sigint_and_sigquit_are_left_to_command() {
    for (sig, name) in [(libc::SIGINT, "INT"), (libc::SIGQUIT, "QUIT")] {
        let env = TestEnv::new();
        let exe = racefree_path();
        let script = "echo ready; read x; \"$0\" lock -n l true; echo held $?; exit 5";
        let mut steered = Steered::start(
            &env,
            &["-o", "l", "sh", "-c", script, exe.to_str().unwrap()],
        );
        assert_eq!(steered.line(), "ready\n");
        steered.signal(sig);
        steered.say("\n");
        assert_eq!(steered.line(), "held 1\n", "{name}: racefree lived on");
        assert_eq!(steered.child.wait().unwrap().code(), Some(5), "{name}");
    }
}

#[test]
fn no_fork_execs_command_in_racefrees_place_holding_the_lock() {
    let env = TestEnv::new();
    let mut steered = Steered::start(&env, &["-F", "l", "sh", "-c", "echo $$; read x; exit 4"]);
    let pid: u32 = steered.line().trim().parse().unwrap();
    assert_eq!(pid, steered.child.id(), "COMMAND is the racefree process");
    lock_in(&env).args(["-n", "l", "true"]).assert().code(1);
    steered.say("\n");
    assert_eq!(steered.child.wait().unwrap().code(), Some(4));
    lock_in(&env).args(["-n", "l", "true"]).assert().code(0);
    lock_in(&env)
        .args(["--no-fork", "l", "no-such-command-racefree"])
        .assert()
        .code(127)
        .stderr(
            "racefree: error: cannot run 'no-such-command-racefree': No such file or directory\n",
        );
    for (other, name) in [("-o", "--close"), ("--nfs", "--nfs")] {
        lock_in(&env)
            .args(["-F", other, "l", "true"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "the argument '--no-fork' cannot be used with '{name}'"
            )));
    }
}

/// The descriptor form: the shell opens the file, racefree locks its descriptor
/// and exits; the lock stays with the shell.
#[test]
fn the_descriptor_form_locks_the_shells_open_file() {
    let env = TestEnv::new();
    let exe = racefree_path();
    let rf = exe.to_str().unwrap();
    let shell = |script: &str| {
        StdCommand::new("sh")
            .args(["-c", script, rf])
            .current_dir(env.root())
            .output()
            .unwrap()
    };
    let out = shell(
        "exec 9>job; \"$0\" lock -n 9 || exit 10; \"$0\" lock -n job true; echo $?; \
         \"$0\" lock -u 9; \"$0\" lock -n job true; echo $?; \
         \"$0\" lock -s 9; \"$0\" lock -s -n job true; echo $?; \"$0\" lock -n job true; echo $?; \
         \"$0\" lock -e -w 0.1 9; \"$0\" lock -w 0 job true; echo $?",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1\n0\n0\n1\n1\n",
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(0));
    let out = shell("exec 9>job; \"$0\" lock --verbose -n 9");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .split(" in ")
            .next()
            .unwrap(),
        "racefree: lock: took the exclusive flock lock on descriptor 9"
    );
    // Held elsewhere: the conflict status, -E too.
    let _holder = Holder::new(&env, &[]);
    let out = shell("exec 9<l; \"$0\" lock -n 9; echo $?; \"$0\" lock -n -E 42 9; echo $?");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n42\n");
    lock_in(&env).args(["-n", "9"]).assert().code(125).stderr(
        "racefree: error: cannot lock descriptor 9: Bad file number (open it first, as in \
             'exec 9>FILE')\n",
    );
    for opt in ["-o", "-F", "--nfs"] {
        lock_in(&env)
            .args([opt, "9"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("the descriptor form"));
    }
    lock_in(&env)
        .args(["-u", "l", "true"])
        .assert()
        .code(2)
        .stderr("racefree: error: --unlock drops the lock on a descriptor, and runs no COMMAND: racefree lock -u FD\n");
}

/// The tools compared: util-linux flock(1), and racefree under the same script.
fn tools() -> [(&'static str, String); 2] {
    let flock = "/usr/bin/flock";
    assert!(
        Path::new(flock).exists(),
        "util-linux flock(1) is not at {flock}: these tests compare racefree with it"
    );
    [
        ("flock", flock.to_string()),
        ("racefree", format!("'{}' lock", racefree_path().display())),
    ]
}

/// A script (TOOL replaced by a tool) started in `env`, holding what it took until
/// told to go on; its first line of output says it holds it.
fn run_script(env: &TestEnv, path: &str, args: &[&str]) -> Child {
    StdCommand::new(path)
        .args(args)
        .current_dir(env.root())
        .env_remove("FLOCKER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

fn finish(mut child: Child) -> i32 {
    let _ = child.stdin.take().unwrap().write_all(b"\n");
    child.wait().unwrap().code().unwrap()
}

/// Runs flock(1)'s idioms, written for flock, with each tool's name put in, every
/// tool against every other: a second instance gets the conflict status 1 while the
/// first holds, and runs once it has finished.
/// With `one_file`, both instances are one script (it locks itself), so each tool
/// meets only itself, and `@` in `again` names that script.
fn the_idiom_runs_unchanged(script: &str, first: &str, again: &[&str], one_file: bool) {
    for (a_name, a) in tools() {
        for (b_name, b) in tools() {
            if one_file && a_name != b_name {
                continue;
            }
            let second = if one_file { "a" } else { "b" };
            let env = TestEnv::new();
            for (name, tool) in [("a", &a), ("b", &b)] {
                let path = env.write(name, &script.replace("TOOL", tool));
                env.chmod(name, 0o755);
                symlink(&path, env.root().join(format!("link-to-{name}"))).unwrap();
            }
            let mut holder = run_script(&env, "./a", &["x", "y"]);
            assert_eq!(first_line(&mut holder), first, "{a_name} holds");
            for path in again {
                let path = path.replace('@', second);
                let out = run_script(&env, &path, &[]).wait_with_output().unwrap();
                assert_eq!(
                    (out.status.code(), &out.stdout[..]),
                    (Some(1), &b""[..]),
                    "{b_name} ({path}) while {a_name} holds"
                );
            }
            assert_eq!(finish(holder), 0);
            for path in again {
                let path = path.replace('@', second);
                let mut second = run_script(&env, &path, &["x", "y"]);
                assert_eq!(
                    first_line(&mut second),
                    first,
                    "{b_name} ({path}) once free"
                );
                assert_eq!(finish(second), 0);
            }
        }
    }
}

#[test]
fn flocks_cron_descriptor_idiom_runs_unchanged() {
    the_idiom_runs_unchanged(
        "#!/bin/sh\nexec 9>job\nTOOL -n 9 || exit 1\necho locked\nread x\n",
        "locked\n",
        &["./@"],
        false,
    );
}

#[test]
fn flocks_self_lock_idiom_runs_unchanged_also_through_a_symlink() {
    the_idiom_runs_unchanged(
        "#!/bin/sh\n\
         [ \"${FLOCKER}\" != \"$0\" ] && exec env FLOCKER=\"$0\" TOOL -en \"$0\" \"$0\" \"$@\" || :\n\
         echo \"running $*\"\nread x\n",
        "running x y\n",
        &["./@", "./link-to-@"],
        true,
    );
}
