//! One verdict from the reports that instances on many hosts wrote to a shared tree,
//! for one arm.
//!
//! Everything read back is input anyone could have edited: each instance's header
//! (`report-ID.json`) is read with a size cap and validated against the command
//! line's own ranges; its rounds (`rounds-ID.jsonl`, one line per round) are streamed,
//! every instance's files in step, so memory holds one round of every instance
//! whatever the length of the run; nothing below the work directory is followed if
//! it is a symbolic link; and the tree on disk is checked for rounds no report covers.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use super::args::MAX_RACERS;
use super::gate;
use super::race::{Arm, PROBLEMS_KEPT, Race, Report, RoundLine, Tally};
use super::tree;

/// A header is small (problems are capped): anything larger was not written by us.
pub const HEADER_CAP: u64 = 1 << 20;
/// One round's line: a makedirs round of the largest tree across many racers.
pub const LINE_CAP: u64 = 64 << 20;
/// Instances one merge reads in step.
pub const MAX_INSTANCES: usize = 4096;
/// The lines of one round, all instances together: what a merge holds at once.
pub const ROUND_BUDGET: u64 = 256 << 20;
/// Rounds one instance may claim.
pub const MAX_ROUNDS: u64 = 100_000_000;
/// Problems a merged verdict lists (all are counted).
const PROBLEMS_LISTED: usize = 50;

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
    pub passed: bool,
}

impl Merged {
    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push(p);
        }
    }
}

/// The instance ids that wrote a report in `dir`, from the names `report-ID.json`
/// (entries that are not regular files, symlinks among them, are not reports).
pub fn report_ids(dir: &Path) -> anyhow::Result<Vec<u32>> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading '{}'", dir.display()))? {
        let e = e?;
        let name = e.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("report-"))
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        if !e.file_type()?.is_file() {
            bail!(
                "'{}' is not a regular file (symbolic links are not followed)",
                e.path().display()
            );
        }
        ids.push(
            id.parse()
                .with_context(|| format!("'{}': not an instance number", e.path().display()))?,
        );
    }
    ids.sort_unstable();
    Ok(ids)
}

/// `dir` itself when it holds reports, else the one `racefree-stress-*` below it
/// that does.
pub fn find_work_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if !report_ids(dir)?.is_empty() {
        return Ok(dir.to_path_buf());
    }
    let mut candidates = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading '{}'", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir()
            && e.file_name()
                .to_string_lossy()
                .starts_with("racefree-stress-")
            && !report_ids(&e.path())?.is_empty()
        {
            candidates.push(e.path());
        }
    }
    match candidates.len() {
        1 => Ok(candidates.remove(0)),
        0 => bail!(
            "no report-ID.json under '{}': nothing to merge",
            dir.display()
        ),
        _ => bail!(
            "'{}' holds several stress runs; name one of them: {candidates:?}",
            dir.display()
        ),
    }
}

/// Instance `id`'s header, read without following a symlink, at most [`HEADER_CAP`].
pub fn read_header(work: &Path, id: u32) -> anyhow::Result<Vec<u8>> {
    tree::read_file(work, Path::new(&format!("report-{id}.json")), HEADER_CAP)
}

/// Reads and validates one instance's header.
pub fn parse_header<A: Race>(bytes: &[u8]) -> anyhow::Result<Report<A>> {
    let r: Report<A> = serde_json::from_slice(bytes).context("not a stress report")?;
    if r.subject != A::NAME {
        bail!("a report of stress {}, not {}", r.subject, A::NAME);
    }
    A::validate(&r.params)?;
    if !(1..=MAX_RACERS).contains(&r.racers) {
        bail!("racers {} is out of range 1..={MAX_RACERS}", r.racers);
    }
    if !r.seconds.is_finite() || r.seconds < 0.0 {
        bail!("seconds {} is not a duration", r.seconds);
    }
    if r.control.is_some() {
        bail!("a control arm does not run across hosts");
    }
    check_tally(&r.racefree, Arm::Racefree)?;
    if r.setup_problems.len() > PROBLEMS_KEPT {
        bail!("more setup problems than a report keeps");
    }
    Ok(r)
}

