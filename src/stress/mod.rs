//! `racefree stress`: parallel racers that hammer makedirs and ident and verify every
//! answer, each beside a known-bad control arm that proves the harness can see a race.
//!
//! With no subcommand it is racefree's main job on a fresh machine: both modes for a
//! few seconds each, on a temporary directory and on loopback, then the report.

pub mod gate;
pub mod ident;
pub mod makedirs;
pub mod report;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, Subcommand};
use serde::Serialize;

use crate::exit::{self, Exit};

#[derive(Debug, ClapArgs)]
#[command(
    args_conflicts_with_subcommands = true,
    long_about = "Spawn parallel racers (threads, or processes with --processes) that hammer \
        racefree's makedirs and ident, verify every answer, and run a known-bad control arm \
        under the same load to prove the harness can see a race.\n\n\
        With no subcommand: runs 'stress makedirs --control' on a fresh temporary directory and \
        'stress ident --control' on loopback, a few seconds each, prints the report and cleans \
        up. The exit status judges racefree's arms only."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<StressCommand>,

    /// Seconds for each of the two modes
    #[arg(long, value_name = "S", default_value_t = 3.0, value_parser = positive_seconds)]
    pub duration: f64,

    /// Racers per mode [default: 4 x cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
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
    #[command(after_long_help = exit::help_text("stress makedirs"))]
    Makedirs(makedirs::MakedirsArgs),
    /// Racers look up loopback connections held in every TCP state
    #[command(after_long_help = exit::help_text("stress ident"))]
    Ident(ident::IdentArgs),
    /// Merge the JSON reports instances wrote to a shared tree into one verdict
    #[command(after_long_help = exit::help_text("stress report"))]
    Report(report::ReportArgs),
    /// One racer process (started by --processes; not for direct use)
    #[command(hide = true, subcommand)]
    Worker(WorkerCommand),
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    Makedirs(makedirs::WorkerArgs),
    Ident(ident::WorkerArgs),
}

/// Options every racing mode shares.
#[derive(Debug, Clone, ClapArgs)]
pub struct RaceArgs {
    /// How many racers [default: 4 x cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub racers: Option<u32>,

    /// Racers are separate processes of this binary, released together by closing
    /// the pipes they block on
    #[arg(long)]
    pub processes: bool,

    /// Run exactly R rounds
    #[arg(long, value_name = "R", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: Option<u64>,

    /// Run rounds until S seconds have passed (at least one round)
    #[arg(long, value_name = "S", default_value_t = 3.0, value_parser = positive_seconds)]
    pub duration: f64,

    /// Also run the known-bad control arm under the same load and report its failures
    /// beside racefree's (the exit status ignores them)
    #[arg(long)]
    pub control: bool,

    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Across hosts: wait at this file on the shared tree until --expect instances
    /// have arrived, then start together. Needs --dir; every instance races in
    /// DIR/racefree-stress-NAME, which is kept, with each instance's
    /// report-ID.json, for `racefree stress report`. Use a fresh PATH per run
    #[arg(long, value_name = "PATH")]
    pub barrier_file: Option<PathBuf>,

    /// With --barrier-file: how many instances to wait for
    #[arg(long, value_name = "K", requires = "barrier_file", value_parser = clap::value_parser!(u32).range(1..))]
    pub expect: Option<u32>,

    /// This instance's id [default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, JOB_COMPLETION_INDEX, or 0]
    #[arg(long, value_name = "ID")]
    pub id: Option<u32>,

    /// With --barrier-file: seconds to wait for the others before giving up
    #[arg(
        long,
        value_name = "S",
        default_value_t = 300,
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
            barrier_timeout: 300,
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

fn default_racers() -> u32 {
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
/// enough to want one.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    seconds: f64,
}

impl Progress {
    pub fn new(label: &str, seconds: f64, enabled: bool) -> Progress {
        let bar = (enabled && seconds > 1.0 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(1000);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg:>16} [{bar:40}] {elapsed}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            bar
        });
        Progress { bar, seconds }
    }

    pub fn tick(&self, begin: Instant) {
        if let Some(bar) = &self.bar {
            let frac = (begin.elapsed().as_secs_f64() / self.seconds).min(1.0);
            bar.set_position((frac * 1000.0) as u64);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[derive(Serialize)]
struct Combined {
    makedirs: makedirs::MakedirsReport,
    ident: ident::IdentReport,
    passed: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        Some(StressCommand::Makedirs(a)) => {
            let progress =
                Progress::new("stress makedirs", a.race.duration, a.race.rounds.is_none());
            let report = makedirs::run(&a, &progress)?;
            progress.finish();
            emit(a.race.json, &report, |out| {
                report::print_makedirs(out, &report)
            })?;
            Ok(verdict(report.passed()))
        }
        Some(StressCommand::Ident(a)) => {
            let progress = Progress::new("stress ident", a.race.duration, a.race.rounds.is_none());
            let report = ident::run(&a, &progress)?;
            progress.finish();
            emit(a.race.json, &report, |out| {
                report::print_ident(out, &report)
            })?;
            Ok(verdict(report.passed()))
        }
        Some(StressCommand::Report(a)) => report::run(&a),
        Some(StressCommand::Worker(WorkerCommand::Makedirs(a))) => {
            makedirs::worker(&a)?;
            Ok(Exit::Success)
        }
        Some(StressCommand::Worker(WorkerCommand::Ident(a))) => {
            ident::worker(&a)?;
            Ok(Exit::Success)
        }
        None => run_both(&args),
    }
}

/// The main job: both modes, with their control arms, on a temporary directory and
/// on loopback.
fn run_both(args: &Args) -> anyhow::Result<Exit> {
    let race = RaceArgs::new(args.racers, args.processes, args.duration, args.json);
    let md_args = makedirs::MakedirsArgs {
        dir: None,
        depth: 4,
        fanout: 3,
        churn: false,
        keep: false,
        race: race.clone(),
    };
    let progress = Progress::new("stress makedirs", args.duration, true);
    let md = makedirs::run(&md_args, &progress)?;
    progress.finish();
    let id_args = ident::IdentArgs::defaults(race);
    let progress = Progress::new("stress ident", args.duration, true);
    let id = ident::run(&id_args, &progress)?;
    progress.finish();
    let passed = md.passed() && id.passed();
    let combined = Combined {
        makedirs: md,
        ident: id,
        passed,
    };
    emit(args.json, &combined, |out| {
        report::print_makedirs(out, &combined.makedirs)?;
        writeln!(out)?;
        report::print_ident(out, &combined.ident)?;
        writeln!(out)?;
        writeln!(out, "verdict: {}", if passed { "PASS" } else { "FAIL" })
    })?;
    Ok(verdict(passed))
}

fn verdict(passed: bool) -> Exit {
    if passed { Exit::Success } else { Exit::Failure }
}

fn emit<T: Serialize>(
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
