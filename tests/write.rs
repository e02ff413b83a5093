//! `racefree write` through the built binary: content, modes, owners, symlinks,
//! every error, and signals that arrive while it waits for input.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use predicates::prelude::*;

use crate::testenv::{NOBODY, Precondition, TestEnv, is_root, racefree, racefree_path, require};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn stdin_becomes_the_new_content_and_nothing_else_is_left() {
    let env = TestEnv::new();
    fs::write(env.root().join("f"), "old content that is longer\n").unwrap();
    env.racefree(["write", "f"])
        .write_stdin("new\n")
        .assert()
        .success()
        .stdout("")
        .stderr("");
    assert_eq!(fs::read_to_string(env.root().join("f")).unwrap(), "new\n");
    // Empty input is a legitimate empty file.
    env.racefree(["write", "f", "--no-sync"])
        .write_stdin("")
        .assert()
        .success();
    assert_eq!(fs::read(env.root().join("f")).unwrap(), b"");
    assert_eq!(names(env.root()), ["f"]);
}

#[test]
fn a_new_file_gets_0666_minus_umask_and_an_old_one_keeps_its_mode() {
    let env = TestEnv::new();
    let status = StdCommand::new("sh")
        .args([
            "-c",
            "umask 027; echo hi | \"$0\" write new",
            &racefree_path().to_string_lossy(),
        ])
        .current_dir(env.root())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode_of(&env.root().join("new")), 0o640);

    let old = env.root().join("old");
    fs::write(&old, "x").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o604)).unwrap();
    env.racefree(["write", "old"])
        .write_stdin("y")
        .assert()
        .success();
    assert_eq!(mode_of(&old), 0o604);
    env.racefree(["write", "-m", "u=rw,go=", "old"])
        .write_stdin("z")
        .assert()
        .success();
    assert_eq!(mode_of(&old), 0o600);
    env.racefree(["write", "-m", "9", "old"])
        .write_stdin("z")
        .assert()
        .code(2)
        .stderr("racefree: error: invalid mode '9': '9' at byte 1 is not u, g, o, a, +, - or =\n");
}

#[test]
fn a_symlink_target_is_replaced_unless_no_follow() {
    let env = TestEnv::new();
    fs::create_dir(env.root().join("dotfiles")).unwrap();
    fs::write(env.root().join("dotfiles/rc"), "old").unwrap();
    symlink("dotfiles/rc", env.root().join("rc")).unwrap();
    env.racefree(["write", "rc"])
        .write_stdin("new")
        .assert()
        .success();
    assert!(
        fs::symlink_metadata(env.root().join("rc"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(env.root().join("dotfiles/rc")).unwrap(),
        "new"
    );
    assert_eq!(names(&env.root().join("dotfiles")), ["rc"]);

    env.racefree(["write", "--no-follow", "rc"])
        .write_stdin("own")
        .assert()
        .success();
    assert!(
        fs::symlink_metadata(env.root().join("rc"))
            .unwrap()
            .is_file()
    );
    assert_eq!(fs::read_to_string(env.root().join("rc")).unwrap(), "own");
    assert_eq!(
        fs::read_to_string(env.root().join("dotfiles/rc")).unwrap(),
        "new"
    );

    // A dangling link creates the file it names, as `echo > link` does.
    symlink("made-by-write", env.root().join("dangling")).unwrap();
    env.racefree(["write", "dangling"])
        .write_stdin("x")
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(env.root().join("made-by-write")).unwrap(),
        "x"
    );
}

#[test]
fn errors_name_the_file_and_leave_it_as_it_was() {
    let env = TestEnv::new();
    fs::create_dir(env.root().join("d")).unwrap();
    env.racefree(["write", "d"])
        .write_stdin("x")
        .assert()
        .code(1)
        .stderr("racefree: error: cannot replace 'd': it is a directory\n");
    env.racefree(["write", "missing/f"])
        .write_stdin("x")
        .assert()
        .code(1)
        .stderr("racefree: error: cannot open directory 'missing': No such file or directory\n");
    nix::unistd::mkfifo(
        &env.root().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    env.racefree(["write", "fifo"])
        .write_stdin("x")
        .assert()
        .code(1)
        .stderr("racefree: error: cannot replace 'fifo': it is not a regular file\n");
    env.racefree(["write", ""])
        .assert()
        .code(2)
        .stderr("racefree: error: FILE is empty\n");
    assert_eq!(names(env.root()), ["d", "fifo"]);
}

#[test]
fn an_unwritable_directory_is_a_clear_error_and_the_file_is_unchanged() {
    let env = TestEnv::new();
    let d = env.root().join("ro");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("f"), "old").unwrap();
    fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o666)).unwrap();
    env.chmod(".", 0o755);
    fs::set_permissions(
        &d,
        fs::Permissions::from_mode(if is_root() { 0o755 } else { 0o555 }),
    )
    .unwrap();
    let mut child = env
        .racefree_as_nobody(["write", "ro/f"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It may fail before reading its input at all: a broken pipe is fine here.
    let _ = child.stdin.take().unwrap().write_all(b"new");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot create a temporary file in 'ro' to replace 'ro/f': Permission denied\n"
    );
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(fs::read_to_string(d.join("f")).unwrap(), "old");
    assert_eq!(names(&d), ["f"]);
}

