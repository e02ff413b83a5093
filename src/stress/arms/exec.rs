//! `racefree stress exec -- COMMAND`: race the user's own command, and say whether
//! it is safe to run many at once.
//!
//! Per round, a fresh directory (a `--template` copied in, then `--setup`): N
//! racers run COMMAND there, each a process held right before its execve and all
//! released together. The round holds when every racer exits as expected and the
//! state is right: `--check` passes, or with `--compare-sequential` the tree equals
//! the one the same N commands leave run one after another in a twin directory.
//!
//! Two controls. The sequential run is the oracle, run first: if it fails on its
//! own, the command or the check is wrong and nothing is judged. And the canary, the
//! check-then-create race, races in the control's rounds under the same load and
//! release; it must be seen failing, or a clean run proves nothing.
//!
//! Across hosts every instance races on one shared round directory; instance 0
//! alone runs the sequential twin, `--setup` and `--check`, meeting the others at a
//! barrier before each round (to release together) and after it (to check once all
//! are done). `stress report` runs no user command: it merges instance 0's check
//! results and compares the kept trees again.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use super::kit::make_round_dir;
use crate::exit;
use crate::help::Example;
use crate::quote::quote_if_needed;
use crate::stress::args::{self, ProgramArgs, RaceArgs, positive_seconds};
use crate::stress::gate;
use crate::stress::program::stage::{Fault, LINES_SHOWN, Stage};
use crate::stress::program::{self, Exited, Failed, MAX_PROGRAMS, Program};
use crate::stress::race::{Arm, Contribution, Programs, Race, Report, RoundCtx, Subject, Tally};
use crate::stress::snapshot::{self, Ignore, Snapshot};
use crate::stress::widen::{self, Widen};

/// Seconds a round's racers (and each `--setup` and `--check`) may run.
pub const DEFAULT_TIMEOUT: f64 = 10.0;
pub const MAX_TIMEOUT: f64 = 86_400.0;

/// The longest delay `--widen` gives one call, in milliseconds.
pub const DEFAULT_WIDEN_MS: u32 = 16;
pub const MAX_WIDEN_MS: u32 = 1000;

/// The canary: check, then create. Two racers that both check before either
/// creates both run mkdir, and one fails.
pub const CANARY: &str = "[ -d d ] || mkdir d";

/// Failing rounds a report details (all are counted), and what it shows of each.
const ROUNDS_DETAILED: usize = 3;
const RACERS_DETAILED: usize = 4;
const DIFFERENCES_LISTED: usize = 10;

/// `stress exec`'s own options, echoed in its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ClapArgs)]
pub struct Params {
    /// Copy this directory into each round's directory first
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,

    /// Before the racers, run CMD with 'sh -c' in the round's directory (and in the
    /// sequential run's)
    #[arg(long, value_name = "CMD")]
    pub setup: Option<String>,

    /// After the racers, run CMD with 'sh -c' in the round's directory: exit 0 means
    /// the state is right. RACEFREE_RACERS and RACEFREE_ROUND are set
    #[arg(long, value_name = "CMD")]
    pub check: Option<String>,

    /// The tree the racers leave must equal the one the same commands leave run one
    /// after another in a twin directory (names, types, modes, sizes, contents)
    #[arg(long)]
    pub compare_sequential: bool,

    /// With --compare-sequential: names that may differ; without a '/' a name at any
    /// depth, with one a path from the round's directory (repeatable)
    #[arg(long, value_name = "GLOB", requires = "compare_sequential")]
    pub ignore: Vec<String>,

    /// The exit status every racer must end with
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub expect_exit: u8,

