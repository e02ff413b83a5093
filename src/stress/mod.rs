//! `racefree stress`: parallel racers that hammer racefree's commands and verify
//! every answer, each beside a known-bad control arm that proves the harness can see
//! a race.
//!
//! One engine ([`engine`]) runs every arm: the subject (makedirs, ident, ...)
//! supplies a round's setup, one racer's work and the round's verdict; the engine
//! releases the racers together ([`gate`]), keeps the tally and writes the report
//! ([`report`]), which `stress report` merges across hosts. With no subcommand it is
//! racefree's main job on a fresh machine: every arm briefly, racefree's and the
//! control, then the report.

pub mod cleanup;
pub mod counter;
pub mod engine;
pub mod gate;
pub mod ident;
pub mod lock;
pub mod makedirs;
pub mod report;
pub mod tree;
pub mod write;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, Subcommand};

use crate::exit::{self, Exit};
use engine::{Race, Report, Subject};

/// Defaults, named once: the command line and `racefree stress` use these.
pub mod defaults {
    /// Levels of each makedirs round's tree.
    pub const DEPTH: u32 = 4;
    /// Subdirectories per level.
    pub const FANOUT: u32 = 3;
    /// Seconds an instance waits at a barrier file for the others.
    pub const BARRIER_TIMEOUT: u64 = 300;
    /// Seconds per arm.
    pub const DURATION: f64 = 3.0;
    /// Connection pairs held in each TCP state by `stress ident`.
    pub const CONNECTIONS: u32 = 4;
}

/// Racers at most, whatever is asked: each is a thread or a process.
pub const MAX_RACERS: u32 = 1024;

/// The long description, for `--help` and the man page. cli.rs names it too: the
/// subcommand's doc comment there would otherwise replace it.
pub const LONG_ABOUT: &str = "Spawn parallel racers (threads, or processes with --processes) that hammer \
        racefree's commands, verify every answer, and run a known-bad control arm \
        under the same load to prove the harness can see a race.\n\n\
        With no subcommand: runs every arm (makedirs, counter, write and lock on a fresh \
        temporary directory, ident on loopback) with its control, briefly, prints the report \
        and cleans up. The exit \
        status judges racefree's arms only. Interrupted (Ctrl-C, SIGTERM), a run removes \
        its work directory and dies by the signal.";

/// The exit statuses of `stress` and each of its subcommands.
pub const STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "a verification of racefree's arm failed (the control arm's failures do not count)",
    },
    exit::Status {
        code: 2,
        meaning: "usage error, including a --dir that does not exist, and for stress ident more racers than can be released within --duration",
    },
    exit::Status {
        code: 128,
        meaning: "plus N: interrupted by signal N (130 for SIGINT, 143 for SIGTERM), after removing its work directory",
    },
];

#[derive(Debug, ClapArgs)]
#[command(
    args_conflicts_with_subcommands = true,
    long_about = LONG_ABOUT,
    after_long_help = exit::help_text(STATUSES)
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<StressCommand>,

    /// Seconds for each arm
    #[arg(long, value_name = "S", default_value_t = defaults::DURATION, value_parser = positive_seconds)]
    pub duration: f64,

    /// Racers per arm [default: 4 x cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_RACERS as i64))]
    pub racers: Option<u32>,

    /// Racers are separate processes of this binary instead of threads
    #[arg(long)]
    pub processes: bool,

    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StressCommand {
    /// Racers build the same deep trees at once; every round verified exactly
    #[command(after_long_help = exit::help_text(STATUSES))]
    Makedirs(makedirs::MakedirsArgs),
    /// Racers look up loopback connections held in every TCP state
    #[command(after_long_help = exit::help_text(STATUSES))]
    Ident(ident::IdentArgs),
    /// Racers take numbers from one counter file; all distinct, exactly 1..total
    #[command(after_long_help = exit::help_text(STATUSES))]
    Counter(counter::CounterArgs),
    /// Writers replace one file while readers check every read is one whole version
    #[command(after_long_help = exit::help_text(STATUSES))]
    Write(write::WriteArgs),
    /// Racers increment one counter, each read-modify-write under racefree lock
    #[command(after_long_help = exit::help_text(STATUSES))]
    Lock(lock::LockArgs),
    /// Merge the reports instances wrote to a shared tree into one verdict
    #[command(after_long_help = exit::help_text(STATUSES))]
    Report(report::ReportArgs),
    /// One racer process (started by --processes; not for direct use)
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// One locked read-modify-write (the COMMAND of stress lock; not for direct use)
    #[command(hide = true)]
    Rmw(lock::RmwArgs),
}

