//! `racefree stress write`: writers replace one file while readers read it.
//!
//! Half the racers are writers: each replaces FILE with `--versions` whole versions
//! of different lengths (1 to 64 KiB), each carrying its own length and checksum in
//! its first line. The other half are readers: they read FILE over and over, at
//! least `--reads` times and until every writer is done, and verify that each read
//! is exactly one complete version. racefree's writers use `racefree::write::replace`
//! (a temporary file renamed over FILE); the control writes in place, truncating
//! then writing as `cat > FILE` does, and readers see empty and torn files.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use nix::sys::stat::SFlag;

use super::kit::{Seen, make_round_dir, verify, version, write_in_place};
use crate::stress::args::{ArmArgs, FsArgs, RaceArgs};
use crate::stress::cleanup::stopping;
use crate::stress::race::{Arm, Contribution, Race, RoundCtx, Subject, Tally, keep_failure};
use crate::stress::tree;

pub const DEFAULT_VERSIONS: u32 = 5;
pub const MAX_VERSIONS: u32 = 1000;
pub const DEFAULT_READS: u32 = 20;
pub const MAX_READS: u32 = 100_000;
/// A reader stops after this many reads whatever happens (a writer that died
/// never says it is done).
const READ_LIMIT: u64 = 1_000_000;
/// The largest version: its first line and 64 KiB.
const VERSION_CAP: u64 = 65 * 1024;
/// The name of each round's file.
pub const FILE: &str = "file";

/// `stress write`'s own options, echoed in its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ClapArgs)]
pub struct Params {
    /// Versions each writer writes per round
    #[arg(long, value_name = "N", default_value_t = DEFAULT_VERSIONS, value_parser = clap::value_parser!(u32).range(1..=MAX_VERSIONS as i64))]
    pub versions: u32,

