//! The readable report of a run, and `racefree stress report DIR`: one verdict from
//! the reports that instances on many hosts wrote to a shared tree.
//!
//! Everything read back is input anyone could have edited: each instance's header
//! (`report-ID.json`) is read with a size cap and validated against the command
//! line's own ranges; its rounds (`rounds-ID.jsonl`, one line per round) are streamed,
//! every instance's files in step, so memory holds one round of every instance
//! whatever the length of the run; nothing below the work directory is followed if
//! it is a symbolic link; and the tree on disk is checked for rounds no report covers.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use super::engine::{Arm, PROBLEMS_KEPT, Race, Report, RoundLine, Subject, Tally};
use super::{counter, lock, makedirs, tree, write};
use crate::exit::Exit;

fn micros(ns: u64) -> String {
    format!("{:.0} µs", ns as f64 / 1000.0)
}

/// The readable report of one subject's run.
pub fn print<A: Race>(out: &mut dyn Write, r: &Report<A>) -> io::Result<()> {
    writeln!(
        out,
        "stress {}: {} racers ({}), released within {} (median {}); {} rounds in {:.1} s",
        r.subject.name(),
        r.racers,
        if r.processes { "processes" } else { "threads" },
        micros(r.start_spread_max_ns),
        micros(r.start_spread_median_ns),
        r.racefree.rounds,
        r.seconds
    )?;
    writeln!(out, "  {}", A::describe(&r.params))?;
    let mut header = format!(
        "  {:<9} {:>7} {:>9} {:>8} {:>6}",
        "arm", "rounds", "calls", "failed", "bad"
    );
    for c in A::columns() {
        header.push_str(&format!(" {c:>9}"));
    }
    writeln!(out, "{header}  result")?;
    for (tally, judged) in
        std::iter::once((&r.racefree, true)).chain(r.control.iter().map(|c| (c, false)))
    {
        let result = match (tally.held(), judged) {
            (true, true) => "held",
            (false, true) => "FAILED",
            (true, false) => "no race seen (control did not fail)",
            (false, false) => "failed, as expected of the control",
        };
        let mut line = format!(
            "  {:<9} {:>7} {:>9} {:>8} {:>6}",
            tally.arm.name(),
            tally.rounds,
            tally.calls,
            tally.failed_calls,
            tally.bad_rounds
        );
        for cell in A::cells(&tally.counts) {
            line.push_str(&format!(" {cell:>9}"));
        }
        writeln!(out, "{line}  {result}")?;
    }
    A::print_more(out, r)?;
    for tally in std::iter::once(&r.racefree).chain(&r.control) {
        for p in tally.problems.iter().take(3) {
            writeln!(out, "  {}: {p}", tally.arm.name())?;
        }
    }
    for p in &r.setup_problems {
        writeln!(out, "  setup: {p}")?;
    }
    writeln!(
        out,
        "  racefree: {}",
        if r.passed() { "held" } else { "FAILED" }
    )
}

#[derive(Debug, ClapArgs)]
pub struct ReportArgs {
    /// The shared work directory (racefree-stress-NAME, where the instances wrote
    /// report-ID.json and rounds-ID.jsonl), or the directory that holds it
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Print the merged verdict as JSON
    #[arg(long)]
    pub json: bool,
}

/// The merged verdict of a multi-host run.
#[derive(Debug, Serialize)]
pub struct Merged {
    pub subject: Subject,
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
        if self.problems.len() < 50 {
            self.problems.push(p);
        }
    }
}

pub fn run(args: &ReportArgs) -> anyhow::Result<Exit> {
    let work = find_work_dir(&args.dir)?;
    let merged = merge(&work)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &merged)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "stress report: {}, {} instances ({}), {} rounds, {} calls, {} failed",
            merged.subject.name(),
            merged.instances.len(),
            merged
                .instances
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            merged.rounds,
            merged.calls,
            merged.failed_calls,
        )?;
        writeln!(
            out,
            "  hosts released within {}; racers within one host within {}",
            micros(merged.host_release_spread_ns),
            micros(merged.start_spread_max_ns)
        )?;
        for p in merged.problems.iter().take(10) {
            writeln!(out, "  {p}")?;
        }
        writeln!(
            out,
            "verdict: {}",
            if merged.passed { "PASS" } else { "FAIL" }
        )?;
    }
    out.flush()?;
    Ok(if merged.passed {
        Exit::Success
    } else {
        Exit::Failure
    })
}

