//! `racefree makedirs` through the built binary: the cases coreutils' own tests
//! cover, every error a user can meet, and real contention between processes.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use predicates::prelude::*;

use crate::testenv::{Expected, TestEnv, racefree};

#[test]
fn verbose_announces_each_created_level_exactly() {
    let env = TestEnv::new();
    env.assert_run(
        ["makedirs", "-v", "a/b/c/d/e"],
        &Expected::success(
            "racefree: created directory 'a'\n\
             racefree: created directory 'a/b'\n\
             racefree: created directory 'a/b/c'\n\
             racefree: created directory 'a/b/c/d'\n\
             racefree: created directory 'a/b/c/d/e'\n",
        ),
    );
    // Idempotent: nothing more to announce, still success.
    env.assert_run(["makedirs", "-v", "a/b/c/d/e"], &Expected::QUIET);
}

#[test]
fn trailing_slash_dot_and_dotdot_components() {
    let env = TestEnv::new();
    env.assert_run(
        ["makedirs", "-v", "x/y/", "d/.", "e/f/..", "g/./h/."],
        &Expected::success(
            "racefree: created directory 'x'\n\
             racefree: created directory 'x/y'\n\
             racefree: created directory 'd'\n\
             racefree: created directory 'e'\n\
             racefree: created directory 'e/f'\n\
             racefree: created directory 'g'\n\
             racefree: created directory 'g/./h'\n",
        ),
    );
    for d in ["x/y", "d", "e/f", "g/h"] {
        assert!(env.root().join(d).is_dir(), "{d}");
    }
}

#[test]
fn a_symlink_to_dot_inside_the_path_is_followed() {
    let env = TestEnv::new();
    symlink(".", env.root().join("self")).unwrap();
    env.assert_run(["makedirs", "self/a/b", "self/self/c"], &Expected::QUIET);
    assert!(env.root().join("a/b").is_dir());
    assert!(env.root().join("c").is_dir());
    // --no-symlinks refuses it, naming the component.
    env.assert_run(
        ["makedirs", "--no-symlinks", "self/z"],
        &Expected::failure(1, "racefree: error: cannot create directory 'self/z': 'self' is a symbolic link, refused by --no-symlinks\n"),
    );
    assert!(!env.root().join("z").exists());
}

#[test]
fn an_existing_file_in_the_path_is_an_error_naming_it() {
    let env = TestEnv::new();
    let file = env.write("f", "data");
    env.assert_run(
        ["makedirs", "f/sub/leaf", "ok"],
        &Expected::failure(1, "racefree: error: cannot create directory 'f/sub/leaf': 'f' exists and is not a directory (it is a regular file)\n"),
    );
    // The other path still ran; the file was not touched.
    assert!(env.root().join("ok").is_dir());
    assert_eq!(fs::read_to_string(file).unwrap(), "data");
}

#[test]
fn a_socket_in_the_path_is_named_by_kind() {
    let env = TestEnv::new();
    let _sock = std::os::unix::net::UnixListener::bind(env.root().join("s")).unwrap();
    // Only the reason is asserted, not the whole line.
    env.racefree(["makedirs", "s/x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "'s' exists and is not a directory (it is a socket)",
        ));
}

#[test]
fn a_dangling_symlink_as_the_leaf_is_an_error() {
    let env = TestEnv::new();
    symlink("missing-target", env.root().join("dangling")).unwrap();
    env.assert_run(
        ["makedirs", "dangling"],
        &Expected::failure(1, "racefree: error: cannot create directory 'dangling': 'dangling' is a dangling symbolic link (not a directory)\n"),
    );
    assert!(!env.root().join("missing-target").exists());
}

