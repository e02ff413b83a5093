//! `racefree stress ident`: loopback connections held in every TCP state, looked up
//! concurrently by many racers, every answer checked.
//!
//! Each held socket has one right answer: this process's uid while we hold its
//! descriptor, "no owner" once the kernel alone holds it (TIME_WAIT, or LAST_ACK
//! after close). A churner opens, half-closes and closes connections continuously
//! and looks each one up while its state changes: the blog post's scenario. The
//! control arm runs the classic matcher that demands ESTABLISHED, under the same
//! load. One round is one pass of every racer over every target; with `--duration`
//! a racer stops at the deadline even in the middle of a pass, so a thousand racers
//! cannot stretch a two-second run.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use nix::sys::socket::{setsockopt, sockopt};
use serde::{Deserialize, Serialize};

use super::kit::shuffle;
use crate::ident::lookup::{
    Matcher, Source, TcpState, Tuple, lookup_owner_with, parse_hex_endpoint, resolve,
};
use crate::ident::server::ServeChild;
use crate::ident::{ReplyKind, query};
use crate::stress::args::{ArmArgs, NO_WORK_ARGS, RaceArgs, WorkArgs, default_racers};
use crate::stress::cleanup::{ChildGuard, stopping};
use crate::stress::gate;
use crate::stress::race::{Arm, Race, Report, RoundCtx, Subject, Tally};

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

/// How one lookup is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Proc,
    Netlink,
    /// Over RFC 1413 to a server on loopback.
    Server,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Proc => "proc",
            Method::Netlink => "netlink",
            Method::Server => "server",
        }
    }
}

/// One socket to look up and its one right answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The state the socket was held in when the run began (the kernel's name).
    pub state: String,
    /// The report row it counts in: the state, qualified where one state is held
    /// two ways ("LAST_ACK (closed)" has no owner, "LAST_ACK" is still ours).
    pub label: String,
    /// `Some(uid)` while a process holds its descriptor; `None` once only the kernel does.
    pub owner: Option<u32>,
}

/// The run's shape, echoed in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub connections_per_state: u32,
    pub methods: Vec<Method>,
}

/// What the racers need for one round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Round {
    pub arm: Arm,
    pub targets: Vec<Target>,
    pub methods: Vec<Method>,
    /// The identd this arm's server lookups go to (racefree's, or the control's).
    pub server: Option<SocketAddr>,
    /// Owners the server must answer HIDDEN-USER for: see [`expected_answer`].
    pub hidden_uids: Vec<u32>,
    pub seed: u64,
    pub deadline_ns: Option<u64>,
    /// The uid churn connections belong to.
    pub uid: u32,
}

/// How a HIDDEN-USER reply is recorded: a uid no user can have ((uid_t)-1).
const HIDDEN: u32 = u32::MAX;

/// Whether the server must answer HIDDEN-USER for a stage socket's owner, stated
/// here on its own rather than by calling the server's policy, so that a wrong
/// policy fails the run instead of agreeing with itself. Stage sockets belong to
/// the harness's own user and, as root, to nobody. RFC 1413 practice (oidentd,
/// pidentd): a user is hidden when `~/.noident` exists; a home that is missing
/// (nobody's `/nonexistent`) holds none, so nobody is named; an unreadable password
/// database hides (fail closed); a uid with no entry is answered by number.
fn server_hides(uid: u32) -> bool {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.dir.join(".noident").symlink_metadata().is_ok(),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// The one right answer for a lookup of `owner`'s socket by `method`: the owner,
/// except that the server answers HIDDEN-USER for the owners it hides.
fn expected_answer(owner: Option<u32>, method: Method, hidden_uids: &[u32]) -> Option<u32> {
    match owner {
        Some(uid) if method == Method::Server && hidden_uids.contains(&uid) => Some(HIDDEN),
        owner => owner,
    }
}

/// Which row a lookup counts in (the arm is the tally it belongs to).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub method: Method,
    pub state: String,
}

/// Lookups of one (method, state): counts and latency samples.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cell {
    pub lookups: u64,
    pub correct: u64,
    /// Answered with an owner that is not the right one (including any owner for a
    /// socket that has none). Never acceptable.
    pub wrong: u64,
    /// Answered "no owner" for a socket that has one.
    pub missed: u64,
    /// The lookup itself failed.
    pub errors: u64,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub latencies_ns: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_problem: Option<String>,
}

