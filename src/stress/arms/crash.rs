//! `racefree stress crash`: racers whose calls are SIGKILLed mid-operation, and what
//! must survive them.
//!
//! Every racer makes `--calls` calls per round, in turn `racefree counter`, `racefree
//! write` and `racefree lock`, each a process of this binary. About half of them are
//! SIGKILLed at a random instant of their run (a lock call: racefree alone, or its
//! process group with COMMAND), and one counter or write call in eight dies at the
//! one instant where a kill leaves a temporary file behind, between its link and its
//! rename (the test knob of `write::leftovers`), so that check is never vacuous.
//! Then, exactly:
//! - counter: no value is printed twice, each racer's values rise, none lies above
//!   the final value, and every value of 1..=final that nobody printed was taken by a
//!   killed call (one killed after its rename, before it printed) that could have:
//!   one whose racer printed a smaller value before it and a larger one after; each
//!   killed call accounts for one value at most ([`account`]);
//! - write: the file, read after every write call and at the end, is one whole
//!   checksummed version;
//! - lock: COMMAND logs its entry and its exit, and checks at both that it holds
//!   the lock itself, flock's or (every other call `--nfs`) the link lock's, as it
//!   must to outlive a racefree killed alone; an exit must come right after its own
//!   entry, with no other holder's line between ([`read_log`]). A holder killed
//!   inside leaves an entry alone;
//! - after the round, one more successful call of each, and then no temporary file
//!   of the file or of the counter remains.
//!
//! The control makes the same counter and write calls without the temp+rename
//! discipline: its counter reads, adds one and writes in place with no lock, its
//! writer truncates and writes in place. Killed, or merely racing, they hand out
//! numbers twice and leave torn files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, FromArgMatches};
use serde::{Deserialize, Serialize};

use super::kit::holder::{hold, read_log};
use super::kit::kill::{Kill, Ran, run_killing};
use super::kit::takes::{Take, account};
use super::kit::{
    Rng, make_round_dir, not_one_version, read_value, temporaries, version, write_in_place,
};
use crate::help;
use crate::stress::args::{FsArgs, RaceArgs};
use crate::stress::cleanup::{interrupted, stopping};
use crate::stress::gate;
use crate::stress::race::{Arm, Contribution, Helper, Race, RoundCtx, Subject, Tally, keep_failure};
use crate::write::leftovers::KILL_BEFORE_RENAME_ENV;

pub const DEFAULT_CALLS: u32 = 24;
pub const MAX_CALLS: u32 = 10_000;

/// The round's file, counter, lock file, holders' log, and the writers' inputs.
const FILE: &str = "file";
const COUNTER: &str = "counter";
const LOCKFILE: &str = "lock";
const LOG: &str = "holders";
const INPUTS: &str = "in";

/// How long the final lock call of a round may wait for holders that outlived
/// racefree: far more than any holder runs, short of a hang.
const FINAL_LOCK_WAIT: &str = "30";

/// A call's kill instant is drawn from 0 to this many times the call's usual length.
const KILL_SPAN: f64 = 1.5;

/// Breaks racefree's arm on purpose, so a test can show the verdict catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Sabotage {
    /// racefree's counter calls are the control's
    Counter,
    /// racefree's write calls are the control's
    Write,
    /// Lock calls take `-o`: racefree alone holds the lock, and dies with it
    Lock,
    /// No successful call after the kills: what they left stays
    Leftovers,
}

/// `stress crash`'s own options, echoed in its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ClapArgs)]
pub struct Params {
    /// Calls each racer makes per round (fewer once --duration is over)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CALLS, value_parser = clap::value_parser!(u32).range(1..=MAX_CALLS as i64))]
    pub calls: u32,

    /// Break racefree's arm on purpose (for the tests)
    #[arg(long, value_name = "PART", hide = true)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sabotage: Option<Sabotage>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Counter,
    Write,
    Lock,
}

