//! The stress engine: one gate, one round loop, one report, for every arm.
//!
//! A subject under test plugs in by implementing [`Race`]. The engine does the rest:
//! the work directory, releasing racers together (threads, or processes of this
//! binary, or instances on many hosts meeting at a barrier file), churners beside
//! them, the tally per [`Arm`], the report, and for multi-host runs the per-round
//! records `stress report` merges.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::args::{RaceArgs, WorkArgs};
use super::cleanup::{interrupted, stopping};
use super::gate::{self, StartLine};
use super::program;
use super::progress::Progress;
use super::race::{Arm, Race, Report, RoundCtx, RoundLine, Tally};
use super::workdir::WorkDir;

/// A racer's outcome with the instant it was released.
#[derive(Serialize, Deserialize)]
pub struct Raced<O> {
    pub started_ns: u64,
    pub outcome: O,
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
    let instance = gate::instance_id(race.id)?;
    let shared = race.barrier_file.is_some();
    if shared {
        check_shared::<A>(race, work_args)?;
    }
    let work = WorkDir::make(race, work_args)?;
    let mut afterwards = match (shared, work_args.keep) {
        (true, _) => Afterwards::Record(RoundsFile::create(&work.path, instance)?),
        (false, true) => Afterwards::Keep,
        (false, false) => Afterwards::Remove,
    };
    let mut report = new_report::<A>(params, instance, race, &work.path);
    report.released_ns = release(race, instance)?;
    let deadline_ns = race
        .rounds
        .is_none()
        .then(|| report.released_ns + (race.duration * 1e9) as u64);
    let racers = report.racers;
    let round_ctx = |arm: Arm, n: u64| RoundCtx {
        arm,
        round: n,
        instance,
        work: work.path.clone(),
        dir: work.path.join(arm.round_dir(n)),
        racers,
        processes: race.processes(),
        shared,
        deadline_ns: round_deadline(deadline_ns, arm, race.control),
    };
    race_rounds(
        subject,
        &mut report,
        race,
        progress,
        &round_ctx,
        &mut afterwards,
    )?;
    match afterwards {
        Afterwards::Record(f) => {
            f.close(&work.path, instance, &report)?;
            work.keep();
        }
        Afterwards::Keep => work.keep(),
        Afterwards::Remove => {}
    }
    Ok(report)
}

/// What becomes of a round's directory once it is judged.
enum Afterwards {
    /// Across hosts: kept for `stress report`, with this instance's record of it.
    Record(RoundsFile),
    /// `--keep`.
    Keep,
    Remove,
}

/// Every round, racefree's arm and then the control's, until the rounds or the
/// duration are done; then the report's figures.
fn race_rounds<A: Race>(
    subject: &mut A,
    report: &mut Report<A>,
    race: &RaceArgs,
    progress: &Progress,
    round_ctx: &dyn Fn(Arm, u64) -> RoundCtx,
    afterwards: &mut Afterwards,
) -> anyhow::Result<()> {
    let begin = Instant::now();
    let mut spreads = Vec::new();
    let mut n = 0u64;
    while race.another_round(n, begin) && !subject.enough() {
        progress.tick(begin);
        for arm in [Arm::Racefree, Arm::Control] {
            if stopping() {
                return Err(interrupted());
            }
            if let Some(tally) = report.tally_mut(arm) {
                spreads.push(play_round(subject, &round_ctx(arm, n), tally, afterwards)?);
            }
        }
        n += 1;
    }
    finish(subject, report, begin, spreads);
    Ok(())
}

/// The instant this instance is released: now, or across hosts when every
/// instance has arrived at the barrier file.
fn release(race: &RaceArgs, instance: u32) -> anyhow::Result<u64> {
    match &race.barrier_file {
        Some(b) => gate::barrier_file(
            b,
            instance,
            race.expect.unwrap_or(1),
            race.barrier_timeout(),
        ),
        None => Ok(gate::now_ns()),
    }
}

