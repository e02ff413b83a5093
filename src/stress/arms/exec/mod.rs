//! `racefree stress exec -- COMMAND`: race the user's own command, and say whether
//! it is safe to run many at once.
//!
//! Per round, a fresh directory (a `--template` copied in, then `--setup`): N
//! racers run COMMAND there, each a process held right before its execve and all
//! released together. The round holds when every racer exits as expected and the
//! state is right: `--check` passes, or with `--compare-sequential` the tree equals
//! the one the same N commands leave run one after another in a twin directory.
//!
//! Two controls. The sequential run is the oracle, run first: if it fails on its
//! own, the command or the check is wrong and nothing is judged. And the canary, the
//! check-then-create race, races in the control's rounds under the same load and
//! release; it must be seen failing, or a clean run proves nothing.
//!
//! Across hosts every instance races on one shared round directory; instance 0
//! alone runs the sequential twin, `--setup` and `--check`, meeting the others at a
//! barrier before each round (to release together) and after it (to check once all
//! are done). `stress report` runs no user command: it merges instance 0's check
//! results and compares the kept trees again.
//!
//! The arm is here; what it keeps of a run, and how the report prints that, is in
//! [`record`].

pub mod record;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};

use self::record::{
    Counts, DIFFERENCES_LISTED, Failing, Judged, KeptTree, MAX_TIMEOUT,
    MAX_WIDEN_MS, Params, RACERS_DETAILED, ROUNDS_DETAILED, Record, Round, stage_words,
};
use super::kit::make_round_dir;
use crate::exit;
use crate::help::Example;
use crate::quote::quote_if_needed;
use crate::stress::args::{self, ProgramArgs, RaceArgs};
use crate::stress::gate;
use crate::stress::program::stage::{Fault, LINES_SHOWN, Stage};
use crate::stress::program::{self, Exited, MAX_PROGRAMS, Program};
use crate::stress::race::{Arm, Contribution, Programs, Race, Report, RoundCtx, Subject, Tally};
use crate::stress::snapshot::{self, Ignore, Snapshot};
use crate::stress::widen::{self, Widen};

/// The canary: check, then create. Two racers that both check before either
/// creates both run mkdir, and one fails.
pub const CANARY: &str = "[ -d d ] || mkdir d";

/// The sequential twin of the round being raced, with `--compare-sequential`.
struct Twin {
    dir: PathBuf,
    tree: Snapshot,
}

pub struct Exec {
    params: Params,
    stage: Stage,
    ignore: Ignore,
    keep: bool,
    /// Instances across hosts, and how long to wait for them.
    instances: u32,
    barrier_timeout: Duration,
    oracle_ran: bool,
    twin: Option<Twin>,
    /// The stage could not be set: the sequential run or `--setup` failed.
    stage_failed: Option<Failing>,
    failed: bool,
    shared: bool,
    /// Rounds of the command raced, and how many to race across hosts.
    played: u64,
    rounds: u64,
    /// Why this host cannot widen race windows, when it cannot.
    widen_unavailable: Option<String>,
}

