//! The grammar: what parses, to what, and the errors for what does not.

use super::super::ast::{Filter, Port, Ports, Spanned, Statement, Text};
use super::super::{Cap, Pos, SystemFile, UserFile, parse_system, parse_user};

fn system_error(text: &str) -> String {
    parse_system(text.as_bytes(), "oidentd.conf")
        .unwrap_err()
        .to_string()
}

fn user_error(text: &str) -> String {
    parse_user(text.as_bytes(), ".oidentd.conf")
        .unwrap_err()
        .to_string()
}

fn text(value: &str) -> Text {
    Spanned {
        value: value.into(),
        at: Pos::default(),
    }
}

#[test]
fn system_file_errors_say_where_what_and_what_was_expected() {
    let table = [
        (
            "default { default { allwo spoof } }",
            "oidentd.conf:1:21: word \"allwo\", expected `allow`, `deny` or `force`",
        ),
        (
            "default {\n\tdefault {\n\t\tallow spoof allow\n\t}\n}\n",
            "oidentd.conf:4:2: `}`, expected a capability (`spoof`, `spoof_all`, `spoof_privport`, `hide`, `random`, `random_numeric`, `numeric` or `forward`)",
        ),
        (
            "default { }",
            "oidentd.conf:1:11: `}`, expected a range: `default` or a filter (`to`, `from`, `fport`, `lport`)",
        ),
        (
            "default { default { } }",
            "oidentd.conf:1:21: `}`, expected `allow`, `deny` or `force`",
        ),
        (
            "default { default { allow spoof }",
            "oidentd.conf:1:34: end of file, expected `}`, `default` or a filter (`to`, `from`, `fport`, `lport`)",
        ),
        (
            "default { default { allow spoof spoof_privport } }",
            "oidentd.conf:1:33: `spoof_privport`, expected `allow`, `deny`, `force` or `}` (one capability per directive)",
        ),
        (
            "default { fport 1 fport 2 { allow spoof } }",
            "oidentd.conf:1:19: a second `fport`, expected one `fport` per range at most",
        ),
        (
            "default { fport 0 { allow spoof } }",
            "oidentd.conf:1:17: port \"0\", expected a port 1-65535 or a service name",
        ),
        (
            "default { fport 1:70000 { allow spoof } }",
            "oidentd.conf:1:17: port \"70000\" in \"1:70000\", expected a port 1-65535 or a service name",
        ),
        (
            "to 1.2.3.4 { reply \"x\" }",
            "oidentd.conf:1:1: `to`, expected `default` or `user`; this belongs in a user's file",
        ),
        (
            "user default { }",
            "oidentd.conf:1:6: `default`, expected a user name",
        ),
        (
            "default { default { allow spoof } }\r\n",
            "oidentd.conf:1:36: word \"\\x0d\" (a carriage return: CRLF line ends do not parse), expected `default`, `user` or end of file",
        ),
        (
            "default { default { force forward 1.2.3.4 } }",
            "oidentd.conf:1:43: `}`, expected a port to forward to",
        ),
        (
            "default { default { force spoof } } /",
            "oidentd.conf:1:37: `/`, expected `default`, `user` or end of file",
        ),
        (
            "user \"bob\" default { allow hide } }",
            "oidentd.conf:1:12: `default`, expected `{`",
        ),
        (
            "user é { default {\n\tallow \"a\\400\" } }",
            "oidentd.conf:2:10: escape `\\400` (above \\377), expected an octal escape of one byte",
        ),
    ];
    for (input, want) in table {
        assert_eq!(system_error(input), want, "{input:?}");
    }
}

#[test]
fn user_file_errors_say_where_what_and_what_was_expected() {
    let table = [
        (
            "global { reply \"x\" hide }",
            ".oidentd.conf:1:20: `hide`, expected `}`; a range of a user's file holds one statement",
        ),
        (
            "global { spoof }",
            ".oidentd.conf:1:10: `spoof`, expected `reply`, `hide`, `random`, `random_numeric`, `numeric` or `forward`; spoofing is granted in the system file",
        ),
        (
            "user x { hide }",
            ".oidentd.conf:1:1: `user`, expected `global` or a filter (`to`, `from`, `fport`, `lport`); this belongs in the system file",
        ),
        (
            "global { reply }",
            ".oidentd.conf:1:16: `}`, expected a reply string",
        ),
        (
            "global { reply \"x\" } }",
            ".oidentd.conf:1:22: `}`, expected `global`, a filter (`to`, `from`, `fport`, `lport`) or end of file",
        ),
        (
            "\n\nglobal { reply \"abc\n\" }",
            ".oidentd.conf:3:16: a string that does not end on its line, expected a closing `\"`",
        ),
    ];
    for (input, want) in table {
        assert_eq!(user_error(input), want, "{input:?}");
    }
}

