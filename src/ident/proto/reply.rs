//! A reply line: formatted by the server from its answer, and parsed by the client,
//! which refuses anything a terminal could be driven or fooled by.

use std::fmt;

use super::request::{Request, parse_request};

/// The longest reply line a client accepts, terminator excluded. RFC 1413 bounds the
/// user id at 512 octets; the rest of the line is a few dozen.
pub const MAX_REPLY_LINE: usize = 1000;

/// The error tokens RFC 1413 defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorToken {
    InvalidPort,
    NoUser,
    HiddenUser,
    UnknownError,
}

impl ErrorToken {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorToken::InvalidPort => "INVALID-PORT",
            ErrorToken::NoUser => "NO-USER",
            ErrorToken::HiddenUser => "HIDDEN-USER",
            ErrorToken::UnknownError => "UNKNOWN-ERROR",
        }
    }
}

impl fmt::Display for ErrorToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server says about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The owner, by name: `USERID : UNIX : <name>`.
    User(String),
    /// The owner, by number (`--numeric`, or a name unfit for the wire): `USERID : OTHER : <uid>`.
    Uid(u32),
    Error(ErrorToken),
}

/// How a USERID reply names its operating system and character set (oidentd's
/// `--other` and `--charset`). The default is RFC 1413's plain form: `UNIX` for a
/// name, `OTHER` for a uid (a number is no UNIX user name), no charset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyFormat {
    /// The operating system field of every USERID reply, a uid's included.
    pub os: Option<String>,
    /// Sent after the OS, as `UNIX,UTF-8` (RFC 1340 names), as oidentd sends it.
    pub charset: Option<String>,
}

impl ReplyFormat {
    fn opsys(&self, default: &str) -> String {
        let os = self.os.as_deref().unwrap_or(default);
        match &self.charset {
            Some(charset) => format!("{os},{charset}"),
            None => os.to_string(),
        }
    }
}

/// Formats one reply line, CRLF included. The ports are echoed in the request's
/// order. A user name that could break the line (a control byte, a colon, a space,
/// a non-ASCII byte) is replaced by its uid under OS `OTHER` when the uid is known.
pub fn format_reply(ports: (u32, u32), answer: &Answer) -> String {
    format_reply_as(ports, answer, &ReplyFormat::default())
}

/// [`format_reply`] with the OS and charset fields `format` asks for.
pub fn format_reply_as(ports: (u32, u32), answer: &Answer, format: &ReplyFormat) -> String {
    let (server_port, client_port) = ports;
    match answer {
        Answer::User(name) if is_wire_safe(name) => {
            let os = format.opsys("UNIX");
            format!("{server_port}, {client_port} : USERID : {os} : {name}\r\n")
        }
        // An unsafe name with no uid to fall back on: say nothing about it.
        Answer::User(_) => {
            format!(
                "{server_port}, {client_port} : ERROR : {}\r\n",
                ErrorToken::UnknownError
            )
        }
        Answer::Uid(uid) => {
            let os = format.opsys("OTHER");
            format!("{server_port}, {client_port} : USERID : {os} : {uid}\r\n")
        }
        Answer::Error(token) => format!("{server_port}, {client_port} : ERROR : {token}\r\n"),
    }
}

/// An OS or charset field goes on the wire only as visible ASCII without the colon
/// and comma that delimit it, so a client reads back exactly what was configured.
pub fn is_wire_safe_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':' && b != b',')
}

/// A user id goes on the wire only as visible ASCII without a colon, so no passwd
/// entry can inject a second line or a field a client would misread.
pub fn is_wire_safe(name: &str) -> bool {
    !name.is_empty() && name.len() <= 512 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// A reply as a client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub server_port: u16,
    pub client_port: u16,
    pub kind: ReplyKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// `USERID : <os>[ , <charset>] : <user id>`.
    UserId {
        os: String,
        charset: Option<String>,
        user: String,
    },
    /// `ERROR : <token>`; the token as sent (servers may send non-standard ones).
    Error(String),
}

