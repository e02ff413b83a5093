//! `racefree stress ident`: loopback connections held in every TCP state, looked up
//! concurrently by many racers, every answer checked.
//!
//! Each held socket has one right answer: this process's uid while we hold its
//! descriptor, "no owner" once the kernel alone holds it (TIME_WAIT, or LAST_ACK
//! after close). A churner opens, half-closes and closes connections continuously
//! and looks each one up while its state changes, as a client that half-closed its
//! connection is looked up by the server it talked to. The
//! control arm runs the classic matcher that demands ESTABLISHED, under the same
//! load. One round is one pass of every racer over every target; with `--duration`
//! a racer stops at the deadline even in the middle of a pass, so a thousand racers
//! cannot stretch a two-second run.
//!
//! The arm is here; by job: [`answer`] (targets and their one right answer),
//! [`stage`] (the held sockets), [`racer`] (the lookups), [`cells`] (what they found),
//! [`server`] (the identds on loopback), [`capacity`] (how many racers fit),
//! [`table`] (its rows in the report).

pub mod answer;
pub mod capacity;
pub mod cells;
pub mod racer;
pub mod server;
pub mod stage;
pub mod table;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use self::answer::{Method, server_hides};
use self::cells::{Counts, Row, StatsList};
use self::racer::{Round, churn, lookup_racer};
use self::server::ServeProcess;
use self::stage::Stage;
use crate::ident::{ServerHandle, Source, resolve};
use crate::stress::args::{ArmArgs, NO_WORK_ARGS, RaceArgs, WorkArgs, default_racers};
use crate::stress::race::{Arm, Contribution, Race, Report, RoundCtx, Subject, Tally};

#[derive(Debug, Clone, ClapArgs)]
pub struct IdentArgs {
    /// Connection pairs held in each TCP state
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=MAX_CONNECTIONS as i64))]
    pub connections: u32,

    /// Which lookup the racers use
    #[arg(long, value_enum, default_value_t = SourceChoice::Both)]
    pub source: SourceChoice,

    /// Also send every lookup over RFC 1413 to a `racefree ident serve --listen` this
    /// run starts on loopback, end to end
    #[arg(long)]
    pub via_server: bool,

    #[command(flatten)]
    pub race: RaceArgs,
}

/// Connection pairs held in each TCP state.
pub const DEFAULT_CONNECTIONS: u32 = 4;
pub const MAX_CONNECTIONS: u32 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceChoice {
    Proc,
    Netlink,
    Both,
}

impl ArmArgs for IdentArgs {
    fn race(&self) -> &RaceArgs {
        &self.race
    }

    /// Loopback needs no tree: the run's directory is a fresh temporary one.
    fn work(&self) -> &WorkArgs {
        &NO_WORK_ARGS
    }
}

/// The run's shape, echoed in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub connections_per_state: u32,
    pub methods: Vec<Method>,
}

/// The ident arm: the stage of held sockets and the servers, for the whole run.
pub struct Ident {
    params: Params,
    stage: Stage,
    uid: u32,
    server: Option<ServeProcess>,
    control_server: Option<ServerHandle>,
    hidden_uids: Vec<u32>,
    problems: Vec<String>,
}

impl Subject for Ident {
    const ABOUT: &'static str = "Racers look up loopback connections held in every TCP state";
    type Args = IdentArgs;

    fn new(args: &IdentArgs) -> anyhow::Result<Ident> {
        let methods = methods(args)?;
        // Sockets belong to the effective (file-system) uid that made them.
        let uid = nix::unistd::geteuid().as_raw();
        let stage =
            Stage::build(args.connections as usize, uid).context("holding loopback connections")?;
        // Each racer holds at most one query connection, and a slot frees only when the
        // server sees the close: room for two per racer, plus the churner's.
        let max_conns = 2 * args.race.racers() as usize + 8;
        let server = match args.via_server {
            true => Some(ServeProcess::start(max_conns)?),
            false => None,
        };
        let control_server = match args.via_server && args.race.control() {
            true => Some(server::start_control(max_conns)?),
            false => None,
        };
        // The default count (4 per core) always fits; only a larger one is measured.
        if args.race.rounds.is_none() && args.race.racers() > default_racers() {
            capacity::check_racers_fit(
                &stage.targets,
                &methods,
                server.as_ref().map(ServeProcess::addr),
                &args.race,
            )?;
        }
        let hidden_uids = hidden_owners(&stage);
        Ok(Ident {
            params: Params {
                connections_per_state: args.connections,
                methods,
            },
            stage,
            uid,
            server,
            control_server,
            hidden_uids,
            problems: Vec::new(),
        })
    }

    /// Every source, and the server end to end.
    fn main_job(race: RaceArgs) -> Option<IdentArgs> {
        Some(IdentArgs {
            connections: DEFAULT_CONNECTIONS,
            source: SourceChoice::Both,
            via_server: true,
            race,
        })
    }
}

