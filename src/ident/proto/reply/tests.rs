use super::*;

fn req(s: &[u8]) -> Result<Request, super::super::request::BadRequest> {
    parse_request(s)
}

#[test]
fn parsing_never_panics_on_any_short_byte_string() {
    // Every string of up to three bytes drawn from a hostile alphabet.
    let alphabet = [b'0', b'1', b'9', b',', b' ', b'\t', 0, 0xff, b'\r', b'-'];
    let mut count = 0;
    for a in alphabet {
        for b in alphabet {
            for c in alphabet {
                let _ = req(&[a, b, c]);
                let _ = parse_reply(&[a, b, c]);
                count += 1;
            }
        }
    }
    assert_eq!(count, 1000);
}

#[test]
fn replies_follow_rfc_1413_exactly() {
    assert_eq!(
        format_reply((6193, 23), &Answer::User("alice".into())),
        "6193, 23 : USERID : UNIX : alice\r\n"
    );
    assert_eq!(
        format_reply((6193, 23), &Answer::Uid(1000)),
        "6193, 23 : USERID : OTHER : 1000\r\n"
    );
    assert_eq!(
        format_reply((0, 0), &Answer::Error(ErrorToken::InvalidPort)),
        "0, 0 : ERROR : INVALID-PORT\r\n"
    );
    for (token, text) in [
        (ErrorToken::NoUser, "NO-USER"),
        (ErrorToken::HiddenUser, "HIDDEN-USER"),
        (ErrorToken::UnknownError, "UNKNOWN-ERROR"),
    ] {
        assert_eq!(
            format_reply((1, 2), &Answer::Error(token)),
            format!("1, 2 : ERROR : {text}\r\n")
        );
    }
}

#[test]
fn the_os_and_charset_fields_are_the_operators_and_parse_back() {
    let both = ReplyFormat {
        os: Some("OTHER".into()),
        charset: Some("UTF-8".into()),
    };
    let os_only = ReplyFormat {
        os: Some("UNIX".into()),
        charset: None,
    };
    let charset_only = ReplyFormat {
        os: None,
        charset: Some("US-ASCII".into()),
    };
    let cases = [
        (
            &both,
            Answer::User("alice".into()),
            "USERID : OTHER,UTF-8 : alice",
        ),
        (&both, Answer::Uid(1000), "USERID : OTHER,UTF-8 : 1000"),
        (&os_only, Answer::Uid(1000), "USERID : UNIX : 1000"),
        (
            &charset_only,
            Answer::User("bob".into()),
            "USERID : UNIX,US-ASCII : bob",
        ),
        (&charset_only, Answer::Uid(7), "USERID : OTHER,US-ASCII : 7"),
        (&both, Answer::Error(ErrorToken::NoUser), "ERROR : NO-USER"),
    ];
    for (format, answer, rest) in cases {
        let line = format_reply_as((6193, 23), &answer, format);
        assert_eq!(line, format!("6193, 23 : {rest}\r\n"));
        let parsed = parse_reply(line.trim_end().as_bytes()).unwrap();
        if let ReplyKind::UserId { os, charset, .. } = parsed.kind {
            let default = if matches!(answer, Answer::Uid(_)) {
                "OTHER"
            } else {
                "UNIX"
            };
            assert_eq!(os, format.os.as_deref().unwrap_or(default));
            assert_eq!(charset, format.charset);
        }
    }
    for bad in ["", "UN IX", "UNIX:", "UNIX,UTF-8", "\u{e9}", "a\tb"] {
        assert!(!is_wire_safe_token(bad), "{bad:?}");
    }
    assert!(is_wire_safe_token("ISO-8859-1"));
}

#[test]
fn a_name_that_could_break_the_line_never_reaches_the_wire() {
    for evil in [
        "",
        "a\r\n1, 2 : USERID : UNIX : root",
        "a b",
        "a:b",
        "al\0ice",
        "ålice",
        "a\tb",
    ] {
        let line = format_reply((1, 2), &Answer::User(evil.into()));
        assert_eq!(line, "1, 2 : ERROR : UNKNOWN-ERROR\r\n", "{evil:?}");
    }
    let long = "a".repeat(513);
    assert!(!is_wire_safe(&long));
    assert!(is_wire_safe("svc-backup_2$"));
}