#[test]
fn modes_follow_coreutils_under_umask_022_and_077() {
    let env = TestEnv::new();
    let makedirs_with_umask = |umask: u32, args: &[&str]| {
        env.assert_run_under_umask(umask, [&["makedirs"][..], args].concat(), &Expected::QUIET)
    };
    makedirs_with_umask(0o022, &["u22/a/leaf"]);
    env.assert_dir_mode("u22/a", 0o755);
    env.assert_dir_mode("u22/a/leaf", 0o755);
    makedirs_with_umask(0o077, &["u77/a/leaf"]);
    env.assert_dir_mode("u77/a", 0o700);
    env.assert_dir_mode("u77/a/leaf", 0o700);
    // -m sets the leaf exactly, whatever the umask; ancestors ignore -m.
    makedirs_with_umask(0o077, &["-m", "755", "m77/a/leaf"]);
    env.assert_dir_mode("m77/a", 0o700);
    env.assert_dir_mode("m77/a/leaf", 0o755);
    makedirs_with_umask(0o022, &["-m", "777", "m22/leaf"]);
    env.assert_dir_mode("m22/leaf", 0o777);
    makedirs_with_umask(0o022, &["-m", "u=rwx,g=rx,o=", "sym"]);
    env.assert_dir_mode("sym", 0o750);
    makedirs_with_umask(0o022, &["-m", "1777", "sticky"]);
    env.assert_dir_mode("sticky", 0o1777);
    // An umask that takes u+wx from ancestors: they still get u+wx, or the walk
    // could not continue below them.
    makedirs_with_umask(0o777, &["u777/a/leaf"]);
    env.assert_dir_mode("u777/a", 0o300);
    env.assert_dir_mode("u777/a/leaf", 0o000);
    // An existing leaf keeps its mode.
    env.chmod("sym", 0o701);
    makedirs_with_umask(0o022, &["-m", "777", "sym"]);
    env.assert_dir_mode("sym", 0o701);
}

#[test]
fn existing_directories_under_read_only_and_search_only_parents_succeed() {
    let env = TestEnv::new();
    env.chmod(".", 0o755);
    env.mkdir("ro/existing");
    env.chmod("ro", 0o555);
    env.mkdir("xonly/existing");
    env.chmod("xonly", 0o111);

    env.assert_run_as_nobody(
        ["makedirs", "ro/existing", "xonly/existing", "ro/new"],
        &Expected::failure(
            1,
            "racefree: error: cannot create directory 'ro/new': mkdir 'ro/new': Permission denied\n",
        ),
    );
}

#[test]
fn an_unsearchable_parent_is_a_clear_permission_error() {
    let env = TestEnv::new();
    env.chmod(".", 0o755);
    env.mkdir("closed/existing");
    env.chmod("closed", 0o600);
    env.assert_run_as_nobody(
        ["makedirs", "closed/existing"],
        &Expected::failure(1, "racefree: error: cannot create directory 'closed/existing': mkdir 'closed/existing': Permission denied\n"),
    );
}

#[test]
fn a_ten_thousand_byte_path_works() {
    let env = TestEnv::new();
    let rel = "dddd/".repeat(2000);
    env.assert_run(["makedirs", &rel], &Expected::QUIET);
    // Two fields of the JSON line are asserted, not the whole line.
    env.racefree(["makedirs", "--json", &rel])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\"directory\":true")
                .and(predicate::str::contains("\"created\":[]")),
        );
}

#[test]
fn exclusive_is_a_lock_exit_3_when_the_leaf_exists() {
    let env = TestEnv::new();
    env.assert_run(["makedirs", "--exclusive", "locks/job"], &Expected::QUIET);
    env.assert_run(
        ["makedirs", "--exclusive", "locks/job"],
        &Expected::failure(3, "racefree: error: cannot create directory 'locks/job': 'locks/job' already exists (--exclusive wants to create it)\n"),
    );
    // Ancestors are tolerant: another leaf under the same existing parent is fine.
    env.assert_run(["makedirs", "--exclusive", "locks/other"], &Expected::QUIET);
}