impl Exec {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.params.timeout)
    }

    fn right(&self, e: &Exited) -> bool {
        e.exited_with(i32::from(self.params.expect_exit))
    }

    /// Racer `racer` (of `racers` across hosts) in `dir`.
    fn program(&self, dir: &Path, racer: u32, racers: u32, round: u64) -> Program {
        Program {
            argv: self.params.command.clone(),
            dir: dir.to_path_buf(),
            env: vec![
                ("RACEFREE_RACER".into(), racer.to_string()),
                ("RACEFREE_RACERS".into(), racers.to_string()),
                ("RACEFREE_ROUND".into(), round.to_string()),
            ],
        }
    }

    /// The round's variables, for `--setup` and `--check`.
    fn env(&self, racers: u32, n: u64) -> Vec<(String, String)> {
        vec![
            ("RACEFREE_RACERS".into(), racers.to_string()),
            ("RACEFREE_ROUND".into(), n.to_string()),
        ]
    }

    /// The oracle: the same commands one after another in a twin directory, its
    /// check, and (to compare with) its tree. A failure ends the run.
    fn run_twin(&mut self, ctx: &RoundCtx, racers: u32) -> anyhow::Result<()> {
        self.oracle_ran = true;
        let dir = ctx.work.join(format!("twin-{}", ctx.round));
        std::fs::create_dir(&dir).with_context(|| format!("creating '{}'", dir.display()))?;
        let programs: Vec<Program> = (0..racers)
            .map(|i| self.program(&dir, i, racers, ctx.round))
            .collect();
        let env = self.env(racers, ctx.round);
        match self.stage.sequential(&dir, &programs, &env)? {
            Some(fault) => self.stage_failed = Some(Failing::of(ctx.round, fault)),
            None if self.params.compare_sequential => {
                let tree = snapshot::take(&ctx.work, Path::new(dir.file_name().expect("twin-N")))?;
                self.twin = Some(Twin { dir, tree });
                return Ok(());
            }
            None => {}
        }
        if !self.keep && !self.shared {
            remove(&dir)?;
        }
        Ok(())
    }

    /// A failing round's detail: each wrong racer, `--check`, the tree.
    fn judge_round(
        &mut self,
        ctx: &RoundCtx,
        outcomes: &[Exited],
        counts: &mut Counts,
    ) -> anyhow::Result<Failing> {
        let mut f = Failing {
            round: ctx.round,
            spread_ns: gate::spread_ns(outcomes.iter().map(|e| e.started_ns)),
            ..Failing::default()
        };
        let first = ctx.instance * ctx.racers;
        for (i, e) in outcomes.iter().enumerate() {
            if !self.right(e) {
                f.racers_failed += 1;
                counts.hung += u64::from(e.timed_out);
                if f.racers.len() < RACERS_DETAILED {
                    f.racers
                        .push(e.failed(first + i as u32, self.timeout(), LINES_SHOWN));
                }
            }
        }
        // The state is judged once, by instance 0, and only for the command: the
        // canary's verdict is its racers' alone.
        if ctx.instance != 0 || self.stage_failed.is_some() || ctx.arm == Arm::Control {
            return Ok(f);
        }
        let racers = ctx.racers * self.instances;
        if self.params.check.is_some() {
            f.check = self.stage.check(&ctx.dir, &self.env(racers, ctx.round))?;
            counts.check_failed += u64::from(f.check.is_some());
        }
        if let Some(twin) = &self.twin {
            let racy = snapshot::take(&ctx.work, &rel(ctx))?;
            let d = snapshot::differences(&racy, &twin.tree, &self.ignore);
            f.differences_count = d.len() as u64;
            f.differences = d.into_iter().take(DIFFERENCES_LISTED).collect();
            counts.tree_differed += u64::from(f.differences_count > 0);
        }
        Ok(f)
    }

    /// Keeps the first failing round's tree (and its twin's) for inspection: beside
    /// the work directory when small enough, where it is with `--keep`.
    fn keep_tree(&mut self, ctx: &RoundCtx, counts: &mut Counts) -> anyhow::Result<()> {
        let twin = self.twin.as_ref().map(|t| t.dir.clone());
        if self.keep {
            counts.kept = Some(KeptTree {
                racy: ctx.dir.clone(),
                sequential: twin,
            });
            return Ok(());
        }
        let mut trees = vec![(ctx.dir.clone(), "racy")];
        trees.extend(twin.map(|t| (t, "sequential")));
        match snapshot::keep_aside(&ctx.work, &trees)? {
            Ok(mut kept) => {
                counts.kept = Some(KeptTree {
                    racy: kept.remove(0),
                    sequential: kept.pop(),
                });
            }
            Err(why) => counts.not_kept = Some(why),
        }
        Ok(())
    }

    /// Across hosts: meets every instance at this round's barrier `name`.
    fn meet(&self, ctx: &RoundCtx, name: &str, wait: bool) -> anyhow::Result<u64> {
        let at = gate::RoundBarrier {
            work: &ctx.work,
            round: ctx.round,
            name,
            instance: ctx.instance,
            expect: self.instances,
            timeout: self.barrier_timeout,
        };
        if wait { at.wait() } else { at.start() }
    }
}

/// The round's directory, relative to the work directory.
fn rel(ctx: &RoundCtx) -> PathBuf {
    PathBuf::from(ctx.arm.round_dir(ctx.round))
}

fn remove(dir: &Path) -> anyhow::Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("removing '{}'", dir.display()))
}

