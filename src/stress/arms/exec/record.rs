//! What `stress exec` keeps of a run: its options, a round as the racers get it,
//! the failing rounds in detail, the figures per arm and the record each instance
//! leaves for `stress report`; and how the report prints them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use crate::stress::args::positive_seconds;
use crate::stress::program::stage::Fault;
use crate::stress::program::{Exited, Failed, Program};
use crate::stress::race::{Arm, Contribution};
use crate::stress::snapshot::{self, Ignore};
use crate::stress::table::micros;
use crate::stress::widen::Widen;

/// Seconds a round's racers (and each `--setup` and `--check`) may run.
pub const DEFAULT_TIMEOUT: f64 = 10.0;
pub const MAX_TIMEOUT: f64 = 86_400.0;

/// The longest delay `--widen` gives one call, in milliseconds.
pub const DEFAULT_WIDEN_MS: u32 = 16;
pub const MAX_WIDEN_MS: u32 = 1000;

/// Failing rounds a report details (all are counted), and what it shows of each.
pub const ROUNDS_DETAILED: usize = 3;
pub const RACERS_DETAILED: usize = 4;
pub const DIFFERENCES_LISTED: usize = 10;

/// `stress exec`'s own options, echoed in its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ClapArgs)]
pub struct Params {
    /// Copy this directory into each round's directory first
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,

    /// Before the racers, run CMD with 'sh -c' in the round's directory (and in the
    /// sequential run's)
    #[arg(long, value_name = "CMD")]
    pub setup: Option<String>,

    /// After the racers, run CMD with 'sh -c' in the round's directory: exit 0 means
    /// the state is right. RACEFREE_RACERS and RACEFREE_ROUND are set
    #[arg(long, value_name = "CMD")]
    pub check: Option<String>,

    /// The tree the racers leave must equal the one the same commands leave run one
    /// after another in a twin directory (names, types, modes, sizes, contents)
    #[arg(long)]
    pub compare_sequential: bool,

    /// With --compare-sequential: names that may differ; without a '/' a name at any
    /// depth, with one a path from the round's directory (repeatable)
    #[arg(long, value_name = "GLOB", requires = "compare_sequential")]
    pub ignore: Vec<String>,

    /// The exit status every racer must end with
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub expect_exit: u8,

    /// Seconds a round's racers may run before they count as hung (their process
    /// groups are killed, and the round fails)
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIMEOUT, value_parser = positive_seconds)]
    pub timeout: f64,

    /// Widen race windows by holding back each racer's calls that change the
    /// filesystem (mkdir, an open for writing, rename, link, unlink). Rounds take
    /// turns: every racer's first such call held until all racers have reached
    /// theirs, then let go together; every such call delayed MS; none held. 0 turns
    /// it off. A hold only picks a schedule the kernel could pick itself, so what
    /// fails under it is a real race. Racers of a user other than root then run
    /// with no_new_privs (setuid programs get no privileges)
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_WIDEN_MS, value_parser = clap::value_parser!(u32).range(0..=MAX_WIDEN_MS as i64))]
    pub widen: u32,

    /// End the run at the first failing round
    #[arg(long)]
    pub stop_on_first: bool,

    /// The command every racer runs, and its arguments. Each racer sees
    /// RACEFREE_RACER (0, 1, ...), RACEFREE_RACERS and RACEFREE_ROUND
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, allow_hyphen_values = true,
          value_hint = clap::ValueHint::CommandWithArguments)]
    pub command: Vec<String>,
}

/// One round, as the racers get it.
#[derive(Serialize, Deserialize)]
pub struct Round {
    pub programs: Vec<Program>,
    pub timeout: f64,
    pub expect_exit: u8,
    /// How each racer's calls that change the filesystem are held back.
    pub widen: Option<Widen>,
    /// Across hosts: when the instances release their racers.
    pub release_ns: Option<u64>,
    /// Across hosts, on instance 0: what it judged of the round, for the record.
    #[serde(skip)]
    pub(super) judged: OnceLock<Judged>,
}