#[test]
fn usage_errors_exit_2_and_touch_nothing() {
    let env = TestEnv::new();
    env.assert_run(
        ["makedirs"],
        &Expected::failure(
            2,
            "racefree: error: no PATH given (as arguments or with --from)\n",
        ),
    );
    env.assert_run(
        ["makedirs", "first", ""],
        &Expected::failure(2, "racefree: error: invalid PATH '': empty path\n"),
    );
    env.write("list", "one\n\ntwo\n");
    env.assert_run(
        ["makedirs", "--from", "list"],
        &Expected::failure(2, "racefree: error: 'list', entry 2: empty path\n"),
    );
    env.write("nul", "one\nt\0wo\n");
    env.assert_run(
        ["makedirs", "--from", "nul"],
        &Expected::failure(
            2,
            "racefree: error: 'nul', entry 2: path contains a NUL byte\n",
        ),
    );
    env.assert_run(
        ["makedirs", "-m", "u+q", "x"],
        &Expected::failure(
            2,
            "racefree: error: invalid mode 'u+q': unexpected 'q' at byte 3\n",
        ),
    );
    // The line begins as asserted; the system's reason that ends it is not.
    env.racefree(["makedirs", "--from", "does-not-exist"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "racefree: error: reading paths from 'does-not-exist': ",
        ));
    for never in ["first", "two", "t", "x"] {
        assert!(
            !env.root().join(never).exists(),
            "{never} must not be created on a usage error"
        );
    }
    // A bad --from entry stops the list there: the paths before it were made.
    assert!(env.root().join("one").is_dir());
}

#[test]
fn from_stdin_newline_and_nul_separated_in_input_order() {
    let env = TestEnv::new();
    env.assert_run_with_stdin(
        ["makedirs", "-v", "--from", "-", "-j", "4"],
        "n1\nn2/x\r\nn3\n",
        &Expected::success(
            "racefree: created directory 'n1'\n\
             racefree: created directory 'n2'\n\
             racefree: created directory 'n2/x'\n\
             racefree: created directory 'n3'\n",
        ),
    );
    env.assert_run_with_stdin(
        ["makedirs", "--json", "--from", "-", "-0"],
        &b"z1/with\nnewline\0z2\0"[..],
        &Expected::success(
            "{\"created\":[\"z1\",\"z1/with\\nnewline\"],\"directory\":true,\"error\":null,\"path\":\"z1/with\\nnewline\",\"retries\":0}\n\
             {\"created\":[\"z2\"],\"directory\":true,\"error\":null,\"path\":\"z2\",\"retries\":0}\n",
        ),
    );
}

#[test]
fn many_paths_report_in_input_order_with_failures_in_place() {
    let env = TestEnv::new();
    env.write("blocker", "");
    let mut list = String::new();
    for i in 0..500 {
        if i % 100 == 7 {
            list.push_str(&format!("blocker/{i}\n"));
        } else {
            list.push_str(&format!("tree/{}/{i}\n", i % 10));
        }
    }
    let out = env
        .racefree(["makedirs", "--json", "--from", "-"])
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
    let env = TestEnv::new();
    let root = env.mkdir("root");
    symlink(env.root(), root.join("up")).unwrap();
    // --beneath is given as an absolute path: the working directory plays no part.
    let beneath = root.to_str().unwrap();
    env.assert_run(["makedirs", "--beneath", beneath, "a/b"], &Expected::QUIET);
    assert!(root.join("a/b").is_dir());
    env.assert_run(
        ["makedirs", "--beneath", beneath, "../escape", "up/escape"],
        &Expected::failure(
            1,
            "racefree: error: cannot create directory '../escape': '..' leads outside the --beneath directory\n\
             racefree: error: cannot create directory 'up/escape': 'up' leads outside the --beneath directory\n",
        ),
    );
    assert!(!env.root().join("escape").exists());
    env.assert_run(
        ["makedirs", "--beneath", beneath, "/abs"],
        &Expected::failure(2, "racefree: error: cannot create directory '/abs': an absolute path cannot be resolved --beneath a directory\n"),
    );
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
    let env = TestEnv::new();
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
            let mut child = env
                .racefree_process(["makedirs", "-v", "-j", "2", "--from", "-"])
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
                env.root().join(d).is_dir(),
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
    let env = TestEnv::new();
    symlink("loop", env.root().join("loop")).unwrap();
    symlink("b", env.root().join("a")).unwrap();
    symlink("a", env.root().join("b")).unwrap();
    env.assert_run(
        ["makedirs", "loop", "a/x"],
        &Expected::failure(
            1,
            "racefree: error: cannot create directory 'loop': stat 'loop': too many levels of symbolic links\n\
             racefree: error: cannot create directory 'a/x': stat 'a/x': too many levels of symbolic links\n",
        ),
    );
    env.assert_run(
        ["makedirs", "--no-symlinks", "loop/x"],
        &Expected::failure(1, "racefree: error: cannot create directory 'loop/x': 'loop' is a symbolic link, refused by --no-symlinks\n"),
    );
}

