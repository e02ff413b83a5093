//! Which answer, given the system file, the user's and the connection.

use std::net::{IpAddr, SocketAddr};

use super::super::*;
use super::*;

#[test]
fn each_rule_allowed_and_denied() {
    let all = |cap: &str| format!("default {{ default {{ allow {cap} }} }}");
    let (hide, random, random_numeric, numeric, forward) = (
        all("hide"),
        all("random"),
        all("random_numeric"),
        all("numeric"),
        all("forward"),
    );
    #[rustfmt::skip]
    let table: Vec<(&str, &str, &str, u16, &str)> = vec![
        // system, user's file, owner, foreign port, answer
        ("", "global { reply \"paul\" }", "alice", 6667, "real"),
        (SPOOF, "global { reply \"paul\" }", "alice", 6667, "name:paul"),
        // Toward a port below 1024, spoofing needs spoof_privport too.
        (SPOOF, "global { reply \"paul\" }", "alice", 113, "real"),
        (SPOOF_PRIVPORT, "global { reply \"paul\" }", "alice", 113, "name:paul"),
        ("default { default { allow spoof_privport } }", "global { reply \"paul\" }", "alice", 113, "real"),
        // Another user's name needs spoof_all, which needs spoof.
        (SPOOF, "global { reply \"bob\" }", "alice", 6667, "real"),
        (SPOOF_ALL, "global { reply \"bob\" }", "alice", 6667, "name:bob"),
        ("default { default { allow spoof_all } }", "global { reply \"bob\" }", "alice", 6667, "real"),
        // One's own name needs nothing, toward any port; a name of the same uid is one's own.
        ("", "global { reply \"alice\" }", "alice", 113, "name:alice"),
        ("", "global { reply \"toor\" }", "root", 113, "name:toor"),
        (&hide, "global { hide }", "alice", 6667, "hidden"),
        (SPOOF, "global { hide }", "alice", 6667, "real"),
        (&numeric, "global { numeric }", "alice", 6667, "uid:1000"),
        (&hide, "global { numeric }", "alice", 6667, "real"),
        (&random_numeric, "global { random_numeric }", "alice", 6667, "name:user0"),
        (&random, "global { random_numeric }", "alice", 6667, "real"),
        (&random, "global { random }", "alice", 6667, "name:00000000000"),
        (&random_numeric, "global { random }", "alice", 6667, "real"),
        (&forward, "global { forward bouncer.lan 113 }", "alice", 6667, "forward:10.0.0.2:113"),
        (SPOOF, "global { forward bouncer.lan 113 }", "alice", 6667, "real"),
        // A file that does not parse, or names what does not resolve, is not used.
        (SPOOF, "global { reply \"paul\" hide }", "alice", 6667, "real"),
        (SPOOF, "to nowhere.invalid { reply \"paul\" }", "alice", 6667, "real"),
    ];
    for (system, user, who, fport, want) in table {
        let (step, read) = ask(system, Some(user), who, conn(40000, fport));
        assert_eq!(
            word(&step),
            want,
            "system {system:?}, user {user:?}, {who} to port {fport}"
        );
        assert!(read);
    }
}

#[test]
fn a_forced_answer_wins_and_the_users_file_is_not_read() {
    let file = Some("global { reply \"paul\" }");
    #[rustfmt::skip]
    let table = [
        ("user root { default { force hide } }", "hidden"),
        ("user root { default { force reply \"UNKNOWN\" } }", "name:UNKNOWN"),
        ("user root { default { force numeric } }", "uid:0"),
        ("user root { default { force random_numeric } }", "name:user0"),
        ("user root { default { force forward bouncer.lan auth } }", "forward:10.0.0.2:113"),
        // `force spoof` forces the real name.
        ("user root { default { allow spoof force spoof } }", "real"),
        ("user root { default { allow spoof force hide } }", "hidden"),
    ];
    for (system, want) in table {
        let (step, read) = ask(system, file, "root", conn(40000, 6667));
        assert_eq!((word(&step), read), (want.to_string(), false), "{system}");
        assert!(!policy(system).reads_user_file(0, &conn(40000, 6667)));
    }
    // A force followed by an allow or deny forces nothing: its capability stays granted.
    let (step, read) = ask(
        "user root { default { force hide allow spoof } }",
        Some("global { hide }"),
        "root",
        conn(1, 6667),
    );
    assert_eq!((word(&step), read), ("hidden".to_string(), true));
    let (step, _) = ask(
        "user root { default { force hide allow spoof } }",
        file,
        "root",
        conn(1, 6667),
    );
    assert_eq!(word(&step), "name:paul");
}