#[test]
fn replies_parse_back() {
    let r = parse_reply(b"6193, 23 : USERID : UNIX : alice").unwrap();
    assert_eq!(r.server_port, 6193);
    assert_eq!(r.client_port, 23);
    assert_eq!(
        r.kind,
        ReplyKind::UserId {
            os: "UNIX".into(),
            charset: None,
            user: "alice".into()
        }
    );
    let r = parse_reply(b"6193,23:USERID:OTHER , UTF-8:  1000 ").unwrap();
    assert_eq!(
        r.kind,
        ReplyKind::UserId {
            os: "OTHER".into(),
            charset: Some("UTF-8".into()),
            user: "1000".into()
        }
    );
    // The user id is the rest of the line: colons inside it are its own.
    let r = parse_reply(b"1 , 2 : USERID : UNIX : a:b").unwrap();
    assert_eq!(
        r.kind,
        ReplyKind::UserId {
            os: "UNIX".into(),
            charset: None,
            user: "a:b".into()
        }
    );
    let r = parse_reply(b"1, 2 : ERROR : NO-USER").unwrap();
    assert_eq!(r.kind, ReplyKind::Error("NO-USER".into()));
}

#[test]
fn every_formatted_reply_parses_back_to_itself() {
    let answers = [
        Answer::User("alice".into()),
        Answer::Uid(0),
        Answer::Error(ErrorToken::NoUser),
        Answer::Error(ErrorToken::HiddenUser),
    ];
    for a in answers {
        let line = format_reply((113, 65535), &a);
        let r = parse_reply(line.trim_end_matches("\r\n").as_bytes()).unwrap();
        assert_eq!((r.server_port, r.client_port), (113, 65535));
    }
}

#[test]
fn malformed_replies_are_refused() {
    for bad in [
        &b""[..],
        b"1, 2",
        b"1, 2 : USERID",
        b"1, 2 : USERID : UNIX",
        b"1, 2 : USERID : UNIX : ",
        b"1, 2 : USERID :  : alice",
        b"1, 2 : ERROR : ",
        b"1, 2 : MAYBE : alice",
        b"x, 2 : ERROR : NO-USER",
        b"0, 2 : ERROR : NO-USER",
        b"1, 2 : USERID : UNIX : al\0ice",
        b"1, 2 : USERID : UNIX : \xff",
    ] {
        assert!(parse_reply(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn replies_with_unicode_format_characters_are_refused() {
    for bad in [
        "1, 2 : USERID : UNIX : \u{202e}toor",
        "1, 2 : USERID : UNIX : ro\u{200b}ot",
        "1, 2 : USERID : UNIX : \u{feff}root",
        "1, 2 : USERID : UNIX : root\u{2066}",
        "1, 2 : USERID : UNIX : ro\u{ad}ot",
        "1, 2 : USERID : UNIX : root\u{e0001}",
        "1, 2 : USERID : UNIX : root\u{2028}",
        "1, 2 : USERID : UNIX : root\u{2029}",
        "1, 2 : ERROR : NO-USER\u{200d}",
    ] {
        assert_eq!(
            parse_reply(bad.as_bytes()),
            Err(BadReply(FORMAT)),
            "{bad:?}"
        );
    }
    // Letters of any script are names, not formatting.
    let r = parse_reply("1, 2 : USERID : UNIX : jos\u{e9}\u{5d0}".as_bytes()).unwrap();
    assert!(matches!(r.kind, ReplyKind::UserId { user, .. } if user == "jos\u{e9}\u{5d0}"));
}

#[test]
fn replies_with_control_characters_are_refused() {
    // `ident query` prints the user id or token: a hostile server must not be
    // able to drive the terminal it lands on.
    for bad in [
        &b"1, 2 : USERID : UNIX : \x1b[31mroot"[..],
        b"1, 2 : USERID : UNIX : ro\x07ot",
        b"1, 2 : USERID : UNIX : root\x7f",
        b"1, 2 : USERID : UNIX : ro\tot",
        b"1, 2 : USERID : UNIX : \xc2\x9b31mroot",
        b"1, 2 : USERID : UN\x08IX : root",
        b"1, 2 : ERROR : NO-USER\x1b]0;owned\x07",
        b"1, 2 : ERROR : NO\tUSER",
        b"1\x0b, 2 : ERROR : NO-USER",
    ] {
        assert_eq!(
            parse_reply(bad),
            Err(BadReply("reply contains a control character")),
            "{bad:?}"
        );
    }
    // Tabs between the fields are RFC 1413's white space, not part of a value.
    let r = parse_reply(b"1,\t2\t:\tUSERID\t:\tUNIX\t:\talice\t").unwrap();
    assert_eq!(
        r.kind,
        ReplyKind::UserId {
            os: "UNIX".into(),
            charset: None,
            user: "alice".into()
        }
    );
}