/// Latency samples kept per cell, a uniform sample of all lookups (reservoir
/// sampling), so percentiles are not biased towards the start of the run.
const SAMPLES: usize = 20_000;

impl Cell {
    fn record(
        &mut self,
        expected: Option<u32>,
        got: Result<Option<u32>, String>,
        ns: u64,
        what: &dyn Fn() -> String,
    ) {
        self.lookups += 1;
        if self.latencies_ns.len() < SAMPLES {
            self.latencies_ns.push(ns);
        } else {
            // Keep this one with probability SAMPLES / lookups (a cheap mix of the
            // count stands in for a random number).
            let r = (self.lookups.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % self.lookups;
            if (r as usize) < SAMPLES {
                self.latencies_ns[r as usize] = ns;
            }
        }
        let problem = match got {
            Ok(answer) if answer == expected => {
                self.correct += 1;
                None
            }
            Ok(None) => {
                self.missed += 1;
                Some(format!(
                    "{}: no owner, expected uid {}",
                    what(),
                    expected.unwrap_or(0)
                ))
            }
            Ok(Some(uid)) => {
                self.wrong += 1;
                Some(format!(
                    "{}: answered uid {uid}, expected {expected:?}",
                    what()
                ))
            }
            Err(e) => {
                self.errors += 1;
                Some(format!("{}: {e}", what()))
            }
        };
        if self.first_problem.is_none() {
            self.first_problem = problem;
        }
    }

    fn failures(&self) -> u64 {
        self.wrong + self.missed + self.errors
    }

    fn merge(&mut self, other: Cell) {
        self.lookups += other.lookups;
        self.correct += other.correct;
        self.wrong += other.wrong;
        self.missed += other.missed;
        self.errors += other.errors;
        if self.latencies_ns.len() < SAMPLES {
            self.latencies_ns.extend(other.latencies_ns);
            self.latencies_ns.truncate(SAMPLES);
        }
        if self.first_problem.is_none() {
            self.first_problem = other.first_problem;
        }
    }
}

pub type Stats = BTreeMap<Key, Cell>;

/// Stats as they travel from a racer process: a JSON object's keys must be strings.
pub type StatsList = Vec<(Key, Cell)>;

/// One row of the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub method: Method,
    pub state: String,
    pub lookups: u64,
    pub correct: u64,
    pub wrong: u64,
    pub missed: u64,
    pub errors: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_problem: Option<String>,
}

/// Figures per arm: the rows, made from the cells when the run ends.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    pub rows: Vec<Row>,
    #[serde(skip)]
    stats: Stats,
}

/// The ident arm: the stage of held sockets and the servers, for the whole run.
pub struct Ident {
    params: Params,
    stage: Stage,
    uid: u32,
    server: Option<ServeProcess>,
    control_server: Option<crate::ident::ServerHandle>,
    hidden_uids: Vec<u32>,
    problems: Vec<String>,
}

impl Subject for Ident {
    const ABOUT: &'static str = "Racers look up loopback connections held in every TCP state";
    type Args = IdentArgs;

    /// Every source, and the server end to end.
    fn main_job(race: RaceArgs) -> Option<IdentArgs> {
        Some(IdentArgs {
            connections: DEFAULT_CONNECTIONS,
            source: SourceChoice::Both,
            via_server: true,
            race,
        })
    }

