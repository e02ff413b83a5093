//! The readable report of one run: a line about the run, a table of the arms, the
//! first problems, the verdict; and how a report goes to stdout, as that table or
//! as JSON.

use std::io::{self, Write};

use super::race::{Race, Report};

pub fn micros(ns: u64) -> String {
    format!("{:.0} µs", ns as f64 / 1000.0)
}

/// The readable report of one subject's run.
pub fn print<A: Race>(out: &mut dyn Write, r: &Report<A>) -> io::Result<()> {
    writeln!(
        out,
        "stress {}: {} racers ({}), released within {} (median {}); {} rounds in {:.1} s",
        r.subject,
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
        let held = tally.rounds > 0 && !Report::<A>::failed(tally);
        let result = match (held, judged) {
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
    )?;
    writeln!(
        out,
        "  {}",
        r.verdict.line(r.control_ran, || r.why_inconclusive())
    )
}

/// A run's report on stdout: as JSON with `--json`, else as `table` writes it.
pub fn emit<T: serde::Serialize>(
    json: bool,
    value: &T,
    table: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
    } else {
        table(&mut out)?;
    }
    out.flush()?;
    Ok(())
}