/// Why a reply line could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadReply(pub &'static str);

impl fmt::Display for BadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BadReply {}

/// Parses one reply line (its terminator already removed). A control character
/// anywhere (a tab between fields aside) makes the reply malformed.
pub fn parse_reply(line: &[u8]) -> Result<Reply, BadReply> {
    if line.contains(&0) {
        return Err(BadReply("reply contains a NUL byte"));
    }
    let text = std::str::from_utf8(line).map_err(|_| BadReply("reply is not UTF-8"))?;
    // The user id and the error token end up on a terminal (`ident query` prints
    // them), so a server must not be able to send escape sequences or bells there.
    // A tab is RFC 1413's white space between fields; inside a value it is refused
    // below, after the blanks around it are trimmed.
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(BadReply(CONTROL));
    }
    // Nor may it send what a terminal shows as something else: a bidi override
    // (U+202E) that prints "root" backwards, a zero-width space inside a name, a
    // line separator. General categories Cf, Zl and Zp.
    if text.chars().any(is_invisible_format) {
        return Err(BadReply(FORMAT));
    }
    let mut fields = text.splitn(3, ':');
    let ports = fields.next().unwrap_or_default();
    let kind = fields.next().ok_or(BadReply("reply has no reply type"))?;
    let info = fields
        .next()
        .ok_or(BadReply("reply has no additional info"))?;
    let Ok(Request {
        server_port,
        client_port,
    }) = parse_request(ports.as_bytes())
    else {
        return Err(BadReply("reply does not start with a valid port pair"));
    };
    let kind = match kind.trim_matches(BLANKS) {
        "USERID" => user_id(info)?,
        "ERROR" => error_token(info)?,
        _ => return Err(BadReply("reply type is neither USERID nor ERROR")),
    };
    Ok(Reply {
        server_port,
        client_port,
        kind,
    })
}

/// A USERID reply's additional info: `<os>[ , <charset>] : <user id>`.
fn user_id(info: &str) -> Result<ReplyKind, BadReply> {
    let (os_field, user) = info
        .split_once(':')
        .ok_or(BadReply("USERID reply has no user id"))?;
    let (os, charset) = match os_field.split_once(',') {
        Some((os, cs)) => (os, Some(cs.trim_matches(BLANKS).to_string())),
        None => (os_field, None),
    };
    let os = os.trim_matches(BLANKS);
    // RFC 1413: the user id is the rest of the line; leading blanks separate it
    // from the colon, trailing ones are padding no real name carries.
    let user = user.trim_matches(BLANKS);
    if os.is_empty() || user.is_empty() {
        return Err(BadReply("USERID reply has an empty field"));
    }
    // The charset too: it is a value like the others (found by fuzz/ident_reply).
    let charset_tab = charset.as_deref().is_some_and(|c| c.contains('\t'));
    if charset_tab || [os, user].iter().any(|v| v.contains('\t')) {
        return Err(BadReply(CONTROL));
    }
    Ok(ReplyKind::UserId {
        os: os.to_string(),
        charset,
        user: user.to_string(),
    })
}

/// An ERROR reply's additional info: the token, as sent.
fn error_token(info: &str) -> Result<ReplyKind, BadReply> {
    let token = info.trim_matches(BLANKS);
    if token.is_empty() {
        return Err(BadReply("ERROR reply has no token"));
    }
    if token.contains('\t') {
        return Err(BadReply(CONTROL));
    }
    Ok(ReplyKind::Error(token.to_string()))
}

const BLANKS: &[char] = &[' ', '\t'];

const CONTROL: &str = "reply contains a control character";

const FORMAT: &str = "reply contains an invisible Unicode format or separator character";

fn is_invisible_format(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

#[cfg(test)]
mod tests {
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
}
