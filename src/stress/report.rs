//! `racefree stress report DIR`: one verdict from the reports that instances on many
//! hosts wrote to a shared tree, whichever arm they raced. The first header names
//! the arm; the registry's entry for it reads and judges the rest ([`super::merge`]).
//! Then the trees it verified go: a run across hosts leaves the shared tree holding
//! its reports and the verdict, not millions of directories.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use serde::Deserialize;
use serde::de::{self, Deserializer, EnumAccess, VariantAccess, Visitor};

use super::arms;
use super::entry::Entry;
use super::load::{self, HEADER_CAP};
use super::merge::{MAX_INSTANCES, Merged};
use super::race::Arm;
use super::table::{emit, micros};
use super::tree;
use crate::exit::Exit;

/// What a report that removed the trees it verified leaves beside the reports.
pub const VERDICT_FILE: &str = "verdict.json";

#[derive(Debug, ClapArgs)]
pub struct ReportArgs {
    /// The shared work directory (racefree-stress-NAME, where the instances wrote
    /// report-ID.json and rounds-ID.jsonl), or the directory that holds it
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Print the merged verdict as JSON
    #[arg(long)]
    pub json: bool,

    /// Keep every round's tree and the rounds files. By default each round's tree
    /// goes once it is verified (the first bad rounds' stay, for inspection), the
    /// rounds files and the instances' control directories go after the verdict,
    /// and verdict.json is left beside the reports
    #[arg(long)]
    pub keep: bool,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<Exit> {
    let work = load::find_work_dir(&args.dir)?;
    refuse_judged(&work)?;
    let mut merged = merge(&work)?;
    if !args.keep {
        sweep(&work, &mut merged)?;
    }
    emit(args.json, &merged, |out| print(out, &merged))?;
    Ok(merged.verdict.exit())
}

/// A run whose trees an earlier report removed cannot be judged again.
fn refuse_judged(work: &Path) -> anyhow::Result<()> {
    if tree::kind(work, Path::new(VERDICT_FILE))?.is_some() {
        bail!(
            "'{}' was already judged by stress report, which removed the round trees it verified (its verdict is in '{}'); judge with --keep to judge a run more than once",
            work.display(),
            work.join(VERDICT_FILE).display()
        );
    }
    Ok(())
}

/// After the verdict: `verdict.json` first (so a report stopped half way is not
/// taken for a run never judged), then every round's tree but the first bad ones,
/// the rounds files that described them, and what the instances' controls left.
fn sweep(work: &Path, merged: &mut Merged) -> anyhow::Result<()> {
    merged.kept_for_inspection = merged
        .first_bad_rounds
        .iter()
        .map(|&n| Arm::Racefree.round_dir(n))
        .collect();
    let verdict = work.join(VERDICT_FILE);
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&verdict)
        .with_context(|| format!("creating '{}'", verdict.display()))?;
    f.write_all(&serde_json::to_vec_pretty(merged)?)
        .and_then(|()| f.write_all(b"\n"))
        .with_context(|| format!("writing '{}'", verdict.display()))?;
    for n in 0..merged.covered {
        if !merged.first_bad_rounds.contains(&n) {
            remove(&work.join(Arm::Racefree.round_dir(n)))?;
            for prefix in merged.round_extras {
                remove(&work.join(format!("{prefix}{n}")))?;
            }
        }
    }
    for e in std::fs::read_dir(work).with_context(|| format!("reading '{}'", work.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let rounds_file = name.starts_with("rounds-") && name.ends_with(".jsonl");
        if rounds_file || name.starts_with("controls-") {
            remove(&e.path())?;
        }
    }
    Ok(())
}

/// Removes a tree, or the symlink or file at `path` (never following it); an
/// absent one is fine.
fn remove(path: &Path) -> anyhow::Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.with_context(|| format!("removing '{}'", path.display()))
}

fn print(out: &mut dyn Write, merged: &Merged) -> std::io::Result<()> {
    writeln!(
        out,
        "stress report: {}, {} instances ({}), {} rounds, {} calls, {} failed",
        merged.subject,
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
    if !merged.kept_for_inspection.is_empty() {
        writeln!(
            out,
            "  kept for inspection: {}",
            merged.kept_for_inspection.join(", ")
        )?;
    }
    writeln!(
        out,
        "{}",
        merged
            .verdict
            .line(merged.control_ran, || merged.why_inconclusive())
    )
}

/// Merges every instance's report in `work` and checks the shared tree.
pub fn merge(work: &Path) -> anyhow::Result<Merged> {
    let ids = load::report_ids(work)?;
    let Some(first) = ids.first() else {
        bail!("no report-ID.json in '{}'", work.display());
    };
    if ids.len() > MAX_INSTANCES {
        bail!(
            "{} reports; at most {MAX_INSTANCES} instances are merged",
            ids.len()
        );
    }
    let header = load::read_header(work, *first)?;
    let probe: Probe = serde_json::from_slice(&header)
        .with_context(|| format!("report-{first}.json: not a stress report"))?;
    probe.subject.merge(work, &ids)
}

/// Reads one instance's report from bytes and a rounds stream, validating all of
/// it, and returns how many rounds it holds. What a fuzzer calls: whatever the
/// input, an error, never a panic or an abort.
pub fn load_report(header: &[u8], rounds: &mut dyn BufRead) -> anyhow::Result<u64> {
    if header.len() as u64 > HEADER_CAP {
        bail!("a report header larger than {HEADER_CAP} bytes");
    }
    let probe: Probe = serde_json::from_slice(header).context("not a stress report")?;
    probe.subject.load(header, rounds)
}

/// Just the subject, to know how to read the rest.
#[derive(Deserialize)]
struct Probe {
    #[serde(deserialize_with = "arm_named")]
    subject: &'static dyn Entry,
}

/// The arm a report names, read as serde reads an enum of the registry's names: a
/// report that names no arm is refused in serde's own words.
fn arm_named<'de, D: Deserializer<'de>>(d: D) -> Result<&'static dyn Entry, D::Error> {
    struct Subject;
    impl<'de> Visitor<'de> for Subject {
        type Value = &'static dyn Entry;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("enum Subject")
        }
        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            let (arm, variant) = data.variant_seed(Name)?;
            variant.unit_variant()?;
            Ok(arm)
        }
    }
    struct Name;
    impl<'de> de::DeserializeSeed<'de> for Name {
        type Value = &'static dyn Entry;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_identifier(self)
        }
    }
    impl Visitor<'_> for Name {
        type Value = &'static dyn Entry;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("variant identifier")
        }
        fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
            arms::find(name).ok_or_else(|| E::unknown_variant(name, arms::NAMES))
        }
    }
    d.deserialize_enum("Subject", arms::NAMES, Subject)
}

#[cfg(test)]
mod tests;
