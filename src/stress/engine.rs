//! The stress engine: one gate, one round loop, one report, for every arm.
//!
//! A subject under test plugs in by implementing [`Race`]. The engine does the rest:
//! the work directory, releasing racers together (threads, or processes of this
//! binary, in [`super::racers`]; or instances on many hosts meeting at a barrier
//! file), the tally per [`Arm`], the rounds past the duration while the control has
//! not failed, the report and its verdict, and for multi-host runs the per-round
//! records `stress report` merges.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use super::args::{EXTENSION, RaceArgs, WorkArgs};
use super::cleanup::{interrupted, stopping};
use super::gate;
use super::no_room;
use super::progress::Progress;
use super::race::{Arm, FORMAT, Race, Report, RoundCtx, RoundLine, Tally};
use super::racers::run_round;
use super::verdict::Verdict;
use super::workdir::WorkDir;

/// Runs one subject: every round of racefree's arm and of its control (unless
/// `--no-control`), each judged as it ends; then the verdict.
pub fn run<A: Race>(
    subject: &mut A,
    race: &RaceArgs,
    work_args: &WorkArgs,
    progress: &Progress,
) -> anyhow::Result<Report<A>> {
    run_in(subject, race, work_args, progress).map_err(|e| no_room::explain(e, work_args))
}

fn run_in<A: Race>(
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
        check_shared::<A>(race, work_args, &params)?;
    }
    let work = WorkDir::make(race, work_args)?;
    // Across hosts each instance races its control on its own, beside the shared
    // rounds: the control's verdict is the instance's to give.
    let controls = match shared && race.control() {
        true => Some(WorkDir::controls(&work.path, instance)?),
        false => None,
    };
    let local = || match work_args.keep {
        true => Afterwards::Keep,
        false => Afterwards::Remove,
    };
    let mut afterwards = match shared {
        true => Afterwards::Record(RoundsFile::create(&work.path, instance)?),
        false => local(),
    };
    let mut control_afterwards = local();
    let mut report = new_report::<A>(params, instance, race, &work.path, work_args.keep);
    report.released_ns = release(race, instance)?;
    let racers = report.racers;
    let round_ctx = |arm: Arm, n: u64, deadline_ns: Option<u64>| {
        let (base, shared) = match (arm, &controls) {
            (Arm::Control, Some(c)) => (c.path.clone(), false),
            _ => (work.path.clone(), shared),
        };
        RoundCtx {
            arm,
            round: n,
            instance,
            dir: base.join(arm.round_dir(n)),
            work: base,
            racers,
            processes: race.processes(),
            shared,
            deadline_ns,
        }
    };
    race_rounds(
        subject,
        &mut report,
        race,
        progress,
        &round_ctx,
        [&mut afterwards, &mut control_afterwards],
    )?;
    if let (Some(c), true) = (controls, work_args.keep) {
        c.keep();
    }
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
/// duration are done, and past them while the control has not failed; then the
/// report's figures and its verdict.
fn race_rounds<A: Race>(
    subject: &mut A,
    report: &mut Report<A>,
    race: &RaceArgs,
    progress: &Progress,
    round_ctx: &dyn Fn(Arm, u64, Option<u64>) -> RoundCtx,
    [afterwards, control_afterwards]: [&mut Afterwards; 2],
) -> anyhow::Result<()> {
    let begin = Instant::now();
    let mut spreads = Vec::new();
    let last = rounds_kept::<A>(report, race);
    let mut n = 0u64;
    while n < last
        && race.another_round(n, begin.elapsed().as_secs_f64(), control_held(report))
        && !subject.enough()
    {
        progress.tick(begin);
        let deadline_ns = deadline(race, report.released_ns);
        for arm in [Arm::Racefree, Arm::Control] {
            if stopping() {
                return Err(interrupted());
            }
            let control = report.control.is_some();
            // Across hosts the control's rounds are this instance's alone.
            let after = match arm {
                Arm::Racefree => &mut *afterwards,
                Arm::Control => &mut *control_afterwards,
            };
            if let Some(tally) = report.tally_mut(arm) {
                let ctx = round_ctx(arm, n, round_deadline(deadline_ns, arm, control));
                spreads.push(play_round(subject, &ctx, tally, after)?);
                if let Some(said) = &tally.no_room {
                    return Err(no_room::NoRoom(said.clone()).into());
                }
            }
        }
        n += 1;
    }
    finish(subject, report, begin, spreads);
    Ok(())
}

/// Whether the control races and has not failed yet: the run cannot vouch for
/// anything until it does.
fn control_held<A: Race>(report: &Report<A>) -> bool {
    report
        .control
        .as_ref()
        .is_some_and(|c| !Report::<A>::failed(c))
}

/// Across hosts, the rounds this instance may race: those whose trees fit in
/// `--max-entries` (the merge removes them once verified). No limit on one host,
/// where each round's tree goes as soon as it is judged.
fn rounds_kept<A: Race>(report: &Report<A>, race: &RaceArgs) -> u64 {
    match race.barrier_file {
        Some(_) => race.max_entries / A::round_entries(&report.params, report.racers).max(1),
        None => u64::MAX,
    }
}

/// With `--duration`, when the rounds starting now should end: at the duration,
/// or once past it (a control not yet failed), at the end of the extension.
fn deadline(race: &RaceArgs, released_ns: u64) -> Option<u64> {
    race.rounds.is_none().then(|| {
        let end = |times: u32| released_ns + (race.duration * f64::from(times) * 1e9) as u64;
        match gate::now_ns() < end(1) {
            true => end(1),
            false => end(EXTENSION),
        }
    })
}

/// The instance's release: now, or across hosts when every instance has arrived
/// at the barrier file.
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

/// What a run across hosts needs: an arm that can race on a shared tree, the
/// tree, and rounds that fit in `--max-entries`.
fn check_shared<A: Race>(
    race: &RaceArgs,
    work: &WorkArgs,
    params: &A::Params,
) -> anyhow::Result<()> {
    if !A::SHARED {
        bail!(
            "stress {} runs on one host: it cannot race across hosts with --barrier-file",
            A::NAME
        );
    }
    if work.dir.is_none() {
        return Err(crate::exit::usage(
            "--barrier-file needs --dir: the shared tree every instance races on",
        ));
    }
    let entries = A::round_entries(params, race.racers());
    if entries > race.max_entries {
        return Err(crate::exit::usage(format!(
            "a round of stress {} leaves up to {entries} entries on the shared tree, more than --max-entries {}: raise it, or race smaller rounds",
            A::NAME,
            race.max_entries
        )));
    }
    Ok(())
}

/// The report before the first round: the run's shape, empty tallies.
fn new_report<A: Race>(
    params: A::Params,
    instance: u32,
    race: &RaceArgs,
    work: &Path,
    keep: bool,
) -> Report<A> {
    Report {
        format: FORMAT,
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
        work_dir_kept: keep || race.barrier_file.is_some(),
        setup_problems: Vec::new(),
        inconclusive: None,
        verdict: Verdict::Pass,
        control_ran: race.control(),
        racefree: Tally::default(),
        control: race.control().then(|| Tally {
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
    report.inconclusive = subject.proves_nothing();
    report.verdict = report.judge();
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
