//! `racefree stress makedirs`: many racers build the same deep trees at once, and
//! every round is verified exactly.
//!
//! Per round, in a fresh subtree: every racer makes every leaf path of a tree of
//! `--fanout` and `--depth`, in its own shuffled order. Then: every call succeeded;
//! the tree holds exactly the expected directories; and the directories racers report
//! as created by them add up to the tree, each created once, by exactly one racer.
//! With `--churn`, removers rmdir directories while the racers build, and the check
//! becomes: no call failed, and created minus removed equals what is left.
//!
//! A removal can cost a racer's call one retry, and makedirs gives up after a
//! bounded number of attempts, rightly, when the tree never stops changing. So the
//! removers of a round remove at most as many directories as the tree holds, and
//! the racers allow one attempt more than that: a call that still gives up made a
//! retry no removal caused, which is a bug, whatever the machine's load.
//! The control arm runs the naive check-then-create pattern under the same load.

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use super::kit::shuffle;
use crate::makedirs::{Options, make_dirs};
use crate::stress::args::{FsArgs, RaceArgs};
use crate::stress::race::{Arm, Contribution, Race, RoundCtx, Subject, Tally, keep_failure};
use crate::stress::tree;

/// `stress makedirs`'s own options.
#[derive(Debug, Clone, Copy, ClapArgs)]
pub struct MakedirsOptions {
    /// Levels below each round's directory
    #[arg(long, default_value_t = DEFAULT_DEPTH, value_parser = clap::value_parser!(u32).range(1..=MAX_DEPTH as i64))]
    pub depth: u32,

    /// Subdirectories per level (fanout^depth leaf paths per round, at most 100000)
    #[arg(long, default_value_t = DEFAULT_FANOUT, value_parser = clap::value_parser!(u32).range(1..=MAX_FANOUT as i64))]
    pub fanout: u32,

    /// Also run removers that rmdir directories while the racers create them (as
    /// many removals a round as the tree has directories); makedirs' retries must
    /// hold, and the report counts them
    #[arg(long)]
    pub churn: bool,
}

/// Levels of each round's tree.
pub const DEFAULT_DEPTH: u32 = 4;
/// Subdirectories per level.
pub const DEFAULT_FANOUT: u32 = 3;
pub const MAX_DEPTH: u32 = 32;
pub const MAX_FANOUT: u32 = 16;
/// Leaf paths per round at most: every racer holds them all, shuffled.
pub const MAX_LEAVES: u64 = 100_000;

/// The run's shape, echoed in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub depth: u32,
    pub fanout: u32,
    pub dirs_per_round: u64,
    pub churn: bool,
}

/// The directories a tree of this shape holds, or an error when the shape is out of
/// the command line's ranges (from a tampered report, say) or too big to hold.
pub fn tree_size(depth: u32, fanout: u32) -> anyhow::Result<u64> {
    if !(1..=MAX_DEPTH).contains(&depth) || !(1..=MAX_FANOUT).contains(&fanout) {
        bail!(
            "depth {depth}, fanout {fanout}: depth must be 1..={MAX_DEPTH}, fanout 1..={MAX_FANOUT}"
        );
    }
    let (mut level, mut total) = (1u64, 1u64);
    for _ in 0..depth {
        level = level.saturating_mul(u64::from(fanout));
        total = total.saturating_add(level);
    }
    if level > MAX_LEAVES {
        bail!(
            "depth {depth}, fanout {fanout}: {fanout}^{depth} leaf paths per round; at most {MAX_LEAVES}"
        );
    }
    Ok(total)
}

/// One round, as every racer gets it.
#[derive(Serialize, Deserialize)]
pub struct Round {
    pub arm: Arm,
    /// The round's directory (absolute) and the work directory it lies in.
    pub dir: PathBuf,
    pub work: PathBuf,
    pub depth: u32,
    pub fanout: u32,
    pub seed: u64,
    /// Removers running beside the racers (racefree's arm, with `--churn`).
    pub churners: usize,
    /// How many directories each remover removes at most in this round.
    pub removals_each: u64,
}

impl Round {
    /// The attempts a racer's call allows: one more than the removers may remove
    /// in the round, since every retry needs a removal to cause it.
    fn attempts(&self) -> u32 {
        if self.churners == 0 {
            return Options::default().attempts;
        }
        let removals = self.removals_each.saturating_mul(self.churners as u64);
        u32::try_from(removals.saturating_add(1)).unwrap_or(u32::MAX)
    }
}

/// What one racer did in one round.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub calls: u64,
    pub failed: u64,
    /// The first few failure messages, for the report.
    pub failures: Vec<String>,
    pub created: Vec<PathBuf>,
    pub retries: u64,
}

