//! `racefree makedirs` through the built binary: the cases coreutils' own tests
//! cover, every error a user can meet, and real contention between processes.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use predicates::prelude::*;
use tempfile::TempDir;

use crate::util::{racefree, racefree_as_nobody, racefree_path};

fn tmp() -> TempDir {
    tempfile::tempdir().unwrap()
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn verbose_announces_each_created_level_exactly() {
    let t = tmp();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "-v", "a/b/c/d/e"])
        .assert()
        .success()
        .stdout(
            "racefree: created directory 'a'\n\
             racefree: created directory 'a/b'\n\
             racefree: created directory 'a/b/c'\n\
             racefree: created directory 'a/b/c/d'\n\
             racefree: created directory 'a/b/c/d/e'\n",
        )
        .stderr("");
    // Idempotent: nothing more to announce, still success.
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "-v", "a/b/c/d/e"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn trailing_slash_dot_and_dotdot_components() {
    let t = tmp();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "-v", "x/y/", "d/.", "e/f/..", "g/./h/."])
        .assert()
        .success()
        .stdout(
            "racefree: created directory 'x'\n\
             racefree: created directory 'x/y'\n\
             racefree: created directory 'd'\n\
             racefree: created directory 'e'\n\
             racefree: created directory 'e/f'\n\
             racefree: created directory 'g'\n\
             racefree: created directory 'g/./h'\n",
        );
    for d in ["x/y", "d", "e/f", "g/h"] {
        assert!(t.path().join(d).is_dir(), "{d}");
    }
}

#[test]
fn a_symlink_to_dot_inside_the_path_is_followed() {
    let t = tmp();
    symlink(".", t.path().join("self")).unwrap();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "self/a/b", "self/self/c"])
        .assert()
        .success();
    assert!(t.path().join("a/b").is_dir());
    assert!(t.path().join("c").is_dir());
    // --no-symlinks refuses it, naming the component.
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--no-symlinks", "self/z"])
        .assert()
        .code(1)
        .stderr("racefree: error: cannot create directory 'self/z': 'self' is a symbolic link, refused by --no-symlinks\n");
    assert!(!t.path().join("z").exists());
}

#[test]
fn an_existing_file_in_the_path_is_an_error_naming_it() {
    let t = tmp();
    fs::write(t.path().join("f"), "data").unwrap();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "f/sub/leaf", "ok"])
        .assert()
        .code(1)
        .stderr("racefree: error: cannot create directory 'f/sub/leaf': 'f' exists and is not a directory (it is a regular file)\n");
    // The other path still ran; the file was not touched.
    assert!(t.path().join("ok").is_dir());
    assert_eq!(fs::read_to_string(t.path().join("f")).unwrap(), "data");
}

#[test]
fn a_socket_in_the_path_is_named_by_kind() {
    let t = tmp();
    let _sock = std::os::unix::net::UnixListener::bind(t.path().join("s")).unwrap();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "s/x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "'s' exists and is not a directory (it is a socket)",
        ));
}

#[test]
fn a_dangling_symlink_as_the_leaf_is_an_error() {
    let t = tmp();
    symlink("missing-target", t.path().join("dangling")).unwrap();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "dangling"])
        .assert()
        .code(1)
        .stderr("racefree: error: cannot create directory 'dangling': 'dangling' is a dangling symbolic link (not a directory)\n");
    assert!(!t.path().join("missing-target").exists());
}

/// Runs racefree under a given umask (set in the child only: the test process's
/// umask is shared by every test thread).
fn makedirs_with_umask(dir: &Path, umask: u32, args: &[&str]) {
    let mut cmd = StdCommand::new(racefree_path());
    cmd.current_dir(dir).arg("makedirs").args(args);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "makedirs {args:?} under umask {umask:o}");
}

