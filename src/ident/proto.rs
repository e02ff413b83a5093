//! RFC 1413, the wire protocol alone: frame request lines, parse a request, format a
//! reply, parse a reply. No I/O, so every hostile byte sequence can be tested here.
//!
//! A request is `<port-on-server> , <port-on-client>`: the port of the connection on
//! the host running identd first, then the port on the querier's host. Spaces and
//! tabs may surround either number; each is 1 to 65535, at most 5 decimal digits, no
//! sign. Lines end in CRLF, LF or CR. A reply echoes the two ports in the request's
//! order and ends in CRLF.

use std::fmt;

/// The longest request line accepted, terminator excluded. A line still without an
/// end after this many bytes is refused and the connection closed.
pub const MAX_LINE: usize = 1000;

/// The longest reply line a client accepts, terminator excluded. RFC 1413 bounds the
/// user id at 512 octets; the rest of the line is a few dozen.
pub const MAX_REPLY_LINE: usize = 1000;

/// A well-formed request: the ports as the querier sent them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The port on the host running identd (the queried connection's local port).
    pub server_port: u16,
    /// The port on the querier's host (the queried connection's remote port).
    pub client_port: u16,
}

/// Why a request line is not a request. Both answer `INVALID-PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Two numbers of at most 5 digits were there, but one is 0 or above 65535:
    /// the reply echoes them.
    PortOutOfRange { server_port: u32, client_port: u32 },
    /// Not two short numbers separated by a comma: the reply echoes `0, 0`.
    Malformed,
}

impl BadRequest {
    /// The port pair a reply to this bad request echoes.
    pub fn echo(self) -> (u32, u32) {
        match self {
            BadRequest::PortOutOfRange {
                server_port,
                client_port,
            } => (server_port, client_port),
            BadRequest::Malformed => (0, 0),
        }
    }
}

/// Parses one request line (its terminator already removed).
pub fn parse_request(line: &[u8]) -> Result<Request, BadRequest> {
    let mut rest = skip_blanks(line);
    let (server_port, after) = number(rest).ok_or(BadRequest::Malformed)?;
    rest = skip_blanks(after);
    rest = rest.strip_prefix(b",").ok_or(BadRequest::Malformed)?;
    rest = skip_blanks(rest);
    let (client_port, after) = number(rest).ok_or(BadRequest::Malformed)?;
    if !skip_blanks(after).is_empty() {
        return Err(BadRequest::Malformed);
    }
    match (port(server_port), port(client_port)) {
        (Some(server_port), Some(client_port)) => Ok(Request {
            server_port,
            client_port,
        }),
        _ => Err(BadRequest::PortOutOfRange {
            server_port,
            client_port,
        }),
    }
}

fn skip_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', tail @ ..] = s {
        s = tail;
    }
    s
}

/// 1 to 5 ASCII digits at the start of `s`; a sixth digit makes the whole thing
/// malformed rather than silently truncated.
fn number(s: &[u8]) -> Option<(u32, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 {
        return None;
    }
    let value = s[..digits]
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Some((value, &s[digits..]))
}

fn port(n: u32) -> Option<u16> {
    u16::try_from(n).ok().filter(|&p| p != 0)
}

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

/// Formats one reply line, CRLF included. The ports are echoed in the request's
/// order. A user name that could break the line (a control byte, a colon, a space,
/// a non-ASCII byte) is replaced by its uid under OS `OTHER` when the uid is known.
pub fn format_reply(ports: (u32, u32), answer: &Answer) -> String {
    let (server_port, client_port) = ports;
    match answer {
        Answer::User(name) if is_wire_safe(name) => {
            format!("{server_port}, {client_port} : USERID : UNIX : {name}\r\n")
        }
        // An unsafe name with no uid to fall back on: say nothing about it.
        Answer::User(_) => {
            format!(
                "{server_port}, {client_port} : ERROR : {}\r\n",
                ErrorToken::UnknownError
            )
        }
        Answer::Uid(uid) => format!("{server_port}, {client_port} : USERID : OTHER : {uid}\r\n"),
        Answer::Error(token) => format!("{server_port}, {client_port} : ERROR : {token}\r\n"),
    }
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
        "USERID" => {
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
            ReplyKind::UserId {
                os: os.to_string(),
                charset,
                user: user.to_string(),
            }
        }
        "ERROR" => {
            let token = info.trim_matches(BLANKS);
            if token.is_empty() {
                return Err(BadReply("ERROR reply has no token"));
            }
            if token.contains('\t') {
                return Err(BadReply(CONTROL));
            }
            ReplyKind::Error(token.to_string())
        }
        _ => return Err(BadReply("reply type is neither USERID nor ERROR")),
    };
    Ok(Reply {
        server_port,
        client_port,
        kind,
    })
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

