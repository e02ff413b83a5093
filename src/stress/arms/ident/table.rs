//! The rows `stress ident` prints below the common table: every (arm, method,
//! state) with its answers and latencies, then what the control missed.

use std::io::Write;

use super::cells::Counts;
use crate::stress::race::Tally;

pub fn print(
    out: &mut dyn Write,
    racefree: &Tally<Counts>,
    control: Option<&Tally<Counts>>,
) -> std::io::Result<()> {
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
    for tally in std::iter::once(racefree).chain(control) {
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
    if let Some(c) = control {
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