#[test]
fn no_file_or_a_bad_file_answers_the_real_name_with_a_note() {
    let (step, read) = ask(SPOOF, None, "alice", conn(1, 6667));
    assert_eq!(
        (word(&step), read, notes(&step)),
        ("real".to_string(), true, Vec::new())
    );
    let (step, _) = ask(
        SPOOF,
        Some("global { reply \"x\" }\r\n"),
        "alice",
        conn(1, 6667),
    );
    assert_eq!(
        notes(&step),
        [
            "alice's file is not used, answered the real name: ~/.oidentd.conf:1:21: word \"\\x0d\" \
          (a carriage return: CRLF line ends do not parse), expected `global`, a filter (`to`, `from`, `fport`, `lport`) or end of file"
        ]
    );
}

#[test]
fn every_other_reply_is_noted_with_the_real_user() {
    let (step, _) = ask(
        SPOOF,
        Some("global { reply \"paul\" }"),
        "alice",
        conn(1, 6667),
    );
    assert_eq!(
        notes(&step),
        ["answered \"paul\" for alice (reply, from the user's file)"]
    );
    let (step, _) = ask(
        "user root { default { force hide } }",
        None,
        "root",
        conn(1, 6667),
    );
    assert_eq!(
        notes(&step),
        ["answered HIDDEN-USER for root (hide, forced by the system file)"]
    );
    let (step, _) = ask(
        SPOOF,
        Some("global { reply \"bob\" }"),
        "alice",
        conn(1, 6667),
    );
    assert_eq!(notes(&step), ["user alice tried to masquerade as user bob"]);
    let (step, _) = ask("", Some("global { hide }"), "alice", conn(1, 6667));
    assert_eq!(
        notes(&step),
        [
            "alice's file asks for hide, which the system file does not grant here: answered the real name"
        ]
    );
    // The real name, or one's own by its name, is no news.
    let (step, _) = ask(
        "",
        Some("global { reply \"alice\" }"),
        "alice",
        conn(1, 6667),
    );
    assert_eq!(notes(&step), Vec::<String>::new());
}

#[test]
fn the_last_matching_range_applies() {
    let forced = |system: &str, fport| word(&ask(system, None, "root", conn(40000, fport)).0);
    let specific_last =
        "user root { default { force reply \"a\" } fport 6667 { force reply \"b\" } }";
    assert_eq!(
        (forced(specific_last, 6667), forced(specific_last, 6697)),
        ("name:b".into(), "name:a".into())
    );
    // A default range placed last shadows every range above it.
    let default_last =
        "user root { fport 6667 { force reply \"b\" } default { force reply \"a\" } }";
    assert_eq!(forced(default_last, 6667), "name:a");
    let narrower_last =
        "user root { fport 6000:7000 { force reply \"b\" } fport 6667 { force reply \"c\" } }";
    assert_eq!(
        (forced(narrower_last, 6667), forced(narrower_last, 6668)),
        ("name:c".into(), "name:b".into())
    );
    // A user block with no matching range falls back to the default block.
    let fallback =
        "user root { fport 1:2 { force reply \"b\" } }\ndefault { default { force reply \"d\" } }";
    assert_eq!(forced(fallback, 6667), "name:d");
    // In a user's file too.
    let file = Some("global { reply \"x\" }\nfport 6667 { hide }");
    let both = "default { default { allow spoof allow hide } }";
    assert_eq!(word(&ask(both, file, "alice", conn(1, 6667)).0), "hidden");
    assert_eq!(word(&ask(both, file, "alice", conn(1, 6697)).0), "name:x");
}

