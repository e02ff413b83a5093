//! The arm's documented statuses, and a failing round as the report words it.

use super::STATUSES;
use super::record::Failing;
use crate::stress::args;
use crate::stress::program::Failed;

#[test]
fn the_statuses_are_the_ones_every_stress_command_documents() {
    let codes: Vec<u8> = STATUSES.iter().map(|s| s.code).collect();
    assert_eq!(codes, [0, 1, 2, 4, 128]);
    let shared: Vec<u8> = args::STATUSES.iter().map(|s| s.code).collect();
    assert_eq!(shared, codes, "STATUSES borrows 2 and 128 by position");
}

#[test]
fn a_failing_round_names_the_racer_its_stderr_and_the_tree() {
    let f = Failing {
        racers_failed: 3,
        racers: vec![Failed {
            racer: 2,
            how: "exited 1".into(),
            said: vec!["mkdir: cannot create directory 'out': File exists".into()],
        }],
        differences: vec!["count: 7 vs 8".into()],
        differences_count: 2,
        ..Failing::default()
    };
    assert_eq!(
        f.lines(8),
        vec![
            "3 of 8 racers failed; racer 2 exited 1: mkdir: cannot create directory 'out': File exists",
            "the tree differs from the sequential run's: count: 7 vs 8 (and 1 more)",
        ]
    );
    assert!(!Failing::default().failed());
}
