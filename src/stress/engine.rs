//! The stress engine: one gate, one round loop, one report, for every arm.
//!
//! A subject under test (makedirs, ident, ...) plugs in by implementing [`Race`]: it
//! sets up a round, does one racer's work, judges the round, and knows its control
//! variant (the known-bad implementation the same racers run under the same load, in
//! rounds of their own). The engine does the rest: the work directory, releasing
//! racers together (threads, or processes of this binary, or instances on many
//! hosts meeting at a barrier file), churners beside them, the tally per [`Arm`],
//! the report, and for multi-host runs the per-round records `stress report` merges.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cleanup::{interrupted, stopping};
use super::gate::{self, StartLine};
use super::{Progress, RaceArgs, WorkArgs};

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
}

/// What is under test: one arm per racefree command.
#[derive(
    Clone,
    Copy,
    Debug,
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
pub enum Subject {
    Makedirs,
    Ident,
    Counter,
    Write,
    Lock,
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::Makedirs => "makedirs",
            Subject::Ident => "ident",
            Subject::Counter => "counter",
            Subject::Write => "write",
            Subject::Lock => "lock",
        }
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
pub trait Race: Sync {
    const SUBJECT: Subject;
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
    /// Multi-host runs: what this instance did in a round, for the merge.
    fn record(ctx: &RoundCtx, round: &Self::Round, outcomes: &[Self::Outcome]) -> Self::Record;
    /// Multi-host runs: judges round `n` from every instance's record and the shared
    /// tree under `work` (read without following symlinks). Returns its problems.
    fn merge_round(
        params: &Self::Params,
        work: &Path,
        n: u64,
        records: &[Self::Record],
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
    fn print_more(_out: &mut dyn Write, _report: &Report<Self>) -> std::io::Result<()>
    where
        Self: Sized,
    {
        Ok(())
    }
}

/// A racer's outcome with the instant it was released.
#[derive(Serialize, Deserialize)]
pub struct Raced<O> {
    pub started_ns: u64,
    pub outcome: O,
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
    pub fn held(&self) -> bool {
        self.rounds > 0 && self.failed_calls == 0 && self.bad_rounds == 0
    }

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

/// The report of one run of one subject; also what each instance of a multi-host
/// run writes as `report-ID.json`.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = ""))]
pub struct Report<A: Race> {
    pub subject: Subject,
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
    /// Problems setting the stage: the run cannot vouch for what it did not test.
    #[serde(default)]
    pub setup_problems: Vec<String>,
    pub racefree: Tally<A::Counts>,
    pub control: Option<Tally<A::Counts>>,
}

impl<A: Race> Report<A> {
    /// The verdict: racefree's arm held, and everything was tested.
    pub fn passed(&self) -> bool {
        self.racefree.held() && self.setup_problems.is_empty()
    }
}

/// One line of a multi-host instance's `rounds-ID.jsonl`.
#[derive(Serialize, Deserialize)]
pub struct RoundLine<R> {
    pub round: u64,
    pub record: R,
}

/// The work directory: made exclusively for this run (removed at the end unless
/// kept, and on any early return or signal), or shared by instances on many hosts.
struct WorkDir {
    path: PathBuf,
    temp: Option<tempfile::TempDir>,
}

impl Drop for WorkDir {
    /// Removes the work directory (unless kept). A racer's last step may still be
    /// landing in it (a `racefree lock` child finishing its write after its racer
    /// was killed by a signal): if removal meets a new entry, it tries again, a
    /// bounded number of times.
    fn drop(&mut self) {
        if let Some(t) = self.temp.take() {
            for _ in 0..50 {
                match std::fs::remove_dir_all(t.path()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    _ => break,
                }
            }
        }
    }
}

impl WorkDir {
    fn make(race: &RaceArgs, work: &WorkArgs) -> anyhow::Result<WorkDir> {
        if let Some(dir) = &work.dir {
            // Refused, never made: a mistyped --dir must not leave a tree behind.
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(crate::exit::usage(format!(
                        "--dir '{}' is not a directory",
                        dir.display()
                    )));
                }
                Err(e) => {
                    return Err(crate::exit::usage(format!(
                        "--dir '{}': {}; the run works in a new directory it makes inside an existing one",
                        dir.display(),
                        e.raw_os_error().map_or_else(
                            || e.to_string(),
                            |n| nix::errno::Errno::from_raw(n).desc().to_string()
                        )
                    )));
                }
            }
        }
        let base = work.dir.clone().unwrap_or_else(std::env::temp_dir);
        match &race.barrier_file {
            Some(b) => {
                // One name every instance agrees on, made tolerantly.
                let name = b
                    .file_name()
                    .map_or("shared".into(), |n| n.to_string_lossy());
                let path = base.join(format!("racefree-stress-{name}"));
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if !std::fs::symlink_metadata(&path)?.is_dir() {
                            bail!(
                                "'{}' exists and is not a directory (symbolic links are not followed)",
                                path.display()
                            );
                        }
                    }
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("cannot create work directory '{}'", path.display())
                        });
                    }
                }
                Ok(WorkDir { path, temp: None })
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("racefree-stress-")
                    .tempdir_in(&base)
                    .with_context(|| {
                        format!("cannot create a work directory in '{}'", base.display())
                    })?;
                Ok(WorkDir {
                    path: temp.path().to_path_buf(),
                    temp: Some(temp),
                })
            }
        }
    }

    /// Keeps the directory (`--keep`): it is no longer removed when dropped.
    fn keep(mut self) {
        if let Some(t) = self.temp.take() {
            let _ = t.keep();
        }
    }
}