/// The instance ids that wrote a report in `dir`, from the names `report-ID.json`
/// (entries that are not regular files, symlinks among them, are not reports).
fn report_ids(dir: &Path) -> anyhow::Result<Vec<u32>> {
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

fn find_work_dir(dir: &Path) -> anyhow::Result<PathBuf> {
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

/// Just the subject, to know how to read the rest.
#[derive(Deserialize)]
struct Probe {
    subject: Subject,
}

/// Reads and validates one instance's header.
pub fn parse_header<A: Race>(bytes: &[u8]) -> anyhow::Result<Report<A>> {
    let r: Report<A> = serde_json::from_slice(bytes).context("not a stress report")?;
    if r.subject != A::SUBJECT {
        bail!(
            "a report of stress {}, not {}",
            r.subject.name(),
            A::SUBJECT.name()
        );
    }
    A::validate(&r.params)?;
    if !(1..=super::MAX_RACERS).contains(&r.racers) {
        bail!(
            "racers {} is out of range 1..={}",
            r.racers,
            super::MAX_RACERS
        );
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

/// Reads one instance's report from bytes and a rounds stream, validating all of
/// it, and returns how many rounds it holds. What a fuzzer calls: whatever the
/// input, an error, never a panic or an abort.
pub fn load_report(header: &[u8], rounds: &mut dyn BufRead) -> anyhow::Result<u64> {
    if header.len() as u64 > HEADER_CAP {
        bail!("a report header larger than {HEADER_CAP} bytes");
    }
    let probe: Probe = serde_json::from_slice(header).context("not a stress report")?;
    match probe.subject {
        Subject::Makedirs => load_one::<makedirs::Makedirs>(header, rounds),
        Subject::Counter => load_one::<counter::Counter>(header, rounds),
        Subject::Write => load_one::<write::Write>(header, rounds),
        Subject::Lock => load_one::<lock::Lock>(header, rounds),
        Subject::Ident => bail!("stress ident runs on one host: it writes no report to merge"),
    }
}

fn load_one<A: Race>(header: &[u8], rounds: &mut dyn BufRead) -> anyhow::Result<u64> {
    let r = parse_header::<A>(header)?;
    let mut stream = Rounds::<A>::new(Box::new(rounds), r.racefree.rounds);
    while stream.next_round()?.is_some() {}
    Ok(r.racefree.rounds)
}

/// Merges every instance's report in `work` and checks the shared tree.
pub fn merge(work: &Path) -> anyhow::Result<Merged> {
    let ids = report_ids(work)?;
    let Some(first) = ids.first() else {
        bail!("no report-ID.json in '{}'", work.display());
    };
    if ids.len() > MAX_INSTANCES {
        bail!(
            "{} reports; at most {MAX_INSTANCES} instances are merged",
            ids.len()
        );
    }
    let header = read_header(work, *first)?;
    let probe: Probe = serde_json::from_slice(&header)
        .with_context(|| format!("report-{first}.json: not a stress report"))?;
    match probe.subject {
        Subject::Makedirs => merge_as::<makedirs::Makedirs>(work, &ids),
        Subject::Counter => merge_as::<counter::Counter>(work, &ids),
        Subject::Write => merge_as::<write::Write>(work, &ids),
        Subject::Lock => merge_as::<lock::Lock>(work, &ids),
        Subject::Ident => bail!("stress ident runs on one host: it writes no report to merge"),
    }
}

fn read_header(work: &Path, id: u32) -> anyhow::Result<Vec<u8>> {
    tree::read_file(work, Path::new(&format!("report-{id}.json")), HEADER_CAP)
}

fn merge_as<A: Race>(work: &Path, ids: &[u32]) -> anyhow::Result<Merged> {
    let mut reports = Vec::with_capacity(ids.len());
    for &id in ids {
        let r = parse_header::<A>(&read_header(work, id)?)
            .with_context(|| format!("report-{id}.json"))?;
        if r.instance != id {
            bail!("report-{id}.json says it is instance {}", r.instance);
        }
        reports.push(r);
    }
    let mut m = Merged {
        subject: A::SUBJECT,
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
        host_release_spread_ns: super::gate::spread_ns(reports.iter().map(|r| r.released_ns)),
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
    let params = reports[0].params.clone();
    if reports.iter().any(|r| r.params != params) {
        m.problem("instances ran with different parameters".into());
    }
    for r in &reports {
        for p in r.racefree.problems.iter().chain(&r.setup_problems) {
            m.problem(format!("instance {}: {p}", r.instance));
        }
    }

    // Every instance's rounds, in step: round n of all of them, then n + 1.
    let mut streams = Vec::with_capacity(reports.len());
    for r in &reports {
        let name = format!("rounds-{}.jsonl", r.instance);
        let f: File = tree::open_file(work, Path::new(&name))?;
        streams.push((
            r.instance,
            Rounds::<A>::new(Box::new(BufReader::new(f)), r.racefree.rounds),
        ));
    }
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
        let problems = A::merge_round(&params, work, n, &records)?;
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

    // What is on disk that no report covers is not verified: a failure.
    let mut seen = BTreeSet::new();
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
            Ok(n) if arm == Arm::Racefree && n < covered => {
                seen.insert(n);
            }
            _ => m.problem(format!("'{name}' is on disk, but no report covers it")),
        }
    }
    if m.rounds == 0 {
        m.problem("no round was verified: a report that covers nothing proves nothing".into());
    }
    m.passed = m.failed_calls == 0 && m.bad_rounds == 0 && m.problem_count == 0;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(depth: u32, fanout: u32, dirs: u64, rounds: u64) -> String {
        format!(
            r#"{{"subject":"makedirs","instance":0,"racers":2,"processes":false,"depth":{depth},"fanout":{fanout},"dirs_per_round":{dirs},"churn":false,"start_spread_max_ns":0,"start_spread_median_ns":0,"seconds":1.0,"released_ns":0,"work_dir":"/x","setup_problems":[],"racefree":{{"arm":"racefree","rounds":{rounds},"calls":0,"failed_calls":0,"bad_rounds":0,"problems":[],"retries":0,"created":0,"removed_by_churn":0}},"control":null}}"#
        )
    }

    #[test]
    fn a_good_report_loads() {
        let h = header(1, 2, 3, 2);
        let rounds = "{\"round\":0,\"record\":[\"round-0\"]}\n{\"round\":1,\"record\":[]}\n";
        assert_eq!(
            load_report(h.as_bytes(), &mut rounds.as_bytes()).unwrap(),
            2
        );
    }

    #[test]
    fn a_tampered_shape_is_refused_before_anything_is_allocated() {
        // 3^32 leaf paths would be a 100 GB allocation.
        let h = header(32, 3, 5, 1);
        let err = load_report(h.as_bytes(), &mut "".as_bytes()).unwrap_err();
        assert!(
            format!("{err:#}").contains("leaf paths per round"),
            "{err:#}"
        );
        let h = header(4, 3, 7, 1);
        assert!(load_report(h.as_bytes(), &mut "".as_bytes()).is_err());
    }

    #[test]
    fn rounds_must_match_the_header() {
        let h = header(1, 2, 3, 2);
        for bad in [
            "",
            "{\"round\":0,\"record\":[]}\n",
            "{\"round\":0,\"record\":[]}\n{\"round\":2,\"record\":[]}\n",
            "{\"round\":0,\"record\":[]}\n{\"round\":1,\"record\":[]}\n{\"round\":2,\"record\":[]}\n",
            "{\"round\":0,\"record\":[]}\n{\"round\":1,\"record\":[]}",
        ] {
            assert!(
                load_report(h.as_bytes(), &mut bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
    }

    use proptest::prelude::*;

    fn good_rounds() -> String {
        "{\"round\":0,\"record\":[\"round-0\"]}\n{\"round\":1,\"record\":[]}\n".into()
    }

    proptest! {
        // Bounded: this runs in every `cargo test`.
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        /// Garbage is an error, never a panic or an abort.
        #[test]
        fn garbage_never_panics(header in proptest::collection::vec(any::<u8>(), 0..512),
                                rounds in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = load_report(&header, &mut rounds.as_slice());
        }

        /// A good report with bytes flipped, cut or inserted: loads or is refused,
        /// never panics; a shape too big to hold is always refused.
        #[test]
        fn mutated_reports_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
            in_rounds in any::<bool>(),
        ) {
            let mut h = header(1, 2, 3, 2).into_bytes();
            let mut r = good_rounds().into_bytes();
            let target = if in_rounds { &mut r } else { &mut h };
            for (at, byte, op) in edits {
                let at = at % (target.len() + 1);
                match op {
                    0 if at < target.len() => target[at] = byte,
                    1 => target.insert(at, byte),
                    _ => target.truncate(at),
                }
            }
            let _ = load_report(&h, &mut r.as_slice());
        }

        /// Any numbers in the shape fields: refused unless within the command line's
        /// ranges and consistent.
        #[test]
        fn any_shape_is_validated(depth in any::<u32>(), fanout in any::<u32>(), dirs in any::<u64>(),
                                  rounds in 0u64..4) {
            let h = header(depth, fanout, dirs, rounds);
            let lines: String = (0..rounds).map(|n| format!("{{\"round\":{n},\"record\":[]}}\n")).collect();
            let ok = load_report(h.as_bytes(), &mut lines.as_bytes()).is_ok();
            let valid = makedirs::tree_size(depth, fanout).is_ok_and(|n| n == dirs);
            prop_assert_eq!(ok, valid);
        }
    }
}
