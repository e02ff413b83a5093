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
mod tests;
