//! The grammar of both files, read as oidentd 2.5 reads it, into [`super::ast`].
//! Syntax only: names are looked up later (`resolve`). The grammar is flat
//! (file, block, range, statement), so the parser loops and never recurses on its
//! input.

use super::ast::{
    Action, Block, Filter, Grant, Owner, Port, Ports, Spanned, Statement, SystemFile, SystemRange,
    Target, Text, UserFile, UserRange,
};
use super::lex::{Keyword, LexError, Lexer, Tok, Token};
use super::text::{Cap, SYSTEM_REPLIES_MAX, USER_REPLIES_MAX, quote};

type Result<T> = std::result::Result<T, LexError>;

const FILTERS: &str = "a filter (`to`, `from`, `fport`, `lport`)";

struct Parser<'a> {
    lexer: Lexer<'a>,
    next: Token,
}

impl<'a> Parser<'a> {
    fn new(text: &'a [u8]) -> Result<Self> {
        let mut lexer = Lexer::new(text);
        let next = lexer.next_token()?;
        Ok(Parser { lexer, next })
    }

    fn take(&mut self) -> Result<Token> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.next, next))
    }

    /// The error "found X, expected Y" at the next token.
    fn expected<T>(&self, what: &str) -> Result<T> {
        Err((
            self.next.at,
            format!("{}, expected {what}", self.next.tok.describe()),
        ))
    }

    fn keyword(&self) -> Option<Keyword> {
        match self.next.tok {
            Tok::Keyword(k) => Some(k),
            _ => None,
        }
    }

    fn eat(&mut self, tok: Tok, what: &str) -> Result<()> {
        if self.next.tok == tok {
            self.take()?;
            Ok(())
        } else {
            self.expected(what)
        }
    }

    fn value(&mut self, what: &str) -> Result<Text> {
        if let Tok::Value { text, .. } = &self.next.tok {
            let value = Spanned {
                value: text.clone(),
                at: self.next.at,
            };
            self.take()?;
            Ok(value)
        } else {
            self.expected(what)
        }
    }

    /// Values for as long as they come: the rest of a `reply` list. Past `max`
    /// the list is an error, or with `drop_extra` the rest is read and dropped.
    fn replies(&mut self, max: usize, drop_extra: bool) -> Result<Vec<Text>> {
        let mut list = vec![self.value("a reply string")?];
        while matches!(self.next.tok, Tok::Value { .. }) {
            if list.len() == max && !drop_extra {
                let found = self.next.tok.describe();
                return Err((
                    self.next.at,
                    format!(
                        "{found} (reply {}), expected at most {max} replies",
                        max + 1
                    ),
                ));
            }
            let reply = self.value("a reply string")?;
            if list.len() < max {
                list.push(reply);
            }
        }
        Ok(list)
    }

    fn target(&mut self) -> Result<Target> {
        let host = self.value("a host to forward to")?;
        let port = self.value("a port to forward to")?;
        Ok(Target {
            host,
            port: Spanned {
                value: port_of(&port)?,
                at: port.at,
            },
        })
    }

    /// A range's filters up to its `{`: each of `to`, `from`, `fport`, `lport` at
    /// most once, in any order. Called at the first.
    fn filter(&mut self) -> Result<Filter> {
        let mut filter = Filter::default();
        while let Some(k @ (Keyword::To | Keyword::From | Keyword::Fport | Keyword::Lport)) =
            self.keyword()
        {
            let at = self.next.at;
            self.take()?;
            let twice = || {
                Err((
                    at,
                    format!(
                        "a second `{0}`, expected one `{0}` per range at most",
                        k.word()
                    ),
                ))
            };
            match k {
                Keyword::To | Keyword::From => {
                    let host = self.value("a host name or address")?;
                    let slot = if k == Keyword::To {
                        &mut filter.to
                    } else {
                        &mut filter.from
                    };
                    if slot.is_some() {
                        return twice();
                    }
                    *slot = Some(host);
                }
                _ => {
                    let text = self.value("a port or port range")?;
                    let ports = Spanned {
                        value: ports_of(&text)?,
                        at: text.at,
                    };
                    let slot = if k == Keyword::Fport {
                        &mut filter.fport
                    } else {
                        &mut filter.lport
                    };
                    if slot.is_some() {
                        return twice();
                    }
                    *slot = Some(ports);
                }
            }
        }
        Ok(filter)
    }

    fn system(mut self) -> Result<SystemFile> {
        let mut file = SystemFile::default();
        loop {
            let owner = match self.keyword() {
                Some(Keyword::Default) => {
                    self.take()?;
                    Owner::Default
                }
                Some(Keyword::User) => {
                    self.take()?;
                    Owner::User(self.value("a user name")?)
                }
                _ if self.next.tok == Tok::End => return Ok(file),
                Some(
                    Keyword::Global | Keyword::To | Keyword::From | Keyword::Fport | Keyword::Lport,
                ) => {
                    return self.expected("`default` or `user`; this belongs in a user's file");
                }
                _ => return self.expected("`default`, `user` or end of file"),
            };
            self.eat(Tok::Open, "`{`")?;
            let mut ranges = Vec::new();
            loop {
                let filter = match self.keyword() {
                    Some(Keyword::Default) => {
                        self.take()?;
                        Filter::default()
                    }
                    Some(Keyword::To | Keyword::From | Keyword::Fport | Keyword::Lport) => {
                        self.filter()?
                    }
                    _ if self.next.tok == Tok::Close && !ranges.is_empty() => break,
                    _ if ranges.is_empty() => {
                        return self.expected(&format!("a range: `default` or {FILTERS}"));
                    }
                    _ => return self.expected(&format!("`}}`, `default` or {FILTERS}")),
                };
                self.eat(Tok::Open, &format!("`{{` or {FILTERS}"))?;
                let statements = self.statements()?;
                ranges.push(SystemRange { filter, statements });
            }
            self.take()?;
            file.blocks.push(Block { owner, ranges });
        }
    }

    /// A system range's capability directives, up to and with its `}`.
    fn statements(&mut self) -> Result<Vec<Statement>> {
        let mut list = Vec::new();
        loop {
            let statement = match self.keyword() {
                Some(k @ (Keyword::Allow | Keyword::Deny)) => {
                    self.take()?;
                    let grant = match self.keyword() {
                        Some(Keyword::Cap(c)) => Grant::Cap(c),
                        Some(Keyword::Forward) => Grant::Forward,
                        _ => return self.expected("a capability (`spoof`, `spoof_all`, `spoof_privport`, `hide`, `random`, `random_numeric`, `numeric` or `forward`)"),
                    };
                    self.take()?;
                    if k == Keyword::Allow {
                        Statement::Allow(grant)
                    } else {
                        Statement::Deny(grant)
                    }
                }
                Some(Keyword::Force) => {
                    self.take()?;
                    match self.keyword() {
                        Some(Keyword::Cap(c)) => {
                            self.take()?;
                            Statement::Force(c)
                        }
                        Some(Keyword::Reply) => {
                            self.take()?;
                            Statement::ForceReply(self.replies(SYSTEM_REPLIES_MAX, false)?)
                        }
                        Some(Keyword::Forward) => {
                            self.take()?;
                            Statement::ForceForward(self.target()?)
                        }
                        _ => return self.expected("a capability, `reply` or `forward`"),
                    }
                }
                _ if self.next.tok == Tok::Close && !list.is_empty() => {
                    self.take()?;
                    return Ok(list);
                }
                _ if list.is_empty() => return self.expected("`allow`, `deny` or `force`"),
                Some(Keyword::Cap(_) | Keyword::Forward) => {
                    return self.expected(
                        "`allow`, `deny`, `force` or `}` (one capability per directive)",
                    );
                }
                _ => return self.expected("`allow`, `deny`, `force` or `}`"),
            };
            list.push(statement);
        }
    }

    fn user(mut self) -> Result<UserFile> {
        let mut file = UserFile::default();
        loop {
            let filter = match self.keyword() {
                Some(Keyword::Global) => {
                    self.take()?;
                    Filter::default()
                }
                Some(Keyword::To | Keyword::From | Keyword::Fport | Keyword::Lport) => {
                    self.filter()?
                }
                _ if self.next.tok == Tok::End => return Ok(file),
                Some(Keyword::Default | Keyword::User) => {
                    return self.expected(&format!(
                        "`global` or {FILTERS}; this belongs in the system file"
                    ));
                }
                _ => return self.expected(&format!("`global`, {FILTERS} or end of file")),
            };
            self.eat(Tok::Open, &format!("`{{` or {FILTERS}"))?;
            let action = match self.keyword() {
                Some(Keyword::Cap(Cap::Spoof | Cap::SpoofAll | Cap::SpoofPrivport)) => {
                    return self.expected("`reply`, `hide`, `random`, `random_numeric`, `numeric` or `forward`; spoofing is granted in the system file");
                }
                Some(Keyword::Cap(c)) => {
                    self.take()?;
                    match c {
                        Cap::Hide => Action::Hide,
                        Cap::Random => Action::Random,
                        Cap::RandomNumeric => Action::RandomNumeric,
                        _ => Action::Numeric,
                    }
                }
                Some(Keyword::Reply) => {
                    self.take()?;
                    Action::Reply(self.replies(USER_REPLIES_MAX, true)?)
                }
                Some(Keyword::Forward) => {
                    self.take()?;
                    Action::Forward(self.target()?)
                }
                _ => {
                    return self.expected(
                        "`reply`, `hide`, `random`, `random_numeric`, `numeric` or `forward`",
                    );
                }
            };
            self.eat(
                Tok::Close,
                "`}`; a range of a user's file holds one statement",
            )?;
            file.ranges.push(UserRange { filter, action });
        }
    }
}