    /// Seconds a round's racers may run before they count as hung (their process
    /// groups are killed, and the round fails)
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIMEOUT, value_parser = positive_seconds)]
    pub timeout: f64,

    /// Widen race windows by holding back each racer's calls that change the
    /// filesystem (mkdir, an open for writing, rename, link, unlink). Rounds take
    /// turns: every racer's first such call held until all racers have reached
    /// theirs, then let go together; every such call delayed MS; none held. 0 turns
    /// it off. A hold only picks a schedule the kernel could pick itself, so what
    /// fails under it is a real race. Racers of a user other than root then run
    /// with no_new_privs (setuid programs get no privileges)
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_WIDEN_MS, value_parser = clap::value_parser!(u32).range(0..=MAX_WIDEN_MS as i64))]
    pub widen: u32,

    /// End the run at the first failing round
    #[arg(long)]
    pub stop_on_first: bool,

    /// The command every racer runs, and its arguments. Each racer sees
    /// RACEFREE_RACER (0, 1, ...), RACEFREE_RACERS and RACEFREE_ROUND
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, allow_hyphen_values = true,
          value_hint = clap::ValueHint::CommandWithArguments)]
    pub command: Vec<String>,
}

/// One round, as the racers get it.
#[derive(Serialize, Deserialize)]
pub struct Round {
    pub programs: Vec<Program>,
    pub timeout: f64,
    pub expect_exit: u8,
    /// How each racer's calls that change the filesystem are held back.
    pub widen: Option<Widen>,
    /// Across hosts: when the instances release their racers.
    pub release_ns: Option<u64>,
    /// Across hosts, on instance 0: what it judged of the round, for the record.
    #[serde(skip)]
    judged: OnceLock<Judged>,
}

/// A failing round (or a sequential run that failed), in detail.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Failing {
    pub round: u64,
    /// How far apart its racers were released.
    pub spread_ns: u64,
    pub racers_failed: u64,
    /// The first few failing racers.
    pub racers: Vec<Failed>,
    /// What `--setup` or `--check` said, when it failed.
    pub check: Option<String>,
    /// How its tree differs from the sequential run's (the first few).
    pub differences: Vec<String>,
    pub differences_count: u64,
}

impl Failing {
    /// The stage's failure in round `round`.
    fn of(round: u64, fault: Fault) -> Failing {
        let mut f = Failing {
            round,
            ..Failing::default()
        };
        match fault {
            Fault::Racer(r) => {
                f.racers_failed = 1;
                f.racers.push(r);
            }
            Fault::Said(s) => f.check = Some(s),
        }
        f
    }

    fn failed(&self) -> bool {
        self.racers_failed > 0 || self.check.is_some() || self.differences_count > 0
    }

    /// Its problems in a line each, for the tally and the merge.
    fn lines(&self, racers: usize) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = self.racers.first() {
            out.push(format!(
                "{} of {racers} racers failed; {}",
                self.racers_failed,
                r.line()
            ));
        }
        out.extend(self.check.clone());
        if let Some(d) = self.differences.first() {
            let more = self.differences_count - 1;
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            out.push(format!(
                "the tree differs from the sequential run's: {d}{more}"
            ));
        }
        out
    }
}

/// Where the first failing round's tree was kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeptTree {
    pub racy: PathBuf,
    pub sequential: Option<PathBuf>,
}

/// Figures per arm.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Racers killed when their round's time was up.
    pub hung: u64,
    /// Rounds whose `--check` failed.
    pub check_failed: u64,
    /// Rounds whose tree differed from the sequential run's.
    pub tree_differed: u64,
    /// The first failing rounds, in detail.
    pub failing_rounds: Vec<Failing>,
    /// The first failing round's tree, kept for inspection (or why it was not).
    pub kept: Option<KeptTree>,
    pub not_kept: Option<String>,
    /// The sequential run, or `--setup`, when it failed on its own: nothing was judged.
    pub sequential_failed: Option<Failing>,
    /// Why race windows were not widened, when --widen asked and the host refused.
    pub widen_unavailable: Option<String>,
}

/// What one instance did in a round across hosts, for `stress report`.
#[derive(Serialize, Deserialize)]
pub struct Record {
    pub racers: u32,
    pub racers_failed: u32,
    pub failures: Vec<String>,
    /// Instance 0's: what it judged of the round.
    pub judged: Option<Judged>,
}

/// What instance 0 judged of a round across hosts, running what `stress report`
/// does not: `--check`, and the stage (the sequential run, `--setup`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Judged {
    pub check: Option<String>,
    /// The stage could not be set: nothing of the round is judged.
    pub stage_failed: bool,
}