/// A failing round (or a sequential run that failed), in detail.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Failing {
    pub round: u64,
    /// How far apart its racers were released.
    pub spread_ns: u64,
    pub racers_failed: u64,
    /// The first few failing racers.
    pub racers: Vec<Failed>,
    /// What `--setup` or `--check` said, when it failed.
    pub check: Option<String>,
    /// How its tree differs from the sequential run's (the first few).
    pub differences: Vec<String>,
    pub differences_count: u64,
}

impl Failing {
    /// The stage's failure in round `round`.
    pub fn of(round: u64, fault: Fault) -> Failing {
        let mut f = Failing {
            round,
            ..Failing::default()
        };
        match fault {
            Fault::Racer(r) => {
                f.racers_failed = 1;
                f.racers.push(r);
            }
            Fault::Said(s) => f.check = Some(s),
        }
        f
    }

    pub fn failed(&self) -> bool {
        self.racers_failed > 0 || self.check.is_some() || self.differences_count > 0
    }

    /// Its problems in a line each, for the tally and the merge.
    pub fn lines(&self, racers: usize) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = self.racers.first() {
            out.push(format!(
                "{} of {racers} racers failed; {}",
                self.racers_failed,
                r.line()
            ));
        }
        out.extend(self.check.clone());
        if let Some(d) = self.differences.first() {
            let more = self.differences_count - 1;
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            out.push(format!(
                "the tree differs from the sequential run's: {d}{more}"
            ));
        }
        out
    }
}

/// Where the first failing round's tree was kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeptTree {
    pub racy: PathBuf,
    pub sequential: Option<PathBuf>,
}

/// Figures per arm.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Racers killed when their round's time was up.
    pub hung: u64,
    /// Rounds whose `--check` failed.
    pub check_failed: u64,
    /// Rounds whose tree differed from the sequential run's.
    pub tree_differed: u64,
    /// The first failing rounds, in detail.
    pub failing_rounds: Vec<Failing>,
    /// The first failing round's tree, kept for inspection (or why it was not).
    pub kept: Option<KeptTree>,
    pub not_kept: Option<String>,
    /// The sequential run, or `--setup`, when it failed on its own: nothing was judged.
    pub sequential_failed: Option<Failing>,
    /// Why race windows were not widened, when --widen asked and the host refused.
    pub widen_unavailable: Option<String>,
}

/// What one instance did in a round across hosts, for `stress report`.
#[derive(Serialize, Deserialize)]
pub struct Record {
    pub racers: u32,
    pub racers_failed: u32,
    pub failures: Vec<String>,
    /// Instance 0's: what it judged of the round.
    pub judged: Option<Judged>,
}

/// What instance 0 judged of a round across hosts, running what `stress report`
/// does not: `--check`, and the stage (the sequential run, `--setup`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Judged {
    pub check: Option<String>,
    /// The stage could not be set: nothing of the round is judged.
    pub stage_failed: bool,
}

impl Record {
    /// What one instance's racers did in `round`, for `stress report`.
    pub fn of(round: &Round, outcomes: &[Exited]) -> Record {
        let expected = i32::from(round.expect_exit);
        let failures: Vec<&Exited> = outcomes
            .iter()
            .filter(|e| !e.exited_with(expected))
            .collect();
        Record {
            racers: outcomes.len() as u32,
            racers_failed: failures.len() as u32,
            failures: failures
                .iter()
                .take(3)
                .map(|e| e.how(Duration::from_secs_f64(round.timeout)))
                .collect(),
            judged: round.judged.get().cloned(),
        }
    }
}

