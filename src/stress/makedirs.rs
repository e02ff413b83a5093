//! `racefree stress makedirs`: many racers build the same deep trees at once, and
//! every round is verified exactly.
//!
//! Per round, in a fresh subtree: every racer makes every leaf path of a tree of
//! `--fanout` and `--depth`, in its own shuffled order. Then: every call succeeded;
//! the tree holds exactly the expected directories; and the directories racers report
//! as created by them add up to the tree, each created once, by exactly one racer.
//! With `--churn`, removers rmdir directories while the racers build, and the check
//! becomes: no call failed, and created minus removed equals what is left.
//! `--control` runs the naive check-then-create pattern under the same load.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use super::gate;
use super::{Progress, RaceArgs, shuffle};
use crate::makedirs::{Options, make_dirs};

#[derive(Debug, Clone, ClapArgs)]
pub struct MakedirsArgs {
    /// The tree under test (any mount, network filesystems included). The run works in
    /// a new subdirectory it creates there [default: a fresh temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Levels below each round's directory
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub depth: u32,

    /// Subdirectories per level (fanout^depth leaf paths per round)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub fanout: u32,

    /// Also run removers that rmdir directories while the racers create them;
    /// makedirs' retries must hold, and the report counts them
    #[arg(long)]
    pub churn: bool,

    /// Keep the work directory instead of removing it at the end
    #[arg(long)]
    pub keep: bool,

    #[command(flatten)]
    pub race: RaceArgs,
}

/// Which implementation a racer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// racefree's makedirs.
    Racefree,
    /// The known-bad control: check, then create each missing level, EEXIST fatal.
    Naive,
}

/// What one racer did in one round. Also the JSON a worker process prints.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RacerOutcome {
    pub started_ns: u64,
    pub calls: u64,
    pub failed: u64,
    /// The first few failure messages, for the report.
    pub failures: Vec<String>,
    pub created: Vec<PathBuf>,
    pub retries: u64,
}

/// The per-round verdict for one arm.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ArmReport {
    pub arm: String,
    pub rounds: u64,
    pub calls: u64,
    pub failed_calls: u64,
    pub retries: u64,
    pub created: u64,
    pub removed_by_churn: u64,
    /// Rounds whose tree or accounting did not check out.
    pub bad_rounds: u64,
    /// The first few problems found, in words.
    pub problems: Vec<String>,
}

impl ArmReport {
    fn new(arm: Arm) -> Self {
        ArmReport {
            arm: format!("{arm:?}").to_lowercase(),
            ..Default::default()
        }
    }

    pub fn held(&self) -> bool {
        self.failed_calls == 0 && self.bad_rounds == 0 && self.rounds > 0
    }

    fn note(&mut self, problem: String) {
        if self.problems.len() < 10 {
            self.problems.push(problem);
        }
    }
}

/// The whole `stress makedirs` report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MakedirsReport {
    pub instance: u32,
    pub racers: u32,
    pub processes: bool,
    pub depth: u32,
    pub fanout: u32,
    pub dirs_per_round: u64,
    pub churn: bool,
    /// Largest and median distance between the first and last racer's release.
    pub start_spread_max_ns: u64,
    pub start_spread_median_ns: u64,
    pub seconds: f64,
    /// When this instance was released (ns since the epoch): across hosts, the
    /// merge compares these to show how closely the hosts started.
    pub released_ns: u64,
    pub work_dir: PathBuf,
    pub racefree: ArmReport,
    pub control: Option<ArmReport>,
    /// Per round, every directory each racer created, relative to the work
    /// directory (multi-host runs only: hosts may mount the share at different
    /// places; the accounting across hosts is done by `stress report`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds_created: Vec<Vec<PathBuf>>,
}

impl MakedirsReport {
    pub fn passed(&self) -> bool {
        self.racefree.held()
    }
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
pub fn race(arm: Arm, paths: &[PathBuf], started_ns: u64, attempts: u32) -> RacerOutcome {
    let opts = Options {
        attempts,
        ..Options::default()
    };
    let mut out = RacerOutcome {
        started_ns,
        ..Default::default()
    };
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
            Arm::Naive => naive_makedirs(p, &mut out.created).map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            out.failed += 1;
            if out.failures.len() < 3 {
                out.failures.push(format!("{}: {e}", p.display()));
            }
        }
    }
    out
}