/// The lookups `--source` and `--via-server` ask for; netlink left out of `both`
/// where the kernel does not answer it.
fn methods(args: &IdentArgs) -> anyhow::Result<Vec<Method>> {
    let mut methods = match args.source {
        SourceChoice::Proc => vec![Method::Proc],
        SourceChoice::Netlink => vec![Method::Netlink],
        SourceChoice::Both => vec![Method::Proc, Method::Netlink],
    };
    if methods.contains(&Method::Netlink) && resolve(Source::Netlink).is_err() {
        if args.source == SourceChoice::Netlink {
            resolve(Source::Netlink).context("--source netlink")?;
        }
        methods.retain(|m| *m != Method::Netlink);
    }
    if args.via_server {
        methods.push(Method::Server);
    }
    Ok(methods)
}

/// The stage's owners the server must answer HIDDEN-USER for.
fn hidden_owners(stage: &Stage) -> Vec<u32> {
    let mut owners: Vec<u32> = stage.targets.iter().filter_map(|t| t.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    owners.retain(|&u| server_hides(u));
    owners
}

impl Race for Ident {
    const NAME: &'static str = "ident";
    const SHARED: bool = false;
    type Params = Params;
    type Round = Round;
    type Outcome = StatsList;
    type Churn = StatsList;
    type Counts = Counts;
    type Record = ();

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        if !(1..=MAX_CONNECTIONS).contains(&p.connections_per_state) {
            bail!("connections_per_state must be 1..={MAX_CONNECTIONS}");
        }
        if p.methods.is_empty() {
            bail!("no lookup method to test");
        }
        Ok(())
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        Ok(Round {
            arm: ctx.arm,
            targets: self.stage.targets.clone(),
            methods: self.params.methods.clone(),
            server: match ctx.arm {
                Arm::Racefree => self.server.as_ref().map(ServeProcess::addr),
                Arm::Control => self.control_server.as_ref().map(|h| h.local_addrs()[0]),
            },
            hidden_uids: self.hidden_uids.clone(),
            seed: ctx.round * 1_000,
            deadline_ns: ctx.deadline_ns,
            uid: self.uid,
        })
    }

    fn race(round: &Round, racer: u32) -> StatsList {
        lookup_racer(round, round.seed + u64::from(racer))
            .into_iter()
            .collect()
    }

    fn churners(&self, _round: &Round) -> usize {
        1
    }

    fn churn(round: &Round, _index: usize, stop: &AtomicBool) -> Option<StatsList> {
        Some(churn(round, stop).into_iter().collect())
    }

    fn judge(
        &mut self,
        ctx: &RoundCtx,
        _round: &Round,
        outcomes: &[StatsList],
        churn: Vec<StatsList>,
        tally: &mut Tally<Counts>,
    ) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for (key, cell) in outcomes
            .iter()
            .flatten()
            .cloned()
            .chain(churn.into_iter().flatten())
        {
            tally.calls += cell.lookups;
            tally.failed_calls += cell.failures();
            if let Some(p) = &cell.first_problem
                && problems.len() < 3
            {
                problems.push(p.clone());
            }
            tally.counts.stats.entry(key).or_default().merge(cell);
        }
        tally.bad_round(ctx.round, problems);
        Ok(())
    }

    fn finish(&mut self, tally: &mut Tally<Counts>) {
        tally.counts.rows = cells::rows(std::mem::take(&mut tally.counts.stats));
        if tally.arm == Arm::Racefree && tally.calls == 0 {
            self.problems
                .push("no lookup was made before the deadline".into());
        }
        if tally.arm == Arm::Racefree && !tally.counts.rows.iter().any(|r| r.state == "CHURN") {
            self.problems
                .push("no lookup of a churning connection was made".into());
        }
    }

    fn setup_problems(&mut self) -> Vec<String> {
        // Re-check the stage: a socket that left its state mid-run was tested in two.
        self.stage.recheck();
        self.server = None;
        if let Some(h) = self.control_server.take()
            && let Err(e) = h.stop()
        {
            self.problems
                .push(format!("stopping the control identd: {e:#}"));
        }
        let mut problems = std::mem::take(&mut self.stage.problems);
        problems.append(&mut self.problems);
        problems
    }

    fn record(_ctx: &RoundCtx, _round: &Round, _outcomes: &[StatsList]) {}

    fn merge_round(
        _params: &Params,
        _work: &Path,
        _n: u64,
        _records: &[Contribution<()>],
    ) -> anyhow::Result<Vec<String>> {
        bail!("stress ident runs on one host: there is nothing to merge")
    }

    fn columns() -> &'static [&'static str] {
        &["wrong", "missed", "errors"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        let sum = |f: fn(&Row) -> u64| c.rows.iter().map(f).sum::<u64>().to_string();
        vec![sum(|r| r.wrong), sum(|r| r.missed), sum(|r| r.errors)]
    }

    fn describe(p: &Params) -> String {
        format!(
            "{} connections per state; lookups by {}",
            p.connections_per_state,
            p.methods
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn print_more(out: &mut dyn Write, r: &Report<Self>) -> std::io::Result<()> {
        table::print(out, &r.racefree, r.control.as_ref())
    }
}
