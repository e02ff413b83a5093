//! `racefree stress report` on a multi-host run's tree that someone tampered with:
//! every such tree is a FAIL or an error naming what is wrong, never an abort, a
//! pass on nothing, or a walk through a symlink.

use std::fs;
use std::path::Path;

use predicates::prelude::*;

use crate::testenv::report_passes;
use crate::testenv::{TestEnv, racefree, report_fails_with};

/// A makedirs run of 729 leaves a round: about 0.1 s a round on 2 cores.
const MAKEDIRS: &[&str] = &["makedirs", "--depth", "6"];

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn a_tampered_tree_shape_is_an_error_not_a_100_gb_allocation() {
    let env = TestEnv::new();
    let work = env.multi_host_run(MAKEDIRS, "1");
    racefree()
        .args(["stress", "report", "--keep"])
        .arg(&work)
        .assert()
        .success();
    edit_json(&work.join("report-1.json"), |v| v["depth"] = 32.into());
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "racefree: error: report-1.json: depth 32, fanout 3: 3^32 leaf paths per round; at most 100000\n",
        );
    edit_json(&work.join("report-1.json"), |v| {
        v["depth"] = 6.into();
        v["racers"] = 100000.into();
    });
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr("racefree: error: report-1.json: racers 100000 is out of range 1..=1024\n");
}

#[test]
fn a_report_that_verified_no_round_fails() {
    let env = TestEnv::new();
    let work = env.multi_host_run(MAKEDIRS, "1");
    for id in 0..2 {
        // No rounds, and so (or the header's arithmetic refuses it) no calls.
        edit_json(&work.join(format!("report-{id}.json")), |v| {
            v["racefree"]["rounds"] = 0.into();
            v["racefree"]["calls"] = 0.into();
            v["racefree"]["created"] = 0.into();
        });
        fs::write(work.join(format!("rounds-{id}.jsonl")), "").unwrap();
    }
    fs::remove_dir_all(work.join("round-0")).unwrap();
    report_fails_with(
        &work,
        &[
            "0 rounds",
            "no round was verified: a report that covers nothing proves nothing",
        ],
    );
}

#[test]
fn a_round_on_disk_that_no_report_covers_fails() {
    let env = TestEnv::new();
    let work = env.multi_host_run(MAKEDIRS, "2");
    fs::create_dir(work.join("round-2")).unwrap();
    report_fails_with(&work, &["'round-2' is on disk, but no report covers it"]);
}

#[test]
fn a_round_that_is_a_symlink_is_never_followed() {
    let env = TestEnv::new();
    let work = env.multi_host_run(MAKEDIRS, "1");
    fs::remove_dir_all(work.join("round-0")).unwrap();
    std::os::unix::fs::symlink("/usr", work.join("round-0")).unwrap();
    report_fails_with(
        &work,
        &[
            "'round-0' is a symbolic link; it is not followed",
            "round 0: 1 entries that are not directories, such as 'round-0'",
        ],
    );
    // A report that is a symlink is not read either.
    fs::rename(
        work.join("report-1.json"),
        env.root().join("elsewhere.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        env.root().join("elsewhere.json"),
        work.join("report-1.json"),
    )
    .unwrap();
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is not a regular file (symbolic links are not followed)",
        ));
}

#[test]
fn garbage_in_a_rounds_file_is_an_error_naming_it() {
    let env = TestEnv::new();
    let work = env.multi_host_run(MAKEDIRS, "2");
    fs::write(
        work.join("rounds-0.jsonl"),
        "{\"round\":0,\"record\":[]}\nnot json\n",
    )
    .unwrap();
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "racefree: error: rounds-0.jsonl: round line 2: expected ident",
        ));
}

/// Every arm that races across hosts, with options that keep a round short.
const SHARED_ARMS: &[&[&str]] = &[
    MAKEDIRS,
    &["counter", "--takes", "10"],
    &["write", "--versions", "10", "--reads", "20"],
    &["lock", "--increments", "50"],
];