impl Op {
    /// What the racers of `arm` call, in turn.
    fn of(arm: Arm) -> &'static [Op] {
        match arm {
            Arm::Racefree => &[Op::Counter, Op::Write, Op::Lock],
            Arm::Control => &[Op::Counter, Op::Write],
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct Round {
    pub arm: Arm,
    pub dir: PathBuf,
    pub round: u64,
    pub calls: u32,
    pub deadline_ns: Option<u64>,
    pub sabotage: Option<Sabotage>,
}

impl Round {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn broken(&self, part: Sabotage) -> bool {
        self.arm == Arm::Racefree && self.sabotage == Some(part)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub calls: u64,
    pub failed: u64,
    pub failures: Vec<String>,
    /// This racer's counter calls, in order.
    pub takes: Vec<Take>,
    pub kills: u64,
    pub rename_kills: u64,
    /// Reads of the file, after a write call, that were not one whole version.
    pub torn: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Calls SIGKILLed at a random instant while they ran.
    pub kills: u64,
    /// Calls that died at their rename, leaving a temporary file.
    pub rename_kills: u64,
    /// Counter values a killed call took and never printed.
    pub silent: u64,
    /// Lock holders killed while they held the lock.
    pub died_holding: u64,
    /// Counter values handed out more than once.
    pub repeated: u64,
    /// Counter values printed that the final value does not hold: above it, or
    /// taken after a larger one by the same racer (the counter went back).
    pub lost: u64,
    /// Values of 1..=final that no call printed and no killed call could have taken.
    pub skipped: u64,
    /// The file found not one whole version (empty, torn, missing).
    pub torn: u64,
    /// Lock holders that acted while another held the lock.
    pub overlaps: u64,
    /// Lock holders that found they did not hold the lock themselves.
    pub unheld: u64,
    /// Temporary files left after the round's last successful calls.
    pub leftovers: u64,
    /// `LOCKFILE.nfslock.TOKEN.tmp` files left by lock calls killed while taking
    /// the link lock. racefree lock does not remove them yet: counted, not judged.
    pub nfslock_asides: u64,
}

pub struct Crash {
    params: Params,
}

/// One racer: its calls, each killed or not, until `--calls` or the deadline.
fn racer(round: &Round, racer: u32) -> anyhow::Result<Outcome> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let ops = Op::of(round.arm);
    let mut out = Outcome::default();
    let mut rng = Rng::seeded();
    // Each kind of call's usual length, from those that ended on their own.
    let mut usual = [Duration::from_millis(4); 3];
    for k in 0..round.calls {
        if round.deadline_ns.is_some_and(|d| gate::now_ns() >= d) || stopping() {
            break;
        }
        let op = ops[(racer + k) as usize % ops.len()];
        out.calls += 1;
        if let Err(e) = one_call(round, &exe, op, (racer, k), &mut rng, &mut usual, &mut out) {
            out.failed += 1;
            keep_failure(&mut out.failures, || format!("{e:#}"));
        }
    }
    Ok(out)
}

/// One call of `op`: killed at a random instant, at its rename, or not at all.
fn one_call(
    round: &Round,
    exe: &Path,
    op: Op,
    (racer, k): (u32, u32),
    rng: &mut Rng,
    usual: &mut [Duration; 3],
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let at_rename = op != Op::Lock && rng.one_in(8);
    let kill = (!at_rename && rng.one_in(2)).then(|| Kill {
        after: usual[op as usize].mul_f64(KILL_SPAN * rng.unit()),
        // A lock call killed alone leaves COMMAND holding the lock.
        group: op != Op::Lock || rng.one_in(2),
    });
    let nfs: &[&str] = if rng.one_in(2) { &["--nfs"] } else { &[] };
    let mut cmd = command(round, exe, op, nfs)?;
    if op == Op::Write {
        feed(&mut cmd, round, &racer.to_string(), &format!("{racer}.{k}"))?;
    }
    die_at_rename(&mut cmd, at_rename);
    let ran = run_killing(&mut cmd, kill)?;
    let died = ran.died_of_sigkill() && (ran.killed || at_rename);
    match (died, ran.killed) {
        (true, true) => out.kills += 1,
        (true, false) => out.rename_kills += 1,
        (false, _) if ran.status.success() => {
            let u = &mut usual[op as usize];
            *u = (*u * 3 + ran.took) / 4;
        }
        (false, _) => {}
    }
    match op {
        Op::Counter => out.takes.push(take_of(&ran, at_rename)),
        Op::Write => {
            if let Some(why) = not_one_version(&round.path(FILE)) {
                out.torn += 1;
                keep_failure(&mut out.failures, || format!("after a write call: {why}"));
            }
        }
        Op::Lock => {}
    }
    if !died && !ran.status.success() {
        bail!("{}", failed(op, &ran));
    }
    Ok(())
}

/// The command of one call of `op` in `round`; a lock call takes `lock`'s options.
fn command(round: &Round, exe: &Path, op: Op, lock: &[&str]) -> anyhow::Result<Command> {
    let ours = round.arm == Arm::Racefree;
    let mut cmd = Command::new(exe);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match op {
        Op::Counter if ours && !round.broken(Sabotage::Counter) => {
            cmd.arg("counter").arg(round.path(COUNTER))
        }
        Op::Counter => cmd.args(["stress", "crash-call", "count"]).arg(round.path(COUNTER)),
        Op::Write if ours && !round.broken(Sabotage::Write) => {
            cmd.args(["write", "--no-sync"]).arg(round.path(FILE))
        }
        Op::Write => cmd.args(["stress", "crash-call", "write"]).arg(round.path(FILE)),
        Op::Lock => {
            cmd.arg("lock").args(lock);
            if round.broken(Sabotage::Lock) {
                cmd.arg("-o");
            }
            // COMMAND inherits stdout: a holder that outlived racefree must not
            // hold up the racer reading it.
            cmd.arg(round.path(LOCKFILE))
                .arg("--")
                .arg(exe)
                .args(["stress", "crash-call", "hold"])
                .arg(round.path(LOG))
                .arg("--lockfile")
                .arg(round.path(LOCKFILE))
                .stdout(Stdio::null());
            if lock.contains(&"--nfs") {
                cmd.arg("--nfs");
            }
            &mut cmd
        }
    };
    Ok(cmd)
}

/// Gives a write call a new whole version, `ROUND.ID`, as its standard input, kept
/// in `INPUTS/name` (each racer's own, rewritten for each call).
fn feed(cmd: &mut Command, round: &Round, name: &str, id: &str) -> anyhow::Result<()> {
    let input = round.path(INPUTS).join(name);
    std::fs::write(&input, version(&format!("{}.{id}", round.round)))
        .with_context(|| format!("writing '{}'", input.display()))?;
    cmd.stdin(std::fs::File::open(&input)?);
    Ok(())
}

/// Makes a write or counter call die of SIGKILL right before its rename (the knob
/// of `write::leftovers`), or not.
fn die_at_rename(cmd: &mut Command, die: bool) {
    match die {
        true => cmd.env(KILL_BEFORE_RENAME_ENV, "1"),
        false => cmd.env_remove(KILL_BEFORE_RENAME_ENV),
    };
}

/// What a counter call that ended as `ran` tells of its value.
fn take_of(ran: &Ran, at_rename: bool) -> Take {
    let printed = std::str::from_utf8(&ran.stdout)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| s.parse().ok());
    match printed {
        Some(v) => Take::Took(v),
        None if at_rename && ran.died_of_sigkill() && !ran.killed => Take::Nothing,
        None => Take::Unknown,
    }
}

fn failed(op: Op, ran: &Ran) -> String {
    format!(
        "a {} call exited with {}: {}",
        format!("{op:?}").to_lowercase(),
        ran.status,
        String::from_utf8_lossy(&ran.stderr).trim()
    )
}

/// `racefree stress crash-call WHAT FILE`: a call the crash arm runs and kills
/// that is not one of racefree's commands.
#[derive(Debug, ClapArgs)]
pub struct CallArgs {
    #[arg(value_enum)]
    pub what: CallKind,
    pub file: PathBuf,
    /// hold: the lock it runs under
    #[arg(long, value_name = "LOCKFILE")]
    pub lockfile: Option<PathBuf>,
    /// hold: the lock was taken with --nfs: its link lock must name this holder
    #[arg(long)]
    pub nfs: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CallKind {
    /// A lock holder: log entry and exit in FILE
    Hold,
    /// The control's counter: read FILE, add one, write it in place, unlocked
    Count,
    /// The control's writer: truncate FILE and write standard input into it
    Write,
}

fn crash_call(args: &CallArgs) -> anyhow::Result<()> {
    match args.what {
        CallKind::Hold => {
            let lockfile = args.lockfile.as_deref().context("hold needs --lockfile")?;
            hold(&args.file, lockfile, args.nfs)
        }
        CallKind::Count => {
            // As `n=$(cat F); echo $((n+1)) > F` reads it: anything but a number is 0.
            let old = std::fs::read_to_string(&args.file).unwrap_or_default();
            let value = old.trim().parse::<i64>().unwrap_or(0) + 1;
            std::fs::write(&args.file, format!("{value}\n"))
                .with_context(|| format!("writing '{}'", args.file.display()))?;
            println!("{value}");
            Ok(())
        }
        CallKind::Write => {
            let mut content = Vec::new();
            std::io::stdin().read_to_end(&mut content)?;
            write_in_place(&args.file, &content)
        }
    }
}

impl Crash {
    /// After the racers: the state they left, one more successful call of each kind,
    /// and what remains. Returns the round's problems.
    fn settle(
        round: &Round,
        last: &anyhow::Result<i64>,
        counts: &mut Counts,
    ) -> anyhow::Result<Vec<String>> {
        // Interrupted, the racers stopped short: the round proves nothing.
        if stopping() {
            return Err(interrupted());
        }
        let exe = std::env::current_exe().context("finding this binary")?;
        let mut problems = Vec::new();
        if let Some(why) = not_one_version(&round.path(FILE)) {
            counts.torn += 1;
            problems.push(format!("the racers left {why}"));
        }
        for &op in Op::of(round.arm) {
            // The lock waits for every holder that outlived racefree; bounded, not a hang.
            let mut cmd = command(round, &exe, op, &["--nfs", "-w", FINAL_LOCK_WAIT])?;
            if op == Op::Write {
                feed(&mut cmd, round, "last", "last")?;
            }
            // Sabotaged, the round's last write and counter die at their rename too:
            // nothing after them removes what they and the kills left.
            let doomed = op != Op::Lock && round.broken(Sabotage::Leftovers);
            die_at_rename(&mut cmd, doomed);
            let ran = run_killing(&mut cmd, None)?;
            if doomed {
                continue;
            }
            if !ran.status.success() {
                problems.push(format!("the next call: {}", failed(op, &ran)));
            }
            match (op, last) {
                (Op::Counter, Ok(v)) if take_of(&ran, false) != Take::Took(v + 1) => problems
                    .push(format!("the next counter call did not take {}", v + 1)),
                _ => {}
            }
        }
        if let Some(why) = not_one_version(&round.path(FILE)) {
            counts.torn += 1;
            problems.push(format!("after the next write call, {why}"));
        }
        Ok(problems)
    }
}

impl Race for Crash {
    const NAME: &'static str = "crash";
    /// Killed calls' leftovers from another host are removed only once an hour old,
    /// and a dead holder there cannot be proven dead: one host.
    const SHARED: bool = false;
    type Params = Params;
    type Round = Round;
    type Outcome = Outcome;
    type Churn = ();
    type Counts = Counts;
    type Record = ();

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        if !(1..=MAX_CALLS).contains(&p.calls) {
            bail!("calls {} is out of range 1..={MAX_CALLS}", p.calls);
        }
        Ok(())
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        make_round_dir(ctx)?;
        let round = Round {
            arm: ctx.arm,
            dir: ctx.dir.clone(),
            round: ctx.round,
            calls: self.params.calls,
            deadline_ns: ctx.deadline_ns,
            sabotage: self.params.sabotage,
        };
        let inputs = round.path(INPUTS);
        std::fs::create_dir(&inputs)
            .with_context(|| format!("creating '{}'", inputs.display()))?;
        // The file is one whole version before anyone reads it (not under test).
        let first = version(&format!("{}.first", ctx.round));
        let opts = crate::write::Options {
            sync: false,
            ..crate::write::Options::default()
        };
        crate::write::replace(&round.path(FILE), &mut &first[..], &opts)?;
        Ok(round)
    }