#[test]
fn ranges_inherit_what_the_default_block_granted_above_them() {
    let file = Some("global { reply \"x\" }");
    let below = format!("{SPOOF}\nuser alice {{ default {{ allow hide }} }}");
    let above = format!("user alice {{ default {{ allow hide }} }}\n{SPOOF}");
    assert_eq!(word(&ask(&below, file, "alice", conn(1, 6667)).0), "name:x");
    assert_eq!(word(&ask(&above, file, "alice", conn(1, 6667)).0), "real");
    // The man page's first example: ranges of the default block inherit too.
    let example = "default { default { allow spoof } fport 6667 { deny spoof allow hide } }";
    assert_eq!(
        word(&ask(example, file, "alice", conn(1, 6697)).0),
        "name:x"
    );
    assert_eq!(word(&ask(example, file, "alice", conn(1, 6667)).0), "real");
    assert_eq!(
        word(&ask(example, Some("global { hide }"), "alice", conn(1, 6667)).0),
        "hidden"
    );
    assert_eq!(
        word(&ask(example, Some("global { hide }"), "alice", conn(1, 6697)).0),
        "real"
    );
}

#[test]
fn a_second_default_block_replaces_the_first_and_no_range_means_no_capabilities() {
    let system =
        "default { default { force reply \"first\" } }\ndefault { fport 1 { allow hide } }";
    let (step, read) = ask(system, Some("global { hide }"), "alice", conn(1, 6667));
    assert_eq!((word(&step), read), ("real".to_string(), false));
    assert_eq!(
        notes(&step),
        [
            "no range of the system file matches alice's connection (add a `default` range): answered the real name"
        ]
    );
    assert_eq!(
        word(&ask(system, Some("global { hide }"), "alice", conn(1, 1)).0),
        "hidden"
    );
}

#[test]
fn addresses_match_as_oidentd_compares_them() {
    let system = "user root { to irc.example.net { force reply \"to\" } from 192.0.2.9 { force reply \"from\" } }\n\
                  user alice { to \"::ffff:192.0.2.7\" { force hide } }";
    let mapped = |c: Connection| {
        let map = |a: SocketAddr| match a.ip() {
            IpAddr::V4(v4) => SocketAddr::new(v4.to_ipv6_mapped().into(), a.port()),
            IpAddr::V6(_) => a,
        };
        Connection {
            local: map(c.local),
            foreign: map(c.foreign),
        }
    };
    assert_eq!(word(&ask(system, None, "root", conn(1, 6667)).0), "name:to");
    assert_eq!(
        word(&ask(system, None, "root", mapped(conn(1, 6667))).0),
        "name:to"
    );
    let mut other_local = conn(1, 6667);
    other_local.local.set_ip("192.0.2.9".parse().unwrap());
    assert_eq!(word(&ask(system, None, "root", other_local).0), "name:from");
    let mut elsewhere = conn(1, 6667);
    elsewhere.foreign.set_ip("198.51.100.1".parse().unwrap());
    assert_eq!(word(&ask(system, None, "root", elsewhere).0), "real");
    // An IPv4-mapped address in the file names an IPv6 peer, which no IPv4 peer is.
    assert_eq!(
        word(&ask(system, None, "alice", mapped(conn(1, 6667))).0),
        "real"
    );
}

#[test]
fn port_ranges_are_inclusive_and_an_inverted_one_matches_nothing() {
    let system = "user root { fport 1000:2000 { force reply \"in\" } lport :99 fport 6000:5000 { force hide } }";
    let table = [
        (999, "real"),
        (1000, "name:in"),
        (2000, "name:in"),
        (2001, "real"),
        (5500, "real"),
    ];
    for (fport, want) in table {
        assert_eq!(
            word(&ask(system, None, "root", conn(50, fport)).0),
            want,
            "{fport}"
        );
    }
    let lisa = "user lisa { lport 1024: { force reply \"me\" } }";
    assert_eq!(
        word(&ask(lisa, None, "lisa", conn(1024, 6667)).0),
        "name:me"
    );
    assert_eq!(word(&ask(lisa, None, "lisa", conn(1023, 6667)).0), "real");
}