/// Round `n` across hosts as `stress report` judges it from every instance's
/// record, running no user command: the racers' exits, instance 0's `--check`,
/// and with `--compare-sequential` the round's tree compared again with its twin's.
pub fn merge(
    params: &Params,
    work: &Path,
    n: u64,
    records: &[Contribution<Record>],
) -> anyhow::Result<Vec<String>> {
    let judged = match records.iter().find(|c| c.instance == 0) {
        Some(c) => c.record.judged.clone(),
        None => None,
    };
    let Some(judged) = judged else {
        return Ok(vec![
            "instance 0's judgement of the round is not in its record".into(),
        ]);
    };
    if judged.stage_failed {
        // Instance 0's report says why the run proves nothing.
        return Ok(Vec::new());
    }
    let mut problems = Vec::new();
    for c in records {
        let r = &c.record;
        if r.judged.is_some() != (c.instance == 0) || r.racers != c.racers {
            problems.push(format!(
                "instance {}'s record is not of its round",
                c.instance
            ));
        } else if r.racers_failed > 0 {
            problems.push(format!(
                "instance {}: {} of {} racers failed: {}",
                c.instance,
                r.racers_failed,
                r.racers,
                r.failures.join("; ")
            ));
        }
    }
    problems.extend(judged.check);
    if params.compare_sequential {
        let racy = snapshot::take(work, Path::new(&Arm::Racefree.round_dir(n)))?;
        let twin = snapshot::take(work, Path::new(&format!("twin-{n}")))?;
        let d = snapshot::differences(&racy, &twin, &Ignore::new(&params.ignore)?);
        if let Some(first) = d.first() {
            problems.push(format!(
                "the tree differs from the sequential run's: {first} ({} in all)",
                d.len()
            ));
        }
    }
    Ok(problems)
}

impl Counts {
    /// What the report shows below the table: the first failing round in full (the
    /// problems listed after it name the next ones), where its tree was kept, and
    /// why nothing was judged or widened, when so.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if let Some(f) = self.failing_rounds.first() {
            writeln!(
                out,
                "  round {} (racers released within {}):",
                f.round,
                micros(f.spread_ns)
            )?;
            print_failing(out, f)?;
        }
        if let Some(k) = &self.kept {
            write!(
                out,
                "  the first failing round's tree: {}",
                k.racy.display()
            )?;
            match &k.sequential {
                Some(s) => writeln!(out, " (the sequential run's: {})", s.display())?,
                None => writeln!(out)?,
            }
        }
        if let Some(n) = &self.not_kept {
            writeln!(out, "  the first failing round's tree: {n}")?;
        }
        if let Some(why) = &self.widen_unavailable {
            writeln!(
                out,
                "  race windows not widened: this host refuses seccomp's user notification ({why})"
            )?;
        }
        if let Some(s) = &self.sequential_failed {
            writeln!(
                out,
                "  the sequential run failed on its own, so nothing was judged:"
            )?;
            print_failing(out, s)?;
        }
        Ok(())
    }
}

fn print_failing(out: &mut dyn Write, f: &Failing) -> std::io::Result<()> {
    for r in &f.racers {
        writeln!(out, "    racer {} {}", r.racer, r.how)?;
        for l in &r.said {
            writeln!(out, "      {l}")?;
        }
    }
    let more = f.racers_failed.saturating_sub(f.racers.len() as u64);
    if more > 0 {
        writeln!(out, "    and {more} more racers failed")?;
    }
    if let Some(c) = &f.check {
        writeln!(out, "    {c}")?;
    }
    for d in &f.differences {
        writeln!(out, "    tree: {d}")?;
    }
    let more = f
        .differences_count
        .saturating_sub(f.differences.len() as u64);
    if more > 0 {
        writeln!(out, "    tree: and {more} more differences")?;
    }
    Ok(())
}

/// The stage's failure in a line: the sequential run's racer, or `--setup`.
pub fn stage_words(f: &Failing) -> String {
    let what = match (f.racers.first(), &f.check) {
        (Some(r), _) => r.line(),
        (None, Some(c)) => c.clone(),
        (None, None) => "it failed".into(),
    };
    format!("the sequential run failed on its own ({what}), so the command or the check is wrong")
}
