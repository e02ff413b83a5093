use super::*;

const HOMES: [HomeCheck; 4] = [
    HomeCheck::NoNoident,
    HomeCheck::Noident,
    HomeCheck::NoHome,
    HomeCheck::CouldNotCheck,
];

#[test]
fn only_a_noident_or_a_failed_check_keeps_a_home_from_naming_its_user() {
    let table: Vec<(HomeCheck, bool)> = HOMES.iter().map(|&h| (h, home_allows_naming(h))).collect();
    assert_eq!(
        table,
        [
            (HomeCheck::NoNoident, true),
            (HomeCheck::Noident, false),
            // nobody's /nonexistent: nothing there can ask to be hidden.
            (HomeCheck::NoHome, true),
            (HomeCheck::CouldNotCheck, false),
        ]
    );
}

/// The whole table: every rule setting against every finding, each row stating
/// its expected answer independently of `decide`'s own code.
#[test]
fn every_combination_of_rules_and_findings_has_the_stated_answer() {
    const UID: u32 = 1000;
    let named = |name: &str, ok| Passwd::Entry {
        name: name.into(),
        may_be_named: ok,
    };
    let findings = [
        ("no owner", Findings::NoOwner),
        ("lookup failed", Findings::LookupFailed),
        (
            "nameable",
            Findings::Owner {
                uid: UID,
                passwd: named("alice", true),
            },
        ),
        (
            "not nameable",
            Findings::Owner {
                uid: UID,
                passwd: named("alice", false),
            },
        ),
        (
            "unsafe name",
            Findings::Owner {
                uid: UID,
                passwd: named("a:b", true),
            },
        ),
        (
            "no entry",
            Findings::Owner {
                uid: UID,
                passwd: Passwd::NoEntry,
            },
        ),
        (
            "unreadable",
            Findings::Owner {
                uid: UID,
                passwd: Passwd::Unreadable,
            },
        ),
        (
            "nat decided",
            Findings::Decided(Answer::User("ctruser".into())),
        ),
    ];
    let hidden = Answer::Error(ErrorToken::HiddenUser);
    let mut checked = 0;
    for hide_all in [false, true] {
        for hide_listed in [false, true] {
            for numeric in [false, true] {
                let listed = [UID];
                let rules = Rules {
                    hide_all,
                    hide_uids: if hide_listed { &listed } else { &[7] },
                    numeric,
                };
                for (what, found) in &findings {
                    let hide = hide_all || hide_listed;
                    let expected = match *what {
                        "no owner" => Answer::Error(ErrorToken::NoUser),
                        "lookup failed" => Answer::Error(ErrorToken::UnknownError),
                        // --nat applied --hide-all and --numeric where it looked.
                        "nat decided" => Answer::User("ctruser".into()),
                        _ if hide => hidden.clone(),
                        "not nameable" | "unreadable" => hidden.clone(),
                        "nameable" if !numeric => Answer::User("alice".into()),
                        "nameable" | "unsafe name" | "no entry" => Answer::Uid(UID),
                        other => unreachable!("{other}"),
                    };
                    assert_eq!(
                        decide(rules, found),
                        expected,
                        "{what}, hide_all {hide_all}, listed {hide_listed}, numeric {numeric}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 2 * 2 * findings.len());
}

#[test]
fn oidentds_reply_options_change_only_what_they_name() {
    let token = |t| Answer::Error(t);
    let answers = [
        Answer::User("alice".into()),
        Answer::Uid(1000),
        token(ErrorToken::NoUser),
        token(ErrorToken::UnknownError),
        token(ErrorToken::HiddenUser),
        token(ErrorToken::InvalidPort),
    ];
    let fallback = Answer::User("nobody-here".into());
    let unknown = token(ErrorToken::UnknownError);
    for on_failure in [false, true] {
        for errors_unknown in [false, true] {
            let o = Overrides {
                reply_all: None,
                on_failure: on_failure.then(|| "nobody-here".to_string()),
                errors_unknown,
            };
            for a in &answers {
                let failed = matches!(
                    a,
                    Answer::Error(ErrorToken::NoUser | ErrorToken::UnknownError)
                );
                let expected = match a {
                    _ if failed && on_failure => fallback.clone(),
                    Answer::Error(_) if errors_unknown => unknown.clone(),
                    other => other.clone(),
                };
                assert_eq!(
                    o.apply(a.clone()),
                    expected,
                    "{a:?}, --reply {on_failure}, --error {errors_unknown}"
                );
            }
            assert_eq!(o.fixed(), None);
        }
    }
    let all = Overrides {
        reply_all: Some("ircuser".into()),
        ..Overrides::default()
    };
    assert_eq!(all.fixed(), Some(Answer::User("ircuser".into())));
}

#[test]
fn nobody_with_a_missing_home_is_named() {
    let found = Findings::Owner {
        uid: 65534,
        passwd: Passwd::Entry {
            name: "nobody".into(),
            may_be_named: home_allows_naming(HomeCheck::NoHome),
        },
    };
    let rules = Rules {
        hide_all: false,
        hide_uids: &[],
        numeric: false,
    };
    assert_eq!(decide(rules, &found), Answer::User("nobody".into()));
}