impl Race for Exec {
    const NAME: &'static str = "exec";
    const SHARED: bool = true;
    type Params = Params;
    type Round = Round;
    type Outcome = Exited;
    type Churn = ();
    type Counts = Counts;
    type Record = Record;
    const ROUND_EXTRAS: &'static [&'static str] = &["twin-", "sync-"];

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        if p.command.is_empty() || p.command.len() > 10_000 || p.ignore.len() > 1000 {
            bail!(
                "a command of {} words, {} --ignore patterns",
                p.command.len(),
                p.ignore.len()
            );
        }
        if !(p.timeout.is_finite() && p.timeout > 0.0 && p.timeout <= MAX_TIMEOUT) {
            bail!("timeout {} is out of range (0, {MAX_TIMEOUT}]", p.timeout);
        }
        if p.widen > MAX_WIDEN_MS {
            bail!("widen {} is out of range 0..={MAX_WIDEN_MS}", p.widen);
        }
        Ignore::new(&p.ignore).map(drop)
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        make_round_dir(ctx)?;
        let leader = ctx.instance == 0;
        let racers = ctx.racers * self.instances;
        let mut list = Vec::new();
        if ctx.arm == Arm::Control {
            let canary = vec!["sh".into(), "-c".into(), CANARY.into()];
            for i in 0..ctx.racers {
                list.push(Program {
                    argv: canary.clone(),
                    ..self.program(&ctx.dir, i, ctx.racers, ctx.round)
                });
            }
        } else {
            if leader
                && self.stage_failed.is_none()
                && (self.params.compare_sequential || !self.oracle_ran)
            {
                self.run_twin(ctx, racers)?;
            }
            let env = self.env(racers, ctx.round);
            if leader
                && self.stage_failed.is_none()
                && let Some(why) = self.stage.set(&ctx.dir, &env)?
            {
                self.stage_failed = Some(Failing::of(ctx.round, Fault::Said(why)));
            }
            for i in 0..ctx.racers {
                list.push(self.program(&ctx.dir, ctx.instance * ctx.racers + i, racers, ctx.round));
            }
        }
        // A stage that could not be set proves nothing: none race (across hosts the
        // others still do, and instance 0 keeps meeting them).
        if self.stage_failed.is_some() && leader {
            list.clear();
        }
        let release_ns = if ctx.shared {
            Some(self.meet(ctx, "ready", false)?)
        } else {
            None
        };
        Ok(Round {
            programs: list,
            timeout: self.params.timeout,
            expect_exit: self.params.expect_exit,
            widen: match self.widen_unavailable {
                None => Widen::in_turn(ctx.round, self.params.widen, self.timeout()),
                Some(_) => None,
            },
            release_ns,
            judged: OnceLock::new(),
        })
    }

    fn race(round: &Round, racer: u32) -> Exited {
        let p = &round.programs[racer as usize];
        program::run(p, Duration::from_secs_f64(round.timeout)).unwrap_or_else(|e| Exited {
            error: Some(format!("{e:#}")),
            ..Exited::default()
        })
    }

    fn programs(&self, round: &Round) -> Option<Programs<Exited>> {
        Some(Programs {
            list: round.programs.clone(),
            timeout: Duration::from_secs_f64(round.timeout),
            release_ns: round.release_ns,
            widen: round.widen,
            outcome: |e| e,
        })
    }

    fn enough(&self) -> bool {
        // Across hosts every instance races the same rounds (they meet at each),
        // whatever its own canary saw.
        if self.shared {
            return self.played >= self.rounds;
        }
        self.stage_failed.is_some() || (self.params.stop_on_first && self.failed)
    }

    fn judge(
        &mut self,
        ctx: &RoundCtx,
        round: &Round,
        outcomes: &[Exited],
        _churn: Vec<()>,
        tally: &mut Tally<Counts>,
    ) -> anyhow::Result<()> {
        if ctx.shared {
            self.meet(ctx, "done", true)?;
        }
        let f = self.judge_round(ctx, outcomes, &mut tally.counts)?;
        tally.calls += outcomes.len() as u64;
        tally.failed_calls += f.racers_failed;
        let lines = f.lines(outcomes.len());
        if ctx.shared && ctx.instance == 0 {
            let _ = round.judged.set(Judged {
                check: f.check.clone(),
                stage_failed: self.stage_failed.is_some(),
            });
        }
        self.played += u64::from(ctx.arm == Arm::Racefree);
        if f.failed() && ctx.arm == Arm::Racefree {
            self.failed = true;
            if tally.counts.kept.is_none() && tally.counts.not_kept.is_none() && !ctx.shared {
                self.keep_tree(ctx, &mut tally.counts)?;
            }
            if tally.counts.failing_rounds.len() < ROUNDS_DETAILED {
                tally.counts.failing_rounds.push(f);
            }
        }
        tally.bad_round(ctx.round, lines);
        if let Some(t) = self.twin.take()
            && !self.keep
            && !ctx.shared
            && t.dir.exists()
        {
            remove(&t.dir)?;
        }
        Ok(())
    }

    fn finish(&mut self, tally: &mut Tally<Counts>) {
        if tally.arm == Arm::Racefree {
            tally.counts.sequential_failed = self.stage_failed.clone();
            tally.counts.widen_unavailable = self.widen_unavailable.clone();
        }
    }

    fn proves_nothing(&mut self) -> Option<String> {
        self.stage_failed.as_ref().map(stage_words)
    }

    fn failures(c: &Counts) -> Vec<(&'static str, u64)> {
        vec![
            ("hung", c.hung),
            ("check_failed", c.check_failed),
            ("tree_differed", c.tree_differed),
        ]
    }

    /// Every racer runs COMMAND once; none, on instance 0, when the stage failed.
    fn round_calls(_p: &Params, racers: u32) -> RangeInclusive<u64> {
        0..=u64::from(racers)
    }

    fn check_counts(_p: &Params, racers: u32, t: &Tally<Counts>) -> anyhow::Result<()> {
        let c = &t.counts;
        if c.hung > t.failed_calls || c.check_failed > t.rounds || c.tree_differed > t.rounds {
            bail!("hung, check_failed or tree_differed beyond what the calls and rounds allow");
        }
        let detailed = c.failing_rounds.len() as u64;
        if detailed > ROUNDS_DETAILED as u64 || detailed > t.bad_rounds {
            bail!("{detailed} failing rounds detailed, {} bad", t.bad_rounds);
        }
        if c.failing_rounds
            .iter()
            .any(|f| f.racers_failed > u64::from(racers))
        {
            bail!("a failing round with more failed racers than racers");
        }
        Ok(())
    }

    /// The racers that exited as expected.
    fn record_calls(r: &Record) -> Option<u64> {
        Some(u64::from(r.racers.saturating_sub(r.racers_failed)))
    }

    fn record(_ctx: &RoundCtx, round: &Round, outcomes: &[Exited]) -> Record {
        Record::of(round, outcomes)
    }

    fn merge_round(
        params: &Params,
        work: &Path,
        n: u64,
        records: &[Contribution<Record>],
    ) -> anyhow::Result<Vec<String>> {
        record::merge(params, work, n, records)
    }

    fn columns() -> &'static [&'static str] {
        &["hung", "check", "tree"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        vec![
            c.hung.to_string(),
            c.check_failed.to_string(),
            c.tree_differed.to_string(),
        ]
    }

    fn describe(p: &Params) -> String {
        let words: Vec<String> = p.command.iter().map(quote_if_needed).collect();
        let mut s = format!(
            "each round: racers run `{}` at once, each must exit {}",
            words.join(" "),
            p.expect_exit
        );
        if let Some(c) = &p.check {
            s.push_str(&format!("; then --check {} must pass", quote_if_needed(c)));
        }
        if p.compare_sequential {
            s.push_str("; the tree must equal the sequential run's");
        }
        if p.check.is_none() && !p.compare_sequential {
            s.push_str(" (the state is not checked: see --check, --compare-sequential)");
        }
        if p.widen > 0 {
            s.push_str(&format!(
                "; changes to the filesystem held back (rounds in turn: the first aligned, all delayed {} ms, none)",
                p.widen
            ));
        }
        s
    }

    fn print_more(out: &mut dyn std::io::Write, r: &Report<Self>) -> std::io::Result<()> {
        r.racefree.counts.print(out)
    }
}