    fn new(args: &IdentArgs) -> anyhow::Result<Ident> {
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
        // Sockets belong to the effective (file-system) uid that made them.
        let uid = nix::unistd::geteuid().as_raw();
        let stage =
            Stage::build(args.connections as usize, uid).context("holding loopback connections")?;
        let racers = args.race.racers() as usize;
        // Each racer holds at most one query connection, and a slot frees only when the
        // server sees the close: room for two per racer, plus the churner's.
        let max_conns = 2 * racers + 8;
        let server = if args.via_server {
            Some(ServeProcess::start(max_conns)?)
        } else {
            None
        };
        let control_server = if args.via_server && args.race.control {
            let config = crate::ident::ServerConfig {
                matcher: Matcher::EstablishedOnly,
                max_conns,
                ..Default::default()
            };
            let server = crate::ident::Server::new(
                config,
                crate::ident::Logger::new(crate::ident::LogTarget::None),
            );
            let listener =
                TcpListener::bind("127.0.0.1:0").context("binding the control identd")?;
            Some(server.spawn(vec![listener])?)
        } else {
            None
        };
        // The default count (4 per core) always fits; only a larger one is measured.
        if args.race.rounds.is_none() && args.race.racers() > default_racers() {
            check_racers_fit(
                &stage,
                &methods,
                server.as_ref().map(ServeProcess::addr),
                &args.race,
            )?;
        }
        let hidden_uids = {
            let mut owners: Vec<u32> = stage.targets.iter().filter_map(|t| t.owner).collect();
            owners.sort_unstable();
            owners.dedup();
            owners.retain(|&u| server_hides(u));
            owners
        };
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
        tally.counts.rows = rows(std::mem::take(&mut tally.counts.stats));
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
        _work: &std::path::Path,
        _n: u64,
        _records: &[()],
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
        writeln!(
            out,
            "  {:<9} {:<8} {:<20} {:>9} {:>9} {:>6} {:>8} {:>6} {:>9} {:>9}",
            "arm",
            "method",
            "state",
            "lookups",
            "correct",
            "wrong",
            "missed",
            "errors",
            "p50",
            "p99"
        )?;
        for tally in std::iter::once(&r.racefree).chain(&r.control) {
            for row in &tally.counts.rows {
                writeln!(
                    out,
                    "  {:<9} {:<8} {:<20} {:>9} {:>9} {:>6} {:>8} {:>6} {:>6.0} µs {:>6.0} µs",
                    tally.arm.name(),
                    row.method.name(),
                    row.state,
                    row.lookups,
                    row.correct,
                    row.wrong,
                    row.missed,
                    row.errors,
                    row.p50_us,
                    row.p99_us
                )?;
            }
        }
        if let Some(c) = &r.control {
            let missed: u64 = c.counts.rows.iter().map(|row| row.missed).sum();
            writeln!(
                out,
                "  control (demands ESTABLISHED): {missed} lookups missed an owner{}",
                if missed == 0 {
                    "; no race seen"
                } else {
                    ", as expected"
                }
            )?;
        }
        Ok(())
    }
}

/// Racers released together each start a lookup at once, and a lookup cannot be cut
/// short at the deadline: a thousand racers on two cores would stretch a two-second
/// run to a minute (the server's answers timing out meanwhile). So, measured here:
/// what one lookup by each method costs this machine; if one lookup each for every
/// racer needs more than twice the run's time (at least 2 s: the lookups in flight
/// at the deadline may overrun it that much), the count is refused, with the number
/// that fits.
fn check_racers_fit(
    stage: &Stage,
    methods: &[Method],
    server: Option<SocketAddr>,
    race: &RaceArgs,
) -> anyhow::Result<()> {
    let Some(t) = stage.targets.iter().find(|t| t.owner.is_some()) else {
        return Ok(());
    };
    let round = Round {
        arm: Arm::Racefree,
        targets: Vec::new(),
        methods: methods.to_vec(),
        server,
        hidden_uids: Vec::new(),
        seed: 0,
        deadline_ns: None,
        uid: 0,
    };
    let mut stats = Stats::new();
    let begin = Instant::now();
    const SAMPLES: u32 = 5;
    for _ in 0..SAMPLES {
        for &m in methods {
            look_up(&round, &mut stats, m, t);
        }
    }
    // One lookup by each method, and the work a racer adds beside it (a thread or
    // process, the /proc table growing by its connection): counted twice.
    let per_racer = 2.0 * begin.elapsed().as_secs_f64() / f64::from(SAMPLES);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let racers = race.racers();
    if let Some((needed, fits)) = racers_that_fit(racers, per_racer, cores, race.duration) {
        return Err(crate::exit::usage(format!(
            "--racers {racers} cannot be released together within --duration {}: one lookup by each method costs {:.1} ms here, so {racers} racers released together need about {needed:.1} s on {cores} cores to finish one lookup each; use at most --racers {fits}, a longer --duration, or --rounds",
            race.duration,
            per_racer * 1e3 / 2.0,
        )));
    }
    Ok(())
}