#[test]
fn replies_beyond_the_limits() {
    let list = |n: usize| {
        (1..=n)
            .map(|i| format!("\"r{i}\""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let system = |n| format!("default {{ default {{ force reply {} }} }}", list(n));
    assert!(parse_system(system(255).as_bytes(), "f").is_ok());
    let too_many = system(256);
    let column = too_many.find("\"r256\"").unwrap() + 1;
    assert_eq!(
        system_error(&too_many),
        format!(
            "oidentd.conf:1:{column}: string \"r256\" (reply 256), expected at most 255 replies"
        )
    );
    // A user's file keeps 20 and drops the rest without a word, as oidentd does.
    let user = parse_user(format!("global {{ reply {} }}", list(23)).as_bytes(), "f").unwrap();
    let super::super::ast::Action::Reply(kept) = &user.ranges[0].action else {
        panic!()
    };
    assert_eq!(
        kept.iter().map(|t| t.value.as_str()).collect::<Vec<_>>(),
        (1..=20).map(|i| format!("r{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn names_bare_or_quoted_and_ports_in_every_form() {
    let file = parse_system(
        b"user root { to irc.example.net fport 6667 { force hide } }\n\
          USER \"default\" { lport \" +0113\" fport 1024: { allow spoof } from ::1 lport :1023 { deny forward } }\n\
          user 1000 { fport auth:ident { force reply me \"you\" } fport : { force forward 10.0.0.1 ircd } }\n",
        "f",
    )
    .unwrap();
    let names: Vec<_> = file
        .blocks
        .iter()
        .map(|b| format!("{:?}", b.owner))
        .collect();
    assert!(
        names[0].contains("\"root\"")
            && names[1].contains("\"default\"")
            && names[2].contains("\"1000\""),
        "{names:?}"
    );
    let filters: Vec<&Filter> = file
        .blocks
        .iter()
        .flat_map(|b| b.ranges.iter().map(|r| &r.filter))
        .collect();
    let ports = |f: &Filter| {
        (
            f.fport.as_ref().map(|p| p.value.clone()),
            f.lport.as_ref().map(|p| p.value.clone()),
        )
    };
    assert_eq!(filters[0].to, Some(text("irc.example.net")));
    assert_eq!(
        ports(filters[0]),
        (Some(Ports::One(Port::Number(6667))), None)
    );
    assert_eq!(
        ports(filters[1]),
        (
            Some(Ports::Range(Some(Port::Number(1024)), None)),
            Some(Ports::One(Port::Number(113)))
        )
    );
    assert_eq!(filters[2].from, Some(text("::1")));
    assert_eq!(
        ports(filters[2]),
        (None, Some(Ports::Range(None, Some(Port::Number(1023)))))
    );
    let service = |s: &str| Some(Port::Service(s.into()));
    assert_eq!(
        ports(filters[3]).0,
        Some(Ports::Range(service("auth"), service("ident")))
    );
    assert_eq!(ports(filters[4]).0, Some(Ports::Range(None, None)));
    assert_eq!(
        file.blocks[2].ranges[0].statements,
        [Statement::ForceReply(vec![text("me"), text("you")])]
    );
    assert_eq!(
        file.blocks[0].ranges[0].statements,
        [Statement::Force(Cap::Hide)]
    );
}

#[test]
fn empty_and_comment_only_files_are_empty() {
    for text in [
        "",
        "\n\n",
        "# nothing\n/* at all */",
        "/* never closed\nuser x {",
    ] {
        assert_eq!(
            parse_system(text.as_bytes(), "f").unwrap(),
            SystemFile::default()
        );
        assert_eq!(
            parse_user(text.as_bytes(), "f").unwrap(),
            UserFile::default()
        );
    }
}

#[test]
fn printing_reads_back_the_same_file() {
    let system = "default { default { allow spoof deny spoof_all } fport \"auth:\" lport 6667 to \"a\\\"b\" { force reply \"x\\ny\" é } }\n\
                  user \"\" { from 10.0.0.1 { force forward h \"ircd\" allow forward } }";
    let file = parse_system(system.as_bytes(), "f").unwrap();
    let printed = file.to_string();
    assert_eq!(
        parse_system(printed.as_bytes(), "f").unwrap(),
        file,
        "{printed}"
    );
    assert!(
        printed.contains("\t\tforce reply \"x\\x0ay\" \"é\"\n"),
        "{printed}"
    );
    let user = parse_user(
        b"fport 1:2 { reply \"a\" b }\nglobal { forward host 113 }\nto x { random_numeric }",
        "f",
    )
    .unwrap();
    assert_eq!(parse_user(user.to_string().as_bytes(), "f").unwrap(), user);
}