/// Figures per arm.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    pub retries: u64,
    pub created: u64,
    pub removed_by_churn: u64,
}

pub struct Makedirs {
    params: Params,
}

impl Race for Makedirs {
    const NAME: &'static str = "makedirs";
    const SHARED: bool = true;
    type Params = Params;
    type Round = Round;
    type Outcome = Outcome;
    type Churn = u64;
    type Counts = Counts;
    /// Every directory a racer on this host created, relative to the work directory.
    type Record = Vec<PathBuf>;

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        let size = tree_size(p.depth, p.fanout)?;
        if size != p.dirs_per_round {
            bail!(
                "dirs_per_round {} does not match depth {}, fanout {} ({size})",
                p.dirs_per_round,
                p.depth,
                p.fanout
            );
        }
        Ok(())
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        // Removers scale with the racers they work against: a quarter of them.
        let churners = if self.params.churn && ctx.arm == Arm::Racefree {
            (ctx.racers as usize / 4).max(1)
        } else {
            0
        };
        Ok(Round {
            arm: ctx.arm,
            dir: ctx.dir.clone(),
            work: ctx.work.clone(),
            depth: self.params.depth,
            fanout: self.params.fanout,
            seed: ctx.round * 1_000,
            churners,
            // Together, as many removals as the tree has directories below the
            // round's own.
            removals_each: ((self.params.dirs_per_round - 1) / churners.max(1) as u64).max(1),
        })
    }

    fn race(round: &Round, racer: u32) -> Outcome {
        let order = shuffle(
            &leaf_paths(&round.dir, round.depth, round.fanout),
            round.seed + u64::from(racer),
        );
        race(round.arm, &order, round.attempts())
    }

    fn churners(&self, round: &Round) -> usize {
        round.churners
    }

    fn churn(round: &Round, index: usize, stop: &AtomicBool) -> Option<u64> {
        let expected: Vec<PathBuf> = expected_dirs(&round.dir, round.depth, round.fanout)
            .into_iter()
            .collect();
        Some(churn_loop(
            &expected,
            index as u64 + round.seed,
            round.removals_each,
            stop,
        ))
    }

    fn judge(
        &mut self,
        ctx: &RoundCtx,
        round: &Round,
        outcomes: &[Outcome],
        churn: Vec<u64>,
        tally: &mut Tally<Counts>,
    ) -> anyhow::Result<()> {
        let removed: u64 = churn.iter().sum();
        tally.counts.removed_by_churn += removed;
        for r in outcomes {
            tally.racer(ctx.round, r.calls, r.failed, &r.failures);
            tally.counts.retries += r.retries;
            tally.counts.created += r.created.len() as u64;
        }
        if ctx.shared {
            // Other hosts build the same round: `stress report` judges the tree.
            return Ok(());
        }
        let created = Self::record(ctx, round, outcomes);
        let rel = Path::new(ctx.dir.file_name().expect("round-N"));
        let problems = judge_tree(&ctx.work, rel, &self.params, &created, removed)?;
        tally.bad_round(ctx.round, problems);
        Ok(())
    }

    /// Every racer makes every leaf path once.
    fn round_calls(p: &Params, racers: u32) -> RangeInclusive<u64> {
        let calls = u64::from(racers).saturating_mul(u64::from(p.fanout).saturating_pow(p.depth));
        calls..=calls
    }

    fn round_entries(p: &Params, _racers: u32) -> u64 {
        p.dirs_per_round
    }

    fn record(_ctx: &RoundCtx, round: &Round, outcomes: &[Outcome]) -> Vec<PathBuf> {
        outcomes
            .iter()
            .flat_map(|r| &r.created)
            .map(|p| p.strip_prefix(&round.work).unwrap_or(p).to_path_buf())
            .collect()
    }

    fn merge_round(
        params: &Params,
        work: &Path,
        n: u64,
        records: &[Contribution<Vec<PathBuf>>],
    ) -> anyhow::Result<Vec<String>> {
        let created: Vec<PathBuf> = records.iter().flat_map(|c| &c.record).cloned().collect();
        judge_tree(
            work,
            Path::new(&Arm::Racefree.round_dir(n)),
            params,
            &created,
            0,
        )
    }

    fn columns() -> &'static [&'static str] {
        &["retries", "created", "removed"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        vec![
            c.retries.to_string(),
            c.created.to_string(),
            c.removed_by_churn.to_string(),
        ]
    }

    fn describe(p: &Params) -> String {
        format!(
            "each round: depth {}, fanout {}: {} directories; churn {}",
            p.depth,
            p.fanout,
            p.dirs_per_round,
            if p.churn { "on" } else { "off" }
        )
    }
}

