//! Reading back what one instance of a multi-host run wrote: its header
//! (`report-ID.json`) and its rounds (`rounds-ID.jsonl`), refused unless they are
//! consistent with themselves.
//!
//! Everything read back is input anyone could have edited. The header is read with
//! a size cap; every field it has must be one this racefree writes, and every one
//! it writes must be there (serde cannot deny unknown fields through `flatten`, so
//! the keys are compared with the same report written back); its figures are
//! checked against the command line's ranges and against each other (calls are
//! rounds x what a round of its racers makes). Its rounds are streamed, and what
//! they record must add up to what the header says succeeded.

use std::io::{BufRead, Read};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use super::args::MAX_RACERS;
use super::race::{Arm, FORMAT, PROBLEMS_KEPT, Race, Report, RoundLine, Tally};
use super::tree;

/// A header is small (problems are capped): anything larger was not written by us.
pub const HEADER_CAP: u64 = 1 << 20;
/// One round's line: a makedirs round of the largest tree across many racers.
pub const LINE_CAP: u64 = 64 << 20;
/// Rounds one instance may claim.
pub const MAX_ROUNDS: u64 = 100_000_000;

/// The fields format 2 added: a format 1 report lacks them.
const SINCE_FORMAT_2: &[&str] = &["format", "verdict", "control_ran", "work_dir_kept"];

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

/// The format a header says it is in: 1 when it says none.
fn format_of(header: &Value) -> anyhow::Result<u32> {
    match header.get("format") {
        None => Ok(1),
        Some(f) => match f.as_u64() {
            Some(n) if n > u64::from(FORMAT) => bail!(
                "format {n}, newer than this racefree reads (1 and {FORMAT}): merge with the racefree that wrote it"
            ),
            Some(n @ 1..) => Ok(n as u32),
            _ => bail!("format {f} is not a report format"),
        },
    }
}

/// Reads and validates one instance's header.
pub fn parse_header<A: Race>(bytes: &[u8]) -> anyhow::Result<Report<A>> {
    let given: Value = serde_json::from_slice(bytes).context("not a stress report")?;
    let format = format_of(&given)?;
    let mut r = Report::<A>::deserialize(&given).context("not a stress report")?;
    let known = serde_json::to_value(&r).context("not a stress report")?;
    let optional = if format == 1 { SINCE_FORMAT_2 } else { &[] };
    same_keys(&given, &known, "", optional)?;
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
    if r.setup_problems.len() > PROBLEMS_KEPT {
        bail!("more setup problems than a report keeps");
    }
    check_tally::<A>(&r.racefree, Arm::Racefree, &r.params, r.racers)?;
    if let Some(c) = &r.control {
        check_tally::<A>(c, Arm::Control, &r.params, r.racers).context("its control")?;
    }
    match format {
        // Before format 2 a control did not race across hosts, and a report
        // carried no verdict: it has the one its figures support.
        1 => {
            if r.control.is_some() {
                bail!("a format 1 report with a control arm: format 1 raced none across hosts");
            }
            r.verdict = r.judge();
        }
        _ => {
            if r.control_ran != r.control.is_some() {
                bail!(
                    "control_ran is {}, but it {} a control tally",
                    r.control_ran,
                    if r.control.is_some() { "has" } else { "has no" }
                );
            }
            // Its own verdict is believed where it is worse than its figures say:
            // the merge takes the worse of the two.
            r.verdict = r.verdict.max(r.judge());
        }
    }
    Ok(r)
}