impl Subject for Exec {
    const ABOUT: &'static str =
        "Race your own command: many copies at once, judged against a sequential run";
    const EXAMPLES: &'static [Example] = EXAMPLES;
    const STATUSES: &'static [exit::Status] = STATUSES;
    type Args = ProgramArgs<Params>;

    fn new(args: &ProgramArgs<Params>) -> anyhow::Result<Exec> {
        let (p, race) = (&args.0.own, &args.0.race);
        if !program::findable(&p.command[0]) {
            return Err(exit::usage(format!(
                "COMMAND {}: not found (nor on PATH)",
                quote_if_needed(&p.command[0])
            )));
        }
        if race.racers() > MAX_PROGRAMS {
            return Err(exit::usage(format!(
                "--racers {}: stress exec runs at most {MAX_PROGRAMS}",
                race.racers()
            )));
        }
        if let Some(t) = &p.template
            && !std::fs::metadata(t).is_ok_and(|m| m.is_dir())
        {
            return Err(exit::usage(format!(
                "--template '{}' is not a directory",
                t.display()
            )));
        }
        let shared = race.barrier_file.is_some();
        if shared && (race.rounds.is_none() || p.stop_on_first) {
            return Err(exit::usage(
                "across hosts stress exec needs --rounds, not --duration or --stop-on-first: every instance races the same rounds",
            ));
        }
        Ok(Exec {
            stage: Stage {
                template: p.template.clone(),
                setup: p.setup.clone(),
                check: p.check.clone(),
                timeout: Duration::from_secs_f64(p.timeout),
                expect: i32::from(p.expect_exit),
            },
            ignore: Ignore::new(&p.ignore).map_err(|e| exit::usage(format!("{e:#}")))?,
            params: p.clone(),
            keep: args.0.work.keep,
            instances: race.expect.unwrap_or(1),
            barrier_timeout: race.barrier_timeout(),
            oracle_ran: false,
            twin: None,
            stage_failed: None,
            failed: false,
            shared,
            played: 0,
            rounds: race.rounds.unwrap_or(0),
            widen_unavailable: match p.widen {
                0 => None,
                _ => widen::Filter::new().available().err(),
            },
        })
    }