/// The sequential twin of the round being raced, with `--compare-sequential`.
struct Twin {
    dir: PathBuf,
    tree: Snapshot,
}

pub struct Exec {
    params: Params,
    stage: Stage,
    ignore: Ignore,
    keep: bool,
    /// Instances across hosts, and how long to wait for them.
    instances: u32,
    barrier_timeout: Duration,
    oracle_ran: bool,
    twin: Option<Twin>,
    /// The stage could not be set: the sequential run or `--setup` failed.
    stage_failed: Option<Failing>,
    failed: bool,
    shared: bool,
    /// Rounds of the command raced, and how many to race across hosts.
    played: u64,
    rounds: u64,
    /// Why this host cannot widen race windows, when it cannot.
    widen_unavailable: Option<String>,
}

impl Exec {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.params.timeout)
    }

    fn right(&self, e: &Exited) -> bool {
        e.exited_with(i32::from(self.params.expect_exit))
    }

    /// Racer `racer` (of `racers` across hosts) in `dir`.
    fn program(&self, dir: &Path, racer: u32, racers: u32, round: u64) -> Program {
        Program {
            argv: self.params.command.clone(),
            dir: dir.to_path_buf(),
            env: vec![
                ("RACEFREE_RACER".into(), racer.to_string()),
                ("RACEFREE_RACERS".into(), racers.to_string()),
                ("RACEFREE_ROUND".into(), round.to_string()),
            ],
        }
    }

    /// The round's variables, for `--setup` and `--check`.
    fn env(&self, racers: u32, n: u64) -> Vec<(String, String)> {
        vec![
            ("RACEFREE_RACERS".into(), racers.to_string()),
            ("RACEFREE_ROUND".into(), n.to_string()),
        ]
    }

    /// The oracle: the same commands one after another in a twin directory, its
    /// check, and (to compare with) its tree. A failure ends the run.
    fn run_twin(&mut self, ctx: &RoundCtx, racers: u32) -> anyhow::Result<()> {
        self.oracle_ran = true;
        let dir = ctx.work.join(format!("twin-{}", ctx.round));
        std::fs::create_dir(&dir).with_context(|| format!("creating '{}'", dir.display()))?;
        let programs: Vec<Program> = (0..racers)
            .map(|i| self.program(&dir, i, racers, ctx.round))
            .collect();
        let env = self.env(racers, ctx.round);
        match self.stage.sequential(&dir, &programs, &env)? {
            Some(fault) => self.stage_failed = Some(Failing::of(ctx.round, fault)),
            None if self.params.compare_sequential => {
                let tree = snapshot::take(&ctx.work, Path::new(dir.file_name().expect("twin-N")))?;
                self.twin = Some(Twin { dir, tree });
                return Ok(());
            }
            None => {}
        }
        if !self.keep && !self.shared {
            remove(&dir)?;
        }
        Ok(())
    }

    /// A failing round's detail: each wrong racer, `--check`, the tree.
    fn judge_round(
        &mut self,
        ctx: &RoundCtx,
        outcomes: &[Exited],
        counts: &mut Counts,
    ) -> anyhow::Result<Failing> {
        let mut f = Failing {
            round: ctx.round,
            spread_ns: gate::spread_ns(outcomes.iter().map(|e| e.started_ns)),
            ..Failing::default()
        };
        let first = ctx.instance * ctx.racers;
        for (i, e) in outcomes.iter().enumerate() {
            if !self.right(e) {
                f.racers_failed += 1;
                counts.hung += u64::from(e.timed_out);
                if f.racers.len() < RACERS_DETAILED {
                    f.racers
                        .push(e.failed(first + i as u32, self.timeout(), LINES_SHOWN));
                }
            }
        }
        // The state is judged once, by instance 0, and only for the command: the
        // canary's verdict is its racers' alone.
        if ctx.instance != 0 || self.stage_failed.is_some() || ctx.arm == Arm::Control {
            return Ok(f);
        }
        let racers = ctx.racers * self.instances;
        if self.params.check.is_some() {
            f.check = self.stage.check(&ctx.dir, &self.env(racers, ctx.round))?;
            counts.check_failed += u64::from(f.check.is_some());
        }
        if let Some(twin) = &self.twin {
            let racy = snapshot::take(&ctx.work, &rel(ctx))?;
            let d = snapshot::differences(&racy, &twin.tree, &self.ignore);
            f.differences_count = d.len() as u64;
            f.differences = d.into_iter().take(DIFFERENCES_LISTED).collect();
            counts.tree_differed += u64::from(f.differences_count > 0);
        }
        Ok(f)
    }

    /// Keeps the first failing round's tree (and its twin's) for inspection: beside
    /// the work directory when small enough, where it is with `--keep`.
    fn keep_tree(&mut self, ctx: &RoundCtx, counts: &mut Counts) -> anyhow::Result<()> {
        let twin = self.twin.as_ref().map(|t| t.dir.clone());
        if self.keep {
            counts.kept = Some(KeptTree {
                racy: ctx.dir.clone(),
                sequential: twin,
            });
            return Ok(());
        }
        let mut trees = vec![(ctx.dir.clone(), "racy")];
        trees.extend(twin.map(|t| (t, "sequential")));
        match snapshot::keep_aside(&ctx.work, &trees)? {
            Ok(mut kept) => {
                counts.kept = Some(KeptTree {
                    racy: kept.remove(0),
                    sequential: kept.pop(),
                });
            }
            Err(why) => counts.not_kept = Some(why),
        }
        Ok(())
    }

    /// Across hosts: meets every instance at this round's barrier `name`.
    fn meet(&self, ctx: &RoundCtx, name: &str, wait: bool) -> anyhow::Result<u64> {
        let at = gate::RoundBarrier {
            work: &ctx.work,
            round: ctx.round,
            name,
            instance: ctx.instance,
            expect: self.instances,
            timeout: self.barrier_timeout,
        };
        if wait { at.wait() } else { at.start() }
    }
}