/// Refuses a key of `given` that `known` (the same report as this racefree writes
/// it) lacks, and a key of `known` that `given` lacks unless it is `optional` (at
/// the top), at any depth.
fn same_keys(given: &Value, known: &Value, at: &str, optional: &[&str]) -> anyhow::Result<()> {
    let path = |key: &str| match at {
        "" => key.to_string(),
        _ => format!("{at}.{key}"),
    };
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => {
            for (key, value) in g {
                match k.get(key) {
                    Some(kv) => same_keys(value, kv, &path(key), &[])?,
                    None => bail!("unknown field '{}'", path(key)),
                }
            }
            if let Some(key) = k
                .keys()
                .find(|key| !g.contains_key(*key) && !optional.contains(&key.as_str()))
            {
                bail!("missing field '{}'", path(key));
            }
        }
        (Value::Array(g), Value::Array(k)) => {
            for (i, (g, k)) in g.iter().zip(k).enumerate() {
                same_keys(g, k, &path(&i.to_string()), &[])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `n` rounds of `per_round` calls: the range of calls they make.
fn times(per_round: &RangeInclusive<u64>, n: u64) -> RangeInclusive<u64> {
    per_round.start().saturating_mul(n)..=per_round.end().saturating_mul(n)
}

fn check_tally<A: Race>(
    t: &Tally<A::Counts>,
    arm: Arm,
    params: &A::Params,
    racers: u32,
) -> anyhow::Result<()> {
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
    let per_round = A::round_calls(params, racers);
    if !times(&per_round, t.rounds).contains(&t.calls) {
        let each = match per_round.start() == per_round.end() {
            true => per_round.start().to_string(),
            false => format!("{} to {}", per_round.start(), per_round.end()),
        };
        bail!(
            "{} calls in {} rounds of {racers} racers; each round makes {each}",
            t.calls,
            t.rounds
        );
    }
    A::check_counts(params, racers, t)
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

/// Streams one instance's rounds, checking they are numbered 0, 1, 2, ..., as many
/// as its header claims, and that the calls they record as succeeded add up to the
/// header's.
pub struct Rounds<'a, A: Race> {
    reader: Box<dyn BufRead + 'a>,
    next: u64,
    claimed: u64,
    /// The length of the last line read.
    last_len: u64,
    racers: u32,
    /// The calls one round makes.
    round_calls: RangeInclusive<u64>,
    /// Whether the header says no call failed: then every round made all of its.
    none_failed: bool,
    /// The header's calls that succeeded, and those the records show so far.
    succeeded: u64,
    recorded: Option<u64>,
    _arm: std::marker::PhantomData<A>,
}

impl<'a, A: Race> Rounds<'a, A> {
    /// The rounds of the instance whose header is `r`.
    pub fn of(reader: Box<dyn BufRead + 'a>, r: &Report<A>) -> Self {
        Rounds {
            reader,
            next: 0,
            claimed: r.racefree.rounds,
            last_len: 0,
            racers: r.racers,
            round_calls: A::round_calls(&r.params, r.racers),
            none_failed: r.racefree.failed_calls == 0,
            succeeded: r.racefree.calls - r.racefree.failed_calls,
            recorded: None,
            _arm: std::marker::PhantomData,
        }
    }

    /// The length of the last line read.
    pub fn last_len(&self) -> u64 {
        self.last_len
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
            self.check_sum()?;
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
        if let Some(calls) = A::record_calls(&l.record) {
            self.check_round(calls)?;
            self.recorded = Some(self.recorded.unwrap_or(0).saturating_add(calls));
        }
        self.next += 1;
        Ok(Some(l.record))
    }

    /// One round's record against what a round makes.
    fn check_round(&self, calls: u64) -> anyhow::Result<()> {
        let (n, most) = (self.next, *self.round_calls.end());
        if calls > most {
            bail!(
                "round {n} records {calls} calls that succeeded, more than a round of {} racers makes ({most})",
                self.racers
            );
        }
        if self.none_failed && self.round_calls.start() == self.round_calls.end() && calls != most {
            bail!(
                "round {n} records {calls} calls that succeeded, but each round of {} racers makes {most} and its report says none failed",
                self.racers
            );
        }
        Ok(())
    }

    /// After the last round: the records add up to the header's successes.
    fn check_sum(&self) -> anyhow::Result<()> {
        match self.recorded {
            Some(recorded) if recorded != self.succeeded => bail!(
                "its rounds record {recorded} calls that succeeded; its report says {}",
                self.succeeded
            ),
            _ => Ok(()),
        }
    }
}

/// Reads one instance's report from its header and rounds stream, validating all
/// of it, and returns how many rounds it holds.
pub fn load<A: Race>(header: &[u8], rounds: &mut dyn BufRead) -> anyhow::Result<u64> {
    let r = parse_header::<A>(header)?;
    let mut stream = Rounds::of(Box::new(rounds), &r);
    while stream.next_round()?.is_some() {}
    Ok(r.racefree.rounds)
}