/// A racer process: `racefree stress worker SUBJECT --racer N`, its round on stdin.
#[derive(Debug, ClapArgs)]
pub struct WorkerArgs {
    #[arg(value_enum)]
    pub subject: Subject,
    #[arg(long)]
    pub racer: u32,
}

/// Where a filesystem arm works.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct WorkArgs {
    /// The tree under test (any mount, network filesystems included); it must exist.
    /// The run works in a new subdirectory it creates there [default: $TMPDIR]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the work directory instead of removing it at the end
    #[arg(long)]
    pub keep: bool,
}

/// Options every racing mode shares.
#[derive(Debug, Clone, ClapArgs)]
pub struct RaceArgs {
    /// How many racers [default: 4 x cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_RACERS as i64))]
    pub racers: Option<u32>,

    /// Racers are separate processes of this binary, released together by closing
    /// the pipes they block on
    #[arg(long)]
    pub processes: bool,

    /// Run exactly R rounds
    #[arg(long, value_name = "R", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: Option<u64>,

    /// Run rounds until S seconds have passed (at least one round)
    #[arg(long, value_name = "S", default_value_t = defaults::DURATION, value_parser = positive_seconds)]
    pub duration: f64,

    /// Also run the known-bad control arm under the same load and report its failures
    /// beside racefree's (the exit status ignores them)
    #[arg(long)]
    pub control: bool,

    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Across hosts: wait at this file on the shared tree until --expect instances
    /// have arrived (PATH.arrived.ID), then start together at the instant the first
    /// to see them all publishes in PATH.start. Needs --dir; every instance races in
    /// DIR/racefree-stress-NAME, which is kept, with each instance's
    /// report-ID.json, for `racefree stress report`. Use a fresh PATH per run
    #[arg(long, value_name = "PATH")]
    pub barrier_file: Option<PathBuf>,

    /// With --barrier-file: how many instances to wait for
    #[arg(long, value_name = "K", requires = "barrier_file", value_parser = clap::value_parser!(u32).range(1..))]
    pub expect: Option<u32>,

    /// This instance's id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]
    #[arg(long, value_name = "ID")]
    pub id: Option<u32>,

    /// With --barrier-file: seconds to wait for the others before giving up
    #[arg(
        long,
        value_name = "S",
        default_value_t = defaults::BARRIER_TIMEOUT,
        requires = "barrier_file"
    )]
    pub barrier_timeout: u64,
}

impl RaceArgs {
    pub fn racers(&self) -> u32 {
        self.racers.unwrap_or_else(default_racers)
    }

    /// Whether round `round` (0-based) should run, given when the run began.
    pub fn another_round(&self, round: u64, begin: Instant) -> bool {
        match self.rounds {
            Some(r) => round < r,
            None => round == 0 || begin.elapsed().as_secs_f64() < self.duration,
        }
    }

    pub fn barrier_timeout(&self) -> Duration {
        Duration::from_secs(self.barrier_timeout)
    }

    fn new(racers: Option<u32>, processes: bool, duration: f64, json: bool) -> RaceArgs {
        RaceArgs {
            racers,
            processes,
            rounds: None,
            duration,
            control: true,
            json,
            barrier_file: None,
            expect: None,
            id: None,
            barrier_timeout: defaults::BARRIER_TIMEOUT,
        }
    }
}

/// A duration in seconds: a finite number above zero.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("must be a positive number of seconds".into()),
    }
}

