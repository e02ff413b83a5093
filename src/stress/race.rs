//! What an arm is: the contract between the engine and each subject under test,
//! and the report a run of it fills.
//!
//! A subject (makedirs, ident, ...) implements [`Race`] for the engine: it sets up a
//! round, does one racer's work, judges the round, and knows its control variant (the
//! known-bad implementation the same racers run under the same load, in rounds of
//! their own). It implements [`Subject`] for the command line: its arguments, and
//! what `racefree stress` runs it with. The registry (`arms`) lists the subjects;
//! everything else iterates it.

use std::io::Write;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::args::{self, ArmArgs, RaceArgs};
use super::no_room;
use super::program::{Exited, Program};
use super::verdict::Verdict;
use super::widen::Widen;
use crate::{exit, help};

/// Which implementation racers run: racefree's, or the known-bad control that shows
/// the harness can see the race.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    #[default]
    Racefree,
    Control,
}

impl Arm {
    pub fn name(self) -> &'static str {
        match self {
            Arm::Racefree => "racefree",
            Arm::Control => "control",
        }
    }

    /// The name of round `n`'s directory for this arm: `round-N` or `control-N`.
    pub fn round_dir(self, n: u64) -> String {
        match self {
            Arm::Racefree => format!("round-{n}"),
            Arm::Control => format!("control-{n}"),
        }
    }

    /// `name` in round `n`'s directory, relative to the work directory: where a
    /// verdict reads back what the round left.
    pub fn in_round(self, n: u64, name: &str) -> PathBuf {
        Path::new(&self.round_dir(n)).join(name)
    }
}

/// One round of one arm, as the engine hands it to the subject.
#[derive(Clone, Debug)]
pub struct RoundCtx {
    pub arm: Arm,
    pub round: u64,
    /// This instance's id (0 unless many hosts race).
    pub instance: u32,
    /// The work directory of the whole run.
    pub work: PathBuf,
    /// This round's directory below it (`round-N` or `control-N`); not yet made.
    pub dir: PathBuf,
    pub racers: u32,
    /// Racers are processes (`--processes`).
    pub processes: bool,
    /// Instances on other hosts race on the same round (judged by `stress report`).
    pub shared: bool,
    /// With `--duration`: when (ns since the epoch) the run should end. A subject
    /// whose racers do many small independent steps stops them there.
    pub deadline_ns: Option<u64>,
}

/// A subject under test. Racer functions take no `self`: a racer process has only
/// the round it was handed.
pub trait Race: Sync + Sized {
    /// The arm's name: its subcommand (`stress NAME`), its progress label, and the
    /// `subject` its reports carry.
    const NAME: &'static str;
    /// Whether instances on many hosts can race on one shared tree.
    const SHARED: bool;
    /// The run's parameters, echoed in the report (flattened into its JSON).
    type Params: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug;
    /// Everything a racer needs for one round; racer processes get it as JSON.
    type Round: Serialize + DeserializeOwned + Sync;
    /// One racer's result.
    type Outcome: Serialize + DeserializeOwned + Send;
    /// What one churner (load beside the racers) did.
    type Churn: Send;
    /// Figures the verdicts add up per arm (flattened into the arm's JSON).
    type Counts: Serialize + DeserializeOwned + Default + Clone + std::fmt::Debug;
    /// What a multi-host instance records per round for `stress report`.
    type Record: Serialize + DeserializeOwned;