    /// Reads each reader makes per round at least (and more, until the writers are done)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_READS, value_parser = clap::value_parser!(u32).range(1..=MAX_READS as i64))]
    pub reads: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Round {
    pub arm: Arm,
    pub dir: PathBuf,
    pub file: PathBuf,
    pub round: u64,
    pub instance: u32,
    pub writers: u32,
    pub versions: u32,
    pub reads: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub writes: u64,
    pub write_failures: u64,
    pub reads: u64,
    /// Reads that were not one complete version, by what they were.
    pub empty: u64,
    pub torn: u64,
    pub missing: u64,
    pub read_errors: u64,
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    pub writes: u64,
    pub reads: u64,
    pub empty: u64,
    pub torn: u64,
}

pub struct WriteArm {
    params: Params,
}

fn replace(file: &Path, content: &[u8]) -> anyhow::Result<()> {
    // Durability is not under test (readers see atomicity, not crashes): no fsync.
    let opts = crate::write::Options {
        sync: false,
        ..crate::write::Options::default()
    };
    crate::write::replace(file, &mut &content[..], &opts)
}

/// The writers among `racers`: half of them, at least one.
fn writers(racers: u32) -> u32 {
    (racers / 2).max(1)
}

/// The name of the file writer `writer` of `instance` makes when it is done.
fn done_name(instance: u32, writer: u32) -> String {
    format!("done-{instance}-{writer}")
}

fn done_marker(round: &Round, writer: u32) -> PathBuf {
    round.dir.join(done_name(round.instance, writer))
}

fn writer(round: &Round, w: u32) -> Outcome {
    let mut out = Outcome::default();
    for k in 0..round.versions {
        let id = format!("{}.{}.{w}.{k}", round.round, round.instance);
        let content = version(&id);
        let written = match round.arm {
            Arm::Racefree => replace(&round.file, &content),
            Arm::Control => write_in_place(&round.file, &content),
        };
        out.writes += 1;
        if let Err(e) = written {
            out.write_failures += 1;
            keep_failure(&mut out.failures, || format!("writing version {id}: {e:#}"));
        }
    }
    if let Err(e) = std::fs::File::create(done_marker(round, w)) {
        out.write_failures += 1;
        out.failures.push(format!("marking writer {w} done: {e}"));
    }
    out
}

fn reader(round: &Round) -> Outcome {
    let mut out = Outcome::default();
    let mut writers_done = 0;
    loop {
        // Readers go on until every writer of this instance is done, so every
        // write is read against.
        if writers_done < round.writers && done_marker(round, writers_done).exists() {
            writers_done += 1;
            continue;
        }
        if (writers_done == round.writers && out.reads >= u64::from(round.reads))
            || out.reads >= READ_LIMIT
            || stopping()
        {
            return out;
        }
        out.reads += 1;
        let problem = match std::fs::read(&round.file) {
            Ok(bytes) => match verify(&bytes) {
                Seen::Complete => None,
                Seen::Empty => {
                    out.empty += 1;
                    Some("read an empty file".to_string())
                }
                Seen::Torn(why) => {
                    out.torn += 1;
                    Some(format!("read a torn file: {why}"))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.missing += 1;
                Some("the file was missing".to_string())
            }
            Err(e) => {
                out.read_errors += 1;
                Some(format!("reading: {e}"))
            }
        };
        if let Some(p) = problem {
            keep_failure(&mut out.failures, || p);
        }
    }
}

/// Judges round `n`'s directory `work/rel` as the writers of `instances` (each
/// with its racer count) left it: FILE holds one whole version written in this
/// round by one of them, and every writer marked itself done.
fn judge_round(work: &Path, rel: &Path, n: u64, instances: &[(u32, u32)]) -> Vec<String> {
    let file = rel.join(FILE);
    let mut bad = Vec::new();
    match tree::read_file(work, &file, VERSION_CAP) {
        Ok(bytes) => match verify(&bytes) {
            Seen::Complete => {
                if !written_in(&bytes, n, instances) {
                    bad.push(format!(
                        "'{}' holds a version no writer of round {n} wrote",
                        file.display()
                    ));
                }
            }
            Seen::Empty => bad.push(format!("'{}' was left empty", file.display())),
            Seen::Torn(why) => bad.push(format!("'{}' was left torn: {why}", file.display())),
        },
        Err(e) => bad.push(format!("{e:#}")),
    }
    for &(instance, racers) in instances {
        for w in 0..writers(racers) {
            let marker = rel.join(done_name(instance, w));
            if !matches!(tree::kind(work, &marker), Ok(Some(k)) if k == SFlag::S_IFREG) {
                bad.push(format!(
                    "writer {w} of instance {instance} left no '{}'",
                    marker.display()
                ));
            }
        }
    }
    bad
}

/// Whether a complete version's id (`ROUND.INSTANCE.WRITER.K`, or
/// `ROUND.INSTANCE.initial`) names round `n` and one of `instances`.
fn written_in(version: &[u8], n: u64, instances: &[(u32, u32)]) -> bool {
    let header = version.split(|&b| b == b'\n').next().unwrap_or_default();
    let id = String::from_utf8_lossy(header);
    let mut parts = id.split(' ').nth(1).unwrap_or_default().split('.');
    let (round, instance) = (parts.next(), parts.next());
    round.and_then(|r| r.parse::<u64>().ok()) == Some(n)
        && instance
            .and_then(|i| i.parse::<u32>().ok())
            .is_some_and(|i| instances.iter().any(|&(id, _)| id == i))
}

impl Race for WriteArm {
    const NAME: &'static str = "write";
    const SHARED: bool = true;
    type Params = Params;
    type Round = Round;
    type Outcome = Outcome;
    type Churn = ();
    type Counts = Counts;
    /// Nothing beyond the header's counts: the merge checks the file on disk.
    type Record = ();

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn validate(p: &Params) -> anyhow::Result<()> {
        if !(1..=MAX_VERSIONS).contains(&p.versions) || !(1..=MAX_READS).contains(&p.reads) {
            bail!(
                "versions {} and reads {} must be 1..={MAX_VERSIONS} and 1..={MAX_READS}",
                p.versions,
                p.reads
            );
        }
        Ok(())
    }

    fn setup(&mut self, ctx: &RoundCtx) -> anyhow::Result<Round> {
        make_round_dir(ctx)?;
        let round = Round {
            arm: ctx.arm,
            dir: ctx.dir.clone(),
            file: ctx.dir.join(FILE),
            round: ctx.round,
            instance: ctx.instance,
            writers: writers(ctx.racers),
            versions: self.params.versions,
            reads: self.params.reads,
        };
        // The file exists, complete, before anyone reads it (not under test).
        replace(
            &round.file,
            &version(&format!("{}.{}.initial", ctx.round, ctx.instance)),
        )?;
        Ok(round)
    }

    fn race(round: &Round, racer: u32) -> Outcome {
        if racer < round.writers {
            writer(round, racer)
        } else {
            reader(round)
        }
    }

    fn judge(
        &mut self,
        ctx: &RoundCtx,
        _round: &Round,
        outcomes: &[Outcome],
        _churn: Vec<()>,
        tally: &mut Tally<Counts>,
    ) -> anyhow::Result<()> {
        for o in outcomes {
            let failed = o.write_failures + o.empty + o.torn + o.missing + o.read_errors;
            tally.racer(ctx.round, o.writes + o.reads, failed, &o.failures);
            tally.counts.writes += o.writes;
            tally.counts.reads += o.reads;
            tally.counts.empty += o.empty;
            tally.counts.torn += o.torn;
        }
        if !ctx.shared {
            let rel = Path::new(&ctx.arm.round_dir(ctx.round)).to_path_buf();
            let me = [(ctx.instance, ctx.racers)];
            tally.bad_round(ctx.round, judge_round(&ctx.work, &rel, ctx.round, &me));
        }
        Ok(())
    }

    fn failures(c: &Counts) -> Vec<(&'static str, u64)> {
        vec![("torn", c.torn), ("empty", c.empty)]
    }

    /// The writers' writes, and the readers' reads: at least `--reads` each, and
    /// more until the writers are done.
    fn round_calls(p: &Params, racers: u32) -> RangeInclusive<u64> {
        let writes = u64::from(writers(racers)) * u64::from(p.versions);
        let readers = u64::from(racers.saturating_sub(writers(racers)));
        writes + readers * u64::from(p.reads)..=writes + readers * READ_LIMIT
    }

    fn check_counts(p: &Params, racers: u32, t: &Tally<Counts>) -> anyhow::Result<()> {
        let writes = t.rounds * u64::from(writers(racers)) * u64::from(p.versions);
        let c = &t.counts;
        if c.writes != writes
            || c.writes.checked_add(c.reads) != Some(t.calls)
            || c.torn.saturating_add(c.empty) > c.reads
        {
            bail!(
                "writes {}, reads {} (torn {}, empty {}) do not add up to {} calls, of which {writes} writes",
                c.writes,
                c.reads,
                c.torn,
                c.empty,
                t.calls
            );
        }
        Ok(())
    }

    /// The round's directory, its file and each writer's done marker.
    fn round_entries(_p: &Params, racers: u32) -> u64 {
        2 + u64::from(writers(racers))
    }

    fn record(_ctx: &RoundCtx, _round: &Round, _outcomes: &[Outcome]) {}

    fn merge_round(
        _params: &Params,
        work: &Path,
        n: u64,
        records: &[Contribution<()>],
    ) -> anyhow::Result<Vec<String>> {
        let rel = Path::new(&Arm::Racefree.round_dir(n)).to_path_buf();
        let instances: Vec<(u32, u32)> = records.iter().map(|c| (c.instance, c.racers)).collect();
        Ok(judge_round(work, &rel, n, &instances))
    }

    fn columns() -> &'static [&'static str] {
        &["writes", "reads", "empty", "torn"]
    }

    fn cells(c: &Counts) -> Vec<String> {
        vec![
            c.writes.to_string(),
            c.reads.to_string(),
            c.empty.to_string(),
            c.torn.to_string(),
        ]
    }

    fn describe(p: &Params) -> String {
        format!(
            "each round: half the racers write {} versions each (1-64 KiB, checksummed), the others read at least {} times; every read must be one whole version",
            p.versions, p.reads
        )
    }
}

impl Subject for WriteArm {
    const ABOUT: &'static str =
        "Writers replace one file while readers check every read is one whole version";
    type Args = FsArgs<Params>;