/// What a run across hosts needs: an arm that can race on a shared tree, no
/// control (it runs on one host), and the tree.
fn check_shared<A: Race>(race: &RaceArgs, work: &WorkArgs) -> anyhow::Result<()> {
    if !A::SHARED {
        bail!(
            "stress {} runs on one host: --barrier-file is for the filesystem arms",
            A::NAME
        );
    }
    if race.control {
        bail!("--control runs on one host; leave it out with --barrier-file");
    }
    if work.dir.is_none() {
        return Err(crate::exit::usage(
            "--barrier-file needs --dir: the shared tree every instance races on",
        ));
    }
    Ok(())
}

/// The report before the first round: the run's shape, empty tallies.
fn new_report<A: Race>(
    params: A::Params,
    instance: u32,
    race: &RaceArgs,
    work: &Path,
) -> Report<A> {
    Report {
        subject: A::NAME.to_string(),
        instance,
        racers: race.racers(),
        processes: race.processes(),
        params,
        start_spread_max_ns: 0,
        start_spread_median_ns: 0,
        seconds: 0.0,
        released_ns: 0,
        work_dir: work.to_path_buf(),
        setup_problems: Vec::new(),
        racefree: Tally::default(),
        control: race.control.then(|| Tally {
            arm: Arm::Control,
            ..Tally::default()
        }),
    }
}

/// When a round of `arm` should end, with `--duration`. A round cut short at the
/// deadline leaves the control's round of the same number its fair share of what
/// remains, not nothing.
fn round_deadline(deadline_ns: Option<u64>, arm: Arm, control: bool) -> Option<u64> {
    let arms_left = if arm == Arm::Racefree && control {
        2
    } else {
        1
    };
    deadline_ns.map(|d| {
        let now = gate::now_ns();
        now + d.saturating_sub(now) / arms_left
    })
}

/// One round of one arm: set up, raced, judged into `tally`, then recorded for
/// the merge, kept or removed. Returns the racers' start spread.
fn play_round<A: Race>(
    subject: &mut A,
    ctx: &RoundCtx,
    tally: &mut Tally<A::Counts>,
    afterwards: &mut Afterwards,
) -> anyhow::Result<u64> {
    let round = subject.setup(ctx)?;
    let (raced, churn) = run_round(subject, &round, ctx.racers, ctx.processes)?;
    let spread = gate::spread_ns(raced.iter().map(|r| r.started_ns));
    let outcomes: Vec<A::Outcome> = raced.into_iter().map(|r| r.outcome).collect();
    tally.rounds += 1;
    subject.judge(ctx, &round, &outcomes, churn, tally)?;
    match afterwards {
        Afterwards::Record(f) => f.append(ctx.round, &A::record(ctx, &round, &outcomes))?,
        Afterwards::Keep => {}
        Afterwards::Remove => remove_round(&ctx.dir)?,
    }
    Ok(spread)
}

/// After the last round: the time taken, the start spreads, each tally finished,
/// and what the stage could not vouch for.
fn finish<A: Race>(subject: &mut A, report: &mut Report<A>, begin: Instant, mut spreads: Vec<u64>) {
    report.seconds = begin.elapsed().as_secs_f64();
    spreads.sort_unstable();
    report.start_spread_max_ns = spreads.last().copied().unwrap_or(0);
    report.start_spread_median_ns = spreads.get(spreads.len() / 2).copied().unwrap_or(0);
    subject.finish(&mut report.racefree);
    if let Some(c) = &mut report.control {
        subject.finish(c);
    }
    report.setup_problems = subject.setup_problems();
}

/// A multi-host instance's `rounds-ID.jsonl`: one line per round, for the merge.
struct RoundsFile(BufWriter<File>);

impl RoundsFile {
    fn create(work: &Path, instance: u32) -> anyhow::Result<RoundsFile> {
        let path = work.join(format!("rounds-{instance}.jsonl"));
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
        Ok(RoundsFile(BufWriter::new(f)))
    }