/// Whether `racers`, each costing `per_racer` seconds of CPU before its first
/// answer, can all be released within `duration` on `cores`: None when they can,
/// else the seconds they would need and the most that fit. Pure, so the rule is
/// tested on fixed numbers whatever this machine's lookups cost.
fn racers_that_fit(racers: u32, per_racer: f64, cores: f64, duration: f64) -> Option<(f64, u32)> {
    let needed = f64::from(racers) * per_racer / cores;
    let allowed = 2.0 * duration.max(1.0);
    (needed > allowed).then(|| (needed, ((allowed * cores / per_racer) as u32).max(1)))
}

fn rows(all: Stats) -> Vec<Row> {
    all.into_iter()
        .map(|(key, mut cell)| {
            cell.latencies_ns.sort_unstable();
            let pct = |p: f64| -> f64 {
                if cell.latencies_ns.is_empty() {
                    return 0.0;
                }
                let i = ((cell.latencies_ns.len() - 1) as f64 * p).round() as usize;
                cell.latencies_ns[i] as f64 / 1000.0
            };
            Row {
                method: key.method,
                state: key.state,
                lookups: cell.lookups,
                correct: cell.correct,
                wrong: cell.wrong,
                missed: cell.missed,
                errors: cell.errors,
                p50_us: pct(0.50),
                p99_us: pct(0.99),
                first_problem: cell.first_problem,
            }
        })
        .collect()
}

/// Whether a racer should stop before its next lookup: the run's deadline passed,
/// or a signal asked.
fn past_deadline(round: &Round) -> bool {
    stopping() || round.deadline_ns.is_some_and(|d| gate::now_ns() >= d)
}

/// One racer: look up every target, in its own order, by every method, once.
pub fn lookup_racer(round: &Round, seed: u64) -> Stats {
    let mut stats = Stats::new();
    for t in &shuffle(&round.targets, seed) {
        for &method in &round.methods {
            if past_deadline(round) {
                return stats;
            }
            look_up(round, &mut stats, method, t);
        }
    }
    stats
}

fn look_up(round: &Round, stats: &mut Stats, method: Method, t: &Target) {
    let tuple = Tuple::new(t.local, t.remote);
    let matcher = match round.arm {
        Arm::Racefree => Matcher::FourTuple,
        Arm::Control => Matcher::EstablishedOnly,
    };
    let t0 = Instant::now();
    let got: Result<Option<u32>, String> = match method {
        Method::Proc => lookup_owner_with(&tuple, Source::Proc, matcher)
            .map(|o| o.map(|o| o.uid))
            .map_err(|e| format!("{e:#}")),
        Method::Netlink => lookup_owner_with(&tuple, Source::Netlink, matcher)
            .map(|o| o.map(|o| o.uid))
            .map_err(|e| format!("{e:#}")),
        Method::Server => match round.server {
            Some(addr) => via_server(addr, &tuple),
            None => Err("no server".into()),
        },
    };
    let ns = t0.elapsed().as_nanos() as u64;
    let what = || format!("{} {} ({})", method.name(), tuple, t.label);
    let expected = expected_answer(t.owner, method, &round.hidden_uids);
    stats
        .entry(Key {
            method,
            state: t.label.clone(),
        })
        .or_default()
        .record(expected, got, ns, &what);
}

/// One RFC 1413 exchange; USERID maps back to a uid through the user name.
fn via_server(server: SocketAddr, tuple: &Tuple) -> Result<Option<u32>, String> {
    let reply = query(
        server,
        tuple.local.port(),
        tuple.remote.port(),
        Duration::from_secs(10),
    )
    .map_err(|e| format!("{e:#}"))?;
    match reply.kind {
        ReplyKind::UserId { user, .. } => match nix::unistd::User::from_name(&user) {
            Ok(Some(u)) => Ok(Some(u.uid.as_raw())),
            _ => user
                .parse()
                .map(Some)
                .map_err(|_| format!("unknown user '{user}' in reply")),
        },
        ReplyKind::Error(token) if token == "NO-USER" => Ok(None),
        ReplyKind::Error(token) if token == "HIDDEN-USER" => Ok(Some(HIDDEN)),
        ReplyKind::Error(token) => Err(format!("ERROR : {token}")),
    }
}

