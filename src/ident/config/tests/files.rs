//! The man page's examples, Debian's file, the names a file uses, and reading one.

use super::super::*;
use super::*;

#[test]
fn the_man_page_examples_and_debians_shipped_file() {
    let root = "user \"root\" {\n\tdefault {\n\t\tforce hide\n\t}\n}\n";
    assert_eq!(
        word(&ask(root, Some("global { reply \"x\" }"), "root", conn(1, 6667)).0),
        "hidden"
    );
    let paul = Some("global {\n\treply \"paul\"\n}\n");
    assert_eq!(
        word(&ask(SPOOF, paul, "alice", conn(1, 6667)).0),
        "name:paul"
    );
    let hide = Some("to irc.example.net fport 6667 {\n\thide\n}\n");
    let grant = "default { default { allow hide } }";
    assert_eq!(word(&ask(grant, hide, "alice", conn(1, 6667)).0), "hidden");
    assert_eq!(word(&ask(grant, hide, "alice", conn(1, 6697)).0), "real");
    // Debian's /etc/oidentd.conf: every capability denied, root's block commented out.
    let debian = "default {\n\tdefault {\n\t\t# Capabilities are disabled by default\n\t\tdeny spoof\n\t\tdeny spoof_all\n\
                  \t\tdeny spoof_privport\n\t\tdeny random\n\t\tdeny random_numeric\n\t\tdeny numeric\n\t\tdeny hide\n\
                  \t\tdeny forward\n\t}\n}\n\n#user root {\n#\tdefault {\n#\t\tforce hide            # Either ...\n\
                  #\t\tforce reply \"nobody\"  # ... or spoof ident responses\n#\t}\n#}\n";
    for file in [
        "global { reply \"paul\" }",
        "global { hide }",
        "global { random }",
        "global { numeric }",
    ] {
        assert_eq!(
            word(&ask(debian, Some(file), "alice", conn(1, 6667)).0),
            "real",
            "{file}"
        );
    }
    assert_eq!(word(&ask(debian, None, "root", conn(1, 6667)).0), "real");
    // ZNC's identfile module, granted by the admin.
    let znc = "user \"alice\" { default { allow spoof } }\nuser root { default { force reply \"UNKNOWN\" } }";
    assert_eq!(
        word(
            &ask(
                znc,
                Some("global { reply \"zncuser\" }"),
                "alice",
                conn(1, 6697)
            )
            .0
        ),
        "name:zncuser"
    );
    assert_eq!(
        word(
            &ask(
                znc,
                Some("global { reply \"zncuser\" }"),
                "bob",
                conn(1, 6697)
            )
            .0
        ),
        "real"
    );
}

#[test]
fn user_blocks_name_users_as_oidentd_finds_them() {
    let uid_of = |name: &str| resolve::user_uid(name, &Table);
    assert_eq!(
        [
            "root",
            "",
            "-0",
            " +1002",
            "4294967294",
            "4294967295",
            "-1",
            "12x",
            "nobody",
            "-18446744073709551615",
            "99999999999999999999"
        ]
        .map(uid_of),
        [
            Some(0),
            Some(0),
            Some(0),
            Some(1002),
            Some(4294967294),
            None,
            None,
            None,
            None,
            Some(1),
            None
        ]
    );
    assert_eq!(
        system_error("user nobody { default { force hide } }"),
        "oidentd.conf:1:6: user \"nobody\", expected a user name or uid of this host"
    );
    assert_eq!(
        system_error("user root { default { force hide } }\nuser \"\" { default { force hide } }"),
        "oidentd.conf:2:6: a second block for uid 0 (), expected one block per user"
    );
    assert_eq!(
        system_error("user root { to irc.example.org { force hide } }"),
        "oidentd.conf:1:16: host \"irc.example.org\" does not resolve, expected a host name or address"
    );
    assert_eq!(
        system_error("user root { fport ircd:nosuch { force hide } }"),
        "oidentd.conf:1:19: service \"nosuch\" is unknown, expected a port 1-65535 or a service name"
    );
}

#[test]
fn reading_is_bounded() {
    let exactly = vec![b'#'; USER_FILE_MAX as usize];
    assert_eq!(
        read_user(&exactly[..], "~/.oidentd.conf", &Table).unwrap(),
        UserPrefs::default()
    );
    let over = vec![b'#'; USER_FILE_MAX as usize + 1];
    assert_eq!(
        read_user(&over[..], "/home/alice/.oidentd.conf", &Table)
            .unwrap_err()
            .to_string(),
        "/home/alice/.oidentd.conf: larger than 65536 bytes, the most read"
    );
    // An endless input is read to one byte past the limit, no further.
    let endless = std::io::repeat(b' ');
    assert!(read_bounded(endless, SYSTEM_FILE_MAX, "/dev/zero").is_err());
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        load_system(&dir.path().join("absent.conf"), &Table),
        Ok(None)
    );
    let path = dir.path().join("oidentd.conf");
    std::fs::write(
        &path,
        "default {\n\tdefault { allow spoof }\n}\nuser nobody {",
    )
    .unwrap();
    let error = load_system(&path, &Table).unwrap_err().to_string();
    let expected = "a range: `default` or a filter (`to`, `from`, `fport`, `lport`)";
    assert_eq!(
        error,
        format!("{}:4:14: end of file, expected {expected}", path.display())
    );
    std::fs::write(&path, SPOOF).unwrap();
    assert_eq!(load_system(&path, &Table), Ok(Some(policy(SPOOF))));
}
