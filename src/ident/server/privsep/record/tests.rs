use super::*;

#[test]
fn every_finding_crosses_the_channel_unchanged() {
    let entry = |name: &str, ok| Findings::Owner {
        uid: 1000,
        passwd: Passwd::Entry {
            name: name.into(),
            may_be_named: ok,
        },
    };
    for f in [
        Findings::NoOwner,
        Findings::LookupFailed,
        entry("alice", true),
        entry("alice", false),
        entry(&"x".repeat(NAME_MAX), true),
        Findings::Owner {
            uid: 7,
            passwd: Passwd::NoEntry,
        },
        Findings::Owner {
            uid: 8,
            passwd: Passwd::Unreadable,
        },
    ] {
        assert_eq!(decode_reply(&encode_reply(42, Some(&f))), (42, f.clone()));
    }
    // A refusal, an overlong name, garbage: never a name.
    assert_eq!(
        decode_reply(&encode_reply(1, None)).1,
        Findings::LookupFailed
    );
    let long = entry(&"x".repeat(NAME_MAX + 1), true);
    assert_eq!(
        decode_reply(&encode_reply(1, Some(&long))).1,
        entry("", true)
    );
    let mut junk = [0xffu8; REPLY_LEN];
    junk[8] = 9;
    assert_eq!(decode_reply(&junk).1, Findings::LookupFailed);
}

/// Every answer `--nat` can decide, as the helper sends them.
fn decided() -> Vec<Findings> {
    let mut all = vec![
        Findings::Decided(Answer::User("rfctruser".into())),
        Findings::Decided(Answer::User("n".repeat(NAME_MAX))),
        Findings::Decided(Answer::Uid(0)),
        Findings::Decided(Answer::Uid(4343)),
        Findings::Decided(Answer::Uid(u32::MAX)),
    ];
    all.extend(ERROR_TOKENS.map(|t| Findings::Decided(Answer::Error(t))));
    all
}

#[test]
fn every_answer_nat_decides_crosses_the_channel_unchanged() {
    for f in decided() {
        assert_eq!(
            decode_reply(&encode_reply(7, Some(&f))),
            (7, f.clone()),
            "{f:?}"
        );
    }
    // A name unfit for the wire is never sent as one.
    for unsafe_name in ["", "a b", "a:b", "caf\u{e9}", &"n".repeat(NAME_MAX + 1)] {
        let f = Findings::Decided(Answer::User(unsafe_name.into()));
        assert_eq!(
            decode_reply(&encode_reply(7, Some(&f))).1,
            Findings::Decided(Answer::Error(ErrorToken::UnknownError)),
            "{unsafe_name:?}"
        );
    }
}

/// `base` with the bytes at the given offsets replaced: a record the encoder
/// never writes.
fn with(base: &[u8; REPLY_LEN], edits: &[(usize, u8)]) -> [u8; REPLY_LEN] {
    let mut r = *base;
    for &(at, byte) in edits {
        r[at] = byte;
    }
    r
}

/// Hand-made records the encoder never writes: each is a failed lookup.
#[test]
fn every_malformed_decided_record_is_a_failed_lookup() {
    let user = encode_reply(9, Some(&Findings::Decided(Answer::User("bob".into()))));
    let uid = encode_reply(9, Some(&Findings::Decided(Answer::Uid(4343))));
    let error = encode_reply(
        9,
        Some(&Findings::Decided(Answer::Error(ErrorToken::NoUser))),
    );
    let malformed: Vec<(&str, [u8; REPLY_LEN])> = vec![
        ("an unknown answer kind", with(&user, &[(9, 3)])),
        ("an unknown reply kind", with(&user, &[(8, 5)])),
        ("an unknown error token", with(&error, &[(10, 4)])),
        ("a flag on a name", with(&user, &[(10, 1)])),
        ("a flag on a uid", with(&uid, &[(10, 1)])),
        ("padding set", with(&user, &[(11, 1)])),
        ("a uid beside a name", with(&user, &[(12, 1)])),
        ("a uid beside an error", with(&error, &[(12, 1)])),
        ("an empty name", with(&user, &[(16, 0)])),
        ("a name longer than stated", with(&user, &[(16, 2)])),
        ("a name shorter than stated", with(&user, &[(16, 4)])),
        ("a byte past the name", with(&user, &[(21, b'x')])),
        ("the last byte set", with(&user, &[(REPLY_LEN - 1, 1)])),
        (
            "a length past the record",
            with(&user, &[(16, 0xff), (17, 0xff)]),
        ),
        ("a length of NAME_MAX + 1", {
            let len = (NAME_MAX as u16 + 1).to_le_bytes();
            with(&user, &[(16, len[0]), (17, len[1])])
        }),
        ("a space in the name", with(&user, &[(19, b' ')])),
        ("a colon in the name", with(&user, &[(19, b':')])),
        ("a control byte in the name", with(&user, &[(19, b'\n')])),
        ("a non-ASCII name", with(&user, &[(18, 0xc3), (19, 0xa9)])),
        ("a name that is not UTF-8", with(&user, &[(19, 0xff)])),
        ("a name beside a uid", with(&uid, &[(16, 1), (18, b'a')])),
        (
            "a name beside an error",
            with(&error, &[(16, 1), (18, b'a')]),
        ),
    ];
    for (what, record) in &malformed {
        assert_eq!(decode_reply(record), (9, Findings::LookupFailed), "{what}");
    }
}