    fn append<R: Serialize>(&mut self, round: u64, record: &R) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.0, &RoundLine { round, record })?;
        self.0.write_all(b"\n")?;
        Ok(())
    }

    /// Makes the rounds durable, then writes the instance's header beside them,
    /// `report-ID.json`: a merge that finds the header finds every round it claims.
    fn close<A: Race>(
        mut self,
        work: &Path,
        instance: u32,
        report: &Report<A>,
    ) -> anyhow::Result<()> {
        self.0
            .flush()
            .and_then(|()| self.0.get_ref().sync_all())
            .context("writing this instance's rounds file")?;
        let path = work.join(format!("report-{instance}.json"));
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating report '{}'", path.display()))?;
        f.write_all(&serde_json::to_vec_pretty(report)?)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing report '{}'", path.display()))
    }
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

/// Runs one round: racers released together (threads, processes of this binary,
/// or the arm's own programs), churners started with them and stopped when they
/// are done.
fn run_round<A: Race>(
    subject: &A,
    round: &A::Round,
    racers: u32,
    processes: bool,
) -> anyhow::Result<RoundResult<A>> {
    if let Some(p) = subject.programs(round) {
        let raced = program::race(&p.list, p.timeout, p.release_ns, p.widen)?
            .into_iter()
            .map(|e| Raced {
                started_ns: e.started_ns,
                outcome: (p.outcome)(e),
            })
            .collect();
        return Ok((raced, Vec::new()));
    }
    let start = StartLine::default();
    let done = AtomicBool::new(false);
    let churners = subject.churners(round);
    std::thread::scope(|s| {
        let mut churn_handles = Vec::new();
        let mut threads = Vec::new();
        let mut procs = None;
        // Start everything; if anything cannot start, those already waiting give up.
        let started = start_churners::<A>(s, round, churners, (&start, &done), &mut churn_handles)
            .and_then(|()| {
                if processes {
                    procs = Some(spawn_racers::<A>(round, racers)?);
                    Ok(())
                } else {
                    start_racers::<A>(s, round, racers, &start, &mut threads)
                }
            });
        start.open(started.is_ok());
        let raced = started.and_then(|()| match procs {
            Some(p) => outcomes_of::<A>(p),
            None => Ok(threads
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

/// Churner threads, each waiting at the start line, then churning until `done`.
/// Each one started is in `handles`, even when a later one cannot start.
fn start_churners<'scope, 'env, A: Race>(
    s: &'scope Scope<'scope, 'env>,
    round: &'env A::Round,
    churners: usize,
    (start, done): (&'env StartLine, &'env AtomicBool),
    handles: &mut Vec<ScopedJoinHandle<'scope, Option<A::Churn>>>,
) -> anyhow::Result<()>
where
    A::Churn: 'scope,
{
    for i in 0..churners {
        handles.push(
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
    Ok(())
}

/// Racer threads, each waiting at the start line. Each one started is in
/// `handles`, even when a later one cannot start.
fn start_racers<'scope, 'env, A: Race>(
    s: &'scope Scope<'scope, 'env>,
    round: &'env A::Round,
    racers: u32,
    start: &'env StartLine,
    handles: &mut Vec<ScopedJoinHandle<'scope, Option<Raced<A::Outcome>>>>,
) -> anyhow::Result<()>
where
    A::Outcome: 'scope,
{
    for i in 0..racers {
        handles.push(
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
                .with_context(|| format!("starting racer thread {} of {racers}", i + 1))?,
        );
    }
    Ok(())
}

/// Racer processes, `racefree stress worker NAME --racer N`, each blocked reading
/// the round on its stdin.
fn spawn_racers<A: Race>(round: &A::Round, racers: u32) -> anyhow::Result<gate::Racers> {
    let bytes = serde_json::to_vec(round)?;
    gate::Racers::spawn(
        (0..racers).map(|i| {
            vec![
                "stress".into(),
                "worker".into(),
                A::NAME.into(),
                "--racer".into(),
                i.to_string().into(),
            ]
        }),
        &bytes,
    )
}

/// Releases the racer processes and reads what each printed.
fn outcomes_of<A: Race>(mut procs: gate::Racers) -> anyhow::Result<Vec<Raced<A::Outcome>>> {
    procs.release();
    procs
        .wait_all()?
        .into_iter()
        .map(|out| {
            serde_json::from_slice::<Raced<A::Outcome>>(&out.stdout)
                .context("reading a racer process's result")
        })
        .collect()
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