/// The pattern from the DWiki post (and Python 2's os.makedirs under it): check
/// whether the directory exists, and if not, create each missing level, treating
/// "already exists" as fatal. Between the existence check and the mkdir of a level
/// there are other system calls (the checks and mkdirs of its ancestors), and a
/// concurrent creator that lands in that window makes this fail.
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

/// Runs `stress makedirs`.
pub fn run(args: &MakedirsArgs, progress: &Progress) -> anyhow::Result<MakedirsReport> {
    let race_args = &args.race;
    let racers = race_args.racers();
    let instance = gate::instance_id(race_args.id)?;
    let shared = race_args.barrier_file.is_some();
    if shared && race_args.control {
        bail!("--control runs on one host; leave it out with --barrier-file");
    }
    if shared && args.dir.is_none() {
        return Err(crate::exit::usage(
            "--barrier-file needs --dir: the shared tree every instance races on",
        ));
    }

    // The work directory: ours alone, created exclusively; or, across hosts, one
    // name every instance agrees on (from the barrier file), created tolerantly.
    let (base, _temp) = match &args.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("racefree-stress-")
                .tempdir()
                .context("making a temporary directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let work = match &race_args.barrier_file {
        Some(b) => base.join(format!(
            "racefree-stress-{}",
            b.file_name()
                .map_or("shared".into(), |n| n.to_string_lossy())
        )),
        None => base.join(format!(
            "racefree-stress-{}-{}",
            std::process::id(),
            gate::now_ns() % 1_000_000_007
        )),
    };
    let opts = Options {
        exclusive: !shared,
        ..Options::default()
    };
    make_dirs(&work, &opts)
        .map_err(|e| anyhow::anyhow!("cannot create work directory '{}': {e}", work.display()))?;

    let mut report = MakedirsReport {
        instance,
        racers,
        processes: race_args.processes,
        depth: args.depth,
        fanout: args.fanout,
        churn: args.churn,
        work_dir: work.clone(),
        racefree: ArmReport::new(Arm::Racefree),
        control: race_args.control.then(|| ArmReport::new(Arm::Naive)),
        ..Default::default()
    };
    report.dirs_per_round = expected_dirs(&work.join("r"), args.depth, args.fanout).len() as u64;

    report.released_ns = match &race_args.barrier_file {
        Some(b) => gate::barrier_file(
            b,
            instance,
            race_args.expect.unwrap_or(1),
            race_args.barrier_timeout(),
        )?,
        None => gate::now_ns(),
    };

    let begin = Instant::now();
    let mut spreads = Vec::new();
    let mut round = 0u64;
    while race_args.another_round(round, begin) {
        progress.tick(begin);
        let mut arms = vec![Arm::Racefree];
        if race_args.control {
            arms.push(Arm::Naive);
        }
        for arm in arms {
            let round_dir = match arm {
                Arm::Racefree => work.join(format!("round-{round}")),
                Arm::Naive => work.join(format!("control-{round}")),
            };
            let churn = args.churn && arm == Arm::Racefree;
            let outcome = run_round(args, arm, &round_dir, round, churn)?;
            spreads.push(gate::spread_ns(outcome.racers.iter().map(|r| r.started_ns)));
            let arm_report = match arm {
                Arm::Racefree => &mut report.racefree,
                Arm::Naive => report.control.as_mut().expect("control arm requested"),
            };
            if shared {
                // Other hosts build the same round: only calls are judged here;
                // `stress report` checks the tree and the accounting across hosts.
                tally(arm_report, &outcome, round);
                report.rounds_created.push(
                    outcome
                        .racers
                        .iter()
                        .flat_map(|r| &r.created)
                        .map(|p| p.strip_prefix(&work).unwrap_or(p).to_path_buf())
                        .collect(),
                );
            } else {
                verify_round(arm_report, &outcome, &round_dir, args, round)?;
                if !args.keep {
                    std::fs::remove_dir_all(&round_dir).with_context(|| {
                        format!("removing round directory '{}'", round_dir.display())
                    })?;
                }
            }
        }
        round += 1;
    }
    report.seconds = begin.elapsed().as_secs_f64();
    spreads.sort_unstable();
    report.start_spread_max_ns = spreads.last().copied().unwrap_or(0);
    report.start_spread_median_ns = spreads.get(spreads.len() / 2).copied().unwrap_or(0);

    if shared {
        let path = work.join(format!("report-{instance}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing report '{}'", path.display()))?;
    } else if !args.keep {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("removing work directory '{}'", work.display()))?;
    }
    Ok(report)
}