#[test]
fn modes_follow_coreutils_under_umask_022_and_077() {
    let t = tmp();
    let p = t.path();
    makedirs_with_umask(p, 0o022, &["u22/a/leaf"]);
    assert_eq!(mode_of(&p.join("u22/a")), 0o755);
    assert_eq!(mode_of(&p.join("u22/a/leaf")), 0o755);
    makedirs_with_umask(p, 0o077, &["u77/a/leaf"]);
    assert_eq!(mode_of(&p.join("u77/a")), 0o700);
    assert_eq!(mode_of(&p.join("u77/a/leaf")), 0o700);
    // -m sets the leaf exactly, whatever the umask; ancestors ignore -m.
    makedirs_with_umask(p, 0o077, &["-m", "755", "m77/a/leaf"]);
    assert_eq!(mode_of(&p.join("m77/a")), 0o700);
    assert_eq!(mode_of(&p.join("m77/a/leaf")), 0o755);
    makedirs_with_umask(p, 0o022, &["-m", "777", "m22/leaf"]);
    assert_eq!(mode_of(&p.join("m22/leaf")), 0o777);
    makedirs_with_umask(p, 0o022, &["-m", "u=rwx,g=rx,o=", "sym"]);
    assert_eq!(mode_of(&p.join("sym")), 0o750);
    makedirs_with_umask(p, 0o022, &["-m", "1777", "sticky"]);
    assert_eq!(mode_of(&p.join("sticky")), 0o1777);
    // An umask that takes u+wx from ancestors: they still get u+wx, or the walk
    // could not continue below them.
    makedirs_with_umask(p, 0o777, &["u777/a/leaf"]);
    assert_eq!(mode_of(&p.join("u777/a")), 0o300);
    assert_eq!(mode_of(&p.join("u777/a/leaf")), 0o000);
    // An existing leaf keeps its mode.
    fs::set_permissions(p.join("sym"), fs::Permissions::from_mode(0o701)).unwrap();
    makedirs_with_umask(p, 0o022, &["-m", "777", "sym"]);
    assert_eq!(mode_of(&p.join("sym")), 0o701);
}

#[test]
fn existing_directories_under_read_only_and_search_only_parents_succeed() {
    let t = tmp();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let ro = t.path().join("ro");
    fs::create_dir_all(ro.join("existing")).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    let xonly = t.path().join("xonly");
    fs::create_dir_all(xonly.join("existing")).unwrap();
    fs::set_permissions(&xonly, fs::Permissions::from_mode(0o111)).unwrap();

    let out = racefree_as_nobody(t.path())
        .args(["makedirs", "ro/existing", "xonly/existing", "ro/new"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot create directory 'ro/new': mkdir 'ro/new': Permission denied\n"
    );
}

#[test]
fn an_unsearchable_parent_is_a_clear_permission_error() {
    let t = tmp();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let closed = t.path().join("closed");
    fs::create_dir_all(closed.join("existing")).unwrap();
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o600)).unwrap();
    let out = racefree_as_nobody(t.path())
        .args(["makedirs", "closed/existing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: cannot create directory 'closed/existing': mkdir 'closed/existing': Permission denied\n"
    );
}

#[test]
fn a_ten_thousand_byte_path_works() {
    let t = tmp();
    let rel = "dddd/".repeat(2000);
    racefree()
        .current_dir(t.path())
        .args(["makedirs", &rel])
        .assert()
        .success()
        .stderr("");
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--json", &rel])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\"directory\":true")
                .and(predicate::str::contains("\"created\":[]")),
        );
}

#[test]
fn exclusive_is_a_lock_exit_3_when_the_leaf_exists() {
    let t = tmp();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--exclusive", "locks/job"])
        .assert()
        .success();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--exclusive", "locks/job"])
        .assert()
        .code(3)
        .stderr("racefree: error: cannot create directory 'locks/job': 'locks/job' already exists (--exclusive wants to create it)\n");
    // Ancestors are tolerant: another leaf under the same existing parent is fine.
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--exclusive", "locks/other"])
        .assert()
        .success();
}

