//! The options every racing run shares, defined once: how many racers and of what
//! kind, how long, where, across how many hosts; and what such a run exits with.
//!
//! An arm's own options sit in its file; its command line is those options beside
//! these ([`FsArgs`] for the arms that work on a filesystem tree).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;

use crate::exit;

/// Defaults every arm shares, named once: the command line and `racefree stress`
/// use these.
pub mod defaults {
    /// Seconds an instance waits at a barrier file for the others.
    pub const BARRIER_TIMEOUT: u64 = 300;
    /// Seconds per arm.
    pub const DURATION: f64 = 3.0;
    /// Directory entries one instance of a run across hosts keeps for `stress
    /// report`: about 200 MB of directories on ext4, and a fraction of an NFS
    /// user's inode quota (rounds past it are not raced).
    pub const MAX_ENTRIES: u64 = 50_000;
}

/// How much longer than asked an arm races while its control has not failed:
/// up to this many times `--duration`, or `--rounds`.
pub const EXTENSION: u32 = 4;

/// Racers at most, whatever is asked: each is a thread or a process.
pub const MAX_RACERS: u32 = 1024;

/// The exit statuses of `stress`, of `stress report`, and of every arm that does
/// not declare its own.
pub const STATUSES: &[exit::Status] = &[
    exit::Status {
        code: 0,
        meaning: "pass: every check of racefree's arm held, and its control failed as it must (or none ran: the report then says \"PASS, no control ran\")",
    },
    exit::Status {
        code: 1,
        meaning: "fail: a verification of racefree's arm failed (the control arm's failures do not count), or stress report refused a report that contradicts itself",
    },
    exit::Status {
        code: 2,
        meaning: "usage error, including a --dir that does not exist or has no room left (no space, inodes or quota: nothing was judged), and for stress ident more racers than can be released within --duration",
    },
    exit::Status {
        code: 4,
        meaning: "inconclusive: every check of racefree's arm held, but its control never failed (racing on up to 4 x --duration, or 4 x --rounds): the run could not have seen a race; the report names the arm",
    },
    exit::Status {
        code: 128,
        meaning: "plus N: interrupted by signal N (130 for SIGINT, 143 for SIGTERM), after removing its work directory",
    },
];

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

    /// Run R rounds, and more while the control has not failed: up to 4 x R
    #[arg(long, value_name = "R", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: Option<u64>,

    /// Run rounds until S seconds have passed (at least one round), and on while the
    /// control has not failed: up to 4 x S
    #[arg(long, value_name = "S", default_value_t = defaults::DURATION, value_parser = positive_seconds)]
    pub duration: f64,

    /// Run no control arm. By default every run races the known-bad control beside
    /// racefree's arm, under the same load, and keeps racing past --duration (up to
    /// 4 x --duration, or 4 x --rounds) while the control has not failed: a run
    /// whose control never failed is INCONCLUSIVE (exit 4). Without a control the
    /// verdict is at best "PASS, no control ran"
    #[arg(long)]
    pub no_control: bool,

    /// Run the control arm: the default, accepted for old scripts
    #[arg(long, hide = true, conflicts_with = "no_control")]
    pub control: bool,

    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Across hosts: wait at this file on the shared tree until --expect instances
    /// have arrived (PATH.arrived.ID), then start together at the instant the first
    /// to see them all publishes in PATH.start. Needs --dir; every instance races in
    /// DIR/racefree-stress-NAME, which is kept, with each instance's
    /// report-ID.json, for `racefree stress report`, which removes each round's tree
    /// once it has verified it. Each instance races its control on its own, in
    /// DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per
    /// run
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

    /// With --barrier-file: the directory entries this instance's rounds may leave
    /// for `stress report`, in total: it races no round that would pass them, and
    /// refuses a round larger than them
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_ENTRIES, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_entries: u64,
}

impl RaceArgs {
    /// What `racefree stress` with no subcommand races with: every arm with its
    /// control (unless `no_control`), for `duration` seconds.
    pub fn main_job(racing: Racing, duration: f64, json: bool, no_control: bool) -> RaceArgs {
        RaceArgs {
            racing,
            rounds: None,
            duration,
            no_control,
            control: false,
            json,
            barrier_file: None,
            expect: None,
            id: None,
            barrier_timeout: defaults::BARRIER_TIMEOUT,
            max_entries: defaults::MAX_ENTRIES,
        }
    }

    pub fn racers(&self) -> u32 {
        self.racing.racers.unwrap_or_else(default_racers)
    }

    pub fn processes(&self) -> bool {
        self.racing.processes
    }

    /// Whether the control arm races beside racefree's.
    pub fn control(&self) -> bool {
        !self.no_control
    }

    /// Whether round `round` (0-based) should run, `elapsed` seconds into the run:
    /// the rounds or the duration asked for, and while `extend` (a control that has
    /// not yet failed) up to [`EXTENSION`] times as many.
    pub fn another_round(&self, round: u64, elapsed: f64, extend: bool) -> bool {
        let times = if extend { EXTENSION } else { 1 };
        match self.rounds {
            Some(r) => round < r.saturating_mul(u64::from(times)),
            None => round == 0 || elapsed < self.duration * f64::from(times),
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

/// The command line of an arm whose racers are programs of their own, the command
/// given last (stress exec): [`FsArgs`], its racers processes whatever
/// `--processes` says, which is hidden.
#[derive(Debug, Clone)]
pub struct ProgramArgs<P: clap::Args>(pub FsArgs<P>);

impl<P: clap::Args> clap::FromArgMatches for ProgramArgs<P> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut a = FsArgs::<P>::from_arg_matches(m)?;
        a.race.racing.processes = true;
        Ok(ProgramArgs(a))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<P: clap::Args> clap::Args for ProgramArgs<P> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let usage = format!(
            "racefree stress {} [OPTIONS] -- COMMAND [ARG]...",
            cmd.get_name()
        );
        FsArgs::<P>::augment_args(cmd)
            .override_usage(usage)
            .mut_arg("processes", |a| a.hide(true))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<P: clap::Args + std::fmt::Debug + Send + Sync + 'static> ArmArgs for ProgramArgs<P> {
    fn race(&self) -> &RaceArgs {
        &self.0.race
    }

    fn work(&self) -> &WorkArgs {
        &self.0.work
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