    fn params(&self) -> Self::Params;
    /// Checks parameters (from the command line, or read back from a report that
    /// anyone could have edited) against the command line's own ranges.
    fn validate(params: &Self::Params) -> anyhow::Result<()>;
    /// Prepares one round (files, the racers' instructions).
    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Self::Round>;
    /// One racer's work, after release.
    fn race(round: &Self::Round, racer: u32) -> Self::Outcome;
    /// How many churners to run beside the racers.
    fn churners(&self, _round: &Self::Round) -> usize {
        0
    }
    /// One churner: load, not a racer under test, until `stop`.
    fn churn(_round: &Self::Round, _index: usize, _stop: &AtomicBool) -> Option<Self::Churn> {
        None
    }
    /// Racers that are programs of their own (stress exec's), instead of
    /// [`Race::race`]: the engine starts each held right before its execve and
    /// releases them together, with no churners. `None`: racers run `race`.
    fn programs(&self, _round: &Self::Round) -> Option<Programs<Self::Outcome>> {
        None
    }
    /// Whether the arm has seen enough, so that no further round starts (stress
    /// exec's --stop-on-first, or its sequential run failing on its own).
    fn enough(&self) -> bool {
        false
    }
    /// Judges one round into the arm's tally (`tally.rounds` already counts it).
    fn judge(
        &mut self,
        ctx: &RoundCtx,
        round: &Self::Round,
        outcomes: &[Self::Outcome],
        churn: Vec<Self::Churn>,
        tally: &mut Tally<Self::Counts>,
    ) -> anyhow::Result<()>;
    /// After the last round.
    fn finish(&mut self, _tally: &mut Tally<Self::Counts>) {}
    /// Problems setting the stage: what the run could not vouch for.
    fn setup_problems(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Why the run could judge nothing, whatever its tallies (stress exec's
    /// sequential run, failing on its own): the verdict is then INCONCLUSIVE, for
    /// this reason, unless racefree's arm failed.
    fn proves_nothing(&mut self) -> Option<String> {
        None
    }
    /// The figures among the counts that are failures, by name ("duplicates"): a
    /// tally with any of them above 0 failed, whatever its other figures say.
    fn failures(_counts: &Self::Counts) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// The calls one round of `racers` makes: exactly (a range of one) or within
    /// bounds. A report whose calls are not its rounds times this is refused.
    fn round_calls(_params: &Self::Params, _racers: u32) -> RangeInclusive<u64> {
        0..=u64::MAX
    }
    /// Checks the arm's own figures in a report against its parameters (a report
    /// anyone could have edited); the engine has checked the calls.
    fn check_counts(
        _params: &Self::Params,
        _racers: u32,
        _tally: &Tally<Self::Counts>,
    ) -> anyhow::Result<()> {
        Ok(())
    }
    /// Multi-host runs: what this instance did in a round, for the merge.
    fn record(ctx: &RoundCtx, round: &Self::Round, outcomes: &[Self::Outcome]) -> Self::Record;
    /// Multi-host runs: the calls of a round that its record shows succeeded, where
    /// it tells; they must add up to the report's calls that did not fail.
    fn record_calls(_record: &Self::Record) -> Option<u64> {
        None
    }
    /// Multi-host runs: the directory entries one round leaves on the shared tree
    /// for `stress report`, at most (what `--max-entries` counts).
    fn round_entries(_params: &Self::Params, _racers: u32) -> u64 {
        1
    }
    /// Multi-host runs: what a round leaves in the work directory besides
    /// `round-N`, by prefix (stress exec's `twin-` and `sync-`: `twin-N`, `sync-N`),
    /// which `stress report` removes with it.
    const ROUND_EXTRAS: &'static [&'static str] = &[];
    /// Multi-host runs: judges round `n` from what every instance that raced it
    /// recorded, and the shared tree under `work` (read without following
    /// symlinks). Returns its problems.
    fn merge_round(
        params: &Self::Params,
        work: &Path,
        n: u64,
        records: &[Contribution<Self::Record>],
    ) -> anyhow::Result<Vec<String>>;
    /// Extra columns of the readable table: headers, then one arm's cells.
    fn columns() -> &'static [&'static str] {
        &[]
    }
    fn cells(_counts: &Self::Counts) -> Vec<String> {
        Vec::new()
    }
    /// The first line of the readable report, after "stress NAME: ".
    fn describe(params: &Self::Params) -> String;
    /// Lines after the table (ident's rows).
    fn print_more(_out: &mut dyn Write, _report: &Report<Self>) -> std::io::Result<()> {
        Ok(())
    }
}

