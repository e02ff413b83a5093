//! The arms for counter, write, lock and crash: racefree's holds and the control
//! fails, with threads and with processes, on one host and across (stand-in)
//! hosts; and crash's checks catch a racefree broken on purpose.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::testenv::{TestEnv, racefree, report_fails_with, report_passes};

fn run_json(args: &[&str]) -> Value {
    let out = racefree().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "stderr: {stderr}");
    // The exit status judges racefree's arm only: 0 even though the control failed.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn counter(mode: &[&str], racers: u64, takes: u64, rounds: u64) {
    let mut args = vec!["stress", "counter", "--control", "--json"];
    args.extend(mode);
    let (r, t, n) = (racers.to_string(), takes.to_string(), rounds.to_string());
    args.extend(["--racers", &r, "--takes", &t, "--rounds", &n]);
    let r = run_json(&args);
    let ours = &r["racefree"];
    assert_eq!(u(&ours["rounds"]), rounds);
    assert_eq!(u(&ours["calls"]), racers * takes * rounds);
    assert_eq!(u(&ours["failed_calls"]), 0, "{ours}");
    assert_eq!(u(&ours["bad_rounds"]), 0, "{ours}");
    assert_eq!((u(&ours["duplicates"]), u(&ours["missing"])), (0, 0));
    let control = &r["control"];
    assert_eq!(control["arm"], "control");
    assert!(
        u(&control["duplicates"]) > 0,
        "the control handed out no number twice: {control}"
    );
    assert!(
        control["problems"][0]
            .as_str()
            .unwrap()
            .contains("numbers handed out twice"),
        "{control}"
    );
}

#[test]
fn counter_threads_take_exactly_one_to_total_and_the_unlocked_control_duplicates() {
    counter(&[], 8, 20, 5);
}

#[test]
fn counter_processes_take_exactly_one_to_total_and_the_unlocked_control_duplicates() {
    counter(&["--processes"], 4, 20, 4);
}

fn write(mode: &[&str], racers: u64, versions: u64, rounds: u64) {
    let mut args = vec!["stress", "write", "--control", "--json", "--reads", "20"];
    args.extend(mode);
    let (r, v, n) = (racers.to_string(), versions.to_string(), rounds.to_string());
    args.extend(["--racers", &r, "--versions", &v, "--rounds", &n]);
    let r = run_json(&args);
    let ours = &r["racefree"];
    let (writers, readers) = (racers / 2, racers - racers / 2);
    assert_eq!(u(&ours["writes"]), writers * versions * rounds);
    assert!(u(&ours["reads"]) >= readers * 20 * rounds, "{ours}");
    assert_eq!(u(&ours["failed_calls"]), 0, "{ours}");
    assert_eq!((u(&ours["empty"]), u(&ours["torn"])), (0, 0), "{ours}");
    assert_eq!(u(&ours["bad_rounds"]), 0, "{ours}");
    let control = &r["control"];
    assert!(
        u(&control["empty"]) + u(&control["torn"]) > 0,
        "readers never saw the in-place writer's truncate: {control}"
    );
}

#[test]
fn write_threads_readers_see_whole_versions_and_the_in_place_control_tears() {
    write(&[], 6, 5, 4);
}

#[test]
fn write_processes_readers_see_whole_versions_and_the_in_place_control_tears() {
    write(&["--processes"], 4, 5, 3);
}

fn lock(mode: &[&str], racers: u64, increments: u64, rounds: u64) {
    let mut args = vec!["stress", "lock", "--control", "--json"];
    args.extend(mode);
    let (r, i, n) = (
        racers.to_string(),
        increments.to_string(),
        rounds.to_string(),
    );
    args.extend(["--racers", &r, "--increments", &i, "--rounds", &n]);
    let r = run_json(&args);
    let ours = &r["racefree"];
    assert_eq!(u(&ours["calls"]), racers * increments * rounds);
    assert_eq!(u(&ours["failed_calls"]), 0, "{ours}");
    assert_eq!(u(&ours["bad_rounds"]), 0, "{ours}");
    assert_eq!(u(&ours["lost"]), 0, "{ours}");
    let control = &r["control"];
    assert!(
        u(&control["lost"]) > 0,
        "the control lost no update: {control}"
    );
    assert!(
        control["problems"][0]
            .as_str()
            .unwrap()
            .contains("updates lost"),
        "{control}"
    );
}

#[test]
fn lock_threads_lose_no_update_and_the_write_after_unlock_control_does() {
    lock(&[], 8, 10, 5);
}

#[test]
fn lock_processes_run_racefree_lock_lose_no_update_and_the_control_does() {
    // Each increment is two processes: under load, fewer calls than this gave the
    // control no overlap to lose an update in (seen with 4 x 8 x 4).
    lock(&["--processes"], 6, 20, 4);
}

#[test]
fn counter_across_hosts_merges_and_catches_a_wrong_counter() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["counter", "--takes", "10"], "3");
    report_passes(env.root()).stdout(predicate::str::starts_with(
        "stress report: counter, 2 instances (0, 1), 3 rounds, 180 calls, 0 failed\n",
    ));
    fs::write(work.join("round-1/counter"), "59\n").unwrap();
    report_fails_with(&work, &["round 1: the counter holds 59, expected 60"]);
}