impl Subject for Makedirs {
    const EXAMPLES: &'static [crate::help::Example] = &[
        crate::help::Example {
            what: "your own filesystem (NFS, a cluster mount), racers as processes, removers beside them",
            lines: "racefree stress makedirs --dir /mnt/nfs/scratch --processes --churn --duration 30",
        },
        crate::help::Example {
            what: "across hosts: every instance meets at a barrier on the shared tree, then one verdict",
            lines: "srun -N 8 racefree stress makedirs --dir /mnt/nfs/scratch \\\n    --barrier-file /mnt/nfs/scratch/go-$SLURM_JOB_ID --expect 8 --duration 30\nracefree stress report /mnt/nfs/scratch/racefree-stress-go-$SLURM_JOB_ID",
        },
    ];
    const ABOUT: &'static str =
        "Racers build the same deep trees at once; every round verified exactly";
    type Args = FsArgs<MakedirsOptions>;

    fn new(args: &Self::Args) -> anyhow::Result<Makedirs> {
        let MakedirsOptions {
            depth,
            fanout,
            churn,
        } = args.own;
        let dirs_per_round = tree_size(depth, fanout)
            .map_err(|e| crate::exit::usage(format!("--depth {depth} --fanout {fanout}: {e:#}")))?;
        Ok(Makedirs {
            params: Params {
                depth,
                fanout,
                dirs_per_round,
                churn,
            },
        })
    }

    fn main_job(race: RaceArgs) -> Option<Self::Args> {
        let own = MakedirsOptions {
            depth: DEFAULT_DEPTH,
            fanout: DEFAULT_FANOUT,
            churn: false,
        };
        Some(FsArgs::on_temp_dir(own, race))
    }
}

/// Judges one round's tree, `work/rel`, against what the racers (on every host)
/// report they created, relative to `work`. With churn, directories come and go:
/// what is left must be what was made minus what was removed, exactly.
pub fn judge_tree(
    work: &Path,
    rel: &Path,
    params: &Params,
    created: &[PathBuf],
    removed: u64,
) -> anyhow::Result<Vec<String>> {
    let expected = expected_dirs(rel, params.depth, params.fanout);
    let (present, strays) = tree::scan(work, rel)?;
    let mut bad = Vec::new();
    if let Some(s) = strays.first() {
        bad.push(format!(
            "{} entries that are not directories, such as '{}'",
            strays.len(),
            s.display()
        ));
    }
    let unexpected: Vec<&PathBuf> = present.difference(&expected).collect();
    if let Some(u) = unexpected.first() {
        bad.push(format!(
            "{} unexpected directories, such as '{}'",
            unexpected.len(),
            u.display()
        ));
    }
    if removed > 0 {
        if created.len() as u64 != present.len() as u64 + removed {
            bad.push(format!(
                "created {} - removed {removed} != {} left",
                created.len(),
                present.len()
            ));
        }
        return Ok(bad);
    }
    if present != expected {
        let missing: Vec<&PathBuf> = expected.difference(&present).collect();
        bad.push(format!(
            "the tree has {} directories, expected {} (missing {}, unexpected {}){}",
            present.len(),
            expected.len(),
            missing.len(),
            unexpected.len(),
            missing
                .first()
                .map_or(String::new(), |m| format!("; missing '{}'", m.display()))
        ));
    }
    bad.extend(claim_problems(&expected, created));
    Ok(bad)
}

