//! `racefree stress lock`: racers increment one shared counter file, each
//! read-modify-write under `racefree lock`.
//!
//! Per round, a fresh counter and lock file: every racer does `--increments`
//! read-modify-writes. With threads, each takes the lock with
//! `racefree::lock::acquire`; with `--processes`, each increment really runs
//! `racefree lock LOCKFILE -- racefree stress rmw COUNTER`, the I/O inside the lock.
//! The verdict is exact: the counter ends at racers x increments. The control arm
//! does its I/O after the lock was released: the decision is taken under the lock
//! (the value read), the write lands after the unlock, and updates are lost.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, FromArgMatches};
use serde::{Deserialize, Serialize};

use super::kit::{counter_on_disk, make_round_dir, read_value, store_atomically};
use crate::stress::args::{FsArgs, RaceArgs};
use crate::stress::race::{
    Arm, Contribution, Helper, Race, RoundCtx, Subject, Tally, keep_failure,
};

pub const DEFAULT_INCREMENTS: u32 = 10;
pub const MAX_INCREMENTS: u32 = 1000;
pub const COUNTER: &str = "counter";
pub const LOCKFILE: &str = "lock";

/// `racefree stress rmw FILE`: the COMMAND racers run under `racefree lock`: read
/// the number in FILE (absent: 0) and write it back plus one, in place; with
/// `--read`, only print it.
#[derive(Debug, ClapArgs)]
pub struct RmwArgs {
    pub file: PathBuf,
    #[arg(long)]
    pub read: bool,
}

pub fn rmw(args: &RmwArgs) -> anyhow::Result<()> {
    let value = read_value(&args.file)?;
    if args.read {
        println!("{value}");
        return Ok(());
    }
    write_in_place(&args.file, value + 1)
}

/// Under the lock, an in-place write is safe: nobody else reads or writes.
fn write_in_place(file: &Path, value: i64) -> anyhow::Result<()> {
    std::fs::write(file, format!("{value}\n"))
        .with_context(|| format!("writing '{}'", file.display()))
}

