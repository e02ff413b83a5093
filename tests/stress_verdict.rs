//! What a stress verdict rests on: every run races its control unless told not to,
//! a control that never failed makes the run INCONCLUSIVE (exit 4) rather than a
//! PASS, every `--json` says its verdict, and a full `--dir` is a setup problem,
//! not a failure of racefree.

use std::fs;
use std::path::Path;
use std::process::Command;

use predicates::prelude::*;
use serde_json::Value;

use crate::testenv::{Precondition, TestEnv, racefree, require};

fn json(args: &[&str]) -> (Option<i32>, Value) {
    let out = racefree().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "stderr: {stderr}");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

#[test]
fn a_control_that_never_failed_is_inconclusive_exit_4_naming_the_arm() {
    // One racer races nobody: no control can fail, so nothing was proven.
    for arm in ["makedirs", "counter", "lock"] {
        let out = racefree()
            .args(["stress", arm, "--racers", "1", "--rounds", "2"])
            .assert()
            .code(4);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            stdout.ends_with(&format!(
                "  verdict: INCONCLUSIVE: stress {arm}'s control did not fail in 8 rounds: this run could not have seen a race\n"
            )),
            "{stdout}"
        );
        let (code, r) = json(&["stress", arm, "--racers", "1", "--rounds", "2", "--json"]);
        assert_eq!(code, Some(4));
        assert_eq!(r["verdict"], "inconclusive", "{r}");
        assert_eq!(r["control_ran"], true);
        // With --rounds 2, the arm kept racing while its control had not failed, up
        // to 4 x 2 rounds; racefree's arm held in every one of them.
        assert_eq!(r["racefree"]["rounds"], 8);
        assert_eq!(r["control"]["rounds"], 8);
        assert_eq!(r["racefree"]["failed_calls"], 0);
    }
}

#[test]
fn with_a_duration_the_arm_races_on_up_to_4x_while_its_control_has_not_failed() {
    let (code, r) = json(&[
        "stress",
        "counter",
        "--racers",
        "1",
        "--duration",
        "0.25",
        "--json",
    ]);
    assert_eq!(code, Some(4), "{r}");
    assert_eq!(r["verdict"], "inconclusive");
    let seconds = r["seconds"].as_f64().unwrap();
    // 4 x 0.25 s, give or take one round.
    assert!((0.95..5.0).contains(&seconds), "ran {seconds} s");
}

#[test]
fn a_control_that_failed_within_the_duration_adds_no_time() {
    let (code, r) = json(&[
        "stress",
        "ident",
        "--racers",
        "2",
        "--duration",
        "0.5",
        "--source",
        "netlink",
        "--json",
    ]);
    // The ESTABLISHED-only matcher misses every half-closed socket of its first round.
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["verdict"], "pass");
    let seconds = r["seconds"].as_f64().unwrap();
    assert!(seconds < 1.5, "ran {seconds} s for --duration 0.5");
}

#[test]
fn without_a_control_the_verdict_says_so_never_a_bare_pass() {
    racefree()
        .args(["stress", "makedirs", "--no-control", "--rounds", "2"])
        .assert()
        .success()
        .stdout(predicate::str::ends_with(
            "  verdict: PASS, no control ran\n",
        ));
    let (code, r) = json(&["stress", "lock", "--no-control", "--rounds", "2", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["control_ran"], false);
    assert_eq!(r["control"], Value::Null);
    assert_eq!(r["racefree"]["rounds"], 2);
    racefree()
        .args([
            "stress",
            "--no-control",
            "--duration",
            "0.2",
            "--racers",
            "2",
        ])
        .assert()
        .success()
        .stdout(predicate::str::ends_with(
            "\nverdict: PASS, no control ran\n",
        ));
    // --control, the default now, is still accepted; with --no-control it is a
    // usage error.
    racefree()
        .args(["stress", "makedirs", "--control", "--no-control"])
        .assert()
        .code(2);
}

#[test]
fn every_run_races_its_control_unless_told_not_to() {
    let (code, r) = json(&[
        "stress", "counter", "--rounds", "3", "--racers", "8", "--json",
    ]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["control"]["arm"], "control", "{r}");
    assert_eq!(r["control_ran"], true);
    assert_eq!(r["verdict"], "pass");
}

#[test]
fn every_json_carries_the_verdict_and_whether_the_work_dir_is_still_there() {
    let env = TestEnv::new();
    let dir = env.root().to_str().unwrap();
    let (code, r) = json(&[
        "stress", "makedirs", "--rounds", "3", "--racers", "8", "--json", "--dir", dir,
    ]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["format"], 2);
    assert_eq!(r["work_dir_kept"], false);
    assert!(!Path::new(r["work_dir"].as_str().unwrap()).exists());
    let (code, r) = json(&[
        "stress", "write", "--rounds", "2", "--racers", "4", "--json", "--keep", "--dir", dir,
    ]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["work_dir_kept"], true);
    assert!(Path::new(r["work_dir"].as_str().unwrap()).is_dir());

    let (code, r) = json(&["stress", "--duration", "0.3", "--racers", "4", "--json"]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["control_ran"], true);
    for arm in ["makedirs", "ident", "counter", "write", "lock"] {
        assert_eq!(r[arm]["verdict"], "pass", "{arm}: {}", r[arm]);
        assert_eq!(r[arm]["control_ran"], true, "{arm}");
    }
}

/// A tmpfs of `options` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs(TestEnv);

impl Tmpfs {
    fn mount(options: &str) -> Tmpfs {
        let env = TestEnv::new();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "none"])
            .arg(env.root())
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs -o {options}: {st}");
        Tmpfs(env)
    }

    fn path(&self) -> &Path {
        self.0.root()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.root()).status();
    }
}

#[test]
#[cfg_attr(not(has_root), ignore = "needs root to mount a tmpfs")]
fn a_full_dir_is_a_setup_problem_exit_2_not_a_failure() {
    require(&[Precondition::Root]);
    // Out of inodes: makedirs' 121 directories a round do not fit in 64.
    let fs = Tmpfs::mount("size=1m,nr_inodes=64");
    let dir = fs.path().to_str().unwrap();
    let out = racefree()
        .args([
            "stress", "makedirs", "--rounds", "1", "--racers", "2", "--dir", dir,
        ])
        .assert()
        .code(2)
        .stdout("");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.starts_with(&format!(
            "racefree: error: --dir '{dir}' has no room left (No space left on device): "
        )) && stderr.ends_with("free space or inodes there, or give another --dir\n")
            && !stderr.contains("FAILED"),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(fs.path()).unwrap().count(), 0, "left behind");
    drop(fs);

    // Out of space: the write arm's versions (1 to 64 KiB each, the same ones every
    // run) do not all fit in 16 KiB.
    let fs = Tmpfs::mount("size=16k,nr_inodes=1024");
    let dir = fs.path().to_str().unwrap();
    let out = racefree()
        .args([
            "stress", "write", "--rounds", "3", "--racers", "8", "--dir", dir,
        ])
        .assert()
        .code(2)
        .stdout("");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.starts_with(&format!("racefree: error: --dir '{dir}' has no room left")),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(fs.path()).unwrap().count(), 0, "left behind");
}
