//! `racefree stress exec`: the examples of its `--help`, as stated there, and what
//! it promises around them (the report names the race, hangs fail, nothing is left
//! behind, many hosts merge).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::testenv::{TestEnv, racefree_path, report_fails_with, report_passes};

/// `racefree stress exec ARGS` run in `env`'s tree, its work directory there, with
/// the built binary first on PATH (the examples run `racefree makedirs` and
/// `racefree lock`) and the C locale (mkdir's messages in plain quotes).
fn exec(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(racefree_path())
        .args(["stress", "exec", "--dir"])
        .arg(env.root())
        .args(args)
        .current_dir(env.root())
        .env("PATH", path_with_racefree())
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

/// PATH with the built binary's directory first.
fn path_with_racefree() -> std::ffi::OsString {
    let bin = racefree_path();
    std::env::join_paths(
        std::iter::once(bin.parent().unwrap().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the run passed (exit 0), and left nothing behind.
#[track_caller]
fn passes(env: &TestEnv, args: &[&str]) {
    let out = exec(env, args);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.ends_with("  racefree: held\n  verdict: PASS\n"),
        "{text}"
    );
    assert!(
        text.contains("failed, as expected of the control"),
        "the canary must be seen failing: {text}"
    );
    assert_eq!(leftovers(env), Vec::<PathBuf>::new());
}

/// Asserts the run failed (exit 1), naming every one of `said` in its report.
#[track_caller]
fn fails(env: &TestEnv, args: &[&str], said: &[&str]) -> String {
    let out = exec(env, args);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in said {
        assert!(text.contains(s), "no {s:?} in:\n{text}");
    }
    assert!(
        text.ends_with("  racefree: FAILED\n  verdict: FAIL\n"),
        "{text}"
    );
    text
}

/// What a run left in the tree: nothing but the failing round it kept.
fn leftovers(env: &TestEnv) -> Vec<PathBuf> {
    std::fs::read_dir(env.root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("racefree-kept-")
        })
        .collect()
}

/// The path the report gives for the first failing round's tree.
fn kept_tree(text: &str) -> PathBuf {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("  the first failing round's tree: "))
        .unwrap_or_else(|| panic!("no kept tree in:\n{text}"));
    PathBuf::from(line.split(" (").next().unwrap())
}

const LOST_UPDATE: &str = "n=$(cat n); echo $((n+1)) > n";
const CHECK_COUNT: &str = "test \"$(cat n)\" = \"$RACEFREE_RACERS\"";

#[test]
fn check_then_create_fails_within_the_default_duration_and_the_report_names_the_race() {
    let env = TestEnv::new();
    let text = fails(
        &env,
        &["--", "sh", "-c", "[ -d out ] || mkdir out"],
        &[
            "mkdir: cannot create directory 'out': File exists",
            "racers failed; racer ",
            "racers released within ",
        ],
    );
    // The failing round's tree outlives the run, for inspection, and holds the race.
    let kept = kept_tree(&text);
    assert!(kept.starts_with(env.root()), "{}", kept.display());
    assert!(kept.join("out").is_dir());
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn idempotent_creators_pass() {
    let env = TestEnv::new();
    passes(&env, &["--rounds", "6", "--", "mkdir", "-p", "out/a/b"]);
    passes(
        &env,
        &["--rounds", "6", "--", "racefree", "makedirs", "out/a/b"],
    );
}

#[test]
fn pythons_check_then_makedirs_fails_and_exist_ok_passes() {
    let env = TestEnv::new();
    // Round 0 holds each racer's first change until all have made their check.
    fails(
        &env,
        &[
            "--rounds",
            "1",
            "--",
            "python3",
            "-c",
            "import os; os.path.isdir('out/a') or os.makedirs('out/a')",
        ],
        &["FileExistsError"],
    );
    let env = TestEnv::new();
    passes(
        &env,
        &[
            "--rounds",
            "3",
            "--",
            "python3",
            "-c",
            "import os; os.makedirs('out/a', exist_ok=True)",
        ],
    );
}

#[test]
fn a_lost_update_fails_and_the_same_under_racefree_lock_passes() {
    let env = TestEnv::new();
    let setup = ["--setup", "echo 0 > n", "--check", CHECK_COUNT];
    let text = fails(
        &env,
        &[
            &setup[..],
            &["--rounds", "1", "--", "sh", "-c", LOST_UPDATE],
        ]
        .concat(),
        &["--check exited 1"],
    );
    let kept = kept_tree(&text);
    let n: u32 = std::fs::read_to_string(kept.join("n"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(n < 8, "the kept counter shows the lost updates: {n}");
    let env = TestEnv::new();
    passes(
        &env,
        &[
            &setup[..],
            &["--rounds", "3", "--", "racefree", "lock", "n.lock", "--"],
            &["sh", "-c", LOST_UPDATE],
        ]
        .concat(),
    );
}

/// A run whose sequential run fails on its own judges nothing: INCONCLUSIVE.
#[track_caller]
fn sequential_fails(args: &[&str], said: &[&str]) {
    let env = TestEnv::new();
    let out = exec(&env, args);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains(
            "  verdict: INCONCLUSIVE: stress exec: the sequential run failed on its own ("
        ),
        "{text}"
    );
    assert!(
        text.contains("the sequential run failed on its own, so nothing was judged:"),
        "{text}"
    );
    for s in said {
        assert!(text.contains(s), "no {s:?} in:\n{text}");
    }
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_bare_makedirs_fails_even_one_after_another_and_so_proves_nothing() {
    sequential_fails(
        &["--", "python3", "-c", "import os; os.makedirs('out/a')"],
        &["racer 1 exited 1", "FileExistsError"],
    );
}

#[test]
fn a_check_the_sequential_run_fails_proves_nothing() {
    sequential_fails(&["--check", "false", "--", "true"], &["--check exited 1"]);
}

#[test]
fn compare_sequential_names_each_difference_and_ignore_lets_one_pass() {
    let env = TestEnv::new();
    // Each racer adds one to n, unlocked, and leaves a file of its own.
    let script = "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; echo $$ > pid.log";
    let text = fails(
        &env,
        &[
            "--compare-sequential",
            "--rounds",
            "1",
            "--",
            "sh",
            "-c",
            script,
        ],
        &["tree: n: ", " vs 8", "tree: pid.log: "],
    );
    let kept = kept_tree(&text);
    assert!(kept.parent().unwrap().join("sequential/n").is_file());
    let env = TestEnv::new();
    passes(
        &env,
        &[
            "--compare-sequential",
            "--ignore",
            "*.log",
            "--rounds",
            "3",
            "--",
            "racefree",
            "lock",
            "l",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
}

/// A script that sleeps (a sleep in the background, one in the foreground) in the
/// racy run alone, not in the sequential one, and only as racer `racer` (any, when
/// `None`). Returns the script and the marker each sleep's command line holds
/// (`300.7`, `tail` and this test process's id, so two test runs at once never
/// count each other's sleeps); the script's own command line does not hold it.
fn sleeps_when_racing(racer: Option<u32>, tail: u32) -> (String, String) {
    let who = racer.map_or(String::new(), |r| {
        format!("[ \"$RACEFREE_RACER\" = {r} ] && ")
    });
    let pid = std::process::id();
    let sleep = format!("sleep 300.7$(({tail})){pid}");
    (
        format!("case $(pwd) in */round-*) {who}{{ {sleep} & {sleep}; }};; esac"),
        format!("300.7{tail}{pid}"),
    )
}

#[test]
fn a_hung_racer_fails_its_round_and_nothing_it_started_outlives_the_run() {
    let env = TestEnv::new();
    let (script, marker) = sleeps_when_racing(Some(1), 391);
    fails(
        &env,
        &[
            "--timeout",
            "0.5",
            "--rounds",
            "1",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &["racer 1 hung: killed after 0.5 s"],
    );
    assert_eq!(processes_running(&marker), Vec::<String>::new());
}

/// The command lines of processes whose arguments include `marker`.
fn processes_running(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker))
        .collect()
}

#[test]
fn the_json_report_has_the_race_and_the_canary() {
    let env = TestEnv::new();
    let out = exec(
        &env,
        &[
            "--json",
            "--rounds",
            "1",
            "--",
            "sh",
            "-c",
            "[ -d out ] || mkdir out",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["subject"], "exec");
    assert_eq!(r["command"][0], "sh");
    let ours = &r["racefree"];
    assert_eq!(ours["bad_rounds"], 1);
    let failing = &ours["failing_rounds"][0];
    assert_eq!(failing["round"], 0);
    assert!(failing["racers_failed"].as_u64().unwrap() >= 1);
    assert_eq!(
        failing["racers"][0]["said"][0],
        "mkdir: cannot create directory 'out': File exists"
    );
    assert!(Path::new(ours["kept"]["racy"].as_str().unwrap()).is_dir());
    let canary = &r["control"];
    assert_eq!(canary["arm"], "control");
    assert!(canary["failed_calls"].as_u64().unwrap() >= 1, "{canary}");
}

#[test]
fn usage_errors_name_what_is_wrong() {
    let env = TestEnv::new();
    for (args, said) in [
        (
            &["--", "racefree-no-such-command"][..],
            "racefree: error: COMMAND racefree-no-such-command: not found (nor on PATH)\n",
        ),
        (
            &["--racers", "257", "--", "true"][..],
            "racefree: error: --racers 257: stress exec runs at most 256\n",
        ),
        (
            &["--template", "missing", "--", "true"][..],
            "racefree: error: --template 'missing' is not a directory\n",
        ),
        (
            &["--barrier-file", "b", "--", "true"][..],
            "racefree: error: across hosts stress exec needs --rounds, not --duration or --stop-on-first: every instance races the same rounds\n",
        ),
    ] {
        let out = exec(&env, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), said, "{args:?}");
        assert!(out.stdout.is_empty());
    }
    let out = exec(&env, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("<COMMAND>"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stop_on_first_ends_at_the_first_failing_round() {
    let env = TestEnv::new();
    let out = exec(
        &env,
        &[
            "--stop-on-first",
            "--duration",
            "600",
            "--json",
            "--",
            "sh",
            "-c",
            "[ -d out ] || mkdir out",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rounds = r["racefree"]["rounds"].as_u64().unwrap();
    assert_eq!(r["racefree"]["bad_rounds"], 1, "{r}");
    assert_eq!(
        r["racefree"]["failing_rounds"][0]["round"].as_u64(),
        Some(rounds - 1),
        "the run ended with its first failing round"
    );
}

#[test]
fn expect_exit_names_the_status_every_racer_must_end_with() {
    let env = TestEnv::new();
    passes(
        &env,
        &[
            "--expect-exit",
            "3",
            "--rounds",
            "3",
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    // Checked, then created: the losers exit 1, not 3.
    fails(
        &env,
        &[
            "--expect-exit",
            "3",
            "--rounds",
            "1",
            "--",
            "sh",
            "-c",
            "[ -d out ] && exit 3; mkdir out || exit 1; exit 3",
        ],
        &[
            "racers failed; racer ",
            " exited 1: mkdir: cannot create directory 'out': File exists",
        ],
    );
}

#[test]
fn a_template_is_copied_into_each_round_before_setup() {
    let (env, fixture) = (TestEnv::new(), TestEnv::new());
    fixture.write("conf/base", "7\n");
    passes(
        &env,
        &[
            "--template",
            fixture.root().to_str().unwrap(),
            "--setup",
            "test \"$(cat conf/base)\" = 7 && cp conf/base n",
            "--check",
            "test \"$(cat n)\" = 7",
            "--rounds",
            "3",
            "--racers",
            "4",
            "--",
            "sh",
            "-c",
            "test -d conf && test \"$RACEFREE_RACERS\" = 4",
        ],
    );
}

/// Two instances of `stress exec OWN -- COMMAND` standing in for hosts, meeting at
/// a barrier file in `env`'s tree; instance 0, which runs the check, must exit
/// `code`, instance 1 (its racers' exits alone) 0. Returns the shared work
/// directory.
fn two_hosts(env: &TestEnv, own: &[&str], command: &[&str], code: i32) -> PathBuf {
    let barrier = env.root().join("go");
    let hosts: Vec<_> = (0..2)
        .map(|rank| {
            Command::new(racefree_path())
                .args(["stress", "exec", "--rounds", "2", "--racers", "3"])
                .args(["--expect", "2", "--barrier-file"])
                .arg(&barrier)
                .arg("--dir")
                .arg(env.root())
                .args(own)
                .arg("--")
                .args(command)
                .env("SLURM_PROCID", rank.to_string())
                .env("PATH", path_with_racefree())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (h, want) in hosts.into_iter().zip([code, 0]) {
        let out = h.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(want),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.root().join("racefree-stress-go")
}

#[test]
fn across_hosts_instance_0_checks_and_report_merges_without_running_anything() {
    let setup = ["--setup", "echo 0 > n", "--check", CHECK_COUNT];
    let env = TestEnv::new();
    let work = two_hosts(&env, &setup, &["sh", "-c", LOST_UPDATE], 1);
    report_fails_with(&work, &["--check exited 1"]);
    // Six racers on two hosts: the check saw RACEFREE_RACERS=6 and the counter at 6.
    let env = TestEnv::new();
    let locked = ["racefree", "lock", "n.lock", "--", "sh", "-c", LOST_UPDATE];
    let work = two_hosts(&env, &setup, &locked, 0);
    report_passes(&work);
    // Without --keep, the report removes what it verified: the rounds, their twins
    // and barriers.
    let out = Command::new(racefree_path())
        .args(["stress", "report"])
        .arg(&work)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let left: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            ["round-", "twin-", "sync-"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn sigterm_kills_every_racer_and_what_it_started_and_removes_the_work() {
    use std::os::unix::process::ExitStatusExt;
    let env = TestEnv::new();
    let (script, marker) = sleeps_when_racing(None, 393);
    let child = Command::new(racefree_path())
        .args([
            "stress",
            "exec",
            "--racers",
            "4",
            "--timeout",
            "600",
            "--dir",
        ])
        .arg(env.root())
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Waits (bounded) for a state, the racers running; it races nothing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while processes_running(&marker).len() < 8 {
        assert!(std::time::Instant::now() < deadline, "the racers never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{out:?}");
    assert_eq!(processes_running(&marker), Vec::<String>::new());
    assert_eq!(leftovers(&env), Vec::<PathBuf>::new());
}