#[test]
#[cfg_attr(
    not(all(has_root, has_nobody)),
    ignore = "needs root to give files away to nobody"
)]
fn the_owner_and_group_are_kept_or_the_write_refused() {
    require(&[Precondition::Root, Precondition::Nobody]);
    let env = TestEnv::new();
    env.chmod(".", 0o777);
    let f = env.root().join("theirs");
    fs::write(&f, "old").unwrap();
    std::os::unix::fs::chown(&f, Some(NOBODY), Some(NOBODY)).unwrap();
    // Root replaces nobody's file: it stays nobody's.
    env.racefree(["write", "theirs"])
        .write_stdin("new")
        .assert()
        .success();
    let m = fs::metadata(&f).unwrap();
    assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY));
    // nobody may write root's file in a world-writable directory, but could not
    // keep its owner: refused, and the file is as it was.
    let g = env.root().join("roots");
    fs::write(&g, "root's").unwrap();
    fs::set_permissions(&g, fs::Permissions::from_mode(0o666)).unwrap();
    let mut child = env
        .racefree_as_nobody(["write", "roots"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"nobody's").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot keep the owner and group of 'roots' (0:0): Operation not permitted; it was left as it was\n"
    );
    assert_eq!(fs::read_to_string(&g).unwrap(), "root's");
    assert_eq!(names(env.root()), ["racefree-bin", "roots", "theirs"]);
}

/// Waits until `pid` has a descriptor open on a temporary file (the condition the
/// signal must find), by looking at /proc, not by sleeping a guessed time.
fn wait_for_temp_fd(pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found = fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .any(|e| {
                fs::read_link(e.unwrap().path()).is_ok_and(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.contains(".rf-") || l.ends_with("(deleted)")
                })
            });
        if found {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writer never opened its temporary file"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_signal_while_waiting_for_input_leaves_no_temporary_file() {
    for (named, sig) in [
        (true, libc::SIGTERM),
        (true, libc::SIGINT),
        (true, libc::SIGHUP),
        (false, libc::SIGTERM),
    ] {
        let env = TestEnv::new();
        fs::write(env.root().join("f"), "old").unwrap();
        let mut cmd = env.racefree_process(["write", "f"]);
        cmd.stdin(Stdio::piped());
        if named {
            cmd.env("RACEFREE_WRITE_NAMED_TEMP", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"partial new content").unwrap();
        wait_for_temp_fd(child.id());
        if named {
            assert_eq!(
                names(env.root()).len(),
                2,
                "the named temporary file exists now"
            );
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(sig), "dies of the signal it got");
        assert_eq!(names(env.root()), ["f"], "named={named} sig={sig}");
        assert_eq!(fs::read_to_string(env.root().join("f")).unwrap(), "old");
    }
}

#[test]
fn help_documents_the_exit_statuses() {
    racefree()
        .args(["write", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Exit status:\n  0  success\n  1  FILE could not be replaced",
        ));
}

/// The environment knob that makes racefree kill itself with SIGKILL just before
/// its rename, where a random SIGKILL leaves the temporary file behind.
const KILL_BEFORE_RENAME: &str = "RACEFREE_TEST_KILL_BEFORE_RENAME";

fn temporaries(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".f.rf-"))
        .collect()
}