pub(super) fn system(text: &[u8]) -> Result<SystemFile> {
    Parser::new(text)?.system()
}

pub(super) fn user(text: &[u8]) -> Result<UserFile> {
    Parser::new(text)?.user()
}

/// A port as oidentd reads one: a service name, or a decimal number 1-65535 in
/// strtol's syntax (leading blanks, a `+`, leading zeros). Text strtol reads as a
/// whole number is taken as one, so `0`, `-1` and `70000` are errors here rather
/// than service names no services(5) holds.
fn port(text: &str) -> std::result::Result<Port, String> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return if text.is_empty() {
            Err("an empty port".into())
        } else {
            Ok(Port::Service(text.into()))
        };
    }
    let digits = unsigned.trim_start_matches('0');
    match digits.parse::<u16>() {
        Ok(n) if n > 0 && !trimmed.starts_with('-') => Ok(Port::Number(n)),
        _ => Err(format!("port {}", quote(text))),
    }
}

fn port_of(text: &Text) -> Result<Port> {
    port(&text.value).map_err(|found| {
        (
            text.at,
            format!("{found}, expected a port 1-65535 or a service name"),
        )
    })
}

/// `N`, `lo:hi`, `lo:`, `:hi` or `:`: split at the first colon, each side a port.
fn ports_of(text: &Text) -> Result<Ports> {
    let side = |s: &str| -> Result<Option<Port>> {
        if s.is_empty() {
            return Ok(None);
        }
        port(s).map(Some).map_err(|found| {
            (
                text.at,
                format!(
                    "{found} in {}, expected a port 1-65535 or a service name",
                    quote(&text.value)
                ),
            )
        })
    };
    match text.value.split_once(':') {
        None => Ok(Ports::One(port_of(text)?)),
        Some((lo, hi)) => Ok(Ports::Range(side(lo)?, side(hi)?)),
    }
}