/// Any one byte of any valid record changed (the id aside) is either refused or
/// exactly the record of another value: nothing is read loosely.
#[test]
fn a_changed_byte_is_refused_or_another_values_exact_record() {
    let mut values = decided();
    values.extend(forwards());
    values.extend(config_forwards());
    values.extend([
        Findings::NoOwner,
        Findings::LookupFailed,
        Findings::Owner {
            uid: 1000,
            passwd: Passwd::Entry {
                name: "alice".into(),
                may_be_named: true,
            },
        },
        Findings::Owner {
            uid: 1000,
            passwd: Passwd::Unreadable,
        },
    ]);
    let bytes = [0u8, 1, 2, 3, 4, 5, b' ', b':', b'a', 0x7f, 0x80, 0xff];
    let mut refused = 0;
    for f in &values {
        let good = encode_reply(3, Some(f));
        for at in 8..REPLY_LEN {
            for &b in &bytes {
                let mut r = good;
                r[at] = b;
                let (id, got) = decode_reply(&r);
                assert_eq!(id, 3);
                if got == Findings::LookupFailed {
                    refused += 1;
                } else {
                    assert_eq!(encode_reply(3, Some(&got)), r, "{f:?}, byte {at} = {b}");
                }
            }
        }
    }
    assert!(refused > 0);
}

fn forward(identd: &str, server_port: u16, client_port: u16) -> Findings {
    Findings::Forward(Forward {
        identd: identd.parse().unwrap(),
        server_port,
        client_port,
    })
}

/// Every forward `--nat --forward` can ask, as the helper sends them.
fn forwards() -> Vec<Findings> {
    vec![
        forward("198.18.2.2:113", 40000, 6667),
        forward("10.0.0.1:1", 1, 65535),
        forward("127.0.0.1:65535", 65535, 1),
        forward("[2001:db8::2]:113", 40000, 6667),
        forward("[fe80::1]:1113", 2, 3),
        forward("[::1]:113", 5, 6),
    ]
}

#[test]
fn every_forward_crosses_the_channel_unchanged() {
    for f in forwards() {
        assert_eq!(
            decode_reply(&encode_reply(11, Some(&f))),
            (11, f.clone()),
            "{f:?}"
        );
    }
    // A forward that is no query to make is never sent as one: nobody is named
    // and nothing is asked.
    for unsound in [
        forward("0.0.0.0:113", 1, 2),
        forward("[::]:113", 1, 2),
        forward("255.255.255.255:113", 1, 2),
        forward("224.0.0.1:113", 1, 2),
        forward("[ff02::1]:113", 1, 2),
        forward("[::ffff:198.18.2.2]:113", 1, 2),
        forward("[fe80::1%3]:113", 1, 2),
        forward("198.18.2.2:0", 1, 2),
        forward("198.18.2.2:113", 0, 2),
        forward("198.18.2.2:113", 1, 0),
    ] {
        assert_eq!(
            decode_reply(&encode_reply(11, Some(&unsound))).1,
            Findings::Decided(Answer::Error(ErrorToken::UnknownError)),
            "{unsound:?}"
        );
    }
}

