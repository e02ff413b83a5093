//! The arms for counter, write and lock: racefree's holds and the control fails,
//! with threads and with processes, on one host and across (stand-in) hosts.

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