    fn race(round: &Round, r: u32) -> Outcome {
        racer(round, r).unwrap_or_else(|e| Outcome {
            failed: 1,
            failures: vec![format!("{e:#}")],
            ..Outcome::default()
        })
    }

    fn judge(
        &mut self,
        ctx: &RoundCtx,
        round: &Round,
        outcomes: &[Outcome],
        _churn: Vec<()>,
        tally: &mut Tally<Counts>,
    ) -> anyhow::Result<()> {
        let c = &mut tally.counts;
        for o in outcomes {
            c.kills += o.kills;
            c.rename_kills += o.rename_kills;
            c.torn += o.torn;
        }
        for o in outcomes {
            tally.racer(ctx.round, o.calls, o.failed + o.torn, &o.failures);
        }
        let c = &mut tally.counts;
        let last = read_value(&round.path(COUNTER));
        let mut problems = Self::settle(round, &last, c)?;
        match last {
            Ok(last) => {
                let takes: Vec<&[Take]> = outcomes.iter().map(|o| &o.takes[..]).collect();
                let a = account(&takes, last);
                (c.repeated, c.lost, c.skipped) =
                    (c.repeated + a.repeated, c.lost + a.lost, c.skipped + a.skipped);
                c.silent += a.silent;
                problems.extend(a.problems);
            }
            Err(e) => {
                c.lost += 1;
                problems.push(format!("{e:#}: what it counted is lost"));
            }
        }
        if round.arm == Arm::Racefree {
            let log = std::fs::read(round.path(LOG)).unwrap_or_default();
            let h = read_log(&log);
            c.died_holding += h.died_holding;
            c.overlaps += h.overlaps;
            c.unheld += h.unheld;
            problems.extend(h.problems);
        }
        c.nfslock_asides += nfslock_asides(&round.dir)?;
        let left = temporaries(&round.dir, &[FILE, COUNTER])?;
        if !left.is_empty() {
            c.leftovers += left.len() as u64;
            problems.push(format!(
                "after the next successful calls, {} temporary files remain, such as '{}'",
                left.len(),
                left[0]
            ));
        }
        tally.bad_round(ctx.round, problems);
        Ok(())
    }

