//! The options every racing run shares, defined once: how many racers and of what
//! kind, how long, where, across how many hosts; and what such a run exits with.
//!
//! An arm's own options sit in its file; its command line is those options beside
//! these ([`FsArgs`] for the arms that work on a filesystem tree).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;

use crate::exit::{self, Exit};

/// Defaults every arm shares, named once: the command line and `racefree stress`
/// use these.
pub mod defaults {
    /// Seconds an instance waits at a barrier file for the others.
    pub const BARRIER_TIMEOUT: u64 = 300;
    /// Seconds per arm.
    pub const DURATION: f64 = 3.0;
}

/// Racers at most, whatever is asked: each is a thread or a process.
pub const MAX_RACERS: u32 = 1024;

/// The exit statuses of `stress`, of `stress report`, and of every arm that does
/// not declare its own.
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

/// The status a verdict earns (see [`STATUSES`]).
pub fn exit_status(passed: bool) -> Exit {
    if passed { Exit::Success } else { Exit::Failure }
}

/// How many racers, and whether they are threads or processes: what `racefree
/// stress` passes on to every arm. The help is the subcommands'; `stress` itself
/// words it for its whole run.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct Racing {
    /// How many racers [default: 4 x cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_RACERS as i64))]
    pub racers: Option<u32>,

    /// Racers are separate processes of this binary, released together by closing
    /// the pipes they block on
    #[arg(long)]
    pub processes: bool,
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

/// What an arm that takes no `--dir` works in: a fresh temporary directory.
pub static NO_WORK_ARGS: WorkArgs = WorkArgs {
    dir: None,
    keep: false,
};

/// Options every racing mode shares.
#[derive(Debug, Clone, ClapArgs)]
pub struct RaceArgs {
    #[command(flatten)]
    pub racing: Racing,

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
    /// What `racefree stress` with no subcommand races with: every arm with its
    /// control, for `duration` seconds.
    pub fn main_job(racing: Racing, duration: f64, json: bool) -> RaceArgs {
        RaceArgs {
            racing,
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

    pub fn racers(&self) -> u32 {
        self.racing.racers.unwrap_or_else(default_racers)
    }

    pub fn processes(&self) -> bool {
        self.racing.processes
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
}

/// An arm's whole command line, as the engine needs it: how to race, and where.
pub trait ArmArgs: clap::Args + std::fmt::Debug + Send + Sync + 'static {
    fn race(&self) -> &RaceArgs;
    fn work(&self) -> &WorkArgs;
}

/// The command line of an arm that works on a filesystem tree: its own options
/// `P`, then where it works, then how it races.
#[derive(Debug, Clone, ClapArgs)]
pub struct FsArgs<P: clap::Args> {
    #[command(flatten)]
    pub own: P,

    #[command(flatten)]
    pub work: WorkArgs,

    #[command(flatten)]
    pub race: RaceArgs,
}

impl<P: clap::Args + std::fmt::Debug + Send + Sync + 'static> ArmArgs for FsArgs<P> {
    fn race(&self) -> &RaceArgs {
        &self.race
    }

    fn work(&self) -> &WorkArgs {
        &self.work
    }
}

impl<P: clap::Args> FsArgs<P> {
    /// `own` options on a fresh temporary directory, racing as `race` says.
    pub fn on_temp_dir(own: P, race: RaceArgs) -> FsArgs<P> {
        FsArgs {
            own,
            work: WorkArgs::default(),
            race,
        }
    }
}

/// A duration in seconds: a finite number above zero.
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("must be a positive number of seconds".into()),
    }
}

pub fn default_racers() -> u32 {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}