/// The round's directory, relative to the work directory.
fn rel(ctx: &RoundCtx) -> PathBuf {
    PathBuf::from(ctx.arm.round_dir(ctx.round))
}

fn remove(dir: &Path) -> anyhow::Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("removing '{}'", dir.display()))
}

impl Race for Exec {
    const NAME: &'static str = "exec";
    const SHARED: bool = true;
    type Params = Params;
    type Round = Round;
    type Outcome = Exited;
    type Churn = ();
    type Counts = Counts;
    type Record = Record;
    const ROUND_EXTRAS: &'static [&'static str] = &["twin-", "sync-"];

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        if p.command.is_empty() || p.command.len() > 10_000 || p.ignore.len() > 1000 {
            bail!(
                "a command of {} words, {} --ignore patterns",
                p.command.len(),
                p.ignore.len()
            );
        }
        if !(p.timeout.is_finite() && p.timeout > 0.0 && p.timeout <= MAX_TIMEOUT) {
            bail!("timeout {} is out of range (0, {MAX_TIMEOUT}]", p.timeout);
        }
        if p.widen > MAX_WIDEN_MS {
            bail!("widen {} is out of range 0..={MAX_WIDEN_MS}", p.widen);
        }
        Ignore::new(&p.ignore).map(drop)
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        make_round_dir(ctx)?;
        let leader = ctx.instance == 0;
        let racers = ctx.racers * self.instances;
        let mut list = Vec::new();
        if ctx.arm == Arm::Control {
            let canary = vec!["sh".into(), "-c".into(), CANARY.into()];
            for i in 0..ctx.racers {
                list.push(Program {
                    argv: canary.clone(),
                    ..self.program(&ctx.dir, i, ctx.racers, ctx.round)
                });
            }
        } else {
            if leader
                && self.stage_failed.is_none()
                && (self.params.compare_sequential || !self.oracle_ran)
            {
                self.run_twin(ctx, racers)?;
            }
            let env = self.env(racers, ctx.round);
            if leader
                && self.stage_failed.is_none()
                && let Some(why) = self.stage.set(&ctx.dir, &env)?
            {
                self.stage_failed = Some(Failing::of(ctx.round, Fault::Said(why)));
            }
            for i in 0..ctx.racers {
                list.push(self.program(&ctx.dir, ctx.instance * ctx.racers + i, racers, ctx.round));
            }
        }
        // A stage that could not be set proves nothing: none race (across hosts the
        // others still do, and instance 0 keeps meeting them).
        if self.stage_failed.is_some() && leader {
            list.clear();
        }
        let release_ns = if ctx.shared {
            Some(self.meet(ctx, "ready", false)?)
        } else {
            None
        };
        Ok(Round {
            programs: list,
            timeout: self.params.timeout,
            expect_exit: self.params.expect_exit,
            widen: match self.widen_unavailable {
                None => Widen::in_turn(ctx.round, self.params.widen, self.timeout()),
                Some(_) => None,
            },
            release_ns,
            judged: OnceLock::new(),
        })
    }

    fn race(round: &Round, racer: u32) -> Exited {
        let p = &round.programs[racer as usize];
        program::run(p, Duration::from_secs_f64(round.timeout)).unwrap_or_else(|e| Exited {
            error: Some(format!("{e:#}")),
            ..Exited::default()
        })
    }

    fn programs(&self, round: &Round) -> Option<Programs<Exited>> {
        Some(Programs {
            list: round.programs.clone(),
            timeout: Duration::from_secs_f64(round.timeout),
            release_ns: round.release_ns,
            widen: round.widen,
            outcome: |e| e,
        })
    }

    fn enough(&self) -> bool {
        // Across hosts every instance races the same rounds (they meet at each),
        // whatever its own canary saw.
        if self.shared {
            return self.played >= self.rounds;
        }
        self.stage_failed.is_some() || (self.params.stop_on_first && self.failed)
    }

    fn judge(
        &mut self,
        ctx: &RoundCtx,
        round: &Round,
        outcomes: &[Exited],
        _churn: Vec<()>,
        tally: &mut Tally<Counts>,
    ) -> anyhow::Result<()> {
        if ctx.shared {
            self.meet(ctx, "done", true)?;
        }
        let f = self.judge_round(ctx, outcomes, &mut tally.counts)?;
        tally.calls += outcomes.len() as u64;
        tally.failed_calls += f.racers_failed;
        let lines = f.lines(outcomes.len());
        if ctx.shared && ctx.instance == 0 {
            let _ = round.judged.set(Judged {
                check: f.check.clone(),
                stage_failed: self.stage_failed.is_some(),
            });
        }
        self.played += u64::from(ctx.arm == Arm::Racefree);
        if f.failed() && ctx.arm == Arm::Racefree {
            self.failed = true;
            if tally.counts.kept.is_none() && tally.counts.not_kept.is_none() && !ctx.shared {
                self.keep_tree(ctx, &mut tally.counts)?;
            }
            if tally.counts.failing_rounds.len() < ROUNDS_DETAILED {
                tally.counts.failing_rounds.push(f);
            }
        }
        tally.bad_round(ctx.round, lines);
        if let Some(t) = self.twin.take()
            && !self.keep
            && !ctx.shared
            && t.dir.exists()
        {
            remove(&t.dir)?;
        }
        Ok(())
    }

    fn finish(&mut self, tally: &mut Tally<Counts>) {
        if tally.arm == Arm::Racefree {
            tally.counts.sequential_failed = self.stage_failed.clone();
            tally.counts.widen_unavailable = self.widen_unavailable.clone();
        }
    }

    fn proves_nothing(&mut self) -> Option<String> {
        self.stage_failed.as_ref().map(stage_words)
    }

    fn failures(c: &Counts) -> Vec<(&'static str, u64)> {
        vec![
            ("hung", c.hung),
            ("check_failed", c.check_failed),
            ("tree_differed", c.tree_differed),
        ]
    }

    /// Every racer runs COMMAND once; none, on instance 0, when the stage failed.
    fn round_calls(_p: &Params, racers: u32) -> RangeInclusive<u64> {
        0..=u64::from(racers)
    }

    fn check_counts(_p: &Params, racers: u32, t: &Tally<Counts>) -> anyhow::Result<()> {
        let c = &t.counts;
        if c.hung > t.failed_calls || c.check_failed > t.rounds || c.tree_differed > t.rounds {
            bail!("hung, check_failed or tree_differed beyond what the calls and rounds allow");
        }
        let detailed = c.failing_rounds.len() as u64;
        if detailed > ROUNDS_DETAILED as u64 || detailed > t.bad_rounds {
            bail!("{detailed} failing rounds detailed, {} bad", t.bad_rounds);
        }
        if c.failing_rounds
            .iter()
            .any(|f| f.racers_failed > u64::from(racers))
        {
            bail!("a failing round with more failed racers than racers");
        }
        Ok(())
    }

    /// The racers that exited as expected.
    fn record_calls(r: &Record) -> Option<u64> {
        Some(u64::from(r.racers.saturating_sub(r.racers_failed)))
    }

    fn record(_ctx: &RoundCtx, round: &Round, outcomes: &[Exited]) -> Record {
        let expected = i32::from(round.expect_exit);
        let failures: Vec<&Exited> = outcomes
            .iter()
            .filter(|e| !e.exited_with(expected))
            .collect();
        Record {
            racers: outcomes.len() as u32,
            racers_failed: failures.len() as u32,
            failures: failures
                .iter()
                .take(3)
                .map(|e| e.how(Duration::from_secs_f64(round.timeout)))
                .collect(),
            judged: round.judged.get().cloned(),
        }
    }

    fn merge_round(
        params: &Params,
        work: &Path,
        n: u64,
        records: &[Contribution<Record>],
    ) -> anyhow::Result<Vec<String>> {
        let judged = match records.iter().find(|c| c.instance == 0) {
            Some(c) => c.record.judged.clone(),
            None => None,
        };
        let Some(judged) = judged else {
            return Ok(vec![
                "instance 0's judgement of the round is not in its record".into(),
            ]);
        };
        if judged.stage_failed {
            // Instance 0's report says why the run proves nothing.
            return Ok(Vec::new());
        }
        let mut problems = Vec::new();
        for c in records {
            let r = &c.record;
            if r.judged.is_some() != (c.instance == 0) || r.racers != c.racers {
                problems.push(format!(
                    "instance {}'s record is not of its round",
                    c.instance
                ));
            } else if r.racers_failed > 0 {
                problems.push(format!(
                    "instance {}: {} of {} racers failed: {}",
                    c.instance,
                    r.racers_failed,
                    r.racers,
                    r.failures.join("; ")
                ));
            }
        }
        problems.extend(judged.check);
        if params.compare_sequential {
            let racy = snapshot::take(work, Path::new(&Arm::Racefree.round_dir(n)))?;
            let twin = snapshot::take(work, Path::new(&format!("twin-{n}")))?;
            let d = snapshot::differences(&racy, &twin, &Ignore::new(&params.ignore)?);
            if let Some(first) = d.first() {
                problems.push(format!(
                    "the tree differs from the sequential run's: {first} ({} in all)",
                    d.len()
                ));
            }
        }
        Ok(problems)
    }

    fn columns() -> &'static [&'static str] {
        &["hung", "check", "tree"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        vec![
            c.hung.to_string(),
            c.check_failed.to_string(),
            c.tree_differed.to_string(),
        ]
    }

    fn describe(p: &Params) -> String {
        let words: Vec<String> = p.command.iter().map(quote_if_needed).collect();
        let mut s = format!(
            "each round: racers run `{}` at once, each must exit {}",
            words.join(" "),
            p.expect_exit
        );
        if let Some(c) = &p.check {
            s.push_str(&format!("; then --check {} must pass", quote_if_needed(c)));
        }
        if p.compare_sequential {
            s.push_str("; the tree must equal the sequential run's");
        }
        if p.check.is_none() && !p.compare_sequential {
            s.push_str(" (the state is not checked: see --check, --compare-sequential)");
        }
        if p.widen > 0 {
            s.push_str(&format!(
                "; changes to the filesystem held back (rounds in turn: the first aligned, all delayed {} ms, none)",
                p.widen
            ));
        }
        s
    }

    fn print_more(out: &mut dyn std::io::Write, r: &Report<Self>) -> std::io::Result<()> {
        let c = &r.racefree.counts;
        // The first failing round in full; the problems listed after the table name
        // the next ones.
        if let Some(f) = c.failing_rounds.first() {
            writeln!(
                out,
                "  round {} (racers released within {}):",
                f.round,
                crate::stress::table::micros(f.spread_ns)
            )?;
            print_failing(out, f)?;
        }
        if let Some(k) = &c.kept {
            write!(
                out,
                "  the first failing round's tree: {}",
                k.racy.display()
            )?;
            match &k.sequential {
                Some(s) => writeln!(out, " (the sequential run's: {})", s.display())?,
                None => writeln!(out)?,
            }
        }
        if let Some(n) = &c.not_kept {
            writeln!(out, "  the first failing round's tree: {n}")?;
        }
        if let Some(why) = &c.widen_unavailable {
            writeln!(
                out,
                "  race windows not widened: this host refuses seccomp's user notification ({why})"
            )?;
        }
        if let Some(s) = &c.sequential_failed {
            writeln!(
                out,
                "  the sequential run failed on its own, so nothing was judged:"
            )?;
            print_failing(out, s)?;
        }
        Ok(())
    }
}