fn check_tally<C>(t: &Tally<C>, arm: Arm) -> anyhow::Result<()> {
    if t.arm != arm {
        bail!(
            "the {} arm's tally is labelled {}",
            arm.name(),
            t.arm.name()
        );
    }
    if t.rounds > MAX_ROUNDS || t.bad_rounds > t.rounds {
        bail!("rounds {} (bad {}) is out of range", t.rounds, t.bad_rounds);
    }
    if t.failed_calls > t.calls {
        bail!("{} failed calls of {}", t.failed_calls, t.calls);
    }
    if t.problems.len() > PROBLEMS_KEPT {
        bail!("more problems than a report keeps");
    }
    Ok(())
}

/// Reads one line of at most `LINE_CAP` bytes; `None` at the end.
fn read_line(r: &mut dyn BufRead) -> anyhow::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = r.take(LINE_CAP + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() as u64 > LINE_CAP {
            bail!("a round line longer than {LINE_CAP} bytes");
        }
        bail!("the last round line is cut short");
    }
    line.pop();
    Ok(Some(line))
}

/// Streams one instance's rounds, checking they are numbered 0, 1, 2, ...
pub struct Rounds<'a, A: Race> {
    reader: Box<dyn BufRead + 'a>,
    next: u64,
    claimed: u64,
    /// The length of the last line read.
    last_len: u64,
    _arm: std::marker::PhantomData<A>,
}

impl<'a, A: Race> Rounds<'a, A> {
    pub fn new(reader: Box<dyn BufRead + 'a>, claimed: u64) -> Self {
        Rounds {
            reader,
            next: 0,
            claimed,
            last_len: 0,
            _arm: std::marker::PhantomData,
        }
    }

    /// The next round's record; `None` after the last one the header claims (and
    /// an error if the file says otherwise).
    pub fn next_round(&mut self) -> anyhow::Result<Option<A::Record>> {
        let line = read_line(&mut self.reader)?;
        if self.next == self.claimed {
            if line.is_some() {
                bail!(
                    "more round lines than the {} rounds the header claims",
                    self.claimed
                );
            }
            return Ok(None);
        }
        self.last_len = line.as_ref().map_or(0, |l| l.len() as u64);
        let Some(line) = line else {
            bail!(
                "{} round lines, the header claims {}",
                self.next,
                self.claimed
            );
        };
        let l: RoundLine<A::Record> = serde_json::from_slice(&line)
            .with_context(|| format!("round line {}", self.next + 1))?;
        if l.round != self.next {
            bail!("round line {} is for round {}", self.next + 1, l.round);
        }
        self.next += 1;
        Ok(Some(l.record))
    }
}

/// Reads one instance's report from its header and rounds stream, validating all
/// of it, and returns how many rounds it holds.
pub fn load<A: Race>(header: &[u8], rounds: &mut dyn BufRead) -> anyhow::Result<u64> {
    let r = parse_header::<A>(header)?;
    let mut stream = Rounds::<A>::new(Box::new(rounds), r.racefree.rounds);
    while stream.next_round()?.is_some() {}
    Ok(r.racefree.rounds)
}

/// Merges the reports of instances `ids` in `work` and checks the shared tree.
pub fn merge<A: Race>(work: &Path, ids: &[u32]) -> anyhow::Result<Merged> {
    let reports = read_reports::<A>(work, ids)?;
    let mut m = headers_merged(work, ids, &reports);
    let covered = merge_rounds(&mut m, work, &reports)?;
    check_disk(&mut m, work, covered)?;
    if m.rounds == 0 {
        m.problem("no round was verified: a report that covers nothing proves nothing".into());
    }
    m.passed = m.failed_calls == 0 && m.bad_rounds == 0 && m.problem_count == 0;
    Ok(m)
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
        passed: false,
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
    }
    m
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
        streams.push((
            r.instance,
            Rounds::<A>::new(Box::new(BufReader::new(f)), r.racefree.rounds),
        ));
    }
    let params = &reports[0].params;
    let covered = reports.iter().map(|r| r.racefree.rounds).max().unwrap_or(0);
    for n in 0..covered {
        let mut records = Vec::new();
        let mut held = 0u64;
        for (id, s) in &mut streams {
            if let Some(rec) = s
                .next_round()
                .with_context(|| format!("rounds-{id}.jsonl"))?
            {
                records.push(rec);
                held += s.last_len;
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
            for p in problems {
                m.problem(format!("round {n}: {p}"));
            }
        }
        m.rounds += 1;
    }
    for (id, s) in &mut streams {
        s.next_round()
            .with_context(|| format!("rounds-{id}.jsonl"))?;
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
