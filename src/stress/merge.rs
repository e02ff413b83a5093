//! One verdict from the reports that instances on many hosts wrote to a shared tree,
//! for one arm.
//!
//! Each instance's report is read and checked by [`super::load`]; its rounds are
//! streamed, every instance's files in step, so memory holds one round of every
//! instance whatever the length of the run; nothing below the work directory is
//! followed if it is a symbolic link; the tree on disk is checked for rounds no
//! report covers. What an instance says went wrong is believed: a failure in its
//! figures, or a verdict worse than they show, is a FAIL whatever the tree says.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use super::gate;
use super::load::{Rounds, parse_header, read_header};
use super::race::{Arm, Contribution, Race, Report};
use super::tree;
use super::verdict::Verdict;

/// Instances one merge reads in step.
pub const MAX_INSTANCES: usize = 4096;
/// The lines of one round, all instances together: what a merge holds at once.
pub const ROUND_BUDGET: u64 = 256 << 20;
/// Problems a merged verdict lists (all are counted).
const PROBLEMS_LISTED: usize = 50;
/// Bad rounds whose numbers a merge keeps, for their trees to be kept.
const BAD_ROUNDS_KEPT: usize = 3;

/// The merged verdict of a multi-host run.
#[derive(Debug, Serialize)]
pub struct Merged {
    pub subject: &'static str,
    pub work_dir: PathBuf,
    pub instances: Vec<u32>,
    /// Rounds verified against the tree.
    pub rounds: u64,
    pub calls: u64,
    pub failed_calls: u64,
    pub bad_rounds: u64,
    /// The first problems found (all are counted in `problem_count`).
    pub problems: Vec<String>,
    pub problem_count: u64,
    /// The largest spread of racer starts within one host.
    pub start_spread_max_ns: u64,
    /// How far apart the hosts were released by the barrier file.
    pub host_release_spread_ns: u64,
    /// FAIL on any failure or problem; else INCONCLUSIVE if an instance's control
    /// never failed; else PASS.
    pub verdict: Verdict,
    /// Whether every instance raced its control.
    pub control_ran: bool,
    /// The instances whose control ran and never failed.
    pub control_never_failed: Vec<u32>,
    /// `verdict` is PASS.
    pub passed: bool,
    /// The rounds the reports cover.
    #[serde(skip)]
    pub covered: u64,
    /// The first bad rounds, whose trees are kept for inspection.
    #[serde(skip)]
    pub first_bad_rounds: Vec<u64>,
    /// What a round leaves besides its tree, by prefix ([`Race::ROUND_EXTRAS`]).
    #[serde(skip)]
    pub round_extras: &'static [&'static str],
    /// The round trees left for inspection after the verdict (`stress report`
    /// removes the others unless `--keep`).
    pub kept_for_inspection: Vec<String>,
}

impl Merged {
    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push(p);
        }
    }
}

/// Merges the reports of instances `ids` in `work` and checks the shared tree.
pub fn merge<A: Race>(work: &Path, ids: &[u32]) -> anyhow::Result<Merged> {
    let reports = read_reports::<A>(work, ids)?;
    let mut m = headers_merged(work, ids, &reports);
    let covered = merge_rounds(&mut m, work, &reports)?;
    m.covered = covered;
    check_disk(&mut m, work, covered)?;
    if m.rounds == 0 {
        m.problem("no round was verified: a report that covers nothing proves nothing".into());
    }
    let failed = m.failed_calls > 0 || m.bad_rounds > 0 || m.problem_count > 0;
    m.verdict = match failed {
        true => Verdict::Fail,
        false => Verdict::of_all(reports.iter().map(|r| r.verdict)),
    };
    m.passed = m.verdict == Verdict::Pass;
    Ok(m)
}

impl Merged {
    /// Why the verdict is INCONCLUSIVE, naming the arm and the instances.
    pub fn why_inconclusive(&self) -> String {
        let ids: Vec<String> = self
            .control_never_failed
            .iter()
            .map(u32::to_string)
            .collect();
        format!(
            "stress {}'s control did not fail on instance {}",
            self.subject,
            ids.join(", ")
        )
    }
}

/// Every instance's header, each saying it is the instance its name says.
fn read_reports<A: Race>(work: &Path, ids: &[u32]) -> anyhow::Result<Vec<Report<A>>> {
    let mut reports = Vec::with_capacity(ids.len());
    for &id in ids {
        let r = parse_header::<A>(&read_header(work, id)?)
            .with_context(|| format!("report-{id}.json"))?;
        if r.instance != id {
            bail!("report-{id}.json says it is instance {}", r.instance);
        }
        reports.push(r);
    }
    Ok(reports)
}

