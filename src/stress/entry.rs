//! One arm as the registry holds it: everything the command line, the worker, the
//! main job and `stress report` do with an arm, behind one object-safe trait, so a
//! list of arms of different types can be iterated.
//!
//! [`Registered`] implements [`Entry`] for any [`Subject`] by running the generic
//! machinery (the engine, the table, the merge) at that type.

use std::fmt;
use std::io::{BufRead, Write};
use std::marker::PhantomData;
use std::path::Path;

use anyhow::bail;
use clap::{ArgMatches, FromArgMatches};

use super::args::{ArmArgs, RaceArgs, WorkArgs};
use super::engine;
use super::load;
use super::merge::{self, Merged};
use super::progress::Progress;
use super::race::{Helper, Race, Report, Subject};
use super::racers;
use super::table;
use super::verdict::Verdict;
use crate::exit::Exit;
use crate::help;

/// What the registry knows of one arm.
pub trait Entry: Sync {
    fn name(&self) -> &'static str;
    /// Whether instances on many hosts can race it on one shared tree.
    fn shared(&self) -> bool;
    /// `stress NAME`: its arguments, help and exit statuses.
    fn command(&self) -> clap::Command;
    /// The arguments of `stress NAME`, parsed from its matches, ready to run.
    fn parse(&self, matches: &mut ArgMatches) -> Result<Box<dyn Invocation>, clap::Error>;
    /// The hidden subcommand its racer processes run, if any.
    fn helper(&self) -> Option<&'static Helper>;
    /// Runs it as `racefree stress` does, with its main-job arguments and `race`;
    /// `None` when it takes no part in that run.
    fn main_job(&self, race: &RaceArgs) -> anyhow::Result<Option<Done>>;
    /// The body of one racer process (`stress worker NAME --racer N`).
    fn worker(&self, racer: u32) -> anyhow::Result<()>;
    /// Reads and validates one instance's report; returns the rounds it holds.
    fn load(&self, header: &[u8], rounds: &mut dyn BufRead) -> anyhow::Result<u64>;
    /// Merges the reports of `ids` in the shared work directory `work`.
    fn merge(&self, work: &Path, ids: &[u32]) -> anyhow::Result<Merged>;
}

impl fmt::Debug for dyn Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `stress NAME ARGS`, parsed.
pub trait Invocation: fmt::Debug + Send + Sync {
    fn run(self: Box<Self>) -> anyhow::Result<Exit>;
}

/// One arm's part of `racefree stress`.
pub struct Done {
    pub json: serde_json::Value,
    /// Its readable report, a blank line after it.
    pub text: Vec<u8>,
    pub verdict: Verdict,
    pub control_ran: bool,
}

/// The [`Entry`] of subject `S`.
pub struct Registered<S>(PhantomData<fn() -> S>);

impl<S: Subject> Registered<S> {
    pub const ENTRY: &'static dyn Entry = &Registered::<S>(PhantomData);
}

impl<S: Subject> Entry for Registered<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn shared(&self) -> bool {
        S::SHARED
    }

    fn command(&self) -> clap::Command {
        // As clap's derive builds a documented subcommand variant: the arguments,
        // then its one-line help, which replaces any its argument types set.
        <S::Args as clap::Args>::augment_args(clap::Command::new(S::NAME))
            .about(S::ABOUT)
            .long_about(None)
            .after_long_help(help::long_help(S::EXAMPLES, S::STATUSES))
    }

    fn parse(&self, matches: &mut ArgMatches) -> Result<Box<dyn Invocation>, clap::Error> {
        Ok(Box::new(Run::<S> {
            args: S::Args::from_arg_matches_mut(matches)?,
        }))
    }

    fn helper(&self) -> Option<&'static Helper> {
        S::HELPER.as_ref()
    }

    fn main_job(&self, race: &RaceArgs) -> anyhow::Result<Option<Done>> {
        let Some(args) = S::main_job(race.clone()) else {
            return Ok(None);
        };
        let report = run(&mut S::new(&args)?, args.race(), args.work())?;
        let mut text = Vec::new();
        table::print(&mut text, &report)?;
        writeln!(text)?;
        Ok(Some(Done {
            json: serde_json::to_value(&report)?,
            text,
            verdict: report.verdict,
            control_ran: report.control_ran,
        }))
    }

    fn worker(&self, racer: u32) -> anyhow::Result<()> {
        racers::worker::<S>(racer)
    }

    fn load(&self, header: &[u8], rounds: &mut dyn BufRead) -> anyhow::Result<u64> {
        one_host::<S>()?;
        load::load::<S>(header, rounds)
    }

    fn merge(&self, work: &Path, ids: &[u32]) -> anyhow::Result<Merged> {
        one_host::<S>()?;
        merge::merge::<S>(work, ids)
    }
}

/// An arm that runs on one host writes no report to merge.
fn one_host<A: Race>() -> anyhow::Result<()> {
    if !A::SHARED {
        bail!(
            "stress {} runs on one host: it writes no report to merge",
            A::NAME
        );
    }
    Ok(())
}

/// `stress NAME` with its arguments.
struct Run<S: Subject> {
    args: S::Args,
}

impl<S: Subject> fmt::Debug for Run<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(S::NAME).field(&self.args).finish()
    }
}

impl<S: Subject> Invocation for Run<S> {
    fn run(self: Box<Self>) -> anyhow::Result<Exit> {
        let race = self.args.race();
        let report = run(&mut S::new(&self.args)?, race, self.args.work())?;
        table::emit(race.json, &report, |out| table::print(out, &report))?;
        Ok(report.verdict.exit())
    }
}

/// One run of a subject, with a progress bar while it lasts.
fn run<A: Race>(subject: &mut A, race: &RaceArgs, work: &WorkArgs) -> anyhow::Result<Report<A>> {
    let progress = Progress::new(
        &format!("stress {}", A::NAME),
        race.duration,
        race.rounds.is_none(),
    );
    let report = engine::run(subject, race, work, &progress);
    progress.finish();
    report
}