/// Hand-made forward records the encoder never writes: each is a failed lookup,
/// never a connection to make.
#[test]
fn every_malformed_forward_record_is_a_failed_lookup() {
    let v4 = encode_reply(9, Some(&forward("198.18.2.2:113", 40000, 6667)));
    let v6 = encode_reply(9, Some(&forward("[2001:db8::2]:113", 40000, 6667)));
    // The payload starts at 18: address, identd port, server port, client port.
    assert_eq!((v4[8], v4[9], v4[16], v6[9], v6[16]), (5, 0, 10, 1, 22));
    assert_eq!(
        &v4[18..28],
        &[198, 18, 2, 2, 113, 0, 0x40, 0x9c, 0x0b, 0x1a]
    );
    let malformed: Vec<(&str, [u8; REPLY_LEN])> = vec![
        ("an unknown family", with(&v4, &[(9, 2)])),
        ("a v4 payload called v6", with(&v4, &[(9, 1)])),
        ("a v6 payload called v4", with(&v6, &[(9, 0)])),
        ("a flag set", with(&v4, &[(10, 1)])),
        ("padding set", with(&v4, &[(11, 1)])),
        ("a uid beside it", with(&v4, &[(12, 1)])),
        ("a v4 payload one short", with(&v4, &[(16, 9)])),
        ("a v4 payload one long", with(&v4, &[(16, 11)])),
        ("a v6 payload one short", with(&v6, &[(16, 21)])),
        ("a v6 payload one long", with(&v6, &[(16, 23)])),
        ("no payload", with(&v4, &[(16, 0)])),
        ("a byte past the payload", with(&v4, &[(28, 1)])),
        ("the last byte set", with(&v4, &[(REPLY_LEN - 1, 1)])),
        (
            "a length past the record",
            with(&v4, &[(16, 0xff), (17, 0xff)]),
        ),
        (
            "the unspecified address",
            with(&v4, &[(18, 0), (19, 0), (20, 0), (21, 0)]),
        ),
        (
            "a broadcast address",
            with(&v4, &[(18, 255), (19, 255), (20, 255), (21, 255)]),
        ),
        ("a multicast address", with(&v4, &[(18, 224)])),
        ("identd port 0", with(&v4, &[(22, 0)])),
        ("server port 0", with(&v4, &[(24, 0), (25, 0)])),
        ("client port 0", with(&v4, &[(26, 0), (27, 0)])),
        ("an IPv4-mapped v6 address", {
            let mut r = v6;
            r[18..34].copy_from_slice(&"::ffff:198.18.2.2".parse::<Ipv6Addr>().unwrap().octets());
            r
        }),
        ("a v6 multicast address", with(&v6, &[(18, 0xff)])),
    ];
    for (what, record) in &malformed {
        assert_eq!(decode_reply(record), (9, Findings::LookupFailed), "{what}");
    }
}

#[test]
fn every_request_crosses_the_channel_unchanged_and_nothing_else_is_one() {
    let lookup = |server_port, client_port| Ask::Lookup {
        server_port,
        client_port,
    };
    for ask in [
        lookup(6667, 40000),
        lookup(1, 65535),
        lookup(0, 0),
        Ask::Reload,
    ] {
        assert_eq!(decode_request(&encode_request(77, ask)), (77, Some(ask)));
    }
    let good = encode_request(77, lookup(6667, 40000));
    let reload = encode_request(77, Ask::Reload);
    for (what, record) in [
        ("an unknown question", with_request(&good, &[(12, 2)])),
        ("padding set", with_request(&good, &[(13, 1)])),
        ("the last byte set", with_request(&good, &[(15, 1)])),
        (
            "a reload with a server port",
            with_request(&reload, &[(8, 1)]),
        ),
        (
            "a reload with a client port",
            with_request(&reload, &[(11, 1)]),
        ),
    ] {
        assert_eq!(decode_request(&record), (77, None), "{what}");
    }
}

fn with_request(base: &[u8; REQUEST_LEN], edits: &[(usize, u8)]) -> [u8; REQUEST_LEN] {
    let mut r = *base;
    for &(at, byte) in edits {
        r[at] = byte;
    }
    r
}