#[test]
fn write_across_hosts_merges_and_catches_a_torn_file() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["write", "--versions", "10", "--reads", "20"], "2");
    report_passes(&work);
    fs::write(work.join("round-0/file"), "").unwrap();
    report_fails_with(&work, &["round 0: 'round-0/file' was left empty"]);
}

#[test]
fn lock_across_hosts_merges_and_catches_a_lost_update() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["lock", "--increments", "50"], "2");
    report_passes(&work);
    fs::write(work.join("round-1/counter"), "299\n").unwrap();
    report_fails_with(
        &work,
        &["round 1: the counter ends at 299, expected 300: 1 updates lost"],
    );
}

#[test]
fn write_needs_a_reader_and_a_writer() {
    racefree()
        .args(["stress", "write", "--racers", "1", "--rounds", "1"])
        .assert()
        .code(2)
        .stderr("racefree: error: stress write needs at least 2 racers: half of them write, the others read\n");
}

/// `stress crash --json ARGS`: its exit status and report, stderr empty.
fn crash(args: &[&str]) -> (Option<i32>, Value) {
    let out = racefree()
        .args(["stress", "crash", "--json"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "stderr: {stderr}");
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

/// What must survive the kills, all held in racefree's arm, and the kills that
/// landed; then the control's in-place counter and writer seen failing.
fn crash_holds(mode: &[&str], racers: u64, calls: u64, rounds: u64) {
    let (r, c, n) = (racers.to_string(), calls.to_string(), rounds.to_string());
    let mut args = vec!["--racers", &r, "--calls", &c, "--rounds", &n];
    args.extend(mode);
    let (code, r) = crash(&args);
    assert_eq!(
        (code, &r["verdict"]),
        (Some(0), &Value::from("pass")),
        "{r}"
    );
    let ours = &r["racefree"];
    assert_eq!(u(&ours["calls"]), racers * calls * rounds);
    for failure in [
        "failed_calls",
        "bad_rounds",
        "repeated",
        "lost",
        "skipped",
        "torn",
        "overlaps",
        "unheld",
        "leftovers",
    ] {
        assert_eq!(u(&ours[failure]), 0, "{failure}: {ours}");
    }
    assert!(u(&ours["kills"]) > 0, "no call was killed: {ours}");
    assert!(
        u(&ours["rename_kills"]) > 0,
        "no call died at its rename: {ours}"
    );
    let control = &r["control"];
    assert!(
        u(&control["repeated"]) + u(&control["lost"]) + u(&control["torn"]) > 0,
        "the in-place control lost nothing: {control}"
    );
}

#[test]
fn crash_threads_killed_calls_lose_nothing_and_leave_nothing_and_the_in_place_control_does() {
    crash_holds(&[], 6, 16, 2);
}

#[test]
fn crash_processes_killed_calls_lose_nothing_and_leave_nothing_and_the_in_place_control_does() {
    crash_holds(&["--processes"], 4, 16, 2);
}

/// racefree's arm broken on purpose (`--sabotage`, hidden): the run fails, and the
/// figure and the problem say what broke.
fn crash_catches(sabotage: &str, figures: &[&str], problem: &str) {
    let (code, r) = crash(&[
        "--sabotage",
        sabotage,
        "--racers",
        "6",
        "--calls",
        "16",
        "--rounds",
        "2",
        "--no-control",
    ]);
    assert_eq!(
        (code, &r["verdict"]),
        (Some(1), &Value::from("fail")),
        "{r}"
    );
    let ours = &r["racefree"];
    assert!(
        figures.iter().map(|f| u(&ours[*f])).sum::<u64>() > 0,
        "{ours}"
    );
    let problems = ours["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().contains(problem)),
        "no problem says {problem:?}: {ours}"
    );
}

#[test]
fn crash_catches_a_counter_that_writes_in_place_without_its_lock() {
    crash_catches("counter", &["repeated", "lost", "skipped"], "counter value");
}

#[test]
fn crash_catches_a_writer_that_writes_in_place() {
    crash_catches("write", &["torn"], "after a write call: ");
}

#[test]
fn crash_catches_a_lock_that_dies_with_racefree_while_command_runs() {
    // With -o, COMMAND does not inherit the lock: racefree alone holds it.
    crash_catches("lock", &["unheld"], "did not hold the lock at its enter");
}

#[test]
fn crash_catches_temporary_files_no_successful_call_removed() {
    crash_catches(
        "leftovers",
        &["leftovers"],
        "temporary files remain, such as '.",
    );
}

#[test]
fn crash_runs_on_one_host_only() {
    let env = TestEnv::new();
    let barrier = env.root().join("go");
    racefree()
        .args(["stress", "crash", "--rounds", "1", "--dir"])
        .arg(env.root())
        .arg("--barrier-file")
        .arg(&barrier)
        .assert()
        .code(1)
        .stderr("racefree: error: stress crash runs on one host: it cannot race across hosts with --barrier-file\n");
}