/// An arm as the command line sees it: `stress NAME` with its arguments, and the
/// arguments `racefree stress` runs it with. With [`Race`], all the registry needs.
pub trait Subject: Race + 'static {
    /// Its line in `stress --help`.
    const ABOUT: &'static str;
    /// Examples its long `--help` and man page show, above its exit statuses.
    const EXAMPLES: &'static [help::Example] = &[];
    /// What `stress NAME` exits with: the statuses every racing run shares unless
    /// the arm has more to say.
    const STATUSES: &'static [exit::Status] = args::STATUSES;
    /// A hidden subcommand of `stress` that the arm's racer processes run, if any.
    const HELPER: Option<Helper> = None;
    /// The arm's command line.
    type Args: ArmArgs;

    /// The subject of one run, from its command line.
    fn new(args: &Self::Args) -> anyhow::Result<Self>;
    /// The command line `racefree stress` (no subcommand) runs the arm with, racing
    /// as `race` says; `None` keeps the arm out of that run.
    fn main_job(race: RaceArgs) -> Option<Self::Args>;
}

/// A hidden subcommand of `stress` that an arm's racer processes run: lock's `rmw`,
/// the COMMAND each increment runs under `racefree lock`.
#[derive(Debug)]
pub struct Helper {
    pub name: &'static str,
    pub about: &'static str,
    /// Adds its arguments to the subcommand: its `clap::Args::augment_args`.
    pub args: fn(clap::Command) -> clap::Command,
    pub run: fn(&clap::ArgMatches) -> anyhow::Result<()>,
}

/// A round's racers as programs of their own (see [`Race::programs`]).
pub struct Programs<O> {
    pub list: Vec<Program>,
    /// How long they may run before they count as hung and are killed.
    pub timeout: Duration,
    /// Across hosts: the instant the instances agreed to release them.
    pub release_ns: Option<u64>,
    /// How each racer's calls that change the filesystem are held back, widening
    /// the windows of check-then-act races ([`super::widen`]).
    pub widen: Option<Widen>,
    /// A racer's outcome, from what its program did.
    pub outcome: fn(Exited) -> O,
}

/// One arm's verdicts, added up over its rounds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally<C> {
    pub arm: Arm,
    pub rounds: u64,
    pub calls: u64,
    pub failed_calls: u64,
    /// Rounds whose result did not check out.
    pub bad_rounds: u64,
    /// The first few problems found, in words.
    pub problems: Vec<String>,
    #[serde(flatten)]
    pub counts: C,
    /// The first failure that said the filesystem was full: not a verdict on
    /// racefree, but a run that cannot go on.
    #[serde(skip)]
    pub no_room: Option<String>,
}

/// Problems kept per arm.
pub const PROBLEMS_KEPT: usize = 10;

/// Failure messages one racer keeps for its round; past them it only counts.
pub const FAILURES_KEPT: usize = 3;

/// Keeps a racer's failure message while it has fewer than [`FAILURES_KEPT`]; the
/// message is made only then.
pub fn keep_failure(failures: &mut Vec<String>, message: impl FnOnce() -> String) {
    if failures.len() < FAILURES_KEPT {
        failures.push(message());
    }
}

impl<C> Tally<C> {
    pub fn note(&mut self, problem: String) {
        if self.problems.len() < PROBLEMS_KEPT {
            self.problems.push(problem);
        }
    }

    /// Folds one racer's round in: its calls, how many failed, and the failure
    /// messages it kept ([`keep_failure`]), each noted with the round's number.
    pub fn racer(&mut self, round: u64, calls: u64, failed: u64, failures: &[String]) {
        self.calls += calls;
        self.failed_calls += failed;
        for f in failures {
            if self.no_room.is_none() && no_room::said(f).is_some() {
                self.no_room = Some(f.clone());
            }
            self.note(format!("round {round}: {f}"));
        }
    }