#[test]
fn usage_errors_exit_2_and_touch_nothing() {
    let t = tmp();
    racefree()
        .current_dir(t.path())
        .arg("makedirs")
        .assert()
        .code(2)
        .stderr("racefree: error: no PATH given (as arguments or with --from)\n");
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "first", ""])
        .assert()
        .code(2)
        .stderr("racefree: error: invalid PATH '': empty path\n");
    fs::write(t.path().join("list"), b"one\n\ntwo\n").unwrap();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--from", "list"])
        .assert()
        .code(2)
        .stderr("racefree: error: 'list', entry 2: empty path\n");
    fs::write(t.path().join("nul"), b"one\nt\0wo\n").unwrap();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--from", "nul"])
        .assert()
        .code(2)
        .stderr("racefree: error: 'nul', entry 2: path contains a NUL byte\n");
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "-m", "u+q", "x"])
        .assert()
        .code(2)
        .stderr("racefree: error: invalid mode 'u+q': unexpected 'q' at byte 3\n");
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--from", "does-not-exist"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "racefree: error: reading paths from 'does-not-exist': ",
        ));
    for never in ["first", "two", "t", "x"] {
        assert!(
            !t.path().join(never).exists(),
            "{never} must not be created on a usage error"
        );
    }
    // A bad --from entry stops the list there: the paths before it were made.
    assert!(t.path().join("one").is_dir());
}

#[test]
fn from_stdin_newline_and_nul_separated_in_input_order() {
    let t = tmp();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "-v", "--from", "-", "-j", "4"])
        .write_stdin("n1\nn2/x\r\nn3\n")
        .assert()
        .success()
        .stdout(
            "racefree: created directory 'n1'\n\
             racefree: created directory 'n2'\n\
             racefree: created directory 'n2/x'\n\
             racefree: created directory 'n3'\n",
        );
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--json", "--from", "-", "-0"])
        .write_stdin(&b"z1/with\nnewline\0z2\0"[..])
        .assert()
        .success()
        .stdout(
            "{\"created\":[\"z1\",\"z1/with\\nnewline\"],\"directory\":true,\"error\":null,\"path\":\"z1/with\\nnewline\",\"retries\":0}\n\
             {\"created\":[\"z2\"],\"directory\":true,\"error\":null,\"path\":\"z2\",\"retries\":0}\n",
        );
}

#[test]
fn many_paths_report_in_input_order_with_failures_in_place() {
    let t = tmp();
    fs::write(t.path().join("blocker"), "").unwrap();
    let mut list = String::new();
    for i in 0..500 {
        if i % 100 == 7 {
            list.push_str(&format!("blocker/{i}\n"));
        } else {
            list.push_str(&format!("tree/{}/{i}\n", i % 10));
        }
    }
    let out = racefree()
        .current_dir(t.path())
        .args(["makedirs", "--json", "--from", "-"])
        .write_stdin(list.clone())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), expected.len());
    for (v, want) in lines.iter().zip(&expected) {
        assert_eq!(v["path"], *want);
        assert_eq!(v["directory"], !want.starts_with("blocker"));
    }
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 5);
}

#[test]
fn beneath_never_leaves_its_directory() {
    let t = tmp();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    symlink(t.path(), root.join("up")).unwrap();
    racefree()
        .args(["makedirs", "--beneath"])
        .arg(&root)
        .args(["a/b"])
        .assert()
        .success();
    assert!(root.join("a/b").is_dir());
    racefree()
        .args(["makedirs", "--beneath"])
        .arg(&root)
        .args(["../escape", "up/escape"])
        .assert()
        .code(1)
        .stderr(
            "racefree: error: cannot create directory '../escape': '..' leads outside the --beneath directory\n\
             racefree: error: cannot create directory 'up/escape': 'up' leads outside the --beneath directory\n",
        );
    assert!(!t.path().join("escape").exists());
    racefree()
        .args(["makedirs", "--beneath"])
        .arg(&root)
        .arg("/abs")
        .assert()
        .code(2)
        .stderr("racefree: error: cannot create directory '/abs': an absolute path cannot be resolved --beneath a directory\n");
}