#[test]
fn random_answers_in_oidentd_formats_from_the_draws() {
    let mut env = Env::new(None);
    env.draws = (0..11).map(|i| [61, 10, 36, 9][i % 4]).collect();
    let step = decide(
        &policy("default { default { force random } }"),
        &conn(1, 2),
        owner("alice"),
        &mut env,
    );
    assert_eq!(word(&step), "name:zAa9zAa9zAa");
    let mut env = Env::new(None);
    env.draws = [99_999].into();
    let step = decide(
        &policy("default { default { force random_numeric } }"),
        &conn(1, 2),
        owner("alice"),
        &mut env,
    );
    assert_eq!(word(&step), "name:user99999");
    let mut env = Env::new(None);
    env.draws = [2].into();
    let step = decide(
        &policy("default { default { force reply a b c } }"),
        &conn(1, 2),
        owner("alice"),
        &mut env,
    );
    assert_eq!(word(&step), "name:c");
    // A reply longer than oidentd's buffer loses its end.
    let long = "é".repeat(300);
    let step = ask(
        &format!("user alice {{ default {{ force reply \"{long}\" }} }}"),
        None,
        "alice",
        conn(1, 2),
    )
    .0;
    assert_eq!(word(&step), format!("name:{}", "é".repeat(255)));
}

#[test]
fn a_forward_is_finished_with_what_the_other_identd_said() {
    let finish = |system: &str, fport, answer: Option<&str>| {
        let (step, _) = ask(
            system,
            Some("global { forward bouncer.lan 113 }"),
            "alice",
            conn(1, fport),
        );
        let Step::Forward(f) = step else {
            panic!("{step:?}")
        };
        let d = f.finish(answer, &Env::new(None));
        word(&Step::Done(d))
    };
    let forward = "default { default { allow forward } }";
    let forward_spoof = "default { default { allow forward allow spoof } }";
    let forward_hide = "default { default { allow forward allow hide } }";
    assert_eq!(finish(forward, 6667, Some("alice")), "name:alice");
    assert_eq!(finish(forward, 6667, Some("guest7")), "real");
    assert_eq!(finish(forward_spoof, 6667, Some("guest7")), "name:guest7");
    assert_eq!(finish(forward_spoof, 113, Some("guest7")), "real");
    assert_eq!(finish(forward_spoof, 6667, Some("bob")), "real");
    assert_eq!(finish(forward, 6667, None), "real");
    assert_eq!(finish(forward_hide, 6667, None), "hidden");
    // Forced: whatever it said, or HIDDEN-USER if it said nothing usable.
    let forced = "default { default { force forward bouncer.lan 113 } }";
    let Step::Forward(f) = ask(forced, None, "alice", conn(1, 6667)).0 else {
        panic!()
    };
    assert_eq!(
        f.clone().finish(Some("bob"), &Env::new(None)).reply,
        Reply::Name("bob".into())
    );
    assert_eq!(f.finish(None, &Env::new(None)).reply, Reply::Hidden);
}

#[test]
fn a_forward_rebuilt_from_its_parts_is_the_same_forward() {
    for (system, who) in [
        ("default { default { allow forward } }", "alice"),
        (
            "user root { default { force forward bouncer.lan 113 } }",
            "root",
        ),
    ] {
        let (step, _) = ask(
            system,
            Some("global { forward bouncer.lan 113 }"),
            who,
            conn(1, 6667),
        );
        let Step::Forward(f) = step else {
            panic!("{system}: {step:?}")
        };
        let again = Forwarding::from_parts(f.to, f.owner(), f.foreign_port(), f.checked());
        assert_eq!(again, f, "{system}");
    }
    for bits in 0..=0x1ff {
        assert_eq!(
            policy::Caps::from_bits(bits).map(policy::Caps::bits),
            Some(bits)
        );
    }
    assert_eq!(policy::Caps::from_bits(0x200), None);
}