/// Opens a connection, half-closes it at once (`shutdown(SHUT_WR)`, as the print
/// script in the post did), looks it up from both ends while the FIN is in flight,
/// then closes it: over and over until told to stop, and at least once.
fn churn(round: &Round, stop: &AtomicBool) -> Stats {
    let mut stats = Stats::new();
    let uid = round.uid;
    let fail = |stats: &mut Stats, what: &str, e: std::io::Error| {
        stats
            .entry(Key {
                method: Method::Proc,
                state: "CHURN".into(),
            })
            .or_default()
            .record(Some(uid), Err(e.to_string()), 0, &|| what.to_string());
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            fail(&mut stats, "binding the churn listener", e);
            return stats;
        }
    };
    let addr = listener.local_addr().expect("bound");
    loop {
        let pair = TcpStream::connect(addr).and_then(|c| Ok((c, listener.accept()?.0)));
        match pair {
            Err(e) => fail(&mut stats, "opening a churn connection", e),
            Ok((client, server)) => {
                let _ = client.shutdown(Shutdown::Write);
                let ends = [
                    (client.local_addr(), client.peer_addr()),
                    (server.local_addr(), server.peer_addr()),
                ];
                for (local, remote) in ends {
                    let (Ok(local), Ok(remote)) = (local, remote) else {
                        continue;
                    };
                    let t = Target {
                        local,
                        remote,
                        state: "CHURN".into(),
                        label: "CHURN".into(),
                        owner: Some(uid),
                    };
                    for &method in &round.methods {
                        look_up(round, &mut stats, method, &t);
                    }
                }
            }
        }
        if stop.load(Ordering::Relaxed) || stopping() {
            break;
        }
    }
    stats
}

/// What the stage asks of one socket.
struct Want {
    local: SocketAddr,
    remote: SocketAddr,
    state: TcpState,
    label: String,
    owner: Option<u32>,
}

impl Want {
    fn of(s: &TcpStream, state: TcpState, owner: Option<u32>) -> anyhow::Result<Want> {
        Ok(Want {
            local: s.local_addr()?,
            remote: s.peer_addr()?,
            state,
            label: state.name(),
            owner,
        })
    }

    fn labelled(mut self, label: &str) -> Want {
        self.label = label.into();
        self
    }
}

/// The held connections, and the targets they give.
struct Stage {
    _held: Vec<TcpStream>,
    targets: Vec<Target>,
    problems: Vec<String>,
}

/// The uid stage sockets are made as when we are root, so a lookup that answered
/// with the caller's uid instead of the socket's would be caught ("never a wrong
/// user"): nobody.
const OTHER_UID: u32 = 65534;