    fn main_job(_race: RaceArgs) -> Option<ProgramArgs<Params>> {
        None
    }
}

/// What `stress exec` exits with.
const STATUSES: &[exit::Status] = &[
    exit::Status {
        code: 0,
        meaning: "pass: every racer of every round exited as expected and left the state right, and the canary failed as it must (or none ran: the report then says \"PASS, no control ran\")",
    },
    exit::Status {
        code: 1,
        meaning: "fail: in a round a racer exited otherwise than expected or hung, --check failed, or the tree differed from the sequential run's",
    },
    args::STATUSES[2],
    exit::Status {
        code: 4,
        meaning: "inconclusive: nothing failed, but the sequential run failed on its own (the command or the check is wrong), or the canary never failed (racing on up to 4 x --duration, or 4 x --rounds)",
    },
    args::STATUSES[4],
];

const EXAMPLES: &[Example] = &[
    Example {
        what: "check, then create: fails (mkdir: cannot create directory 'out': File exists)",
        lines: "racefree stress exec -- sh -c '[ -d out ] || mkdir out'",
    },
    Example {
        what: "idempotent creators pass",
        lines: "racefree stress exec -- mkdir -p out/a/b\nracefree stress exec -- racefree makedirs out/a/b",
    },
    Example {
        what: "Python's check-then-makedirs fails; exist_ok=True passes",
        lines: "racefree stress exec -- python3 -c \"import os; os.path.isdir('out/a') or os.makedirs('out/a')\"\nracefree stress exec -- python3 -c \"import os; os.makedirs('out/a', exist_ok=True)\"",
    },
    Example {
        what: "a lost update fails; the same under racefree lock passes",
        lines: "racefree stress exec --setup 'echo 0 > n' --check 'test \"$(cat n)\" = \"$RACEFREE_RACERS\"' -- sh -c 'n=$(cat n); echo $((n+1)) > n'\nracefree stress exec --setup 'echo 0 > n' --check 'test \"$(cat n)\" = \"$RACEFREE_RACERS\"' -- racefree lock n.lock -- sh -c 'n=$(cat n); echo $((n+1)) > n'",
    },
    Example {
        what: "a command that fails even run one after another proves nothing: INCONCLUSIVE (exit 4)",
        lines: "racefree stress exec -- python3 -c \"import os; os.makedirs('out/a')\"",
    },
    Example {
        what: "so does a check the sequential run fails",
        lines: "racefree stress exec --check false -- true",
    },
    Example {
        what: "an install step must leave what it leaves run one at a time",
        lines: "racefree stress exec --template ./fixture --compare-sequential --ignore '*.log' -- ./install.sh",
    },
];

#[cfg(test)]
mod tests;
