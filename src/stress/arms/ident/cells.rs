//! What the lookups found: counts per (method, state) cell, latency samples, and
//! the report's rows made from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::answer::Method;

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
    pub fn record(
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

    pub fn failures(&self) -> u64 {
        self.wrong + self.missed + self.errors
    }

    pub fn merge(&mut self, other: Cell) {
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
    pub stats: Stats,
}

/// The report's rows, from the cells at the end of the run: latency samples become
/// percentiles.
pub fn rows(all: Stats) -> Vec<Row> {
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

#[cfg(test)]
mod tests {
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