/// `stress lock`'s own options, echoed in its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ClapArgs)]
pub struct Params {
    /// Increments each racer makes per round
    #[arg(long, value_name = "N", default_value_t = DEFAULT_INCREMENTS, value_parser = clap::value_parser!(u32).range(1..=MAX_INCREMENTS as i64))]
    pub increments: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Round {
    pub arm: Arm,
    pub counter: PathBuf,
    pub lockfile: PathBuf,
    pub increments: u32,
    /// Each increment runs `racefree lock` as a process.
    pub processes: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub done: u64,
    pub failed: u64,
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Increments made that the counter does not show.
    pub lost: u64,
}

pub struct Lock {
    params: Params,
}

/// `racefree lock LOCKFILE -- racefree stress rmw COUNTER [--read]`.
fn locked_rmw(round: &Round, read: bool) -> anyhow::Result<std::process::Output> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut cmd = Command::new(&exe);
    cmd.arg("lock")
        .arg(&round.lockfile)
        .arg("--")
        .arg(&exe)
        .args(["stress", "rmw"])
        .arg(&round.counter);
    if read {
        cmd.arg("--read");
    }
    let out = crate::child::die_with_parent(&mut cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .context("running racefree lock")?;
    if !out.status.success() {
        bail!(
            "racefree lock exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn increment(round: &Round) -> anyhow::Result<()> {
    let opts = crate::lock::Options::default();
    match (round.arm, round.processes) {
        (Arm::Racefree, false) => {
            let _held = crate::lock::acquire(&round.lockfile, &opts)?;
            write_in_place(&round.counter, read_value(&round.counter)? + 1)
        }
        (Arm::Racefree, true) => locked_rmw(round, false).map(drop),
        (Arm::Control, false) => {
            let held = crate::lock::acquire(&round.lockfile, &opts)?;
            let value = read_value(&round.counter)?;
            drop(held);
            // The I/O the locked decision called for, done after the lock was released.
            store_atomically(&round.counter, value + 1)
        }
        (Arm::Control, true) => {
            let out = locked_rmw(round, true)?;
            let value: i64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .context("reading the value racefree lock's command printed")?;
            store_atomically(&round.counter, value + 1)
        }
    }
}

fn judge_value(work: &Path, rel: &Path, expected: u64, counts: &mut Counts) -> Vec<String> {
    match counter_on_disk(work, rel) {
        Ok(v) if v >= 0 && v as u64 == expected => Vec::new(),
        Ok(v) => {
            counts.lost += expected.saturating_sub(v.max(0) as u64);
            vec![format!(
                "the counter ends at {v}, expected {expected}: {} updates lost",
                expected as i64 - v
            )]
        }
        Err(e) => vec![format!("{e:#}")],
    }
}

impl Race for Lock {
    const NAME: &'static str = "lock";
    const SHARED: bool = true;
    type Params = Params;
    type Round = Round;
    type Outcome = Outcome;
    type Churn = ();
    type Counts = Counts;
    /// Increments this host's racers completed.
    type Record = u64;

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        if !(1..=MAX_INCREMENTS).contains(&p.increments) {
            bail!(
                "increments {} is out of range 1..={MAX_INCREMENTS}",
                p.increments
            );
        }
        Ok(())
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        make_round_dir(ctx)?;
        Ok(Round {
            arm: ctx.arm,
            counter: ctx.dir.join(COUNTER),
            lockfile: ctx.dir.join(LOCKFILE),
            increments: self.params.increments,
            processes: ctx.processes,
        })
    }

    fn race(round: &Round, _racer: u32) -> Outcome {
        let mut out = Outcome::default();
        for _ in 0..round.increments {
            match increment(round) {
                Ok(()) => out.done += 1,
                Err(e) => {
                    out.failed += 1;
                    keep_failure(&mut out.failures, || format!("{e:#}"));
                }
            }
        }
        out
    }

    fn judge(
        &mut self,
        ctx: &RoundCtx,
        round: &Round,
        outcomes: &[Outcome],
        _churn: Vec<()>,
        tally: &mut Tally<Counts>,
    ) -> anyhow::Result<()> {
        for o in outcomes {
            tally.racer(
                ctx.round,
                u64::from(round.increments),
                o.failed,
                &o.failures,
            );
        }
        if !ctx.shared {
            let rel = ctx.arm.in_round(ctx.round, COUNTER);
            let done = Self::record(ctx, round, outcomes);
            let problems = judge_value(&ctx.work, &rel, done, &mut tally.counts);
            tally.bad_round(ctx.round, problems);
        }
        Ok(())
    }

    fn failures(c: &Counts) -> Vec<(&'static str, u64)> {
        vec![("lost", c.lost)]
    }

    /// Every racer makes `--increments` read-modify-writes.
    fn round_calls(p: &Params, racers: u32) -> RangeInclusive<u64> {
        let calls = u64::from(racers) * u64::from(p.increments);
        calls..=calls
    }

    /// The round's directory, its counter and its lock file.
    fn round_entries(_p: &Params, _racers: u32) -> u64 {
        3
    }

    fn record(_ctx: &RoundCtx, _round: &Round, outcomes: &[Outcome]) -> u64 {
        outcomes.iter().map(|o| o.done).sum()
    }

    /// The record is the increments that succeeded.
    fn record_calls(done: &u64) -> Option<u64> {
        Some(*done)
    }

    fn merge_round(
        _params: &Params,
        work: &Path,
        n: u64,
        records: &[Contribution<u64>],
    ) -> anyhow::Result<Vec<String>> {
        let rel = Arm::Racefree.in_round(n, COUNTER);
        let expected = records
            .iter()
            .fold(0u64, |a, c| a.saturating_add(c.record));
        Ok(judge_value(work, &rel, expected, &mut Counts::default()))
    }

    fn columns() -> &'static [&'static str] {
        &["lost"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        vec![c.lost.to_string()]
    }

    fn describe(p: &Params) -> String {
        format!(
            "each round: a fresh counter; every racer makes {} read-modify-writes under the lock; it must end at racers x {}",
            p.increments, p.increments
        )
    }
}

impl Subject for Lock {
    const ABOUT: &'static str =
        "Racers increment one counter, each read-modify-write under racefree lock";
    const HELPER: Option<Helper> = Some(Helper {
        name: "rmw",
        about: "One locked read-modify-write (the COMMAND of stress lock; not for direct use)",
        args: RmwArgs::augment_args,
        run: |matches| rmw(&RmwArgs::from_arg_matches(matches)?),
    });
    type Args = FsArgs<Params>;

    fn new(args: &Self::Args) -> anyhow::Result<Lock> {
        Ok(Lock {
            params: args.own.clone(),
        })
    }

    fn main_job(race: RaceArgs) -> Option<Self::Args> {
        let own = Params {
            increments: DEFAULT_INCREMENTS,
        };
        Some(FsArgs::on_temp_dir(own, race))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_loses_an_update_when_a_write_lands_after_the_unlock() {
        // Forced: A decides under the lock and releases; B takes the lock, reads the
        // same value, and writes; then A's late write lands. One update is lost.
        let t = tempfile::tempdir().unwrap();
        let (counter, lockfile) = (t.path().join("c"), t.path().join("l"));
        let opts = crate::lock::Options::default();
        let held = crate::lock::acquire(&lockfile, &opts).unwrap();
        let a = read_value(&counter).unwrap();
        drop(held);
        let held = crate::lock::acquire(&lockfile, &opts).unwrap();
        write_in_place(&counter, read_value(&counter).unwrap() + 1).unwrap();
        drop(held);
        store_atomically(&counter, a + 1).unwrap();
        assert_eq!(
            read_value(&counter).unwrap(),
            1,
            "two increments, one survives"
        );
    }
}
