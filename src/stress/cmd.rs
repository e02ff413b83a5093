//! The `racefree stress` command line: with no subcommand, the main job (every arm
//! with its control, briefly); `stress NAME` for one arm of the registry; `stress
//! report`; and the hidden subcommands racer processes run.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Arg, ArgMatches, Args as ClapArgs, Command, FromArgMatches, Subcommand};

use super::args::{self, RaceArgs, Racing, defaults, positive_seconds};
use super::arms::{self, ARMS};
use super::cleanup;
use super::entry::{Entry, Invocation};
use super::race::Helper;
use super::report;
use super::table::emit;
use super::verdict::Verdict;
use crate::exit::{self, Exit};
use crate::help;

/// The long description, for `--help` and the man page. cli.rs names it too: the
/// subcommand's doc comment there would otherwise replace it.
pub const LONG_ABOUT: &str = "Spawn parallel racers (threads, or processes with --processes) that hammer \
        racefree's commands, verify every answer, and run a known-bad control arm \
        under the same load to prove the harness can see a race.\n\n\
        With no subcommand: runs every arm (makedirs, counter, write, crash and lock on a \
        fresh temporary directory, ident on loopback) with its control, briefly, prints the report \
        and cleans up. The verdict is FAIL if any arm failed, else INCONCLUSIVE if any arm's \
        control never failed (it races on, up to 4 x --duration, while it has not), else \
        PASS; the control's own failures are what it must show, not a failure. \
        Interrupted (Ctrl-C, SIGTERM), a run removes its work directory and dies by the \
        signal.";

/// The exit statuses of `stress` and each of its subcommands that does not declare
/// its own.
pub const STATUSES: &[exit::Status] = args::STATUSES;

/// `racefree stress`'s examples, for `--help` and the man page.
pub const EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "the main job: every arm beside its control, a few seconds each, then the verdict",
        lines: "racefree stress",
    },
    help::Example {
        what: "one arm on a directory of your own, longer, racers as processes",
        lines: "racefree stress write --dir /srv/data/scratch --processes --duration 60",
    },
    help::Example {
        what: "in a script: the verdict alone (pass, fail or inconclusive)",
        lines: "racefree stress --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"verdict\"])'",
    },
];

/// `racefree stress report`'s examples.
pub const REPORT_EXAMPLES: &[help::Example] = &[help::Example {
    what: "after every instance of a multi-host run has ended: one verdict, the trees removed",
    lines: "racefree stress report /mnt/nfs/scratch/racefree-stress-go-$SLURM_JOB_ID",
}];

#[derive(Debug, ClapArgs)]
#[command(
    args_conflicts_with_subcommands = true,
    long_about = LONG_ABOUT,
    after_long_help = help::long_help(EXAMPLES, STATUSES),
    mut_args(in_main_job_words)
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<StressCommand>,

    /// Seconds for each arm, and on while its control has not failed: up to 4 x S
    #[arg(long, value_name = "S", default_value_t = defaults::DURATION, value_parser = positive_seconds)]
    pub duration: f64,

    #[command(flatten)]
    pub racing: Racing,

    /// Race no control arm beside each arm: the verdict is then at best "PASS, no
    /// control ran"
    #[arg(long)]
    pub no_control: bool,

    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// The racing options every arm takes, worded for the main job's whole run.
fn in_main_job_words(arg: Arg) -> Arg {
    match arg.get_id().as_str() {
        "racers" => arg.help("Racers per arm [default: 4 x cores]"),
        "processes" => arg.help("Racers are separate processes of this binary instead of threads"),
        _ => arg,
    }
}

#[derive(Debug, Subcommand)]
pub enum StressCommand {
    /// `stress NAME`: one arm of the registry.
    #[command(flatten)]
    Arm(ArmCommand),
    /// Merge the reports instances wrote to a shared tree into one verdict
    #[command(after_long_help = help::long_help(REPORT_EXAMPLES, STATUSES))]
    Report(report::ReportArgs),
    /// One racer process (started by --processes; not for direct use)
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// A hidden subcommand an arm's racer processes run (lock's `rmw`).
    #[command(flatten)]
    Helper(HelperCommand),
}