#[test]
fn help_and_man_page_document_every_exit_status() {
    racefree()
        .args(["makedirs", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Exit status:")
                .and(predicate::str::contains("3  --exclusive")),
        );
    let man =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/racefree-makedirs.1"))
            .unwrap();
    for opt in [
        "\\-\\-mode",
        "\\-\\-verbose",
        "\\-\\-no\\-symlinks",
        "\\-\\-beneath",
        "\\-\\-exclusive",
        "\\-\\-from",
        "\\-\\-null",
        "\\-\\-jobs",
        "\\-\\-json",
    ] {
        assert!(man.contains(opt), "man page lacks {opt}");
    }
    assert!(man.contains("EXIT STATUS"));
}

/// A small deterministic shuffle (xorshift), so each racer takes its own order.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
fn sixteen_processes_released_together_build_overlapping_trees_without_a_failure() {
    const RACERS: usize = 16;
    const ROUNDS: usize = 50;
    let t = tmp();
    for round in 0..ROUNDS {
        // Overlapping deep paths: every racer makes all of them, in its own order.
        let mut paths = Vec::new();
        for i in 0..3 {
            for j in 0..3 {
                paths.push(format!("r{round}/a{i}/b{j}/c/d/e/f"));
            }
        }
        // Each racer blocks reading its list until every list is written and the
        // parent closes all the pipes at once: that releases them together.
        let mut children = Vec::new();
        for racer in 0..RACERS {
            let mut child = StdCommand::new(racefree_path())
                .current_dir(t.path())
                .args(["makedirs", "-v", "-j", "2", "--from", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let list = shuffled(&paths, (round * RACERS + racer) as u64).join("\n");
            child
                .stdin
                .as_mut()
                .unwrap()
                .write_all(list.as_bytes())
                .unwrap();
            children.push(child);
        }
        for child in &mut children {
            drop(child.stdin.take());
        }
        let mut announced: HashMap<PathBuf, usize> = HashMap::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stderr.is_empty());
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let p = line
                    .strip_prefix("racefree: created directory '")
                    .unwrap()
                    .trim_end_matches('\'');
                *announced.entry(PathBuf::from(p)).or_default() += 1;
            }
        }
        // The tree is complete, and every directory in it was announced by exactly one racer.
        let mut expected = BTreeSet::new();
        for p in &paths {
            let mut acc = PathBuf::new();
            for c in Path::new(p).components() {
                acc.push(c);
                expected.insert(acc.clone());
            }
        }
        for d in &expected {
            assert!(
                t.path().join(d).is_dir(),
                "round {round}: {} missing",
                d.display()
            );
        }
        assert_eq!(
            announced.keys().cloned().collect::<BTreeSet<_>>(),
            expected,
            "round {round}"
        );
        assert!(
            announced.values().all(|&n| n == 1),
            "round {round}: a directory announced twice: {announced:?}"
        );
    }
}

#[test]
fn a_symlink_loop_says_so() {
    let t = tmp();
    symlink("loop", t.path().join("loop")).unwrap();
    symlink("b", t.path().join("a")).unwrap();
    symlink("a", t.path().join("b")).unwrap();
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "loop", "a/x"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "racefree: error: cannot create directory 'loop': stat 'loop': too many levels of symbolic links\n\
             racefree: error: cannot create directory 'a/x': stat 'a/x': too many levels of symbolic links\n",
        );
    racefree()
        .current_dir(t.path())
        .args(["makedirs", "--no-symlinks", "loop/x"])
        .assert()
        .code(1)
        .stderr("racefree: error: cannot create directory 'loop/x': 'loop' is a symbolic link, refused by --no-symlinks\n");
}