fn print_failing(out: &mut dyn std::io::Write, f: &Failing) -> std::io::Result<()> {
    for r in &f.racers {
        writeln!(out, "    racer {} {}", r.racer, r.how)?;
        for l in &r.said {
            writeln!(out, "      {l}")?;
        }
    }
    let more = f.racers_failed.saturating_sub(f.racers.len() as u64);
    if more > 0 {
        writeln!(out, "    and {more} more racers failed")?;
    }
    if let Some(c) = &f.check {
        writeln!(out, "    {c}")?;
    }
    for d in &f.differences {
        writeln!(out, "    tree: {d}")?;
    }
    let more = f
        .differences_count
        .saturating_sub(f.differences.len() as u64);
    if more > 0 {
        writeln!(out, "    tree: and {more} more differences")?;
    }
    Ok(())
}

/// The stage's failure in a line: the sequential run's racer, or `--setup`.
fn stage_words(f: &Failing) -> String {
    let what = match (f.racers.first(), &f.check) {
        (Some(r), _) => r.line(),
        (None, Some(c)) => c.clone(),
        (None, None) => "it failed".into(),
    };
    format!("the sequential run failed on its own ({what}), so the command or the check is wrong")
}

impl Subject for Exec {
    const ABOUT: &'static str =
        "Race your own command: many copies at once, judged against a sequential run";
    const EXAMPLES: &'static [Example] = EXAMPLES;
    const STATUSES: &'static [exit::Status] = STATUSES;
    type Args = ProgramArgs<Params>;

