//! The two files as written: what the parser reads and the printer writes back.
//! Names (users, hosts, services) are kept as text; resolving looks them up
//! ([`SystemFile::resolve`], [`UserFile::resolve`]).
//!
//! Printing is canonical: one statement a line, filters in the order `to from fport
//! lport`, every string quoted. What a file means survives printing and reading
//! back; its comments and layout do not.

use std::fmt;

use super::text::{Cap, Pos, quote};

/// A value and where it was written. Two are equal when their values are: where a
/// value stands is not part of what it means.
#[derive(Clone, Debug, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub at: Pos,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

pub type Text = Spanned<String>;

/// What `allow` and `deny` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    Cap(Cap),
    Forward,
}

/// One port, as written: a number, or a service name for services(5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Port {
    Number(u16),
    Service(String),
}

/// `fport` and `lport`: one port, or `lo:hi` with either end left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ports {
    One(Port),
    Range(Option<Port>, Option<Port>),
}

/// Which connections a range applies to. All four absent: the range is `default`
/// (in the system file) or `global` (in a user's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub to: Option<Text>,
    pub from: Option<Text>,
    pub fport: Option<Spanned<Ports>>,
    pub lport: Option<Spanned<Ports>>,
}

impl Filter {
    pub fn is_catch_all(&self) -> bool {
        *self == Filter::default()
    }
}

/// `forward HOST PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: Text,
    pub port: Spanned<Port>,
}

/// A capability directive of the system file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    Allow(Grant),
    Deny(Grant),
    Force(Cap),
    ForceReply(Vec<Text>),
    ForceForward(Target),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemRange {
    pub filter: Filter,
    /// At least one.
    pub statements: Vec<Statement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Default,
    User(Text),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub owner: Owner,
    /// At least one.
    pub ranges: Vec<SystemRange>,
}

/// The system-wide file: `default { ... }` and `user NAME { ... }` blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemFile {
    pub blocks: Vec<Block>,
}

/// The one statement of a range in a user's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Hide,
    Random,
    RandomNumeric,
    Numeric,
    /// At most [`super::text::USER_REPLIES_MAX`]: oidentd drops the rest.
    Reply(Vec<Text>),
    Forward(Target),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRange {
    pub filter: Filter,
    pub action: Action,
}

/// A user's file: `global { ... }` and ranges, one statement each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFile {
    pub ranges: Vec<UserRange>,
}

fn cap_word(cap: Cap) -> &'static str {
    cap.word()
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Service(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for Ports {
    /// Numbers bare (`1024:`), anything with a service name as one quoted string,
    /// since the range is one token that oidentd splits at its first colon.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |p: &Option<Port>| p.as_ref().map(Port::to_string).unwrap_or_default();
        let (text, numeric) = match self {
            Ports::One(p) => (p.to_string(), matches!(p, Port::Number(_))),
            Ports::Range(lo, hi) => (
                format!("{}:{}", side(lo), side(hi)),
                [lo, hi]
                    .iter()
                    .all(|p| !matches!(p, Some(Port::Service(_)))),
            ),
        };
        if numeric {
            f.write_str(&text)
        } else {
            f.write_str(&quote(&text))
        }
    }
}

fn port_value(port: &Port) -> String {
    match port {
        Port::Number(n) => n.to_string(),
        Port::Service(s) => quote(s),
    }
}

impl fmt::Display for Filter {
    /// The range's head, `default` or `global` aside.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if let Some(to) = &self.to {
            words.push(format!("to {}", quote(&to.value)));
        }
        if let Some(from) = &self.from {
            words.push(format!("from {}", quote(&from.value)));
        }
        if let Some(p) = &self.fport {
            words.push(format!("fport {}", p.value));
        }
        if let Some(p) = &self.lport {
            words.push(format!("lport {}", p.value));
        }
        f.write_str(&words.join(" "))
    }
}

fn replies(list: &[Text]) -> String {
    list.iter()
        .map(|t| quote(&t.value))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grant = |g: &Grant| match g {
            Grant::Cap(c) => cap_word(*c),
            Grant::Forward => "forward",
        };
        match self {
            Statement::Allow(g) => write!(f, "allow {}", grant(g)),
            Statement::Deny(g) => write!(f, "deny {}", grant(g)),
            Statement::Force(c) => write!(f, "force {}", cap_word(*c)),
            Statement::ForceReply(list) => write!(f, "force reply {}", replies(list)),
            Statement::ForceForward(t) => {
                write!(
                    f,
                    "force forward {} {}",
                    quote(&t.host.value),
                    port_value(&t.port.value)
                )
            }
        }
    }
}

impl fmt::Display for SystemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for block in &self.blocks {
            match &block.owner {
                Owner::Default => writeln!(f, "default {{")?,
                Owner::User(name) => writeln!(f, "user {} {{", quote(&name.value))?,
            }
            for range in &block.ranges {
                if range.filter.is_catch_all() {
                    writeln!(f, "\tdefault {{")?;
                } else {
                    writeln!(f, "\t{} {{", range.filter)?;
                }
                for s in &range.statements {
                    writeln!(f, "\t\t{s}")?;
                }
                writeln!(f, "\t}}")?;
            }
            writeln!(f, "}}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Hide => f.write_str("hide"),
            Action::Random => f.write_str("random"),
            Action::RandomNumeric => f.write_str("random_numeric"),
            Action::Numeric => f.write_str("numeric"),
            Action::Reply(list) => write!(f, "reply {}", replies(list)),
            Action::Forward(t) => {
                write!(
                    f,
                    "forward {} {}",
                    quote(&t.host.value),
                    port_value(&t.port.value)
                )
            }
        }
    }
}

impl fmt::Display for UserFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for range in &self.ranges {
            let head = if range.filter.is_catch_all() {
                "global".to_string()
            } else {
                range.filter.to_string()
            };
            writeln!(f, "{head} {{\n\t{}\n}}", range.action)?;
        }
        Ok(())
    }
}