/// Runs one subject: every round of racefree's arm (and of the control, with
/// `--control`), judged as it ends.
pub fn run<A: Race>(
    subject: &mut A,
    race: &RaceArgs,
    work_args: &WorkArgs,
    progress: &Progress,
) -> anyhow::Result<Report<A>> {
    let params = subject.params();
    A::validate(&params)?;
    let racers = race.racers();
    let instance = gate::instance_id(race.id)?;
    let shared = race.barrier_file.is_some();
    if shared {
        if !A::SHARED {
            bail!(
                "stress {} runs on one host: --barrier-file is for the filesystem arms (makedirs, counter, write, lock)",
                A::SUBJECT.name()
            );
        }
        if race.control {
            bail!("--control runs on one host; leave it out with --barrier-file");
        }
        if work_args.dir.is_none() {
            return Err(crate::exit::usage(
                "--barrier-file needs --dir: the shared tree every instance races on",
            ));
        }
    }
    let work = WorkDir::make(race, work_args)?;
    let mut rounds_file = if shared {
        let path = work.path.join(format!("rounds-{instance}.jsonl"));
        let f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "creating '{}' (left by an earlier run? use a fresh --barrier-file)",
                    path.display()
                )
            })?;
        Some(BufWriter::new(f))
    } else {
        None
    };

    let mut report = Report::<A> {
        subject: A::SUBJECT,
        instance,
        racers,
        processes: race.processes,
        params,
        start_spread_max_ns: 0,
        start_spread_median_ns: 0,
        seconds: 0.0,
        released_ns: 0,
        work_dir: work.path.clone(),
        setup_problems: Vec::new(),
        racefree: Tally::default(),
        control: race.control.then(|| Tally {
            arm: Arm::Control,
            ..Tally::default()
        }),
    };
    report.released_ns = match &race.barrier_file {
        Some(b) => gate::barrier_file(
            b,
            instance,
            race.expect.unwrap_or(1),
            race.barrier_timeout(),
        )?,
        None => gate::now_ns(),
    };
    let deadline_ns = race
        .rounds
        .is_none()
        .then(|| report.released_ns + (race.duration * 1e9) as u64);

    let begin = Instant::now();
    let mut spreads = Vec::new();
    let mut n = 0u64;
    while race.another_round(n, begin) {
        progress.tick(begin);
        for arm in [Arm::Racefree, Arm::Control] {
            if stopping() {
                return Err(interrupted());
            }
            let Some(tally) = (match arm {
                Arm::Racefree => Some(&mut report.racefree),
                Arm::Control => report.control.as_mut(),
            }) else {
                continue;
            };
            // A round cut short at the deadline leaves the control's round of the
            // same number its fair share of what remains, not nothing.
            let arms_left = if arm == Arm::Racefree && race.control {
                2
            } else {
                1
            };
            let round_deadline_ns = deadline_ns.map(|d| {
                let now = gate::now_ns();
                now + d.saturating_sub(now) / arms_left
            });
            let ctx = RoundCtx {
                arm,
                round: n,
                instance,
                work: work.path.clone(),
                dir: work.path.join(arm.round_dir(n)),
                racers,
                processes: race.processes,
                shared,
                deadline_ns: round_deadline_ns,
            };
            let round = subject.setup(&ctx)?;
            let (raced, churn) = run_round(subject, &round, racers, race.processes)?;
            spreads.push(gate::spread_ns(raced.iter().map(|r| r.started_ns)));
            let outcomes: Vec<A::Outcome> = raced.into_iter().map(|r| r.outcome).collect();
            tally.rounds += 1;
            subject.judge(&ctx, &round, &outcomes, churn, tally)?;
            if let Some(f) = &mut rounds_file {
                serde_json::to_writer(
                    &mut *f,
                    &RoundLine {
                        round: n,
                        record: A::record(&ctx, &round, &outcomes),
                    },
                )?;
                f.write_all(b"\n")?;
            } else if !work_args.keep {
                remove_round(&ctx.dir)?;
            }
        }
        n += 1;
    }
    report.seconds = begin.elapsed().as_secs_f64();
    spreads.sort_unstable();
    report.start_spread_max_ns = spreads.last().copied().unwrap_or(0);
    report.start_spread_median_ns = spreads.get(spreads.len() / 2).copied().unwrap_or(0);
    subject.finish(&mut report.racefree);
    if let Some(c) = &mut report.control {
        subject.finish(c);
    }
    report.setup_problems = subject.setup_problems();

    if let Some(mut f) = rounds_file {
        f.flush()
            .and_then(|()| f.get_ref().sync_all())
            .context("writing this instance's rounds file")?;
        let path = work.path.join(format!("report-{instance}.json"));
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating report '{}'", path.display()))?;
        f.write_all(&serde_json::to_vec_pretty(&report)?)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing report '{}'", path.display()))?;
        work.keep();
    } else if work_args.keep {
        work.keep();
    }
    Ok(report)
}