impl Stage {
    fn build(n: usize, uid: u32) -> anyhow::Result<Stage> {
        let mut held = Vec::new();
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
        // Small receive buffers on accepted sockets, so a writer can fill the window.
        setsockopt(&listener, sockopt::RcvBuf, &4096).context("setting SO_RCVBUF")?;
        let addr = listener.local_addr()?;
        let pair = || -> anyhow::Result<(TcpStream, TcpStream)> {
            let c = TcpStream::connect(addr).context("connecting on loopback")?;
            let (s, _) = listener.accept().context("accepting on loopback")?;
            Ok((c, s))
        };
        let mut want: Vec<Want> = Vec::new();
        for _ in 0..n {
            // ESTABLISHED, both ends.
            let (c, s) = pair()?;
            want.push(Want::of(&c, TcpState::Established, Some(uid))?);
            want.push(Want::of(&s, TcpState::Established, Some(uid))?);
            held.extend([c, s]);

            // Half-closed: the client in FIN_WAIT2, the server in CLOSE_WAIT.
            let (c, s) = pair()?;
            c.shutdown(Shutdown::Write)?;
            want.push(Want::of(&c, TcpState::FinWait2, Some(uid))?);
            want.push(Want::of(&s, TcpState::CloseWait, Some(uid))?);
            held.extend([c, s]);

            // FIN_WAIT1: the FIN waits behind data the peer's full window won't take.
            let (c, s) = pair()?;
            fill(&c)?;
            c.shutdown(Shutdown::Write)?;
            want.push(Want::of(&c, TcpState::FinWait1, Some(uid))?);
            held.extend([c, s]);

            // LAST_ACK, still ours: after the client's FIN the server shuts down its
            // side too, its FIN stuck behind data the client never reads.
            let client = small_rcvbuf_client(addr)?;
            let (s, _) = listener.accept()?;
            client.shutdown(Shutdown::Write)?;
            wait_eof(&s)?;
            fill(&s)?;
            s.shutdown(Shutdown::Write)?;
            want.push(Want::of(&s, TcpState::LastAck, Some(uid))?);
            held.extend([client, s]);

            // LAST_ACK after close(): the kernel alone holds it, so it has no owner.
            let client = small_rcvbuf_client(addr)?;
            let (s, _) = listener.accept()?;
            client.shutdown(Shutdown::Write)?;
            wait_eof(&s)?;
            fill(&s)?;
            want.push(Want::of(&s, TcpState::LastAck, None)?.labelled("LAST_ACK (closed)"));
            drop(s);
            held.push(client);

            // TIME_WAIT: the client closes first, the server second: the client's end
            // waits in TIME_WAIT, owned by nobody.
            let (c, s) = pair()?;
            want.push(Want::of(&c, TcpState::TimeWait, None)?);
            c.shutdown(Shutdown::Write)?;
            wait_eof(&s)?;
            drop(s);
            let mut c = c;
            let _ = c.read(&mut [0u8; 1]);
            drop(c);

            // As root: a connection whose sockets belong to another user.
            if uid == 0 {
                let (c, s) = as_fsuid(OTHER_UID, pair)?;
                want.push(
                    Want::of(&c, TcpState::Established, Some(OTHER_UID))?
                        .labelled("ESTABLISHED (nobody)"),
                );
                want.push(
                    Want::of(&s, TcpState::Established, Some(OTHER_UID))?
                        .labelled("ESTABLISHED (nobody)"),
                );
                held.extend([c, s]);
            }
        }
        let mut stage = Stage {
            _held: held,
            targets: Vec::new(),
            problems: Vec::new(),
        };
        // Wait (bounded) for the kernel to put each socket where we asked. This
        // waits for the kernel, it races nothing: yield between reads.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let states = read_states()?;
            let pending: Vec<&Want> = want
                .iter()
                .filter(|w| states.get(&(w.local, w.remote)) != Some(&w.state))
                .collect();
            if pending.is_empty() || Instant::now() >= deadline {
                for w in pending {
                    stage.problems.push(format!(
                        "{} to {}: wanted {}, kernel shows {}",
                        w.local,
                        w.remote,
                        w.state,
                        states
                            .get(&(w.local, w.remote))
                            .map_or("nothing".into(), |s| s.name())
                    ));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        stage.targets = want
            .into_iter()
            .map(|w| Target {
                local: w.local,
                remote: w.remote,
                state: w.state.name(),
                label: w.label,
                owner: w.owner,
            })
            .collect();
        Ok(stage)
    }

    /// After the run: every held socket must still be in the state it was tested
    /// as. A socket with no owner may be gone: the kernel ends TIME_WAIT after 60 s
    /// and an orphan in LAST_ACK when its probes run out; it was tested as it was.
    fn recheck(&mut self) {
        let Ok(states) = read_states() else { return };
        for t in &self.targets {
            let now = states.get(&(t.local, t.remote)).map(|s| s.name());
            match now {
                Some(now) if now == t.state => {}
                None if t.owner.is_none() => {}
                now => self.problems.push(format!(
                    "{} to {}: held as {}, ended as {}",
                    t.local,
                    t.remote,
                    t.state,
                    now.unwrap_or_else(|| "nothing".into())
                )),
            }
        }
    }
}

/// Runs `f` with this thread's file-system uid set to `uid`: sockets created or
/// accepted meanwhile belong to `uid`. (fsuid is per thread; the old one is restored.)
fn as_fsuid<T>(uid: u32, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    // SAFETY: setfsuid only changes this thread's credentials; it returns the old fsuid.
    let old = unsafe { libc::setfsuid(uid) };
    let out = f();
    unsafe { libc::setfsuid(old as libc::uid_t) };
    out
}

/// A client socket with a small receive buffer, set before connect so the window
/// it advertises is small from the start.
fn small_rcvbuf_client(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, connect, socket};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::RcvBuf, &4096)?;
    let SocketAddr::V4(v4) = addr else {
        bail!("loopback listener is IPv4")
    };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(v4))
        .context("connecting on loopback")?;
    Ok(TcpStream::from(fd))
}

