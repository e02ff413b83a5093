//! `racefree stress report` on a multi-host run's tree that someone tampered with:
//! every such tree is a FAIL or an error naming what is wrong, never an abort, a
//! pass on nothing, or a walk through a symlink.

use std::fs;
use std::path::Path;

use predicates::prelude::*;

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
        .args(["stress", "report"])
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
        edit_json(&work.join(format!("report-{id}.json")), |v| {
            v["racefree"]["rounds"] = 0.into();
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
