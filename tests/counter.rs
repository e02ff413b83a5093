//! `racefree counter` through the built binary: values, every error a user can meet,
//! and many processes taking numbers at once.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::process::{Command as StdCommand, Stdio};

use predicates::prelude::*;

use crate::testenv::{TestEnv, is_root, racefree, racefree_path};

#[test]
fn first_use_creates_the_file_and_each_call_prints_the_new_value() {
    let env = TestEnv::new();
    let run = |args: &[&str], out: &str| {
        env.racefree(["counter"])
            .args(args)
            .assert()
            .success()
            .stdout(out.to_string())
            .stderr("");
    };
    run(&["n"], "1\n");
    run(&["n"], "2\n");
    run(&["n", "--add", "-5"], "-3\n");
    run(&["n", "--add", "10", "--sync"], "7\n");
    assert_eq!(fs::read_to_string(env.root().join("n")).unwrap(), "7\n");
    run(&["n", "--get"], "7\n");
    run(&["m", "--init", "100"], "101\n");
    run(&["absent", "--get", "--init", "5"], "5\n");
    assert!(!env.root().join("absent").exists(), "--get creates nothing");
    // The lock is the sidecar, left in place for the next caller.
    assert!(env.root().join("n.lock").is_file());
}

#[test]
fn json_reports_previous_value_and_creation() {
    let env = TestEnv::new();
    env.racefree(["counter", "c", "--json", "--add", "3"])
        .assert()
        .success()
        .stdout("{\"created\":true,\"file\":\"c\",\"previous\":null,\"value\":3}\n");
    env.racefree(["counter", "c", "--json"])
        .assert()
        .success()
        .stdout("{\"created\":false,\"file\":\"c\",\"previous\":3,\"value\":4}\n");
    // A name that is not UTF-8 comes back as its bytes.
    use std::os::unix::ffi::OsStrExt;
    let raw = std::ffi::OsStr::from_bytes(b"x\xff");
    env.racefree(["counter"])
        .arg(raw)
        .arg("--json")
        .assert()
        .success()
        .stdout("{\"created\":true,\"file\":[120,255],\"previous\":null,\"value\":1}\n");
}

#[test]
fn a_file_that_is_not_a_number_is_an_error_and_left_untouched() {
    let env = TestEnv::new();
    let not_a_number = |why: &str| format!("'bad' does not hold a number: {why}");
    // Empty is not read as 0, but the message says how to start a counter.
    let empty = "'bad' is empty, not a number: remove it, and the next call starts the counter from --init (default 0)";
    for (content, why) in [
        (&b"12abc\n"[..], not_a_number("unexpected 'a' at offset 2")),
        (b"", empty.to_string()),
        (b"\n", empty.to_string()),
        (b"1\n2\n", not_a_number("unexpected byte 0x0a at offset 1")),
        (b" 7", not_a_number("unexpected byte 0x20 at offset 0")),
        (
            b"99999999999999999999",
            not_a_number("the number is outside the 64-bit range"),
        ),
        (&[b'1'; 100][..], not_a_number("it is longer than 64 bytes")),
    ] {
        let f = env.root().join("bad");
        fs::write(&f, content).unwrap();
        let before = fs::metadata(&f).unwrap();
        env.racefree(["counter", "bad"])
            .assert()
            .code(1)
            .stdout("")
            .stderr(format!("racefree: error: {why}\n"));
        let after = fs::metadata(&f).unwrap();
        assert_eq!(fs::read(&f).unwrap(), content);
        assert_eq!(
            (after.ino(), after.mtime_nsec()),
            (before.ino(), before.mtime_nsec())
        );
    }
}