/// Removes a round's directory, if the round made one.
fn remove_round(dir: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing round directory '{}'", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("examining '{}'", dir.display())),
    }
}

type RoundResult<A> = (Vec<Raced<<A as Race>::Outcome>>, Vec<<A as Race>::Churn>);

/// Runs one round: racers released together (threads, or processes of this
/// binary), churners started with them and stopped when they are done.
fn run_round<A: Race>(
    subject: &A,
    round: &A::Round,
    racers: u32,
    processes: bool,
) -> anyhow::Result<RoundResult<A>> {
    let start = StartLine::default();
    let done = AtomicBool::new(false);
    let churners = subject.churners(round);
    std::thread::scope(|s| {
        let (start, done) = (&start, &done);
        let mut churn_handles = Vec::new();
        let mut racer_handles = Vec::new();
        let mut procs = None;
        // Start everything; if anything cannot start, those already waiting give up.
        let started = (|| -> anyhow::Result<()> {
            for i in 0..churners {
                churn_handles.push(
                    std::thread::Builder::new()
                        .name("churner".into())
                        .spawn_scoped(s, move || {
                            if start.wait() {
                                A::churn(round, i, done)
                            } else {
                                None
                            }
                        })
                        .context("starting a churner thread")?,
                );
            }
            if processes {
                let bytes = serde_json::to_vec(round)?;
                procs = Some(gate::Racers::spawn(
                    (0..racers).map(|i| {
                        vec![
                            "stress".into(),
                            "worker".into(),
                            A::SUBJECT.name().into(),
                            "--racer".into(),
                            i.to_string().into(),
                        ]
                    }),
                    &bytes,
                )?);
            } else {
                for i in 0..racers {
                    racer_handles.push(
                        std::thread::Builder::new()
                            .name("racer".into())
                            .spawn_scoped(s, move || {
                                start.wait().then(|| {
                                    let started_ns = gate::now_ns();
                                    Raced {
                                        started_ns,
                                        outcome: A::race(round, i),
                                    }
                                })
                            })
                            .with_context(|| {
                                format!("starting racer thread {} of {racers}", i + 1)
                            })?,
                    );
                }
            }
            Ok(())
        })();
        start.open(started.is_ok());
        let raced = started.and_then(|()| match procs {
            Some(mut p) => {
                p.release();
                p.wait_all()?
                    .into_iter()
                    .map(|out| {
                        serde_json::from_slice::<Raced<A::Outcome>>(&out.stdout)
                            .context("reading a racer process's result")
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            }
            None => Ok(racer_handles
                .into_iter()
                .filter_map(|h| h.join().expect("a racer thread panicked"))
                .collect()),
        });
        done.store(true, Ordering::Relaxed);
        let churn: Vec<A::Churn> = churn_handles
            .into_iter()
            .filter_map(|h| h.join().expect("a churner panicked"))
            .collect();
        Ok((raced?, churn))
    })
}

/// The body of a racer process (`racefree stress worker SUBJECT --racer N`): read
/// the round from stdin, wait for the release, race, print the outcome as JSON.
pub fn worker<A: Race>(racer: u32) -> anyhow::Result<()> {
    let (bytes, started_ns) =
        gate::read_round_and_wait().context("waiting for the start signal")?;
    let round: A::Round = serde_json::from_slice(&bytes).context("reading the round")?;
    let outcome = A::race(&round, racer);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(
        &mut out,
        &Raced {
            started_ns,
            outcome,
        },
    )?;
    out.flush()?;
    Ok(())
}
