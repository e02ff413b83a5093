//! `racefree stress counter`: racers take numbers from one counter file at once.
//!
//! Per round, a fresh counter: every racer takes `--takes` numbers with
//! `racefree::counter::add`. The verdict is exact: the numbers taken are all
//! distinct and together exactly 1..=total, and the file holds total. The control
//! arm is a sequence number's read-modify-write done without a lock: every store is
//! atomic (a temporary file renamed over the counter, so no reader ever sees a torn
//! number), but two racers read the same value and both store its successor:
//! duplicates.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use super::kit::{counter_on_disk, make_round_dir, read_value, store_atomically};
use crate::stress::args::{FsArgs, RaceArgs};
use crate::stress::race::{Arm, Contribution, Race, RoundCtx, Subject, Tally, keep_failure};

pub const DEFAULT_TAKES: u32 = 20;
pub const MAX_TAKES: u32 = 1000;

/// The name of each round's counter file.
pub const FILE: &str = "counter";

/// `stress counter`'s own options, echoed in its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ClapArgs)]
pub struct Params {
    /// Numbers each racer takes per round
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TAKES, value_parser = clap::value_parser!(u32).range(1..=MAX_TAKES as i64))]
    pub takes: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Round {
    pub arm: Arm,
    pub file: PathBuf,
    pub takes: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub values: Vec<i64>,
    pub failed: u64,
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Numbers taken more than once (each extra taker counts one).
    pub duplicates: u64,
    /// Numbers of 1..=total that nobody got.
    pub missing: u64,
}

pub struct Counter {
    params: Params,
}

/// The control: read, add one, store atomically, with no lock around the three.
pub fn control_take(file: &Path) -> anyhow::Result<i64> {
    let next = read_value(file)? + 1;
    store_atomically(file, next)?;
    Ok(next)
}

/// Judges the numbers taken from one counter: distinct, exactly 1..=total, and the
/// file (read without following a symlink) holds total.
fn judge_values(
    mut values: Vec<i64>,
    total: u64,
    on_disk: anyhow::Result<i64>,
    counts: &mut Counts,
) -> Vec<String> {
    let mut bad = Vec::new();
    values.sort_unstable();
    let before = values.len();
    let mut twice = Vec::new();
    values.dedup_by(|a, b| {
        let same = a == b;
        if same && twice.len() < 3 {
            twice.push(*a);
        }
        same
    });
    let duplicates = (before - values.len()) as u64;
    let out_of_range = values
        .iter()
        .filter(|&&v| v < 1 || v as u64 > total)
        .count() as u64;
    let missing = total - (values.len() as u64 - out_of_range).min(total);
    counts.duplicates += duplicates;
    counts.missing += missing;
    if duplicates > 0 {
        bad.push(format!(
            "{duplicates} numbers handed out twice, such as {twice:?}"
        ));
    }
    if missing > 0 {
        bad.push(format!("{missing} numbers of 1..={total} nobody got"));
    }
    if out_of_range > 0 {
        bad.push(format!("{out_of_range} numbers outside 1..={total}"));
    }
    match on_disk {
        Ok(v) if v as u64 == total && v >= 0 => {}
        Ok(v) => bad.push(format!("the counter holds {v}, expected {total}")),
        Err(e) => bad.push(format!("{e:#}")),
    }
    bad
}