/// What happened in one round of one arm.
pub struct RoundOutcome {
    pub racers: Vec<RacerOutcome>,
    pub removed: u64,
}

fn run_round(
    args: &MakedirsArgs,
    arm: Arm,
    round_dir: &Path,
    round: u64,
    churn: bool,
) -> anyhow::Result<RoundOutcome> {
    let racers = args.race.racers() as usize;
    let paths = leaf_paths(round_dir, args.depth, args.fanout);
    let orders: Vec<Vec<PathBuf>> = (0..racers)
        .map(|i| shuffle(&paths, round * 1_000 + i as u64))
        .collect();
    let expected: Vec<PathBuf> = expected_dirs(round_dir, args.depth, args.fanout)
        .into_iter()
        .collect();
    let done = AtomicBool::new(false);
    let removed = AtomicU64::new(0);
    let churners = if churn { (racers / 4).max(1) } else { 0 };

    let start = Barrier::new(churners + 1);
    let outcomes = std::thread::scope(|s| -> anyhow::Result<Vec<RacerOutcome>> {
        let remover_handles: Vec<_> = (0..churners)
            .map(|c| {
                let (start, done, removed, expected) = (&start, &done, &removed, &expected);
                s.spawn(move || {
                    start.wait();
                    churn_loop(expected, c as u64 + round, done, removed)
                })
            })
            .collect();
        // The churners start with the racers; if the racers never start (a process
        // could not be spawned), the guard still lets the churners go, and stop.
        let release = gate::ReleaseOnce::new(&start);
        let outcomes = if args.race.processes {
            race_processes(arm, round_dir, args, round, racers, &release)
        } else {
            race_threads(arm, &orders, &release)
        };
        release.go();
        done.store(true, Ordering::Relaxed);
        for h in remover_handles {
            h.join().expect("a churner panicked");
        }
        outcomes
    })?;
    Ok(RoundOutcome {
        racers: outcomes,
        removed: removed.load(Ordering::Relaxed),
    })
}

/// Removes directories of the round's tree (any level: rmdir only takes empty ones)
/// until the racers are done. This is load, not a racer under test.
fn churn_loop(expected: &[PathBuf], seed: u64, done: &AtomicBool, removed: &AtomicU64) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while !done.load(Ordering::Relaxed) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        // Never the round directory itself: removing it would only restart every racer.
        let idx = 1 + (s % (expected.len() as u64 - 1).max(1)) as usize;
        if let Some(p) = expected.get(idx)
            && std::fs::remove_dir(p).is_ok()
        {
            removed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn race_threads(
    arm: Arm,
    orders: &[Vec<PathBuf>],
    churn_start: &gate::ReleaseOnce,
) -> anyhow::Result<Vec<RacerOutcome>> {
    let barrier = Barrier::new(orders.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = orders
            .iter()
            .map(|order| {
                let barrier = &barrier;
                s.spawn(move || {
                    // One racer also releases the churners: they start with the racers.
                    if barrier.wait().is_leader() {
                        churn_start.go();
                    }
                    race(
                        arm,
                        order,
                        gate::now_ns(),
                        crate::makedirs::DEFAULT_ATTEMPTS,
                    )
                })
            })
            .collect();
        Ok(handles
            .into_iter()
            .map(|h| h.join().expect("a racer thread panicked"))
            .collect())
    })
}

/// Starts every racer as a process of this binary, blocked on its stdin; once all are
/// running, closes every pipe at once to release them.
fn race_processes(
    arm: Arm,
    round_dir: &Path,
    args: &MakedirsArgs,
    round: u64,
    racers: usize,
    churn_start: &gate::ReleaseOnce,
) -> anyhow::Result<Vec<RacerOutcome>> {
    let arm_name = format!("{arm:?}").to_lowercase();
    let mut procs = gate::Racers::spawn((0..racers).map(|i| {
        let mut a: Vec<std::ffi::OsString> = [
            "stress",
            "worker",
            "makedirs",
            "--arm",
            &arm_name,
            "--round-dir",
        ]
        .iter()
        .map(Into::into)
        .collect();
        a.push(round_dir.into());
        for (k, v) in [
            ("--depth", args.depth.to_string()),
            ("--fanout", args.fanout.to_string()),
            ("--seed", (round * 1_000 + i as u64).to_string()),
        ] {
            a.push(k.into());
            a.push(v.into());
        }
        a
    }))?;
    procs.release();
    churn_start.go();
    procs
        .wait_all()?
        .into_iter()
        .map(|out| serde_json::from_slice(&out.stdout).context("reading a racer process's result"))
        .collect()
}

