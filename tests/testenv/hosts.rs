//! Local processes standing in for hosts: `racefree stress` instances meeting at a
//! barrier file in a [`TestEnv`], and the verdict `racefree stress report` gives on
//! the tree they leave.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::assert::Assert;
use predicates::prelude::*;

use super::{TestEnv, racefree, racefree_path};

impl TestEnv {
    /// Two instances of `stress ARM` meeting at a barrier file in this tree; returns
    /// the shared work directory.
    ///
    /// `stress report` rightly fails a run whose hosts did not overlap, so each caller
    /// sizes its run to last 0.1 s or more in a debug build: an order of magnitude
    /// above how late a loaded machine wakes one instance at the barrier's start time.
    pub fn multi_host_run(&self, arm: &[&str], rounds: &str) -> PathBuf {
        self.hosts_run(2, &[arm, &["--rounds", rounds, "--racers", "3"]].concat())
    }

    /// `instances` local processes standing in for hosts, each running `stress ARGS`
    /// with its launcher's rank (SLURM_PROCID), meeting at a barrier file in this
    /// tree; each must exit 0. Returns the shared work directory.
    pub fn hosts_run(&self, instances: u32, args: &[&str]) -> PathBuf {
        let dir = self.root();
        let barrier = dir.join("go");
        let hosts: Vec<_> = (0..instances)
            .map(|rank| {
                Command::new(racefree_path())
                    .arg("stress")
                    .args(args)
                    .args(["--expect", &instances.to_string(), "--dir"])
                    .arg(dir)
                    .arg("--barrier-file")
                    .arg(&barrier)
                    .env("SLURM_PROCID", rank.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for h in hosts {
            let out = h.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir.join("racefree-stress-go")
    }
}

/// `stress report --keep DIR` says PASS (exit 0) and its stdout ends the way a pass
/// does. It keeps the trees, so a test can tamper with them and judge again.
pub fn report_passes(dir: &Path) -> Assert {
    racefree()
        .args(["stress", "report", "--keep"])
        .arg(dir)
        .assert()
        .success()
        .stdout(predicate::str::ends_with("verdict: PASS\n"))
}

/// `stress report --keep DIR` says FAIL (exit 1), naming every one of `problems` in
/// its stdout, which ends the way a failure does.
#[track_caller]
pub fn report_fails_with(dir: &Path, problems: &[&str]) {
    let out = racefree()
        .args(["stress", "report", "--keep"])
        .arg(dir)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout);
    for p in problems {
        assert!(stdout.contains(p), "no {p:?} in:\n{stdout}");
    }
    assert!(stdout.ends_with("verdict: FAIL\n"), "{stdout}");
}