/// What the headers alone say: the sums, the spreads, and their problems.
fn headers_merged<A: Race>(work: &Path, ids: &[u32], reports: &[Report<A>]) -> Merged {
    let mut m = Merged {
        subject: A::NAME,
        work_dir: work.to_path_buf(),
        instances: ids.to_vec(),
        rounds: 0,
        calls: reports.iter().map(|r| r.racefree.calls).sum(),
        failed_calls: reports.iter().map(|r| r.racefree.failed_calls).sum(),
        bad_rounds: 0,
        problems: Vec::new(),
        problem_count: 0,
        start_spread_max_ns: reports
            .iter()
            .map(|r| r.start_spread_max_ns)
            .max()
            .unwrap_or(0),
        host_release_spread_ns: gate::spread_ns(reports.iter().map(|r| r.released_ns)),
        verdict: Verdict::Fail,
        control_ran: reports.iter().all(|r| r.control.is_some()),
        control_never_failed: reports
            .iter()
            .filter(|r| r.verdict == Verdict::Inconclusive)
            .map(|r| r.instance)
            .collect(),
        passed: false,
        covered: 0,
        first_bad_rounds: Vec::new(),
        round_extras: A::ROUND_EXTRAS,
        kept_for_inspection: Vec::new(),
    };
    // Hosts released further apart than the shortest run lasted never raced each
    // other: such a run proves nothing about the shared filesystem.
    let shortest_ns = reports
        .iter()
        .map(|r| (r.seconds * 1e9) as u64)
        .min()
        .unwrap_or(0);
    if reports.len() > 1 && m.host_release_spread_ns > shortest_ns {
        m.problem(format!(
            "the hosts did not overlap: released {:.3} s apart, the shortest ran {:.3} s",
            m.host_release_spread_ns as f64 / 1e9,
            shortest_ns as f64 / 1e9
        ));
    }
    if reports.iter().any(|r| r.params != reports[0].params) {
        m.problem("instances ran with different parameters".into());
    }
    for r in reports {
        for p in r.racefree.problems.iter().chain(&r.setup_problems) {
            m.problem(format!("instance {}: {p}", r.instance));
        }
        own_failures(&mut m, r);
    }
    m
}

/// What an instance says went wrong, believed: bad rounds, failures among its
/// figures, a verdict of FAIL.
fn own_failures<A: Race>(m: &mut Merged, r: &Report<A>) {
    let t = &r.racefree;
    let figures = std::iter::once(("bad_rounds", t.bad_rounds)).chain(A::failures(&t.counts));
    for (name, n) in figures.filter(|f| f.1 > 0) {
        m.problem(format!("instance {} reports {name} {n}", r.instance));
    }
    if t.rounds == 0 {
        m.problem(format!("instance {} raced no round", r.instance));
    } else if r.verdict == Verdict::Fail && r.passed() {
        m.problem(format!("instance {} reports verdict fail", r.instance));
    }
}

/// Judges every round against the tree, reading every instance's rounds in step:
/// round n of all of them, then n + 1. Returns how many rounds the reports cover.
fn merge_rounds<A: Race>(
    m: &mut Merged,
    work: &Path,
    reports: &[Report<A>],
) -> anyhow::Result<u64> {
    let mut streams = Vec::with_capacity(reports.len());
    for r in reports {
        let name = format!("rounds-{}.jsonl", r.instance);
        let f: File = tree::open_file(work, Path::new(&name))?;
        streams.push((r, Rounds::of(Box::new(BufReader::new(f)), r)));
    }
    let params = &reports[0].params;
    let covered = reports.iter().map(|r| r.racefree.rounds).max().unwrap_or(0);
    for n in 0..covered {
        let mut records = Vec::new();
        let mut held = 0u64;
        for (r, s) in &mut streams {
            if let Some(record) = s
                .next_round()
                .with_context(|| format!("rounds-{}.jsonl", r.instance))?
            {
                records.push(Contribution {
                    instance: r.instance,
                    racers: r.racers,
                    record,
                });
                held += s.last_len();
                if held > ROUND_BUDGET {
                    bail!(
                        "round {n}: the instances' lines add up to more than {ROUND_BUDGET} bytes: not what racers wrote"
                    );
                }
            }
        }
        let problems = A::merge_round(params, work, n, &records)?;
        if !problems.is_empty() {
            m.bad_rounds += 1;
            if m.first_bad_rounds.len() < BAD_ROUNDS_KEPT {
                m.first_bad_rounds.push(n);
            }
            for p in problems {
                m.problem(format!("round {n}: {p}"));
            }
        }
        m.rounds += 1;
    }
    for (r, s) in &mut streams {
        s.next_round()
            .with_context(|| format!("rounds-{}.jsonl", r.instance))?;
    }
    Ok(covered)
}

/// What is on disk that no report covers is not verified: a failure.
fn check_disk(m: &mut Merged, work: &Path, covered: u64) -> anyhow::Result<()> {
    for e in std::fs::read_dir(work).with_context(|| format!("reading '{}'", work.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((arm, n)) = name
            .strip_prefix("round-")
            .map(|n| (Arm::Racefree, n))
            .or_else(|| name.strip_prefix("control-").map(|n| (Arm::Control, n)))
        else {
            continue;
        };
        let ft = e.file_type()?;
        if ft.is_symlink() {
            m.problem(format!("'{name}' is a symbolic link; it is not followed"));
            continue;
        }
        match n.parse::<u64>() {
            Ok(n) if arm == Arm::Racefree && n < covered => {}
            _ => m.problem(format!("'{name}' is on disk, but no report covers it")),
        }
    }
    Ok(())
}