    fn new(args: &Self::Args) -> anyhow::Result<WriteArm> {
        if args.race().racers() < 2 {
            return Err(crate::exit::usage(
                "stress write needs at least 2 racers: half of them write, the others read",
            ));
        }
        Ok(WriteArm {
            params: args.own.clone(),
        })
    }

    fn main_job(race: RaceArgs) -> Option<Self::Args> {
        let own = Params {
            versions: DEFAULT_VERSIONS,
            reads: DEFAULT_READS,
        };
        Some(FsArgs::on_temp_dir(own, race))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_verifies_and_any_cut_or_mixture_does_not() {
        let a = version("1.0.0.0");
        let b = version("1.0.1.3");
        assert_eq!(verify(&a), Seen::Complete);
        assert_eq!(verify(&[]), Seen::Empty);
        assert!(matches!(verify(&a[..a.len() - 1]), Seen::Torn(_)));
        let mut mixed = b[..b.len().min(a.len())].to_vec();
        mixed.extend_from_slice(&a[mixed.len()..]);
        if mixed != a {
            assert!(matches!(verify(&mixed), Seen::Torn(_)));
        }
        let mut flipped = a.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(verify(&flipped), Seen::Torn(_)));
    }

    #[test]
    fn an_in_place_write_is_seen_empty_between_its_truncate_and_its_write() {
        // Forced: what a reader sees after the control's truncate, before its write.
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        write_in_place(&f, &version("a")).unwrap();
        std::fs::File::create(&f).unwrap();
        assert_eq!(verify(&std::fs::read(&f).unwrap()), Seen::Empty);
        // racefree's replace never leaves that state: old or new content.
        replace(&f, &version("b")).unwrap();
        assert_eq!(verify(&std::fs::read(&f).unwrap()), Seen::Complete);
    }
}
