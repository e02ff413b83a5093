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
