//! The readable reports, and `racefree stress report DIR`: one verdict from the JSON
//! reports that instances on many hosts wrote to a shared tree.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use serde::Serialize;

use super::ident::IdentReport;
use super::makedirs::{ArmReport, MakedirsReport, expected_dirs, scan_tree};
use crate::exit::Exit;

fn micros(ns: u64) -> String {
    format!("{:.0} µs", ns as f64 / 1000.0)
}

pub fn print_makedirs(out: &mut dyn Write, r: &MakedirsReport) -> io::Result<()> {
    writeln!(
        out,
        "stress makedirs: {} racers ({}), released within {} (median {}); {} rounds in {:.1} s",
        r.racers,
        if r.processes { "processes" } else { "threads" },
        micros(r.start_spread_max_ns),
        micros(r.start_spread_median_ns),
        r.racefree.rounds,
        r.seconds
    )?;
    writeln!(
        out,
        "  each round: depth {}, fanout {}: {} directories; churn {}",
        r.depth,
        r.fanout,
        r.dirs_per_round,
        if r.churn { "on" } else { "off" }
    )?;
    writeln!(
        out,
        "  {:<9} {:>7} {:>9} {:>8} {:>8} {:>9} {:>8} {:>6}  result",
        "arm", "rounds", "calls", "failed", "retries", "created", "removed", "bad"
    )?;
    let row = |out: &mut dyn Write, a: &ArmReport, judged: bool| -> io::Result<()> {
        let result = match (a.held(), judged) {
            (true, true) => "held",
            (false, true) => "FAILED",
            (true, false) => "no race seen (control did not fail)",
            (false, false) => "failed, as expected of the control",
        };
        writeln!(
            out,
            "  {:<9} {:>7} {:>9} {:>8} {:>8} {:>9} {:>8} {:>6}  {result}",
            a.arm,
            a.rounds,
            a.calls,
            a.failed_calls,
            a.retries,
            a.created,
            a.removed_by_churn,
            a.bad_rounds
        )
    };
    row(out, &r.racefree, true)?;
    if let Some(c) = &r.control {
        row(out, c, false)?;
    }
    for a in std::iter::once(&r.racefree).chain(&r.control) {
        for p in a.problems.iter().take(3) {
            writeln!(out, "  {}: {p}", a.arm)?;
        }
    }
    Ok(())
}