/// Splits a byte stream into lines ended by CRLF, LF or CR, bounded in length.
///
/// A CR followed by LF is one terminator even when the two arrive in separate
/// reads, so `1,2\r` then `\n3,4\r\n` is two requests, not three.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// The last terminator seen was a CR: a LF at the very start of the next bytes
    /// belongs to it.
    after_cr: bool,
    limit: usize,
}

/// One step of [`LineFramer::next_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// A complete line, terminator removed.
    Line(Vec<u8>),
    /// More than the limit arrived without a terminator: refuse and close.
    Overlong,
    /// No complete line buffered yet.
    NeedMore,
}

impl LineFramer {
    /// A framer that refuses lines longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            after_cr: false,
            limit,
        }
    }

    /// Appends bytes just read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete line, if any.
    pub fn next_line(&mut self) -> Framed {
        if self.after_cr && !self.buf.is_empty() {
            if self.buf[0] == b'\n' {
                self.buf.remove(0);
            }
            self.after_cr = false;
        }
        match self.buf.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(end) if end <= self.limit => {
                let line = self.buf[..end].to_vec();
                let mut consumed = end + 1;
                if self.buf[end] == b'\r' {
                    match self.buf.get(end + 1) {
                        Some(b'\n') => consumed += 1,
                        Some(_) => {}
                        None => self.after_cr = true,
                    }
                }
                self.buf.drain(..consumed);
                Framed::Line(line)
            }
            Some(_) => Framed::Overlong,
            None if self.buf.len() > self.limit => Framed::Overlong,
            None => Framed::NeedMore,
        }
    }

    /// Bytes received after the last complete line (an unterminated request).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &[u8]) -> Result<Request, BadRequest> {
        parse_request(s)
    }

    fn ok(server_port: u16, client_port: u16) -> Result<Request, BadRequest> {
        Ok(Request {
            server_port,
            client_port,
        })
    }

    #[test]
    fn plain_requests_parse_in_the_order_sent() {
        assert_eq!(req(b"6193, 23"), ok(6193, 23));
        assert_eq!(req(b"6193,23"), ok(6193, 23));
        assert_eq!(req(b"23 , 6193"), ok(23, 6193));
        assert_eq!(req(b" \t6193 \t,\t 23 \t"), ok(6193, 23));
        assert_eq!(req(b"1,65535"), ok(1, 65535));
        assert_eq!(req(b"00023,00001"), ok(23, 1));
    }

    #[test]
    fn out_of_range_ports_are_echoed_as_invalid() {
        assert_eq!(
            req(b"0, 23"),
            Err(BadRequest::PortOutOfRange {
                server_port: 0,
                client_port: 23
            })
        );
        assert_eq!(
            req(b"65536,1"),
            Err(BadRequest::PortOutOfRange {
                server_port: 65536,
                client_port: 1
            })
        );
        assert_eq!(
            req(b"99999 , 99999"),
            Err(BadRequest::PortOutOfRange {
                server_port: 99999,
                client_port: 99999
            })
        );
    }

    #[test]
    fn anything_but_two_short_unsigned_numbers_is_malformed() {
        for bad in [
            &b""[..],
            b" ",
            b"23",
            b"23,",
            b",23",
            b"23 23",
            b"+23,1",
            b"-23,1",
            b"23,-1",
            b"123456,1",
            b"1,000001",
            b"1,2,3",
            b"1,2 x",
            b"0x10,1",
            b"1.0,2",
            b"\xef\xbc\x91,2",
            b"1,\x002",
            b"\x001,2",
            b"1,2\x00",
            b"1\x00,2",
            b"1\x0b,2",
            b"\xff\xfe",
            b"1,2\r",
            b"1,2\n",
        ] {
            assert_eq!(req(bad), Err(BadRequest::Malformed), "{bad:?}");
        }
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
    fn bad_requests_echo_what_they_can() {
        assert_eq!(BadRequest::Malformed.echo(), (0, 0));
        assert_eq!(
            BadRequest::PortOutOfRange {
                server_port: 0,
                client_port: 7
            }
            .echo(),
            (0, 7)
        );
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

    fn lines(framer: &mut LineFramer) -> Vec<Framed> {
        let mut out = Vec::new();
        loop {
            match framer.next_line() {
                Framed::NeedMore => return out,
                f => {
                    let stop = f == Framed::Overlong;
                    out.push(f);
                    if stop {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn lines_end_in_crlf_lf_or_cr() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,2\r\n3,4\n5,6\r7,8");
        assert_eq!(
            lines(&mut f),
            vec![
                Framed::Line(b"1,2".to_vec()),
                Framed::Line(b"3,4".to_vec()),
                Framed::Line(b"5,6".to_vec())
            ]
        );
        assert_eq!(f.pending(), b"7,8");
        f.feed(b"\r\n");
        assert_eq!(lines(&mut f), vec![Framed::Line(b"7,8".to_vec())]);
        assert!(f.pending().is_empty());
    }

    #[test]
    fn a_crlf_split_across_reads_is_one_terminator() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,2\r");
        assert_eq!(lines(&mut f), vec![Framed::Line(b"1,2".to_vec())]);
        f.feed(b"\n3,4\r");
        assert_eq!(lines(&mut f), vec![Framed::Line(b"3,4".to_vec())]);
        // A CR then a bare CR: the second ends an empty line.
        f.feed(b"\r");
        assert_eq!(lines(&mut f), vec![Framed::Line(Vec::new())]);
    }

    #[test]
    fn lf_cr_is_two_terminators_and_blank_lines_are_lines() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,2\n\r\n");
        assert_eq!(
            lines(&mut f),
            vec![Framed::Line(b"1,2".to_vec()), Framed::Line(Vec::new())]
        );
    }

    #[test]
    fn nul_bytes_do_not_end_a_line() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,\x002\r\n");
        let got = lines(&mut f);
        assert_eq!(got, vec![Framed::Line(b"1,\x002".to_vec())]);
        assert_eq!(parse_request(b"1,\x002"), Err(BadRequest::Malformed));
    }

    #[test]
    fn a_line_of_the_limit_is_accepted_one_more_byte_is_refused() {
        let mut f = LineFramer::new(MAX_LINE);
        let exact = vec![b' '; MAX_LINE];
        f.feed(&exact);
        assert_eq!(f.next_line(), Framed::NeedMore);
        f.feed(b"\n");
        assert_eq!(f.next_line(), Framed::Line(exact));

        let mut f = LineFramer::new(MAX_LINE);
        f.feed(&vec![b'1'; MAX_LINE + 1]);
        assert_eq!(f.next_line(), Framed::Overlong);

        // Even when the terminator arrives in the same read, the line is too long.
        let mut f = LineFramer::new(MAX_LINE);
        let mut long = vec![b' '; MAX_LINE + 1];
        long.extend_from_slice(b"1,2\r\n");
        f.feed(&long);
        assert_eq!(f.next_line(), Framed::Overlong);
    }

    #[test]
    fn a_short_line_after_an_answered_one_is_measured_alone() {
        let mut f = LineFramer::new(10);
        f.feed(b"1,2\n");
        assert_eq!(f.next_line(), Framed::Line(b"1,2".to_vec()));
        f.feed(b"0123456789");
        assert_eq!(f.next_line(), Framed::NeedMore);
        f.feed(b"0");
        assert_eq!(f.next_line(), Framed::Overlong);
    }
}