#[test]
fn a_report_s_own_failures_fail_the_merge() {
    // What an instance says went wrong is believed, whatever the tree shows.
    for arm in SHARED_ARMS {
        let failures: &[&str] = match arm[0] {
            "counter" => &["duplicates", "missing"],
            "write" => &["torn", "empty"],
            "lock" => &["lost"],
            _ => &[],
        };
        for field in ["bad_rounds"].iter().chain(failures) {
            let env = TestEnv::new();
            let work = env.multi_host_run(arm, "1");
            edit_json(&work.join("report-1.json"), |v| {
                v["racefree"][field] = 1.into();
            });
            report_fails_with(&work, &[&format!("instance 1 reports {field} 1")]);
        }
    }
}

/// Rewrites line `n` (0-based) of a rounds file.
fn edit_round_line(path: &Path, n: usize, edit: impl FnOnce(&mut serde_json::Value)) {
    let text = fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut v: serde_json::Value = serde_json::from_str(&lines[n]).unwrap();
    edit(&mut v);
    lines[n] = v.to_string();
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_lock_round_lowered_together_with_its_record_is_refused() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["lock", "--increments", "50"], "2");
    // 2 instances x 3 racers x 50 increments: 300 in each round's counter.
    fs::write(work.join("round-1/counter"), "299\n").unwrap();
    edit_round_line(&work.join("rounds-0.jsonl"), 1, |v| {
        v["record"] = 149.into();
    });
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "racefree: error: rounds-0.jsonl: round 1 records 149 calls that succeeded, but each round of 3 racers makes 150 and its report says none failed\n",
        );
}

#[test]
fn a_run_that_did_no_work_is_refused() {
    // Every counter and every record set to 0: the arithmetic of the header refuses it.
    let env = TestEnv::new();
    let work = env.multi_host_run(&["lock", "--increments", "50"], "2");
    for n in 0..2 {
        fs::write(work.join(format!("round-{n}/counter")), "0\n").unwrap();
        for id in 0..2 {
            edit_round_line(&work.join(format!("rounds-{id}.jsonl")), n, |v| {
                v["record"] = 0.into();
            });
        }
    }
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "round 0 records 0 calls that succeeded",
        ));
    // And with the header's calls set to 0 as well: no call of 2 rounds x 3 racers
    // x 50 increments was made.
    for id in 0..2 {
        edit_json(&work.join(format!("report-{id}.json")), |v| {
            v["racefree"]["calls"] = 0.into();
        });
    }
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(
            "racefree: error: report-0.json: 0 calls in 2 rounds of 3 racers; each round makes 150\n",
        );
}

#[test]
fn a_writer_that_never_marked_itself_done_fails() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["write", "--versions", "10", "--reads", "20"], "1");
    fs::remove_file(work.join("round-0/done-1-0")).unwrap();
    report_fails_with(
        &work,
        &["round 0: writer 0 of instance 1 left no 'round-0/done-1-0'"],
    );
}

#[test]
fn unknown_fields_are_refused_wherever_they_are() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["counter", "--takes", "10"], "1");
    let original = fs::read(work.join("report-0.json")).unwrap();
    for (edit, field) in [
        (
            &(|v: &mut serde_json::Value| v["verified"] = true.into()) as &dyn Fn(&mut _),
            "verified",
        ),
        (
            &|v: &mut serde_json::Value| v["racefree"]["ok"] = 1.into(),
            "racefree.ok",
        ),
        (
            &|v: &mut serde_json::Value| v["control"]["skip"] = 1.into(),
            "control.skip",
        ),
    ] {
        fs::write(work.join("report-0.json"), &original).unwrap();
        edit_json(&work.join("report-0.json"), edit);
        racefree()
            .args(["stress", "report"])
            .arg(&work)
            .assert()
            .code(1)
            .stderr(format!(
                "racefree: error: report-0.json: unknown field '{field}'\n"
            ));
    }
    fs::write(work.join("report-0.json"), &original).unwrap();
    edit_round_line(&work.join("rounds-1.jsonl"), 0, |v| {
        v["checked"] = true.into();
    });
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "racefree: error: rounds-1.jsonl: round line 1: unknown field `checked`",
        ));
}

#[test]
fn calls_that_do_not_add_up_are_refused() {
    let env = TestEnv::new();
    let work = env.multi_host_run(MAKEDIRS, "2");
    // 2 rounds x 3 racers x 729 leaves.
    edit_json(&work.join("report-1.json"), |v| {
        v["racefree"]["calls"] = (2 * 3 * 729 + 1).into();
    });
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(
            "racefree: error: report-1.json: 4375 calls in 2 rounds of 3 racers; each round makes 2187\n",
        );
}