/// The body of a racer process (`racefree stress worker makedirs`).
#[derive(Debug, Clone, ClapArgs)]
pub struct WorkerArgs {
    #[arg(long, value_enum)]
    pub arm: Arm,
    #[arg(long)]
    pub round_dir: PathBuf,
    #[arg(long)]
    pub depth: u32,
    #[arg(long)]
    pub fanout: u32,
    #[arg(long)]
    pub seed: u64,
}

pub fn worker(args: &WorkerArgs) -> anyhow::Result<()> {
    let order = shuffle(
        &leaf_paths(&args.round_dir, args.depth, args.fanout),
        args.seed,
    );
    let started = gate::wait_for_stdin_close().context("waiting for the start signal")?;
    let outcome = race(args.arm, &order, started, crate::makedirs::DEFAULT_ATTEMPTS);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &outcome)?;
    out.flush()?;
    Ok(())
}

fn tally(arm: &mut ArmReport, outcome: &RoundOutcome, round: u64) {
    arm.rounds += 1;
    arm.removed_by_churn += outcome.removed;
    for r in &outcome.racers {
        arm.calls += r.calls;
        arm.failed_calls += r.failed;
        arm.retries += r.retries;
        arm.created += r.created.len() as u64;
        for f in &r.failures {
            arm.note(format!("round {round}: {f}"));
        }
    }
}

/// Checks one round: calls, the tree on disk, and who created what.
fn verify_round(
    arm: &mut ArmReport,
    outcome: &RoundOutcome,
    round_dir: &Path,
    args: &MakedirsArgs,
    round: u64,
) -> anyhow::Result<()> {
    tally(arm, outcome, round);
    let expected = expected_dirs(round_dir, args.depth, args.fanout);
    let (present, strays) = scan_tree(round_dir)?;
    let mut problems = Vec::new();
    for s in &strays {
        problems.push(format!("unexpected entry '{}'", s.display()));
    }
    for p in present.difference(&expected) {
        problems.push(format!("unexpected directory '{}'", p.display()));
    }
    let mut creators: HashMap<&Path, u32> = HashMap::new();
    for r in &outcome.racers {
        for c in &r.created {
            *creators.entry(c.as_path()).or_default() += 1;
        }
    }
    let created: u64 = creators.values().map(|&n| u64::from(n)).sum();
    if args.churn && outcome.removed > 0 {
        // Directories come and go: what is left must be what was made minus what
        // was removed, exactly.
        if created != present.len() as u64 + outcome.removed {
            problems.push(format!(
                "created {created} - removed {} != {} left",
                outcome.removed,
                present.len()
            ));
        }
    } else {
        for missing in expected.difference(&present) {
            problems.push(format!("missing directory '{}'", missing.display()));
        }
        for (dir, n) in &creators {
            if *n > 1 {
                problems.push(format!(
                    "'{}' reported created by {n} racers",
                    dir.display()
                ));
            }
            if !expected.contains(*dir) {
                problems.push(format!(
                    "'{}' reported created, but it is not part of the tree",
                    dir.display()
                ));
            }
        }
        for unclaimed in expected
            .iter()
            .filter(|d| !creators.contains_key(d.as_path()))
        {
            problems.push(format!(
                "'{}' is in the tree, but no racer reports creating it",
                unclaimed.display()
            ));
        }
        if created != expected.len() as u64 {
            problems.push(format!(
                "racers report {created} directories created, the tree has {}",
                expected.len()
            ));
        }
    }
    if !problems.is_empty() {
        arm.bad_rounds += 1;
        for p in problems.into_iter().take(3) {
            arm.note(format!("round {round}: {p}"));
        }
    }
    Ok(())
}

/// Every directory under (and including) `root`, and anything that is not one.
pub fn scan_tree(root: &Path) -> anyhow::Result<(BTreeSet<PathBuf>, Vec<PathBuf>)> {
    let mut dirs = BTreeSet::new();
    let mut strays = Vec::new();
    if !root.exists() {
        return Ok((dirs, strays));
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading '{}'", d.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                strays.push(entry.path());
            }
        }
        dirs.insert(d);
    }
    Ok((dirs, strays))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_tree_counts() {
        let root = Path::new("/r");
        assert_eq!(leaf_paths(root, 2, 3).len(), 9);
        // 1 + 3 + 9
        assert_eq!(expected_dirs(root, 2, 3).len(), 13);
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
