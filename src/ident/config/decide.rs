//! oidentd's answer for one connection, as a function of the two files: which
//! rule applies, whether it forces the answer, and whether the user's file may
//! have what it asks for. What needs the system (getpwnam, randomness, the user's
//! file) comes in through [`Lookups`], so the function stays testable.

use std::fmt;
use std::net::SocketAddr;

use super::ast::Grant;
use super::policy::{Caps, Choice, Connection, SystemPolicy, UserPrefs};
use super::text::{Cap, ConfigError, quote};

/// oidentd's reply buffer is 512 bytes: a longer reply loses its end.
pub const REPLY_MAX: usize = 511;

/// oidentd's random names: 11 characters from these.
const RANDOM_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 11;
/// `random_numeric` answers `user` and a number below this.
const RANDOM_NUMERIC_BELOW: u32 = 100_000;

/// What deciding needs from outside.
pub trait Lookups {
    /// getpwnam(3): the uid of the user with this name, if any.
    fn uid_of(&self, user: &str) -> Option<u32>;
    /// A number in `0..n`, uniformly (n >= 1).
    fn random_below(&mut self, n: u32) -> u32;
    /// The owner's own file, read: `None` when there is none. Called at most once
    /// a query, and only when no rule forces the answer.
    fn user_file(&mut self) -> Option<Result<UserPrefs, ConfigError>>;
}

/// The user a connection belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub uid: u32,
    pub name: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The owner's login name.
    RealName,
    /// Another name: spoofed, random or forwarded. Sent as given: oidentd puts
    /// any bytes on the wire, even a space, a colon or nothing at all.
    Name(String),
    /// `numeric`: the owner's uid, in decimal (under the usual OS field in oidentd).
    Uid(u32),
    /// `HIDDEN-USER`.
    Hidden,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::RealName => f.write_str("the real name"),
            Reply::Name(name) => write!(f, "{}", quote(name)),
            Reply::Uid(uid) => write!(f, "uid {uid}"),
            Reply::Hidden => f.write_str("HIDDEN-USER"),
        }
    }
}

/// Who chose an answer: the system file's `force`, or the user's own file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Forced,
    UserFile,
}

/// Something the server should log about a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A reply other than the real name, and whose connection it was.
    Answered {
        user: String,
        reply: Reply,
        statement: &'static str,
        source: Source,
    },
    /// The user's file asked for a capability the system file does not grant here.
    Refused {
        user: String,
        statement: &'static str,
    },
    /// The user's file spoofed another user's name without `spoof_all`.
    Masquerade { user: String, as_user: String },
    /// The user's file could not be read as oidentd.conf: the real name was answered.
    BadUserFile { user: String, error: ConfigError },
    /// No range of the system file matches, not even one of the `default` block
    /// (oidentd crashes here): answered as with no capabilities.
    NoRange { user: String },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Answered {
                user,
                reply,
                statement,
                source,
            } => {
                let by = match source {
                    Source::Forced => "forced by the system file",
                    Source::UserFile => "from the user's file",
                };
                write!(f, "answered {reply} for {user} ({statement}, {by})")
            }
            Note::Refused { user, statement } => {
                write!(
                    f,
                    "{user}'s file asks for {statement}, which the system file does not grant here: answered the real name"
                )
            }
            Note::Masquerade { user, as_user } => {
                write!(f, "user {user} tried to masquerade as user {as_user}")
            }
            Note::BadUserFile { user, error } => write!(
                f,
                "{user}'s file is not used, answered the real name: {error}"
            ),
            Note::NoRange { user } => {
                write!(
                    f,
                    "no range of the system file matches {user}'s connection (add a `default` range): answered the real name"
                )
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub reply: Reply,
    pub notes: Vec<Note>,
}

/// What to do next: answer, or first ask another identd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Done(Decision),
    Forward(Forwarding),
}

/// A `forward`: send the query's two ports to `to`, then give its answer (the
/// user id of a USERID reply, or `None` for anything else, an error or a
/// timeout) to [`Forwarding::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarding {
    pub to: SocketAddr,
    user: String,
    uid: u32,
    foreign_port: u16,
    /// The rule's capabilities when the user's file asked; `None` when forced.
    checked: Option<Caps>,
}