#[test]
fn parents_is_accepted_and_selinux_contexts_are_refused() {
    let env = TestEnv::new();
    env.assert_run(["makedirs", "-p", "a/b"], &Expected::QUIET);
    env.assert_run(
        ["makedirs", "--parents", "-p", "a/b", "c"],
        &Expected::QUIET,
    );
    assert!(env.root().join("a/b").is_dir() && env.root().join("c").is_dir());
    assert!(!env.root().join("-p").exists());
    let refused = "racefree: error: -Z/--context: racefree sets no SELinux or SMACK security \
                   context; a new directory gets the one the kernel gives it (drop -Z, or run \
                   restorecon on the directories afterwards)\n";
    for args in [
        &["makedirs", "-Z", "z"][..],
        &["makedirs", "-pZ", "z"],
        &["makedirs", "--context", "z"],
        &["makedirs", "--context=system_u:object_r:tmp_t:s0", "z"],
    ] {
        env.assert_run(args, &Expected::failure(2, refused));
    }
    assert!(!env.root().join("z").exists());
}

#[test]
fn from_a_closed_standard_input_is_an_error_and_makes_nothing() {
    let env = TestEnv::new();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            r#"exec "$0" makedirs first --from - <&-"#,
            &crate::testenv::racefree_path().to_string_lossy(),
        ])
        .current_dir(env.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: reading paths from standard input: it is closed\n"
    );
    assert!(!env.root().join("first").exists());
}

/// `mkdir -p` lines as scripts write them, run by GNU mkdir and then, unchanged but
/// for the tool's name, by racefree makedirs: the same output, status and tree.
#[test]
fn mkdir_p_script_lines_give_what_gnu_mkdir_gives() {
    let scripts = [
        "mkdir -p a/b/c && mkdir -p a/b/c && echo again",
        "mkdir -p -m 700 p/q && stat -c '%a %n' p p/q",
        "mkdir --parents --mode=u=rwx,go=rx r/s && stat -c '%a %n' r r/s",
        "umask 077; mkdir -p u/v; stat -c '%a %n' u u/v",
        "umask 022; mkdir -pv w/x >/dev/null; stat -c '%a %n' w w/x",
        ": > file; mkdir -p file/sub 2>/dev/null; echo \"status $?\"",
        "mkdir -p ok file2/x 2>/dev/null; echo \"status $?\"; test -d ok && echo ok made",
        "mkdir -p \"$(printf 'nl\\nx')/y\" 'sp ace/z' && ls | wc -l",
        "mkdir -p ./dot/../dot/./e/ && test -d dot/e && echo e",
    ];
    let tree = |root: &Path| {
        let out = std::process::Command::new("find")
            .args([".", "-printf", "%M %p\\n"])
            .current_dir(root)
            .output()
            .unwrap();
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let bin = crate::testenv::racefree_path();
    let mut path = bin.parent().unwrap().as_os_str().to_owned();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let run = |script: &str| {
        let env = TestEnv::new();
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(env.root())
            .env("PATH", &path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            tree(env.root()),
        )
    };
    for script in scripts {
        let gnu = run(script);
        let ours = run(&script.replace("mkdir ", "racefree makedirs "));
        assert_eq!(ours, gnu, "{script}");
    }
    // From find -print0: makedirs' example beside xargs and mkdir -p.
    let setup = "mkdir -p src/a/b 'src/c d' \"src/$(printf 'e\\nf')\" dst && ";
    let gnu = run(&format!(
        "{setup}(cd src && find . -type d -print0) | (cd dst && xargs -0 mkdir -p)"
    ));
    let ours = run(&format!(
        "{setup}(cd src && find . -type d -print0) | (cd dst && racefree makedirs -0 --from -)"
    ));
    assert_eq!(ours, gnu);
    assert_eq!(gnu.0, Some(0));
}