#[test]
fn a_report_s_own_verdict_is_believed_and_its_control_must_match_it() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["counter", "--takes", "10"], "1");
    let original = fs::read(work.join("report-0.json")).unwrap();
    edit_json(&work.join("report-0.json"), |v| {
        v["verdict"] = "fail".into()
    });
    report_fails_with(&work, &["instance 0 reports verdict fail"]);
    fs::write(work.join("report-0.json"), &original).unwrap();
    edit_json(&work.join("report-0.json"), |v| {
        v["control_ran"] = false.into()
    });
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(
            "racefree: error: report-0.json: control_ran is false, but it has a control tally\n",
        );
    // Failed calls the rounds do not show are refused too: they must add up.
    fs::write(work.join("report-0.json"), &original).unwrap();
    edit_json(&work.join("report-0.json"), |v| {
        v["racefree"]["failed_calls"] = 1.into();
    });
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr("racefree: error: rounds-0.jsonl: its rounds record 30 calls that succeeded; its report says 29\n");
}

#[test]
fn an_instance_whose_control_never_failed_makes_the_merge_inconclusive() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["counter", "--takes", "10"], "2");
    report_passes(&work);
    edit_json(&work.join("report-1.json"), |v| {
        let c = &mut v["control"];
        for f in ["failed_calls", "bad_rounds", "duplicates", "missing"] {
            c[f] = 0.into();
        }
        c["problems"] = serde_json::json!([]);
        v["verdict"] = "inconclusive".into();
    });
    let out = racefree()
        .args(["stress", "report", "--keep"])
        .arg(&work)
        .assert()
        .code(4);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.ends_with(
            "verdict: INCONCLUSIVE: stress counter's control did not fail on instance 1: this run could not have seen a race\n"
        ),
        "{stdout}"
    );
    let out = racefree()
        .args(["stress", "report", "--json"])
        .arg(&work)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(merged["verdict"], "inconclusive");
    assert_eq!(merged["control_ran"], true);
    assert_eq!(merged["control_never_failed"], serde_json::json!([1]));
}

#[test]
fn a_report_of_the_previous_format_is_read_and_a_newer_one_refused() {
    let env = TestEnv::new();
    let work = env.multi_host_run(&["counter", "--takes", "10"], "1");
    // What racefree wrote before reports had a format: no control across hosts,
    // no verdict of their own.
    for id in 0..2 {
        edit_json(&work.join(format!("report-{id}.json")), |v| {
            let o = v.as_object_mut().unwrap();
            for f in ["format", "verdict", "control_ran", "work_dir_kept"] {
                o.remove(f);
            }
            o.insert("control".into(), serde_json::Value::Null);
        });
    }
    racefree()
        .args(["stress", "report", "--keep"])
        .arg(&work)
        .assert()
        .success()
        .stdout(predicate::str::ends_with("verdict: PASS, no control ran\n"));
    edit_json(&work.join("report-1.json"), |v| v["format"] = 3.into());
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr("racefree: error: report-1.json: format 3, newer than this racefree reads (1 and 2): merge with the racefree that wrote it\n");
}

#[test]
fn the_report_removes_each_round_it_verified_and_keep_keeps_them() {
    let env = TestEnv::new();
    let work = env.multi_host_run(MAKEDIRS, "3");
    racefree()
        .args(["stress", "report", "--keep"])
        .arg(&work)
        .assert()
        .success();
    assert!(work.join("round-2").is_dir());
    // One bad round is kept for inspection; the others go once verified.
    fs::remove_dir(work.join("round-1/l0n0/l1n0/l2n0/l3n0/l4n0/l5n0")).unwrap();
    let out = racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.contains("round 1: the tree has 1092 directories, expected 1093")
            && stdout.contains("  kept for inspection: round-1\n")
            && stdout.ends_with("verdict: FAIL\n"),
        "{stdout}"
    );
    let mut left: Vec<String> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["report-0.json", "report-1.json", "round-1", "verdict.json"]
    );
    // What is gone cannot be judged again: a second report says so.
    racefree()
        .args(["stress", "report"])
        .arg(&work)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already judged by stress report"));
}