/// A racer process: `racefree stress worker SUBJECT --racer N`, its round on stdin.
#[derive(Debug, ClapArgs)]
pub struct WorkerArgs {
    #[arg(value_parser = PossibleValuesParser::new(arms::NAMES)
        .map(|name: String| arms::find(&name).expect("a possible value names an arm")))]
    pub subject: &'static dyn Entry,
    #[arg(long)]
    pub racer: u32,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match &args.command {
        Some(StressCommand::Worker(w)) => {
            w.subject.worker(w.racer)?;
            return Ok(Exit::Success);
        }
        Some(StressCommand::Helper(h)) => {
            (h.helper.run)(&h.matches)?;
            return Ok(Exit::Success);
        }
        _ => {}
    }
    cleanup::install()?;
    let result = match args.command {
        Some(StressCommand::Arm(a)) => a.0.run(),
        Some(StressCommand::Report(a)) => report::run(&a),
        Some(StressCommand::Worker(_) | StressCommand::Helper(_)) => {
            unreachable!("handled before")
        }
        None => run_all(&args),
    };
    // The run's guards have removed what it made: now die by the signal, if one came.
    cleanup::die_if_caught();
    result
}

/// The main job: every arm with its control, on a temporary directory and on
/// loopback; one verdict over all of them, the worst.
fn run_all(args: &Args) -> anyhow::Result<Exit> {
    let race = RaceArgs::main_job(
        args.racing.clone(),
        args.duration,
        args.json,
        args.no_control,
    );
    let mut json = serde_json::Map::new();
    let mut text = Vec::new();
    let mut verdicts = Vec::new();
    let mut control_ran = true;
    let mut inconclusive = Vec::new();
    for arm in ARMS {
        let Some(done) = arm.main_job(&race)? else {
            continue;
        };
        verdicts.push(done.verdict);
        control_ran &= done.control_ran;
        if done.verdict == Verdict::Inconclusive {
            inconclusive.push(arm.name());
        }
        json.insert(arm.name().into(), done.json);
        text.extend(done.text);
    }
    let verdict = Verdict::of_all(verdicts);
    json.insert("verdict".into(), serde_json::to_value(verdict)?);
    json.insert("control_ran".into(), control_ran.into());
    json.insert("passed".into(), (verdict == Verdict::Pass).into());
    emit(args.json, &json, |out| {
        out.write_all(&text)?;
        let line = verdict.line(control_ran, || {
            format!("the control of {} did not fail", inconclusive.join(", "))
        });
        writeln!(out, "{line}")
    })?;
    Ok(verdict.exit())
}

/// `stress NAME ARGS` for an arm of the registry, parsed: a subcommand per arm,
/// built from the registry rather than named here.
#[derive(Debug)]
pub struct ArmCommand(Box<dyn Invocation>);

impl FromArgMatches for ArmCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        let (name, mut sub) = take_subcommand(matches)?;
        let arm = arms::find(&name).ok_or_else(|| unrecognized(&name))?;
        Ok(ArmCommand(arm.parse(&mut sub)?))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for ArmCommand {
    fn augment_subcommands(cmd: Command) -> Command {
        ARMS.iter()
            .fold(cmd, |cmd, arm| cmd.subcommand(arm.command()))
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        arms::find(name).is_some()
    }
}

/// A hidden subcommand an arm's racer processes run, with its arguments.
#[derive(Debug)]
pub struct HelperCommand {
    helper: &'static Helper,
    matches: ArgMatches,
}

fn helpers() -> impl Iterator<Item = &'static Helper> {
    ARMS.iter().filter_map(|arm| arm.helper())
}

impl FromArgMatches for HelperCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        let (name, sub) = take_subcommand(matches)?;
        let helper = helpers()
            .find(|h| h.name == name)
            .ok_or_else(|| unrecognized(&name))?;
        Ok(HelperCommand {
            helper,
            matches: sub,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for HelperCommand {
    fn augment_subcommands(cmd: Command) -> Command {
        helpers().fold(cmd, |cmd, h| {
            cmd.subcommand(
                (h.args)(Command::new(h.name))
                    .about(h.about)
                    .long_about(None)
                    .hide(true),
            )
        })
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        helpers().any(|h| h.name == name)
    }
}

fn take_subcommand(matches: &mut ArgMatches) -> Result<(String, ArgMatches), clap::Error> {
    matches.remove_subcommand().ok_or_else(|| {
        clap::Error::raw(
            clap::error::ErrorKind::MissingSubcommand,
            "a subcommand is required but one was not provided",
        )
    })
}

fn unrecognized(name: &str) -> clap::Error {
    clap::Error::raw(
        clap::error::ErrorKind::InvalidSubcommand,
        format!("the subcommand '{name}' wasn't recognized"),
    )
}