impl Race for Counter {
    const NAME: &'static str = "counter";
    const SHARED: bool = true;
    type Params = Params;
    type Round = Round;
    type Outcome = Outcome;
    type Churn = ();
    type Counts = Counts;
    /// Every number this host's racers took.
    type Record = Vec<i64>;

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        if !(1..=MAX_TAKES).contains(&p.takes) {
            bail!("takes {} is out of range 1..={MAX_TAKES}", p.takes);
        }
        Ok(())
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        make_round_dir(ctx)?;
        Ok(Round {
            arm: ctx.arm,
            file: ctx.dir.join(FILE),
            takes: self.params.takes,
        })
    }

    fn race(round: &Round, _racer: u32) -> Outcome {
        let mut out = Outcome::default();
        for _ in 0..round.takes {
            let taken = match round.arm {
                Arm::Racefree => {
                    crate::counter::add(&round.file, &crate::counter::Options::default())
                }
                Arm::Control => control_take(&round.file),
            };
            match taken {
                Ok(v) => out.values.push(v),
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
            tally.racer(ctx.round, u64::from(round.takes), o.failed, &o.failures);
        }
        if ctx.shared {
            // Other hosts take numbers from the same counter: `stress report` judges.
            return Ok(());
        }
        let total = u64::from(round.takes) * outcomes.len() as u64;
        let values = Self::record(ctx, round, outcomes);
        let rel = ctx.arm.in_round(ctx.round, FILE);
        let problems = judge_values(
            values,
            total,
            counter_on_disk(&ctx.work, &rel),
            &mut tally.counts,
        );
        tally.bad_round(ctx.round, problems);
        Ok(())
    }

    fn failures(c: &Counts) -> Vec<(&'static str, u64)> {
        vec![("duplicates", c.duplicates), ("missing", c.missing)]
    }

    /// Every racer takes `--takes` numbers.
    fn round_calls(p: &Params, racers: u32) -> RangeInclusive<u64> {
        let calls = u64::from(racers) * u64::from(p.takes);
        calls..=calls
    }

    /// The round's directory, its counter and the counter's lock file.
    fn round_entries(_p: &Params, _racers: u32) -> u64 {
        3
    }

    fn record(_ctx: &RoundCtx, _round: &Round, outcomes: &[Outcome]) -> Vec<i64> {
        outcomes
            .iter()
            .flat_map(|o| o.values.iter().copied())
            .collect()
    }

    /// Each number taken is a take that succeeded.
    fn record_calls(values: &Vec<i64>) -> Option<u64> {
        Some(values.len() as u64)
    }

    fn merge_round(
        _params: &Params,
        work: &Path,
        n: u64,
        records: &[Contribution<Vec<i64>>],
    ) -> anyhow::Result<Vec<String>> {
        // Every take that succeeded recorded its number; the counter moved once per
        // success, on whichever host.
        let values: Vec<i64> = records.iter().flat_map(|c| &c.record).copied().collect();
        let total = values.len() as u64;
        let rel = Arm::Racefree.in_round(n, FILE);
        Ok(judge_values(
            values,
            total,
            counter_on_disk(work, &rel),
            &mut Counts::default(),
        ))
    }

    fn columns() -> &'static [&'static str] {
        &["twice", "missing"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        vec![c.duplicates.to_string(), c.missing.to_string()]
    }

    fn describe(p: &Params) -> String {
        format!(
            "each round: a fresh counter; every racer takes {} numbers; they must be exactly 1..=total",
            p.takes
        )
    }
}

impl Subject for Counter {
    const ABOUT: &'static str =
        "Racers take numbers from one counter file; all distinct, exactly 1..total";
    type Args = FsArgs<Params>;

    fn new(args: &Self::Args) -> anyhow::Result<Counter> {
        Ok(Counter {
            params: args.own.clone(),
        })
    }

    fn main_job(race: RaceArgs) -> Option<Self::Args> {
        let own = Params {
            takes: DEFAULT_TAKES,
        };
        Some(FsArgs::on_temp_dir(own, race))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_sees_duplicates_gaps_and_a_wrong_file() {
        let mut c = Counts::default();
        assert!(judge_values(vec![3, 1, 2], 3, Ok(3), &mut c).is_empty());
        let bad = judge_values(vec![1, 2, 2], 3, Ok(2), &mut c);
        assert_eq!(
            bad,
            [
                "1 numbers handed out twice, such as [2]",
                "1 numbers of 1..=3 nobody got",
                "the counter holds 2, expected 3"
            ]
        );
        assert_eq!((c.duplicates, c.missing), (1, 1));
        assert_eq!(
            judge_values(vec![1, 2, 9], 3, Ok(3), &mut c),
            ["1 numbers of 1..=3 nobody got", "1 numbers outside 1..=3"]
        );
    }

    #[test]
    fn the_control_loses_a_number_when_two_read_before_either_stores() {
        // Forced, not hoped for: two takers both read 0 before either stores.
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("c");
        let (a, b) = (read_value(&f).unwrap() + 1, read_value(&f).unwrap() + 1);
        store_atomically(&f, a).unwrap();
        store_atomically(&f, b).unwrap();
        assert_eq!((a, b), (1, 1));
        // racefree's counter under the same two calls hands out 1 and 2.
        let g = t.path().join("g");
        let o = crate::counter::Options::default();
        assert_eq!(crate::counter::add(&g, &o).unwrap(), 1);
        assert_eq!(crate::counter::add(&g, &o).unwrap(), 2);
    }
}