#[test]
fn overflow_is_an_error_and_the_file_keeps_its_value() {
    let env = TestEnv::new();
    fs::write(env.root().join("n"), "9223372036854775806\n").unwrap();
    env.racefree(["counter", "n", "--add", "2"])
        .assert()
        .code(1)
        .stderr(
            "racefree: error: cannot add 2 to 9223372036854775806 in 'n': the result is \
             outside the 64-bit range; it was left as it was\n",
        );
    assert_eq!(
        fs::read_to_string(env.root().join("n")).unwrap(),
        "9223372036854775806\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    racefree()
        .args(["counter", "n", "--get", "--add", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: the argument '--get' cannot be used with '--add <N>'",
        ));
    racefree()
        .args(["counter", "n", "--add", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid value 'x' for '--add <N>'",
        ));
    racefree()
        .args(["counter", ""])
        .assert()
        .code(2)
        .stderr("racefree: error: FILE is empty\n");
}

#[test]
fn a_symlink_is_followed_and_the_target_shares_the_lock() {
    let env = TestEnv::new();
    fs::write(env.root().join("real"), "41\n").unwrap();
    symlink("real", env.root().join("link")).unwrap();
    env.racefree(["counter", "link"])
        .assert()
        .success()
        .stdout("42\n");
    assert!(
        fs::symlink_metadata(env.root().join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(env.root().join("real.lock").exists());
    assert!(!env.root().join("link.lock").exists());
}

#[test]
fn a_directory_the_user_cannot_write_is_a_clear_error() {
    let env = TestEnv::new();
    let d = env.root().join("ro");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("n"), "5\n").unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    env.chmod(".", 0o755);
    if !is_root() {
        // Our own directory: only the read-only bit stops us.
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let out = env
        .racefree_as_nobody(["counter", "ro/n"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot lock counter 'ro/n': cannot open lock file 'ro/n.lock': Permission denied\n"
    );
    assert_eq!(fs::read_to_string(d.join("n")).unwrap(), "5\n");
}

#[test]
fn many_processes_take_every_number_from_one_to_n_exactly_once() {
    let env = TestEnv::new();
    let racers = 8;
    let per = 25;
    let script = format!("for i in $(seq {per}); do \"$0\" counter n || exit 1; done",);
    let children: Vec<_> = (0..racers)
        .map(|_| {
            StdCommand::new("sh")
                .args(["-c", &script])
                .arg(racefree_path())
                .current_dir(env.root())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut values: Vec<i64> = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        values.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| l.parse::<i64>().unwrap()),
        );
    }
    values.sort();
    assert_eq!(values, (1..=racers * per).collect::<Vec<i64>>());
    assert_eq!(
        fs::read_to_string(env.root().join("n")).unwrap(),
        format!("{}\n", racers * per)
    );
    // Only the counter and its lock: no temporary file survived the race.
    let mut names: Vec<_> = fs::read_dir(env.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["n", "n.lock"]);
}

#[test]
fn help_documents_the_exit_statuses() {
    racefree()
        .args(["counter", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Exit status:\n  0  success\n  1  FILE does not hold a number",
        ));
}

/// A call killed between its link and its rename leaves `.n.rf-counter`; the next
/// call, holding the lock, knows its maker is dead and removes it, and no value is
/// lost or given twice.
#[test]
fn a_call_killed_at_its_rename_leaves_a_file_the_next_call_removes() {
    use std::os::unix::process::ExitStatusExt;
    let env = TestEnv::new();
    env.racefree(["counter", "n"])
        .assert()
        .success()
        .stdout("1\n");
    let status = env
        .racefree_process(["counter", "n"])
        .env("RACEFREE_TEST_KILL_BEFORE_RENAME", "1")
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let names = || {
        let mut v: Vec<String> = fs::read_dir(env.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(), [".n.rf-counter", "n", "n.lock"]);
    assert_eq!(fs::read_to_string(env.root().join("n")).unwrap(), "1\n");
    env.racefree(["counter", "n"])
        .assert()
        .success()
        .stdout("2\n")
        .stderr("");
    assert_eq!(names(), ["n", "n.lock"]);
}