fn config_forward(to: &str, name: &str, checked: Option<u16>) -> Findings {
    Findings::ConfigForward(Forwarding::from_parts(
        to.parse().unwrap(),
        Owner { uid: 1000, name },
        6667,
        checked.map(|bits| Caps::from_bits(bits).unwrap()),
    ))
}

/// Every forward `--config`'s files can ask, as the helper sends them.
fn config_forwards() -> Vec<Findings> {
    vec![
        config_forward("10.0.0.2:113", "alice", None),
        config_forward("10.0.0.2:113", "alice", Some(0)),
        config_forward("192.0.2.7:1", "a", Some(0x1ff)),
        config_forward("[2001:db8::2]:113", "bob", Some(0x10f)),
        config_forward("[::1]:65535", &"n".repeat(NAME_MAX - 22), None),
    ]
}

#[test]
fn every_config_forward_crosses_the_channel_unchanged() {
    for f in config_forwards() {
        assert_eq!(
            decode_reply(&encode_reply(12, Some(&f))),
            (12, f.clone()),
            "{f:?}"
        );
    }
    // One that is no query to make, or whose owner's name does not fit or is
    // empty, is never sent as one.
    for unsound in [
        config_forward("0.0.0.0:113", "alice", None),
        config_forward("224.0.0.1:113", "alice", None),
        config_forward("[::ffff:10.0.0.2]:113", "alice", None),
        config_forward("10.0.0.2:0", "alice", None),
        config_forward("[::1]:113", &"n".repeat(NAME_MAX - 21), None),
        config_forward("10.0.0.2:113", "", None),
        Findings::ConfigForward(Forwarding::from_parts(
            "10.0.0.2:113".parse().unwrap(),
            Owner {
                uid: 1000,
                name: "alice",
            },
            0,
            None,
        )),
    ] {
        assert_eq!(
            decode_reply(&encode_reply(12, Some(&unsound))).1,
            Findings::Decided(Answer::Error(ErrorToken::UnknownError)),
            "{unsound:?}"
        );
    }
}

/// Hand-made `--config` forward records the encoder never writes: each is a
/// failed lookup, never a connection to make.
#[test]
fn every_malformed_config_forward_record_is_a_failed_lookup() {
    let forced = encode_reply(9, Some(&config_forward("10.0.0.2:113", "alice", None)));
    let asked = encode_reply(9, Some(&config_forward("10.0.0.2:113", "bob", Some(3))));
    // kind, family, asked; uid; length; address, identd port, foreign port, caps, name.
    assert_eq!(
        (forced[8], forced[9], forced[10], forced[16]),
        (6, 0, 0, 15)
    );
    assert_eq!(&forced[12..16], &1000u32.to_le_bytes());
    assert_eq!(
        &asked[18..31],
        &[10, 0, 0, 2, 113, 0, 0x0b, 0x1a, 3, 0, b'b', b'o', b'b']
    );
    let malformed: Vec<(&str, [u8; REPLY_LEN])> = vec![
        ("an unknown family", with(&forced, &[(9, 2)])),
        ("a v4 payload called v6", with(&forced, &[(9, 1)])),
        (
            "asked neither by file nor forced",
            with(&forced, &[(10, 2)]),
        ),
        ("forced, with capabilities", with(&forced, &[(26, 1)])),
        ("a capability no rule has", with(&asked, &[(27, 2)])),
        ("padding set", with(&forced, &[(11, 1)])),
        ("no name", with(&forced, &[(16, 10)])),
        ("a length short of the name", with(&forced, &[(16, 14)])),
        ("a byte past the name", with(&forced, &[(33, b'x')])),
        ("the last byte set", with(&forced, &[(REPLY_LEN - 1, 1)])),
        ("a name that is not UTF-8", with(&forced, &[(28, 0xff)])),
        ("too short for its address", with(&forced, &[(16, 3)])),
        (
            "the unspecified address",
            with(&forced, &[(18, 0), (19, 0), (20, 0), (21, 0)]),
        ),
        ("a multicast address", with(&forced, &[(18, 224)])),
        ("identd port 0", with(&forced, &[(22, 0)])),
        ("foreign port 0", with(&forced, &[(24, 0), (25, 0)])),
    ];
    for (what, record) in &malformed {
        assert_eq!(decode_reply(record), (9, Findings::LookupFailed), "{what}");
    }
}