    fn new(args: &ProgramArgs<Params>) -> anyhow::Result<Exec> {
        let (p, race) = (&args.0.own, &args.0.race);
        if !program::findable(&p.command[0]) {
            return Err(exit::usage(format!(
                "COMMAND {}: not found (nor on PATH)",
                quote_if_needed(&p.command[0])
            )));
        }
        if race.racers() > MAX_PROGRAMS {
            return Err(exit::usage(format!(
                "--racers {}: stress exec runs at most {MAX_PROGRAMS}",
                race.racers()
            )));
        }
        if let Some(t) = &p.template
            && !std::fs::metadata(t).is_ok_and(|m| m.is_dir())
        {
            return Err(exit::usage(format!(
                "--template '{}' is not a directory",
                t.display()
            )));
        }
        let shared = race.barrier_file.is_some();
        if shared && (race.rounds.is_none() || p.stop_on_first) {
            return Err(exit::usage(
                "across hosts stress exec needs --rounds, not --duration or --stop-on-first: every instance races the same rounds",
            ));
        }
        Ok(Exec {
            stage: Stage {
                template: p.template.clone(),
                setup: p.setup.clone(),
                check: p.check.clone(),
                timeout: Duration::from_secs_f64(p.timeout),
                expect: i32::from(p.expect_exit),
            },
            ignore: Ignore::new(&p.ignore).map_err(|e| exit::usage(format!("{e:#}")))?,
            params: p.clone(),
            keep: args.0.work.keep,
            instances: race.expect.unwrap_or(1),
            barrier_timeout: race.barrier_timeout(),
            oracle_ran: false,
            twin: None,
            stage_failed: None,
            failed: false,
            shared,
            played: 0,
            rounds: race.rounds.unwrap_or(0),
            widen_unavailable: match p.widen {
                0 => None,
                _ => widen::Filter::new().available().err(),
            },
        })
    }