fn done(reply: Reply, notes: Vec<Note>) -> Step {
    Step::Done(Decision { reply, notes })
}

fn truncated(mut name: String) -> String {
    if name.len() > REPLY_MAX {
        let mut end = REPLY_MAX;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// Decides the answer for a connection that `owner` owns.
pub fn decide(
    policy: &SystemPolicy,
    conn: &Connection,
    owner: Owner<'_>,
    env: &mut dyn Lookups,
) -> Step {
    let user = owner.name.to_string();
    let Some(rule) = policy.rule_for(owner.uid, conn) else {
        return done(Reply::RealName, vec![Note::NoRange { user }]);
    };
    if let Some(choice) = &rule.forced {
        return forced(choice, owner, conn, env);
    }
    match env.user_file() {
        None => done(Reply::RealName, Vec::new()),
        Some(Err(error)) => done(Reply::RealName, vec![Note::BadUserFile { user, error }]),
        Some(Ok(prefs)) => match prefs.choice_for(conn) {
            None => done(Reply::RealName, Vec::new()),
            Some(choice) => asked(choice, rule.caps, owner, conn, env),
        },
    }
}

/// The answer a `force` gives: no capability checked, the user's file unread.
fn forced(choice: &Choice, owner: Owner<'_>, conn: &Connection, env: &mut dyn Lookups) -> Step {
    let reply = match choice {
        Choice::RealName => return done(Reply::RealName, Vec::new()),
        Choice::Forward(to) => return Step::Forward(forwarding(*to, owner, conn, None)),
        Choice::Reply(list) => Reply::Name(truncated(pick(list, env).to_string())),
        other => generated(other, owner, env),
    };
    let note = answered(owner, &reply, choice.word(), Source::Forced);
    done(reply, note.into_iter().collect())
}

/// The answer when the user's file asks for `choice` and the rule grants `caps`.
fn asked(
    choice: &Choice,
    caps: Caps,
    owner: Owner<'_>,
    conn: &Connection,
    env: &mut dyn Lookups,
) -> Step {
    let mut notes = Vec::new();
    let granted = |cap| caps.has(Grant::Cap(cap));
    let reply = match choice {
        Choice::Forward(to) if caps.has(Grant::Forward) => {
            return Step::Forward(forwarding(*to, owner, conn, Some(caps)));
        }
        Choice::Reply(list) => {
            let name = pick(list, env);
            if may_reply_with(caps, owner, name, conn.foreign.port(), &*env, &mut notes) {
                Reply::Name(truncated(name.to_string()))
            } else {
                Reply::RealName
            }
        }
        Choice::Hide if granted(Cap::Hide) => Reply::Hidden,
        Choice::Random if granted(Cap::Random) => generated(choice, owner, env),
        Choice::RandomNumeric if granted(Cap::RandomNumeric) => generated(choice, owner, env),
        Choice::Numeric if granted(Cap::Numeric) => generated(choice, owner, env),
        _ => {
            let user = owner.name.to_string();
            notes.push(Note::Refused {
                user,
                statement: choice.word(),
            });
            Reply::RealName
        }
    };
    notes.extend(answered(owner, &reply, choice.word(), Source::UserFile));
    done(reply, notes)
}

/// One of a `reply` list, drawn as oidentd draws it.
fn pick<'a>(list: &'a [String], env: &mut dyn Lookups) -> &'a str {
    &list[env.random_below(list.len() as u32) as usize]
}

/// The note for a reply other than the owner's name, if it is one.
fn answered(
    owner: Owner<'_>,
    reply: &Reply,
    statement: &'static str,
    source: Source,
) -> Option<Note> {
    let own_name = matches!(reply, Reply::Name(name) if name == owner.name);
    (*reply != Reply::RealName && !own_name).then(|| Note::Answered {
        user: owner.name.to_string(),
        reply: reply.clone(),
        statement,
        source,
    })
}

