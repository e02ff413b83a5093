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
mod tests {
    use super::*;

    /// A format 2 makedirs report of 2 racers; its calls are what its rounds make.
    fn header(depth: u32, fanout: u32, dirs: u64, rounds: u64) -> String {
        let calls = (u64::from(fanout).saturating_pow(depth))
            .saturating_mul(2)
            .saturating_mul(rounds);
        format!(
            r#"{{"format":2,"subject":"makedirs","instance":0,"racers":2,"processes":false,"depth":{depth},"fanout":{fanout},"dirs_per_round":{dirs},"churn":false,"start_spread_max_ns":0,"start_spread_median_ns":0,"seconds":1.0,"released_ns":0,"work_dir":"/x","work_dir_kept":true,"setup_problems":[],"verdict":"pass","control_ran":false,"racefree":{{"arm":"racefree","rounds":{rounds},"calls":{calls},"failed_calls":0,"bad_rounds":0,"problems":[],"retries":0,"created":0,"removed_by_churn":0}},"control":null}}"#
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

    fn edited(h: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(h).unwrap();
        edit(&mut v);
        v.to_string()
    }

    fn load_err(h: &str, rounds: &str) -> String {
        format!(
            "{:#}",
            load_report(h.as_bytes(), &mut rounds.as_bytes()).unwrap_err()
        )
    }

    #[test]
    fn unknown_and_missing_fields_are_refused_at_any_depth() {
        let h = header(1, 2, 3, 2);
        let rounds = good_rounds();
        let unknown = edited(&h, |v| v["racefree"]["verified"] = true.into());
        assert_eq!(
            load_err(&unknown, &rounds),
            "unknown field 'racefree.verified'"
        );
        let unknown = edited(&h, |v| v["extra"] = 1.into());
        assert_eq!(load_err(&unknown, &rounds), "unknown field 'extra'");
        let missing = edited(&h, |v| {
            v.as_object_mut().unwrap().remove("verdict");
        });
        assert_eq!(load_err(&missing, &rounds), "missing field 'verdict'");
        let line = "{\"round\":0,\"record\":[],\"ok\":1}\n{\"round\":1,\"record\":[]}\n";
        assert!(load_err(&h, line).starts_with("round line 1: unknown field `ok`"));
    }

    #[test]
    fn format_1_is_read_and_a_newer_format_refused() {
        let h = header(1, 2, 3, 2);
        let v1 = edited(&h, |v| {
            let o = v.as_object_mut().unwrap();
            for f in ["format", "verdict", "control_ran", "work_dir_kept"] {
                o.remove(f);
            }
        });
        assert_eq!(
            load_report(v1.as_bytes(), &mut good_rounds().as_bytes()).unwrap(),
            2
        );
        let v3 = edited(&h, |v| v["format"] = 3.into());
        assert_eq!(
            load_err(&v3, &good_rounds()),
            "format 3, newer than this racefree reads (1 and 2): merge with the racefree that wrote it"
        );
        let v0 = edited(&h, |v| v["format"] = 0.into());
        assert_eq!(
            load_err(&v0, &good_rounds()),
            "format 0 is not a report format"
        );
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
            let valid = crate::stress::arms::makedirs::tree_size(depth, fanout).is_ok_and(|n| n == dirs);
            prop_assert_eq!(ok, valid);
        }

        /// Calls are what the rounds make (2 racers x 2 leaves each), or the
        /// report is refused.
        #[test]
        fn calls_must_be_what_the_rounds_make(calls in prop_oneof![any::<u64>(), 0u64..20],
                                              rounds in 0u64..4) {
            let h = edited(&header(1, 2, 3, rounds), |v| v["racefree"]["calls"] = calls.into());
            let lines: String = (0..rounds).map(|n| format!("{{\"round\":{n},\"record\":[]}}\n")).collect();
            let ok = load_report(h.as_bytes(), &mut lines.as_bytes()).is_ok();
            prop_assert_eq!(ok, calls == rounds * 4);
        }
    }
}