/// Writes until the peer's window and our send buffer are full.
fn fill(s: &TcpStream) -> anyhow::Result<()> {
    setsockopt(s, sockopt::SndBuf, &4096)?;
    s.set_nonblocking(true)?;
    let chunk = [0u8; 4096];
    let mut w = s;
    loop {
        match w.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e).context("filling the peer's window"),
        }
    }
    s.set_nonblocking(false)?;
    Ok(())
}

/// Blocks until the peer's FIN has arrived (read returns 0), bounded.
fn wait_eof(s: &TcpStream) -> anyhow::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 64];
    let mut r = s;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e).context("waiting for the peer's FIN"),
        }
    }
}

/// Every IPv4 TCP socket's state, by (local, remote), owned or not. The harness
/// needs rows the lookup rightly refuses (inode 0), so it reads the table itself;
/// it runs only at setup and at the end, never on the lookup path.
fn read_states() -> anyhow::Result<BTreeMap<(SocketAddr, SocketAddr), TcpState>> {
    let text = std::fs::read_to_string("/proc/net/tcp").context("reading /proc/net/tcp")?;
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(_), Some(local), Some(remote), Some(st)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let (Some(l), Some(r), Ok(st)) = (
            parse_hex_endpoint(local),
            parse_hex_endpoint(remote),
            u8::from_str_radix(st, 16),
        ) else {
            continue;
        };
        out.insert((l, r), TcpState::from_kernel(st));
    }
    Ok(out)
}

/// `racefree ident serve --listen 127.0.0.1:0` as a [`ServeChild`] (killed and
/// reaped when dropped, killed by the kernel if this process dies first), and also
/// killed by the signal thread on Ctrl-C or SIGTERM.
struct ServeProcess {
    // Unregistered before the server is reaped, so the signal thread can never kill
    // a process that took over its pid.
    _guard: ChildGuard,
    server: ServeChild,
}

impl ServeProcess {
    /// Started from the main thread, which outlives the run (see [`ServeChild`]). A
    /// signal that arrives while it starts is caught up with by [`ChildGuard::new`].
    fn start(max_conns: usize) -> anyhow::Result<ServeProcess> {
        let exe = std::env::current_exe().context("finding this binary to start the server")?;
        let max_conns = max_conns.to_string();
        let server = ServeChild::start(
            &exe,
            "127.0.0.1:0",
            ["--log", "none", "--max-conns", &max_conns],
        )?;
        Ok(ServeProcess {
            _guard: ChildGuard::new(server.pid()),
            server,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn racers_that_cannot_be_released_in_time_are_refused_with_the_count_that_fits() {
        // 20 ms a racer on 2 cores: 1024 racers need 10.24 s; 0.5 s allows 2 s (the
        // floor is 1 s, doubled), where 200 fit.
        let (needed, fits) = super::racers_that_fit(1024, 0.020, 2.0, 0.5).unwrap();
        assert!((needed - 10.24).abs() < 1e-9, "{needed}");
        assert_eq!(fits, 200);
        assert_eq!(super::racers_that_fit(200, 0.020, 2.0, 0.5), None);
        assert_eq!(super::racers_that_fit(8, 0.020, 2.0, 60.0), None);
        // However slow a lookup, one racer is always offered.
        assert_eq!(
            super::racers_that_fit(2, 100.0, 1.0, 1.0).map(|f| f.1),
            Some(1)
        );
    }

    use super::*;

    #[test]
    fn a_cell_sorts_answers_into_correct_wrong_missed() {
        let mut c = Cell::default();
        let w = || "t".to_string();
        c.record(Some(5), Ok(Some(5)), 1, &w);
        c.record(Some(5), Ok(None), 1, &w);
        c.record(None, Ok(Some(0)), 1, &w);
        c.record(Some(5), Err("x".into()), 1, &w);
        assert_eq!(
            (c.lookups, c.correct, c.missed, c.wrong, c.errors),
            (4, 1, 1, 1, 1)
        );
        assert!(c.first_problem.unwrap().contains("no owner"));
    }
}