#[test]
fn a_call_killed_at_its_rename_leaves_a_file_the_next_successful_write_removes() {
    for named in [false, true] {
        let env = TestEnv::new();
        fs::write(env.root().join("f"), "old").unwrap();
        let content = "the whole new content\n".repeat(100);
        let mut cmd = env.racefree_process(["write", "f"]);
        cmd.env(KILL_BEFORE_RENAME, "1").stdin(Stdio::piped());
        if named {
            cmd.env("RACEFREE_WRITE_NAMED_TEMP", "1");
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        let left = temporaries(env.root());
        assert_eq!(left.len(), 1, "named={named}: {left:?}");
        // The leftover is the content's full size: worth removing.
        assert_eq!(
            fs::metadata(env.root().join(&left[0])).unwrap().len(),
            content.len() as u64
        );
        assert_eq!(fs::read_to_string(env.root().join("f")).unwrap(), "old");
        // A failed call removes nothing: only a successful one proves it may write.
        env.racefree(["write", "f", "--", "false"]).assert().code(1);
        assert_eq!(temporaries(env.root()), left);
        env.racefree(["write", "f"])
            .write_stdin("next")
            .assert()
            .success()
            .stderr("");
        assert_eq!(names(env.root()), ["f"], "named={named}");
        assert_eq!(fs::read_to_string(env.root().join("f")).unwrap(), "next");
    }
}

#[test]
fn a_live_writers_temporary_file_survives_another_writes_cleanup() {
    let env = TestEnv::new();
    let mut slow = env.racefree_process(["write", "f"]);
    slow.env("RACEFREE_WRITE_NAMED_TEMP", "1")
        .stdin(Stdio::piped());
    let mut slow = slow.spawn().unwrap();
    let mut input = slow.stdin.take().unwrap();
    input.write_all(b"slow ").unwrap();
    wait_for_temp_fd(slow.id());
    let live = temporaries(env.root());
    assert_eq!(live.len(), 1, "{live:?}");
    env.racefree(["write", "f"])
        .write_stdin("fast")
        .assert()
        .success();
    assert_eq!(temporaries(env.root()), live, "a live writer's file stays");
    input.write_all(b"and whole").unwrap();
    drop(input);
    assert!(slow.wait().unwrap().success());
    assert_eq!(
        fs::read_to_string(env.root().join("f")).unwrap(),
        "slow and whole"
    );
    assert_eq!(names(env.root()), ["f"]);
}

#[test]
fn a_closed_standard_input_is_an_error_not_empty_content() {
    let env = TestEnv::new();
    fs::write(env.root().join("f"), "old").unwrap();
    let run = |script: &str| {
        StdCommand::new("sh")
            .args(["-c", script, &racefree_path().to_string_lossy()])
            .current_dir(env.root())
            .output()
            .unwrap()
    };
    let out = run(r#"exec "$0" write f <&-"#);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot replace 'f': standard input is closed (give the content on standard input, or a COMMAND after --)\n"
    );
    assert_eq!(fs::read_to_string(env.root().join("f")).unwrap(), "old");
    // With COMMAND, standard input is COMMAND's business: it gets /dev/null.
    let out = run(r#"exec "$0" write f -- sh -c 'cat; echo new' <&-"#);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read_to_string(env.root().join("f")).unwrap(), "new\n");
    assert_eq!(names(env.root()), ["f"]);
}

#[test]
fn a_failure_to_read_standard_input_says_so() {
    let env = TestEnv::new();
    fs::write(env.root().join("f"), "old").unwrap();
    let out = env
        .racefree_process(["write", "f"])
        .stdin(fs::File::open(env.root()).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot replace 'f': reading standard input: Is a directory\n"
    );
    assert_eq!(fs::read_to_string(env.root().join("f")).unwrap(), "old");
    assert_eq!(names(env.root()), ["f"]);
}

#[test]
fn with_a_command_the_file_is_replaced_only_if_the_command_succeeds() {
    let env = TestEnv::new();
    let f = env.root().join("f");
    fs::write(&f, "old").unwrap();
    env.racefree(["write", "f", "--", "sh", "-c", "echo out; echo err >&2"])
        .assert()
        .success()
        .stdout("")
        .stderr("err\n");
    assert_eq!(fs::read_to_string(&f).unwrap(), "out\n");
    fs::write(env.root().join("not-executable"), "#!/bin/sh\n").unwrap();
    for (command, status, stderr) in [
        (&["false"][..], 1, ""),
        (&["sh", "-c", "echo partial; exit 3"], 3, ""),
        (
            &["sh", "-c", "echo partial; kill -TERM $$"],
            128 + libc::SIGTERM,
            "",
        ),
        (
            &["no-such-command-here"],
            127,
            "racefree: error: cannot run 'no-such-command-here': No such file or directory\n",
        ),
        (
            &["./not-executable"],
            126,
            "racefree: error: cannot run './not-executable': Permission denied\n",
        ),
    ] {
        env.racefree(["write", "f", "--"])
            .args(command)
            .assert()
            .code(status)
            .stdout("")
            .stderr(stderr);
        assert_eq!(fs::read_to_string(&f).unwrap(), "out\n", "{command:?}");
        assert_eq!(names(env.root()), ["f", "not-executable"], "{command:?}");
    }
    // A FILE that starts with '-' after a first '--', then COMMAND after a second.
    env.racefree(["write", "--", "-g", "--", "echo", "dash"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(env.root().join("-g")).unwrap(), "dash\n");
}

#[test]
fn no_empty_refuses_empty_content_over_a_non_empty_file() {
    let env = TestEnv::new();
    let f = env.root().join("f");
    fs::write(&f, "keep me").unwrap();
    env.racefree(["write", "--no-empty", "f"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr("racefree: error: refusing to replace 'f' (7 bytes) with empty content (--no-empty); it was left as it was\n");
    env.racefree(["write", "--no-empty", "f", "--", "true"])
        .assert()
        .code(1);
    assert_eq!(fs::read_to_string(&f).unwrap(), "keep me");
    assert_eq!(names(env.root()), ["f"]);
    // A new or empty FILE may become empty.
    env.racefree(["write", "--no-empty", "new"])
        .write_stdin("")
        .assert()
        .success();
    assert_eq!(fs::read(env.root().join("new")).unwrap(), b"");
}

/// main parses write's line itself (see cli::parse_primitive_fast): every form, the
/// COMMAND one included, must come out as the full parser makes it.
#[test]
fn the_fast_parser_agrees_with_the_full_one_on_write() {
    use clap::Parser;
    use racefree::cli::{Cli, parse_primitive_fast};
    let lines: &[&[&str]] = &[
        &["write", "f"],
        &["write", "f", "--no-sync", "--no-empty"],
        &["write", "f", "--", "sh", "-c", "echo hi"],
        &["write", "-m", "600", "f", "--", "cmd", "--flag", "-x"],
        &["write", "--", "-f"],
        &["write", "--", "-f", "--", "echo"],
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
}

/// The shell forms, run unchanged but for the tool's name, beside the tools they
/// replace: sponge in a pipeline (empty input included: the default stays
/// sponge's), and `write -- COMMAND` beside `COMMAND > tmp && mv tmp FILE`.
#[test]
#[cfg_attr(
    not(has_sponge),
    ignore = "needs sponge (Debian package moreutils; .ci/run installs it)"
)]
fn the_script_forms_do_what_sponge_and_the_mv_idiom_do() {
    require(&[Precondition::Sponge]);
    let scripts = [
        "printf 'b\\na\\nb\\n' > hosts.txt\nsort -u hosts.txt | sponge hosts.txt\ncat hosts.txt",
        "echo old > f\nfalse | sponge f\necho \"status $?\"; wc -c < f",
        "echo old > f\nprintf 'x\\ny\\n' | grep -v x | sponge f && cat f",
    ];
    for script in scripts {
        let run = |script: &str| {
            let env = TestEnv::new();
            let out = StdCommand::new("sh")
                .args(["-c", script])
                .current_dir(env.root())
                .env("PATH", path_with_racefree())
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                names(env.root()),
            )
        };
        let theirs = run(script);
        let ours = run(&script.replace("sponge", "racefree write"));
        assert_eq!(ours, theirs, "{script}");
        assert_eq!(theirs.0, Some(0), "{script}");
    }
    let pipelines = [
        (
            "sh -c 'set -e; printf \"a,b\\n\" | tr , \";\"'",
            Some(0),
            "a;b\n",
        ),
        ("sh -c 'echo partial; false'", Some(1), "old\n"),
    ];
    for (command, status, content) in pipelines {
        for script in [
            format!("echo old > r.csv\n{command} > r.tmp && mv r.tmp r.csv\necho $?"),
            format!("echo old > r.csv\nracefree write r.csv -- {command}\necho $?"),
        ] {
            let env = TestEnv::new();
            let out = StdCommand::new("sh")
                .args(["-c", &script])
                .current_dir(env.root())
                .env("PATH", path_with_racefree())
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert_eq!(said.trim(), status.unwrap().to_string(), "{script}");
            assert_eq!(
                fs::read_to_string(env.root().join("r.csv")).unwrap(),
                content,
                "{script}"
            );
            if script.contains("racefree") {
                assert_eq!(names(env.root()), ["r.csv"], "no temporary file: {script}");
            }
        }
    }
}

/// PATH with the built binary's directory first, so scripts say `racefree`.
fn path_with_racefree() -> std::ffi::OsString {
    let bin = racefree_path();
    let mut path = bin.parent().unwrap().as_os_str().to_owned();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}