    /// Counts a bad round and notes its first few problems.
    pub fn bad_round(&mut self, n: u64, problems: Vec<String>) {
        if problems.is_empty() {
            return;
        }
        self.bad_rounds += 1;
        for p in problems.into_iter().take(3) {
            self.note(format!("round {n}: {p}"));
        }
    }
}

/// The format of the reports this racefree writes: 2 since a report carries its
/// verdict and its control. Format 1 (no `format` field) is still read.
pub const FORMAT: u32 = 2;

fn format_1() -> u32 {
    1
}

/// The report of one run of one subject; also what each instance of a multi-host
/// run writes as `report-ID.json`.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = ""))]
pub struct Report<A: Race> {
    /// [`FORMAT`]; absent in format 1.
    #[serde(default = "format_1")]
    pub format: u32,
    /// The arm's [`Race::NAME`].
    pub subject: String,
    pub instance: u32,
    pub racers: u32,
    pub processes: bool,
    #[serde(flatten)]
    pub params: A::Params,
    /// Largest and median distance between the first and last racer's release.
    pub start_spread_max_ns: u64,
    pub start_spread_median_ns: u64,
    pub seconds: f64,
    /// When this instance was released (ns since the epoch): across hosts, the
    /// merge compares these to show how closely the hosts started.
    pub released_ns: u64,
    pub work_dir: PathBuf,
    /// Whether `work_dir` is still there after the run (`--keep`, or kept for
    /// `stress report`).
    #[serde(default)]
    pub work_dir_kept: bool,
    /// Problems setting the stage: the run cannot vouch for what it did not test.
    #[serde(default)]
    pub setup_problems: Vec<String>,
    /// Why the run could judge nothing ([`Race::proves_nothing`]), if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
    /// [`Report::judge`], as the run ended (absent in format 1).
    #[serde(default)]
    pub verdict: Verdict,
    /// Whether the control arm raced (absent in format 1, which raced none across
    /// hosts).
    #[serde(default)]
    pub control_ran: bool,
    pub racefree: Tally<A::Counts>,
    pub control: Option<Tally<A::Counts>>,
}

impl<A: Race> Report<A> {
    /// Whether a tally shows a failure: a failed call, a bad round, or a failure
    /// among its figures.
    pub fn failed(t: &Tally<A::Counts>) -> bool {
        t.failed_calls > 0 || t.bad_rounds > 0 || A::failures(&t.counts).iter().any(|f| f.1 > 0)
    }

    /// Whether racefree's arm held: it raced, failed nothing, and everything was
    /// tested.
    pub fn passed(&self) -> bool {
        self.racefree.rounds > 0 && !Self::failed(&self.racefree) && self.setup_problems.is_empty()
    }

    /// The verdict the tallies support ([`Verdict::decide`]).
    pub fn judge(&self) -> Verdict {
        if self.inconclusive.is_some() && !Self::failed(&self.racefree) {
            return Verdict::Inconclusive;
        }
        Verdict::decide(!self.passed(), self.control.as_ref().map(Self::failed))
    }

    /// Why the verdict is INCONCLUSIVE, naming the arm.
    pub fn why_inconclusive(&self) -> String {
        if let Some(why) = &self.inconclusive {
            return format!("stress {}: {why}", A::NAME);
        }
        format!(
            "stress {}'s control did not fail in {} rounds",
            A::NAME,
            self.control.as_ref().map_or(0, |c| c.rounds)
        )
    }

    /// The tally of `arm`, if it runs.
    pub fn tally_mut(&mut self, arm: Arm) -> Option<&mut Tally<A::Counts>> {
        match arm {
            Arm::Racefree => Some(&mut self.racefree),
            Arm::Control => self.control.as_mut(),
        }
    }
}

/// One line of a multi-host instance's `rounds-ID.jsonl`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundLine<R> {
    pub round: u64,
    pub record: R,
}

/// What one instance recorded of a round, as the merge hands it to the arm.
#[derive(Debug)]
pub struct Contribution<R> {
    pub instance: u32,
    /// The racers it raced with.
    pub racers: u32,
    pub record: R,
}
