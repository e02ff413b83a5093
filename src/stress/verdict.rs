//! What a run proved, decided here for every arm, for `racefree stress` and for
//! `stress report`: an arm supplies its tallies, and this decides.
//!
//! FAIL when racefree's arm failed a check (or the run could not vouch for its
//! stage). Otherwise INCONCLUSIVE when the control ran beside it under the same load
//! and never failed: a harness that could not see the known-bad pattern fail could
//! not have seen racefree fail either, so its clean result proves nothing. Otherwise
//! PASS, saying whether a control ran at all. Several verdicts make one: the worst.

use serde::{Deserialize, Serialize};

use crate::exit::Exit;

/// A run's verdict. Ordered from best to worst, so the verdict of several runs is
/// their maximum.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    #[default]
    Pass,
    Inconclusive,
    Fail,
}

impl Verdict {
    /// The verdict of one arm: whether racefree's arm failed, and, if a control
    /// ran, whether it failed as it must.
    pub fn decide(racefree_failed: bool, control_failed: Option<bool>) -> Verdict {
        match (racefree_failed, control_failed) {
            (true, _) => Verdict::Fail,
            (false, Some(false)) => Verdict::Inconclusive,
            (false, _) => Verdict::Pass,
        }
    }

    /// The verdict of several: the worst of them (PASS for none).
    pub fn of_all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        verdicts.into_iter().max().unwrap_or_default()
    }

    /// The exit status it earns (see `args::STATUSES`).
    pub fn exit(self) -> Exit {
        match self {
            Verdict::Pass => Exit::Success,
            Verdict::Inconclusive => Exit::Inconclusive,
            Verdict::Fail => Exit::Failure,
        }
    }

    /// The verdict line of a report: `verdict: PASS`, `verdict: PASS, no control
    /// ran`, `verdict: INCONCLUSIVE: WHY: this run could not have seen a race`, or
    /// `verdict: FAIL`. `why` names the arm whose control did not fail.
    pub fn line(self, control_ran: bool, why: impl FnOnce() -> String) -> String {
        match (self, control_ran) {
            (Verdict::Pass, true) => "verdict: PASS".into(),
            (Verdict::Pass, false) => "verdict: PASS, no control ran".into(),
            (Verdict::Inconclusive, _) => format!(
                "verdict: INCONCLUSIVE: {}: this run could not have seen a race",
                why()
            ),
            (Verdict::Fail, _) => "verdict: FAIL".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_outweighs_everything_and_a_control_that_held_proves_nothing() {
        assert_eq!(Verdict::decide(true, Some(true)), Verdict::Fail);
        assert_eq!(Verdict::decide(true, Some(false)), Verdict::Fail);
        assert_eq!(Verdict::decide(true, None), Verdict::Fail);
        assert_eq!(Verdict::decide(false, Some(false)), Verdict::Inconclusive);
        assert_eq!(Verdict::decide(false, Some(true)), Verdict::Pass);
        assert_eq!(Verdict::decide(false, None), Verdict::Pass);
    }

    #[test]
    fn several_verdicts_are_the_worst_of_them() {
        use Verdict::*;
        assert_eq!(Verdict::of_all([]), Pass);
        assert_eq!(Verdict::of_all([Pass, Inconclusive, Pass]), Inconclusive);
        assert_eq!(Verdict::of_all([Inconclusive, Fail, Pass]), Fail);
        assert_eq!(
            [Pass, Inconclusive, Fail].map(|v| v.exit().code()),
            [0, 4, 1]
        );
        assert_eq!(
            serde_json::to_string(&[Pass, Inconclusive, Fail]).unwrap(),
            r#"["pass","inconclusive","fail"]"#
        );
    }

    #[test]
    fn the_line_never_says_a_bare_pass_without_a_control() {
        let why = || "stress lock's control did not fail in 8 rounds".to_string();
        assert_eq!(Verdict::Pass.line(true, why), "verdict: PASS");
        assert_eq!(
            Verdict::Pass.line(false, why),
            "verdict: PASS, no control ran"
        );
        assert_eq!(
            Verdict::Inconclusive.line(true, why),
            "verdict: INCONCLUSIVE: stress lock's control did not fail in 8 rounds: this run could not have seen a race"
        );
        assert_eq!(Verdict::Fail.line(false, why), "verdict: FAIL");
    }
}