pub fn default_racers() -> u32 {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// A deterministic shuffle (xorshift64), so each racer takes its own order and a
/// failing run can be replayed.
pub fn shuffle<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut s = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

/// A progress bar on stderr, only when stderr is a terminal and the run is long
/// enough to want one: `      makedirs [=======>          ] 3s`, redrawn in place at
/// most ten times a second, and erased at the end so the report stands alone.
pub struct Progress {
    bar: Option<std::cell::RefCell<Bar>>,
    seconds: f64,
}

struct Bar {
    label: String,
    drawn: Option<Instant>,
}

/// Width of the bar between its brackets.
const BAR_WIDTH: usize = 40;

/// One line of the bar, for `frac` of the run done after `elapsed` whole seconds.
fn bar_line(label: &str, frac: f64, elapsed: u64) -> String {
    let filled = ((frac.clamp(0.0, 1.0) * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    let mut bar = "=".repeat(filled);
    if filled < BAR_WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat(BAR_WIDTH - filled - 1));
    }
    format!("\r{label:>16} [{bar}] {elapsed}s")
}

impl Progress {
    pub fn new(label: &str, seconds: f64, enabled: bool) -> Progress {
        let bar = (enabled && seconds > 1.0 && std::io::stderr().is_terminal()).then(|| {
            std::cell::RefCell::new(Bar {
                label: label.to_string(),
                drawn: None,
            })
        });
        Progress { bar, seconds }
    }

    pub fn tick(&self, begin: Instant) {
        let Some(bar) = &self.bar else { return };
        let mut bar = bar.borrow_mut();
        if bar
            .drawn
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        bar.drawn = Some(Instant::now());
        let elapsed = begin.elapsed();
        let line = bar_line(
            &bar.label,
            elapsed.as_secs_f64() / self.seconds,
            elapsed.as_secs(),
        );
        // A terminal that cannot take the bar costs the bar, not the run.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar
            && bar.borrow().drawn.is_some()
        {
            // Back to the line's start and erase it.
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match &args.command {
        Some(StressCommand::Worker(w)) => {
            worker(w)?;
            return Ok(Exit::Success);
        }
        Some(StressCommand::Rmw(a)) => {
            lock::rmw(a)?;
            return Ok(Exit::Success);
        }
        _ => {}
    }
    cleanup::install()?;
    let result = run_command(args);
    // The run's guards have removed what it made: now die by the signal, if one came.
    cleanup::die_if_caught();
    result
}

fn run_command(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        Some(StressCommand::Makedirs(a)) => {
            let report = run_one(&mut makedirs::Makedirs::new(&a)?, &a.race, &a.work)?;
            emit(a.race.json, &report, |out| report::print(out, &report))?;
            Ok(verdict(report.passed()))
        }
        Some(StressCommand::Ident(a)) => {
            let report = run_one(&mut ident::Ident::new(&a)?, &a.race, &WorkArgs::default())?;
            emit(a.race.json, &report, |out| report::print(out, &report))?;
            Ok(verdict(report.passed()))
        }
        Some(StressCommand::Counter(a)) => {
            let report = run_one(&mut counter::Counter::new(&a), &a.race, &a.work)?;
            emit(a.race.json, &report, |out| report::print(out, &report))?;
            Ok(verdict(report.passed()))
        }
        Some(StressCommand::Write(a)) => {
            let report = run_one(&mut write::WriteArm::new(&a)?, &a.race, &a.work)?;
            emit(a.race.json, &report, |out| report::print(out, &report))?;
            Ok(verdict(report.passed()))
        }
        Some(StressCommand::Lock(a)) => {
            let report = run_one(&mut lock::Lock::new(&a), &a.race, &a.work)?;
            emit(a.race.json, &report, |out| report::print(out, &report))?;
            Ok(verdict(report.passed()))
        }
        Some(StressCommand::Report(a)) => report::run(&a),
        Some(StressCommand::Worker(_) | StressCommand::Rmw(_)) => unreachable!("handled before"),
        None => run_all(&args),
    }
}

fn worker(w: &WorkerArgs) -> anyhow::Result<()> {
    match w.subject {
        Subject::Makedirs => engine::worker::<makedirs::Makedirs>(w.racer),
        Subject::Ident => engine::worker::<ident::Ident>(w.racer),
        Subject::Counter => engine::worker::<counter::Counter>(w.racer),
        Subject::Write => engine::worker::<write::WriteArm>(w.racer),
        Subject::Lock => engine::worker::<lock::Lock>(w.racer),
    }
}

fn run_one<A: Race>(
    subject: &mut A,
    race: &RaceArgs,
    work: &WorkArgs,
) -> anyhow::Result<Report<A>> {
    let progress = Progress::new(
        &format!("stress {}", A::SUBJECT.name()),
        race.duration,
        race.rounds.is_none(),
    );
    let report = engine::run(subject, race, work, &progress);
    progress.finish();
    report
}

/// Every arm's report, for `racefree stress` with no subcommand.
struct All {
    json: serde_json::Map<String, serde_json::Value>,
    text: Vec<u8>,
    passed: bool,
}

impl All {
    fn add<A: Race>(&mut self, report: &Report<A>) -> anyhow::Result<()> {
        self.passed &= report.passed();
        self.json
            .insert(A::SUBJECT.name().into(), serde_json::to_value(report)?);
        report::print(&mut self.text, report)?;
        writeln!(self.text)?;
        Ok(())
    }
}

/// The main job: every arm with its control, on a temporary directory and on
/// loopback.
fn run_all(args: &Args) -> anyhow::Result<Exit> {
    let race = RaceArgs::new(args.racers, args.processes, args.duration, args.json);
    let work = WorkArgs::default();
    let mut all = All {
        json: serde_json::Map::new(),
        text: Vec::new(),
        passed: true,
    };
    let md_args = makedirs::MakedirsArgs {
        depth: defaults::DEPTH,
        fanout: defaults::FANOUT,
        churn: false,
        work: work.clone(),
        race: race.clone(),
    };
    all.add(&run_one(
        &mut makedirs::Makedirs::new(&md_args)?,
        &race,
        &work,
    )?)?;
    let id_args = ident::IdentArgs::defaults(race.clone());
    all.add(&run_one(&mut ident::Ident::new(&id_args)?, &race, &work)?)?;
    let counter_args = counter::CounterArgs {
        takes: counter::DEFAULT_TAKES,
        work: work.clone(),
        race: race.clone(),
    };
    all.add(&run_one(
        &mut counter::Counter::new(&counter_args),
        &race,
        &work,
    )?)?;
    let write_args = write::WriteArgs {
        versions: write::DEFAULT_VERSIONS,
        reads: write::DEFAULT_READS,
        work: work.clone(),
        race: race.clone(),
    };
    all.add(&run_one(
        &mut write::WriteArm::new(&write_args)?,
        &race,
        &work,
    )?)?;
    let lock_args = lock::LockArgs {
        increments: lock::DEFAULT_INCREMENTS,
        work: work.clone(),
        race: race.clone(),
    };
    all.add(&run_one(&mut lock::Lock::new(&lock_args), &race, &work)?)?;
    let passed = all.passed;
    all.json.insert("passed".into(), passed.into());
    emit(args.json, &all.json, |out| {
        out.write_all(&all.text)?;
        writeln!(out, "verdict: {}", if passed { "PASS" } else { "FAIL" })
    })?;
    Ok(verdict(passed))
}

fn verdict(passed: bool) -> Exit {
    if passed { Exit::Success } else { Exit::Failure }
}

fn emit<T: serde::Serialize>(
    json: bool,
    value: &T,
    table: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
    } else {
        table(&mut out)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_in_proportion_and_never_overflows() {
        let line = |frac| bar_line("makedirs", frac, 3);
        assert_eq!(
            line(0.0),
            format!("\r        makedirs [>{}] 3s", " ".repeat(39))
        );
        assert_eq!(
            line(0.5),
            format!(
                "\r        makedirs [{}>{}] 3s",
                "=".repeat(20),
                " ".repeat(19)
            )
        );
        assert_eq!(
            line(1.0),
            format!("\r        makedirs [{}] 3s", "=".repeat(40))
        );
        assert_eq!(line(7.0), line(1.0));
        assert_eq!(line(-1.0), line(0.0));
        assert_eq!(line(f64::NAN), line(0.0));
    }
}