/// `hide`, `random`, `random_numeric`, `numeric`, drawn where random.
fn generated(choice: &Choice, owner: Owner<'_>, env: &mut dyn Lookups) -> Reply {
    match choice {
        Choice::Hide => Reply::Hidden,
        Choice::Numeric => Reply::Uid(owner.uid),
        Choice::RandomNumeric => {
            Reply::Name(format!("user{}", env.random_below(RANDOM_NUMERIC_BELOW)))
        }
        Choice::Random => Reply::Name(
            (0..RANDOM_LEN)
                .map(|_| {
                    char::from(
                        RANDOM_ALPHABET[env.random_below(RANDOM_ALPHABET.len() as u32) as usize],
                    )
                })
                .collect(),
        ),
        Choice::RealName | Choice::Reply(_) | Choice::Forward(_) => {
            unreachable!("not a generated reply: {choice:?}")
        }
    }
}

fn forwarding(
    to: SocketAddr,
    owner: Owner<'_>,
    conn: &Connection,
    checked: Option<Caps>,
) -> Forwarding {
    Forwarding {
        to,
        user: owner.name.to_string(),
        uid: owner.uid,
        foreign_port: conn.foreign.port(),
        checked,
    }
}

/// oidentd's check of a name the user's file asks to send: the user's own name
/// always; another user's name only with `spoof_all`; any other name with `spoof`,
/// and toward a foreign port below 1024 only with `spoof_privport` as well.
/// (`spoof_all` without `spoof` lets no name through but the user's own.)
fn may_reply_with(
    caps: Caps,
    owner: Owner<'_>,
    name: &str,
    foreign_port: u16,
    env: &dyn Lookups,
    notes: &mut Vec<Note>,
) -> bool {
    let user = || owner.name.to_string();
    if let Some(uid) = env.uid_of(name) {
        if uid == owner.uid {
            return true;
        }
        if !caps.has(Grant::Cap(Cap::SpoofAll)) {
            notes.push(Note::Masquerade {
                user: user(),
                as_user: name.to_string(),
            });
            return false;
        }
    }
    let allowed = caps.has(Grant::Cap(Cap::Spoof))
        && (foreign_port >= 1024 || caps.has(Grant::Cap(Cap::SpoofPrivport)));
    if !allowed {
        notes.push(Note::Refused {
            user: user(),
            statement: "reply",
        });
    }
    allowed
}

impl Forwarding {
    /// One rebuilt from its parts ([`Forwarding::owner`], [`Forwarding::foreign_port`],
    /// [`Forwarding::checked`]): for a server that decides in one process and asks
    /// the other identd from another.
    pub fn from_parts(
        to: SocketAddr,
        owner: Owner<'_>,
        foreign_port: u16,
        checked: Option<Caps>,
    ) -> Forwarding {
        Forwarding {
            to,
            user: owner.name.to_string(),
            uid: owner.uid,
            foreign_port,
            checked,
        }
    }

    /// Whose connection it is.
    pub fn owner(&self) -> Owner<'_> {
        Owner {
            uid: self.uid,
            name: &self.user,
        }
    }

    /// The query's foreign port: below 1024, a name needs `spoof_privport`.
    pub fn foreign_port(&self) -> u16 {
        self.foreign_port
    }

    /// What the rule granted when the user's file asked for the forward; `None`
    /// when the system file forced it.
    pub fn checked(&self) -> Option<Caps> {
        self.checked
    }

    /// The answer, given what the other identd said. Forced: its user id, or
    /// HIDDEN-USER when it gave none. Asked for by the user's file: its user id if
    /// the user may send that name (as for `reply`), else the real name; when it
    /// gave none, HIDDEN-USER if the user may hide, else the real name.
    pub fn finish(self, answer: Option<&str>, env: &dyn Lookups) -> Decision {
        let owner = Owner {
            uid: self.uid,
            name: &self.user,
        };
        let mut notes = Vec::new();
        let (reply, source) = match (self.checked, answer) {
            (None, Some(name)) => (Reply::Name(truncated(name.to_string())), Source::Forced),
            (None, None) => (Reply::Hidden, Source::Forced),
            (Some(caps), Some(name))
                if may_reply_with(caps, owner, name, self.foreign_port, env, &mut notes) =>
            {
                (Reply::Name(truncated(name.to_string())), Source::UserFile)
            }
            (Some(caps), None) if caps.has(Grant::Cap(Cap::Hide)) => {
                (Reply::Hidden, Source::UserFile)
            }
            (Some(_), _) => (Reply::RealName, Source::UserFile),
        };
        notes.extend(answered(owner, &reply, "forward", source));
        Decision { reply, notes }
    }
}