    fn main_job(_race: RaceArgs) -> Option<ProgramArgs<Params>> {
        None
    }
}

/// What `stress exec` exits with.
const STATUSES: &[exit::Status] = &[
    exit::Status {
        code: 0,
        meaning: "pass: every racer of every round exited as expected and left the state right, and the canary failed as it must (or none ran: the report then says \"PASS, no control ran\")",
    },
    exit::Status {
        code: 1,
        meaning: "fail: in a round a racer exited otherwise than expected or hung, --check failed, or the tree differed from the sequential run's",
    },
    args::STATUSES[2],
    exit::Status {
        code: 4,
        meaning: "inconclusive: nothing failed, but the sequential run failed on its own (the command or the check is wrong), or the canary never failed (racing on up to 4 x --duration, or 4 x --rounds)",
    },
    args::STATUSES[4],
];

const EXAMPLES: &[Example] = &[
    Example {
        what: "check, then create: fails (mkdir: cannot create directory 'out': File exists)",
        lines: "racefree stress exec -- sh -c '[ -d out ] || mkdir out'",
    },
    Example {
        what: "idempotent creators pass",
        lines: "racefree stress exec -- mkdir -p out/a/b\nracefree stress exec -- racefree makedirs out/a/b",
    },
    Example {
        what: "Python's check-then-makedirs fails; exist_ok=True passes",
        lines: "racefree stress exec -- python3 -c \"import os; os.path.isdir('out/a') or os.makedirs('out/a')\"\nracefree stress exec -- python3 -c \"import os; os.makedirs('out/a', exist_ok=True)\"",
    },
    Example {
        what: "a lost update fails; the same under racefree lock passes",
        lines: "racefree stress exec --setup 'echo 0 > n' --check 'test \"$(cat n)\" = \"$RACEFREE_RACERS\"' -- sh -c 'n=$(cat n); echo $((n+1)) > n'\nracefree stress exec --setup 'echo 0 > n' --check 'test \"$(cat n)\" = \"$RACEFREE_RACERS\"' -- racefree lock n.lock -- sh -c 'n=$(cat n); echo $((n+1)) > n'",
    },
    Example {
        what: "an install step must leave what it leaves run one at a time",
        lines: "racefree stress exec --template ./fixture --compare-sequential --ignore '*.log' -- ./install.sh",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statuses_are_the_ones_every_stress_command_documents() {
        let codes: Vec<u8> = STATUSES.iter().map(|s| s.code).collect();
        assert_eq!(codes, [0, 1, 2, 4, 128]);
        let shared: Vec<u8> = args::STATUSES.iter().map(|s| s.code).collect();
        assert_eq!(shared, codes, "STATUSES borrows 2 and 128 by position");
    }

    #[test]
    fn a_failing_round_names_the_racer_its_stderr_and_the_tree() {
        let f = Failing {
            racers_failed: 3,
            racers: vec![Failed {
                racer: 2,
                how: "exited 1".into(),
                said: vec!["mkdir: cannot create directory 'out': File exists".into()],
            }],
            differences: vec!["count: 7 vs 8".into()],
            differences_count: 2,
            ..Failing::default()
        };
        assert_eq!(
            f.lines(8),
            vec![
                "3 of 8 racers failed; racer 2 exited 1: mkdir: cannot create directory 'out': File exists",
                "the tree differs from the sequential run's: count: 7 vs 8 (and 1 more)",
            ]
        );
        assert!(!Failing::default().failed());
    }
}