/// What racers say they created, against the tree: each directory claimed once,
/// by one racer, and nothing claimed that is not part of the tree.
fn claim_problems(expected: &BTreeSet<PathBuf>, created: &[PathBuf]) -> Vec<String> {
    let mut bad = Vec::new();
    let mut claims: HashMap<&Path, u32> = HashMap::new();
    for c in created {
        *claims.entry(c.as_path()).or_default() += 1;
    }
    let mut twice: Vec<String> = claims
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(p, n)| format!("'{}' ({n} times)", p.display()))
        .collect();
    twice.sort();
    if !twice.is_empty() {
        bad.push(format!(
            "created more than once: {}",
            twice.into_iter().take(3).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(stranger) = claims.keys().find(|p| !expected.contains(**p)) {
        bad.push(format!(
            "'{}' reported created, but it is not part of the tree",
            stranger.display()
        ));
    }
    let unclaimed = expected
        .iter()
        .filter(|d| !claims.contains_key(d.as_path()))
        .count();
    if unclaimed > 0 {
        bad.push(format!(
            "{} directories claimed by racers, {} in the tree: {unclaimed} in the tree that no racer reports creating",
            claims.len(),
            expected.len()
        ));
    }
    bad
}

/// The leaf paths of one round's tree, under `round_dir`.
pub fn leaf_paths(round_dir: &Path, depth: u32, fanout: u32) -> Vec<PathBuf> {
    let mut paths = vec![round_dir.to_path_buf()];
    for level in 0..depth {
        let mut next = Vec::with_capacity(paths.len() * fanout as usize);
        for p in &paths {
            for i in 0..fanout {
                next.push(p.join(format!("l{level}n{i}")));
            }
        }
        paths = next;
    }
    paths
}

/// Every directory a complete round tree holds, `round_dir` included.
pub fn expected_dirs(round_dir: &Path, depth: u32, fanout: u32) -> BTreeSet<PathBuf> {
    let mut all = BTreeSet::new();
    for leaf in leaf_paths(round_dir, depth, fanout) {
        let mut p = leaf.as_path();
        while p.starts_with(round_dir) && all.insert(p.to_path_buf()) {
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
    }
    all
}

/// One racer's work after release: make every path, in `order`.
pub fn race(arm: Arm, paths: &[PathBuf], attempts: u32) -> Outcome {
    let opts = Options {
        attempts,
        ..Options::default()
    };
    let mut out = Outcome::default();
    for p in paths {
        out.calls += 1;
        let result = match arm {
            Arm::Racefree => match make_dirs(p, &opts) {
                Ok(made) => {
                    out.retries += u64::from(made.retries);
                    out.created.extend(made.created);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            Arm::Control => naive_makedirs(p, &mut out.created).map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            out.failed += 1;
            keep_failure(&mut out.failures, || format!("{}: {e}", p.display()));
        }
    }
    out
}

/// The control: a directory tree made by two processes at once, as a web
/// application made its comment directories on demand (and Python 2's os.makedirs
/// under it): check whether the directory exists, and if not, create each missing
/// level, treating "already exists" as fatal. Between the existence check and the mkdir of
/// a level there are other system calls (the checks and mkdirs of its ancestors),
/// and a concurrent creator that lands in that window makes this fail.
pub fn naive_makedirs(path: &Path, created: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    naive_create(path, created)
}

fn naive_create(path: &Path, created: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if let Some(head) = path.parent()
        && !head.as_os_str().is_empty()
        && !head.exists()
    {
        naive_create(head, created)?;
    }
    std::fs::create_dir(path)?;
    created.push(path.to_path_buf());
    Ok(())
}

/// Removes directories of the round's tree (any level: rmdir only takes empty ones)
/// until the racers are done or it has removed `budget`. This is load, not a racer
/// under test.
fn churn_loop(expected: &[PathBuf], seed: u64, budget: u64, done: &AtomicBool) -> u64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut removed = 0;
    while removed < budget && !done.load(Ordering::Relaxed) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        // Never the round directory itself: removing it would only restart every racer.
        let idx = 1 + (s % (expected.len() as u64 - 1).max(1)) as usize;
        if let Some(p) = expected.get(idx)
            && std::fs::remove_dir(p).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racers_allow_one_attempt_more_than_the_removers_may_remove() {
        let round = |churners, removals_each| Round {
            arm: Arm::Racefree,
            dir: PathBuf::from("/r"),
            work: PathBuf::from("/"),
            depth: 4,
            fanout: 3,
            seed: 0,
            churners,
            removals_each,
        };
        assert_eq!(round(2, 60).attempts(), 121);
        assert_eq!(round(1, 1).attempts(), 2);
        assert_eq!(round(0, 60).attempts(), Options::default().attempts);
        assert_eq!(round(usize::MAX, u64::MAX).attempts(), u32::MAX);
    }

    #[test]
    fn expected_tree_counts() {
        let root = Path::new("/r");
        assert_eq!(leaf_paths(root, 2, 3).len(), 9);
        // 1 + 3 + 9
        assert_eq!(expected_dirs(root, 2, 3).len(), 13);
        assert_eq!(tree_size(2, 3).unwrap(), 13);
    }

    #[test]
    fn a_tree_too_big_to_hold_is_refused_before_anything_is_allocated() {
        assert!(tree_size(32, 3).is_err());
        assert!(tree_size(32, 16).is_err());
        assert!(tree_size(0, 3).is_err());
        assert!(tree_size(4, 17).is_err());
        assert_eq!(tree_size(1, 16).unwrap(), 17);
    }

    #[test]
    fn naive_fails_when_a_level_appears_between_its_check_and_its_mkdir() {
        // Forced, not hoped for: the level exists before naive's mkdir of it, but
        // after its check of the leaf. Same as a racer landing in the window.
        let t = tempfile::tempdir().unwrap();
        let leaf = t.path().join("a/b");
        let mut created = Vec::new();
        assert!(!leaf.is_dir());
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        std::fs::create_dir(&leaf).unwrap();
        let err = naive_create(&leaf, &mut created).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        // racefree's makedirs is fine with the same state.
        assert!(make_dirs(&leaf, &Options::default()).is_ok());
    }
}
