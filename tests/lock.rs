//! `racefree lock` through the built binary: flock(1)'s interface and statuses,
//! inheritance of the lock, every error, and real contention checked by a witness.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};

use predicates::prelude::*;

use crate::testenv::{TestEnv, is_root, racefree, racefree_path};

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
fn a_symlink_at_lockfile_is_refused_and_not_followed() {
    let env = TestEnv::new();
    symlink("target", env.root().join("l")).unwrap();
    lock_in(&env)
        .args(["l", "echo", "ran"])
        .assert()
        .code(125)
        .stdout("")
        .stderr(
            "racefree: error: refusing to lock 'l': it is a symbolic link (a lock file is never \
             followed through a link someone else may have planted)\n",
        );
    assert!(!env.root().join("target").exists());
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
        &["lock", "L"],
        &["lock", "--help"],
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