    fn failures(c: &Counts) -> Vec<(&'static str, u64)> {
        vec![
            ("repeated", c.repeated),
            ("lost", c.lost),
            ("skipped", c.skipped),
            ("torn", c.torn),
            ("overlaps", c.overlaps),
            ("unheld", c.unheld),
            ("leftovers", c.leftovers),
        ]
    }

    fn record(_ctx: &RoundCtx, _round: &Round, _outcomes: &[Outcome]) {}

    fn merge_round(
        _params: &Params,
        _work: &Path,
        _n: u64,
        _records: &[Contribution<()>],
    ) -> anyhow::Result<Vec<String>> {
        bail!("stress crash runs on one host: it has no rounds to merge")
    }

    fn columns() -> &'static [&'static str] {
        &["kills", "counter", "torn", "lock", "leftover"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        vec![
            (c.kills + c.rename_kills).to_string(),
            (c.repeated + c.lost + c.skipped).to_string(),
            c.torn.to_string(),
            (c.overlaps + c.unheld).to_string(),
            c.leftovers.to_string(),
        ]
    }

    fn describe(p: &Params) -> String {
        format!(
            "each round: every racer makes {} calls of racefree counter, write and lock in turn, half of them SIGKILLed at a random instant, one in 8 at the rename; nothing committed may be lost or repeated, the file is always one whole version, no two hold the lock, and nothing is left after the next call",
            p.calls
        )
    }
}

/// The link lock's record asides in `dir` ([`Counts::nfslock_asides`]).
fn nfslock_asides(dir: &Path) -> anyhow::Result<u64> {
    let prefix = format!("{LOCKFILE}.nfslock.");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing '{}'", dir.display()))? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        n += u64::from(name.starts_with(&prefix) && name.ends_with(".tmp"));
    }
    Ok(n)
}