pub fn print_ident(out: &mut dyn Write, r: &IdentReport) -> io::Result<()> {
    let methods: Vec<String> = r
        .methods
        .iter()
        .map(|m| format!("{m:?}").to_lowercase())
        .collect();
    writeln!(
        out,
        "stress ident: {} racers ({}), released within {}; {:.1} s; {} connections per state; lookups by {}",
        r.racers,
        if r.processes { "processes" } else { "threads" },
        micros(r.start_spread_ns),
        r.seconds,
        r.connections_per_state,
        methods.join(", ")
    )?;
    writeln!(
        out,
        "  {:<9} {:<8} {:<20} {:>9} {:>9} {:>6} {:>8} {:>6} {:>9} {:>9}",
        "arm", "method", "state", "lookups", "correct", "wrong", "missed", "errors", "p50", "p99"
    )?;
    for row in &r.rows {
        writeln!(
            out,
            "  {:<9} {:<8} {:<20} {:>9} {:>9} {:>6} {:>8} {:>6} {:>6.0} µs {:>6.0} µs",
            row.arm,
            row.method,
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
    for row in r.rows.iter().filter(|row| row.arm == "racefree") {
        if let Some(p) = &row.first_problem {
            writeln!(out, "  racefree: {p}")?;
        }
    }
    for p in &r.setup_problems {
        writeln!(out, "  setup: {p}")?;
    }
    let control_missed: u64 = r
        .rows
        .iter()
        .filter(|row| row.arm == "control")
        .map(|row| row.missed)
        .sum();
    if r.rows.iter().any(|row| row.arm == "control") {
        writeln!(
            out,
            "  control (demands ESTABLISHED): {control_missed} lookups missed an owner{}",
            if control_missed == 0 {
                "; no race seen"
            } else {
                ", as expected"
            }
        )?;
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
    /// report-ID.json), or the directory that holds it
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Print the merged verdict as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Merged {
    pub work_dir: PathBuf,
    pub instances: Vec<u32>,
    pub rounds: u64,
    pub calls: u64,
    pub failed_calls: u64,
    pub retries: u64,
    pub dirs_per_round: u64,
    pub bad_rounds: u64,
    pub problems: Vec<String>,
    /// The largest spread of racer starts within one host.
    pub start_spread_max_ns: u64,
    /// How far apart the hosts were released by the barrier file.
    pub host_release_spread_ns: u64,
    pub passed: bool,
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
            "stress report: {} instances ({}), {} rounds, {} calls, {} failed, {} retries; {} directories per round",
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
            merged.retries,
            merged.dirs_per_round
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

fn report_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading '{}'", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("report-") && name.ends_with(".json") {
            files.push(e.path());
        }
    }
    files.sort();
    Ok(files)
}

fn find_work_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if !report_files(dir)?.is_empty() {
        return Ok(dir.to_path_buf());
    }
    let mut candidates = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading '{}'", dir.display()))? {
        let p = e?.path();
        if p.is_dir()
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("racefree-stress-"))
            && !report_files(&p)?.is_empty()
        {
            candidates.push(p);
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

/// Merges every instance's report and checks the shared tree: each round's tree is
/// complete and exact, and every directory in it was created by exactly one racer on
/// exactly one host.
pub fn merge(work: &Path) -> anyhow::Result<Merged> {
    let mut reports = Vec::new();
    for f in report_files(work)? {
        let r: MakedirsReport = serde_json::from_slice(&std::fs::read(&f)?)
            .with_context(|| format!("reading report '{}'", f.display()))?;
        reports.push(r);
    }
    let mut m = Merged {
        work_dir: work.to_path_buf(),
        instances: reports.iter().map(|r| r.instance).collect(),
        rounds: 0,
        calls: 0,
        failed_calls: 0,
        retries: 0,
        dirs_per_round: reports.first().map_or(0, |r| r.dirs_per_round),
        bad_rounds: 0,
        problems: Vec::new(),
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
        m.problems.push(format!(
            "the hosts did not overlap: released {:.3} s apart, the shortest ran {:.3} s",
            m.host_release_spread_ns as f64 / 1e9,
            shortest_ns as f64 / 1e9
        ));
    }
    let shape: BTreeSet<(u32, u32)> = reports.iter().map(|r| (r.depth, r.fanout)).collect();
    if shape.len() > 1 {
        m.problems.push(format!(
            "instances ran different trees (depth, fanout): {shape:?}"
        ));
    }
    let mut by_round: BTreeMap<usize, Vec<&PathBuf>> = BTreeMap::new();
    for r in &reports {
        m.calls += r.racefree.calls;
        m.failed_calls += r.racefree.failed_calls;
        m.retries += r.racefree.retries;
        m.problems.extend(
            r.racefree
                .problems
                .iter()
                .map(|p| format!("instance {}: {p}", r.instance)),
        );
        for (round, created) in r.rounds_created.iter().enumerate() {
            by_round.entry(round).or_default().extend(created);
        }
    }
    let (depth, fanout) = reports.first().map_or((0, 0), |r| (r.depth, r.fanout));
    for (round, created) in &by_round {
        // Reports name directories relative to the work directory.
        let round_dir = PathBuf::from(format!("round-{round}"));
        let expected = expected_dirs(&round_dir, depth, fanout);
        let (on_disk, strays) = scan_tree(&work.join(&round_dir))?;
        let present: BTreeSet<PathBuf> = on_disk
            .iter()
            .map(|p| p.strip_prefix(work).unwrap_or(p).to_path_buf())
            .collect();
        let mut counts: HashMap<&Path, u32> = HashMap::new();
        for c in created {
            *counts.entry(c.as_path()).or_default() += 1;
        }
        let mut bad = Vec::new();
        if present != expected {
            bad.push(format!(
                "the tree has {} directories, expected {} (missing {}, unexpected {})",
                present.len(),
                expected.len(),
                expected.difference(&present).count(),
                present.difference(&expected).count()
            ));
        }
        if !strays.is_empty() {
            bad.push(format!("{} entries that are not directories", strays.len()));
        }
        let twice: Vec<_> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !twice.is_empty() {
            bad.push(format!("created more than once: {}", twice.join(", ")));
        }
        let claimed: BTreeSet<PathBuf> = counts.keys().map(|p| p.to_path_buf()).collect();
        if claimed != expected {
            bad.push(format!(
                "{} directories claimed by racers, {} in the tree",
                claimed.len(),
                expected.len()
            ));
        }
        if !bad.is_empty() {
            m.bad_rounds += 1;
            for b in bad {
                m.problems.push(format!("round {round}: {b}"));
            }
        }
    }
    m.rounds = by_round.len() as u64;
    m.passed =
        !reports.is_empty() && m.failed_calls == 0 && m.bad_rounds == 0 && m.problems.is_empty();
    Ok(m)
}
