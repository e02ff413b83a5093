//! A counter's values judged when some of the calls that took them died unseen:
//! a value printed was committed; a call killed before it printed may have
//! committed or not.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use serde::{Deserialize, Serialize};

/// One counter call, as its racer saw it end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Take {
    /// It printed this value: committed.
    Took(i64),
    /// Killed at random, or failed, without printing: it may have committed.
    Unknown,
    /// Died at its rename: it committed nothing.
    Nothing,
}

impl Take {
    fn value(&self) -> Option<i64> {
        match self {
            Take::Took(v) => Some(*v),
            _ => None,
        }
    }
}

/// What the counter's calls and its final value show.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub repeated: u64,
    pub lost: u64,
    pub skipped: u64,
    pub silent: u64,
    pub problems: Vec<String>,
}

/// Judges every racer's counter calls (each racer's in order) against the value
/// the counter ends at, `last`.
///
/// A value printed was committed; a call killed before it printed may have
/// committed or not. So the values 1..=last are each committed once: every printed
/// value is among them, printed once, and each racer's rise (its calls follow one
/// another); every value of them nobody printed was taken by a distinct killed
/// call that could have: after the value its racer printed before it, before the
/// one after. Matching those values to killed calls is interval scheduling: in
/// ascending order, each value takes, among the calls whose interval holds it,
/// the one whose interval ends first.
pub fn account(racers: &[&[Take]], last: i64) -> Account {
    let mut a = Account::default();
    let mut printed: Vec<i64> = racers
        .iter()
        .flat_map(|t| t.iter().filter_map(Take::value))
        .collect();
    printed.sort_unstable();
    let mut twice = BTreeSet::new();
    for w in printed.windows(2).filter(|w| w[0] == w[1]) {
        a.repeated += 1;
        twice.insert(w[0]);
    }
    if a.repeated > 0 {
        let some: Vec<_> = twice.iter().take(3).collect();
        a.problems.push(format!(
            "{} counter values handed out twice, such as {some:?}",
            a.repeated
        ));
    }
    printed.dedup();
    let beyond = printed.iter().filter(|&&v| v < 1 || v > last).count() as u64;
    if beyond > 0 {
        a.problems.push(format!(
            "{beyond} counter values printed that the final value {last} does not hold"
        ));
    }
    a.lost = beyond;
    for (r, takes) in racers.iter().enumerate() {
        let values: Vec<i64> = takes.iter().filter_map(Take::value).collect();
        for w in values.windows(2).filter(|w| w[1] <= w[0]) {
            if a.lost == beyond {
                a.problems.push(format!(
                    "racer {r} took {} after {}: the counter went back",
                    w[1], w[0]
                ));
            }
            a.lost += 1;
        }
    }
    let calls: usize = racers.iter().map(|t| t.len()).sum();
    if last < 0 || last as u64 > calls as u64 {
        a.skipped += (last.unsigned_abs()).saturating_sub(calls as u64).max(1);
        a.problems.push(format!(
            "the counter ends at {last}, which {calls} calls cannot make"
        ));
        return a;
    }
    let mut could = killed_intervals(racers, last);
    could.sort_unstable();
    let mut open = BinaryHeap::new();
    let mut next = 0;
    let mut unexplained = Vec::new();
    for v in 1..=last {
        if printed.binary_search(&v).is_ok() {
            continue;
        }
        while next < could.len() && could[next].0 < v {
            open.push(Reverse(could[next].1));
            next += 1;
        }
        while open.peek().is_some_and(|&Reverse(hi)| hi <= v) {
            open.pop();
        }
        match open.pop() {
            Some(_) => a.silent += 1,
            None => {
                a.skipped += 1;
                if unexplained.len() < 3 {
                    unexplained.push(v);
                }
            }
        }
    }
    if a.skipped > 0 {
        a.problems.push(format!(
            "{} values of 1..={last} that no call printed and no killed call could have taken, such as {unexplained:?}",
            a.skipped
        ));
    }
    a
}

/// For each call that may have committed unseen, the values it could have taken:
/// strictly between what its racer printed before it (or 0) and after it (or
/// `last` + 1).
fn killed_intervals(racers: &[&[Take]], last: i64) -> Vec<(i64, i64)> {
    let mut could = Vec::new();
    for takes in racers {
        let mut after = vec![last + 1; takes.len()];
        let mut next = last + 1;
        for (i, t) in takes.iter().enumerate().rev() {
            after[i] = next;
            if let Some(v) = t.value() {
                next = v;
            }
        }
        let mut before = 0;
        for (i, t) in takes.iter().enumerate() {
            match t {
                Take::Took(v) => before = *v,
                Take::Unknown => could.push((before, after[i])),
                Take::Nothing => {}
            }
        }
    }
    could
}

#[cfg(test)]
mod tests {
    use super::Take::{Nothing, Took, Unknown};
    use super::*;

    fn judged(racers: &[&[Take]], last: i64) -> (u64, u64, u64, u64) {
        let a = account(racers, last);
        (a.repeated, a.lost, a.skipped, a.silent)
    }

    #[test]
    fn a_value_nobody_printed_is_a_killed_call_s_that_could_have_taken_it() {
        assert_eq!(judged(&[&[Took(1), Took(2), Took(3)]], 3), (0, 0, 0, 0));
        // Killed between 1 and 3: it committed 2, then died before printing.
        assert_eq!(judged(&[&[Took(1), Unknown, Took(3)]], 3), (0, 0, 0, 1));
        // Killed, and committed nothing: the counter ends at 2.
        assert_eq!(judged(&[&[Took(1), Unknown, Took(2)]], 2), (0, 0, 0, 0));
        // 3 was taken after 2 was printed: the call killed between 1 and 2 cannot
        // have taken it, and one that died at its rename committed nothing.
        assert_eq!(
            judged(&[&[Took(1), Unknown, Took(2)], &[Took(4)]], 4),
            (0, 0, 1, 0)
        );
        assert_eq!(judged(&[&[Took(1), Nothing, Took(3)]], 3), (0, 0, 1, 0));
        // One killed call accounts for one value at most.
        assert_eq!(judged(&[&[Unknown, Nothing]], 2), (0, 0, 1, 1));
    }

    #[test]
    fn each_value_takes_the_killed_call_whose_interval_ends_first() {
        // 2 and 5 went unprinted. The call between 1 and 3 can only have taken 2;
        // the other, anything: given 2 first, it would leave 5 unexplained.
        let a: &[Take] = &[Took(1), Unknown, Took(3)];
        assert_eq!(judged(&[&[Unknown], a, &[Took(4)]], 5), (0, 0, 0, 2));
    }

    #[test]
    fn values_handed_out_twice_or_lost_are_failures() {
        assert_eq!(judged(&[&[Took(1)], &[Took(1)]], 1), (1, 0, 0, 0));
        // Printed 2, and the counter ends at 1: the file lost an increment.
        assert_eq!(judged(&[&[Took(1), Took(2)]], 1), (0, 1, 0, 0));
        // One racer took 2, then 1: the counter went back.
        assert_eq!(judged(&[&[Took(2), Took(1)]], 2), (0, 1, 0, 0));
        let a = account(&[&[Took(1)]], 5);
        assert_eq!(a.skipped, 4);
        assert_eq!(
            a.problems,
            ["the counter ends at 5, which 1 calls cannot make"]
        );
    }
}