impl Subject for Crash {
    const ABOUT: &'static str =
        "Racers' counter, write and lock calls are SIGKILLed mid-operation; nothing committed is lost, nothing is left";
    const EXAMPLES: &'static [help::Example] = &[
        help::Example {
            what: "kill calls for 30 s on the filesystem your jobs use, racers as processes",
            lines: "racefree stress crash --dir /mnt/nfs/scratch --duration 30 --processes",
        },
        help::Example {
            what: "exactly 20 rounds of 100 calls per racer",
            lines: "racefree stress crash --rounds 20 --calls 100",
        },
    ];
    const HELPER: Option<Helper> = Some(Helper {
        name: "crash-call",
        about: "One call the crash arm kills: a lock holder, or the control's counter or writer (not for direct use)",
        args: CallArgs::augment_args,
        run: |matches| crash_call(&CallArgs::from_arg_matches(matches)?),
    });
    type Args = FsArgs<Params>;

    fn new(args: &Self::Args) -> anyhow::Result<Crash> {
        Ok(Crash {
            params: args.own.clone(),
        })
    }

    fn main_job(race: RaceArgs) -> Option<Self::Args> {
        let own = Params {
            calls: DEFAULT_CALLS,
            sabotage: None,
        };
        Some(FsArgs::on_temp_dir(own, race))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_counter_hands_a_number_out_again_after_an_in_place_write_was_cut() {
        // Forced: a kill between the truncate and the write leaves the file empty;
        // the next in-place call reads that as 0 and hands out 1 again.
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("c");
        let count = CallArgs {
            what: CallKind::Count,
            file: file.clone(),
            lockfile: None,
            nfs: false,
        };
        crash_call(&count).unwrap();
        std::fs::File::create(&file).unwrap();
        crash_call(&count).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");
    }
}
