//! Who may be named: the disclosure policy, as pure functions over what the lookup,
//! the password database and the home check found. No I/O here: `super::owner`
//! gathers the facts (in the privileged helper under `--user`), these decide.
//!
//! The rules, like oidentd's and pidentd's:
//! - `--hide-all` and `--hide USER` hide, whatever else is true.
//! - A `~/.noident` (any kind of file, even a dangling symlink) hides its owner.
//! - A home that does not exist, or is not a directory, cannot hold a `.noident`:
//!   its user is named (nobody, home `/nonexistent`, is `USERID : UNIX : nobody`).
//! - Fail closed, answering HIDDEN-USER, only when a check could not be made: the
//!   password database could not be read, or the home or its `.noident` could not
//!   be examined (EACCES, EIO, ELOOP, ...), or the home is not an absolute path.
//! - A uid with no password entry has no home that could ask to be hidden: it is
//!   answered by number, as is a name that cannot go on the wire, and every owner
//!   under `--numeric`.
//!
//! Then oidentd's reply options ([`Overrides`]), on the answer as decided:
//! `--reply-all` answers before anything is looked up, `--reply` replaces NO-USER
//! and a failed lookup's UNKNOWN-ERROR (never HIDDEN-USER: a hidden user stays
//! hidden), and `--error` turns every error left into UNKNOWN-ERROR.

use super::super::config::Forwarding;
use super::super::nat::Forward;
use super::super::proto::{self, Answer, ErrorToken};

/// What looking in a home for `.noident` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomeCheck {
    /// The home is a directory we could search, and it holds no `.noident`.
    NoNoident,
    /// `.noident` exists in the home.
    Noident,
    /// The home does not exist or is not a directory: nothing there can ask to be hidden.
    NoHome,
    /// The home or its `.noident` could not be examined (EACCES, EIO, ELOOP, a
    /// relative home path): we do not know.
    CouldNotCheck,
}

/// Whether a home check lets its user be named.
pub fn home_allows_naming(home: HomeCheck) -> bool {
    match home {
        HomeCheck::NoNoident | HomeCheck::NoHome => true,
        HomeCheck::Noident | HomeCheck::CouldNotCheck => false,
    }
}

/// What the password database said about the owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passwd {
    /// An entry: its name, and whether its home check allows naming
    /// ([`home_allows_naming`]).
    Entry { name: String, may_be_named: bool },
    /// No entry for this uid.
    NoEntry,
    /// The database could not be read (NSS down, say).
    Unreadable,
}

/// Everything the policy needs to answer one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Findings {
    /// No socket with that 4-tuple has an owner.
    NoOwner,
    /// The lookup itself failed (already logged where it happened).
    LookupFailed,
    Owner {
        uid: u32,
        passwd: Passwd,
    },
    /// An answer decided where it was found, which already applied the rules that
    /// concern it: `--nat` answered for a connection that is no socket of this host
    /// (a container's user, a forwarded reply, an error; `--hide-all` and
    /// `--numeric` applied, while `--hide` and `.noident` are about this host's
    /// users, and a container's uids are its own); or `--config`'s files gave
    /// this host's user another name, a number or HIDDEN-USER (for a user
    /// `--hide` and `--hide-all` do not hide).
    Decided(Answer),
    /// `--nat --forward`: the connection came from a host behind this one, whose
    /// identd is to be asked and its answer relayed. Not a decision: the server
    /// makes that query itself ([`super::super::nat::forwarded`]), on the side
    /// that holds no privilege, and [`decide`] is never given this.
    Forward(Forward),
    /// `--config`: the files say to ask another identd about the same two ports
    /// and to judge its answer ([`Forwarding::finish`]). Asked, like
    /// [`Findings::Forward`], by the side that holds no privilege.
    ConfigForward(Forwarding),
}

/// The operator's rules: `--hide-all`, `--hide`, `--numeric`.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub hide_all: bool,
    pub hide_uids: &'a [u32],
    pub numeric: bool,
}

impl Rules<'_> {
    /// Whether `--hide-all` or `--hide` hides `uid`, whatever else is true.
    pub fn hides(&self, uid: u32) -> bool {
        self.hide_all || self.hide_uids.contains(&uid)
    }
}

/// The answer to a request, from the operator's rules and what was found.
pub fn decide(rules: Rules<'_>, found: &Findings) -> Answer {
    let (uid, passwd) = match found {
        Findings::NoOwner => return Answer::Error(ErrorToken::NoUser),
        Findings::LookupFailed => return Answer::Error(ErrorToken::UnknownError),
        Findings::Owner { uid, passwd } => (*uid, passwd),
        Findings::Decided(answer) => return answer.clone(),
        // The server asks first; should it ever get here, nobody is named.
        Findings::Forward(_) | Findings::ConfigForward(_) => {
            return Answer::Error(ErrorToken::UnknownError);
        }
    };
    if rules.hides(uid) {
        return Answer::Error(ErrorToken::HiddenUser);
    }
    match passwd {
        Passwd::Unreadable
        | Passwd::Entry {
            may_be_named: false,
            ..
        } => Answer::Error(ErrorToken::HiddenUser),
        Passwd::Entry {
            name,
            may_be_named: true,
        } if !rules.numeric && proto::is_wire_safe(name) => Answer::User(name.clone()),
        // No entry, --numeric, or a name that cannot go on the wire.
        Passwd::Entry { .. } | Passwd::NoEntry => Answer::Uid(uid),
    }
}

/// oidentd's `--reply-all`, `--reply` and `--error`: what an answer becomes on its
/// way out, whatever was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--reply-all`: every well-formed request is answered with this user id, and
    /// nothing is looked up.
    pub reply_all: Option<String>,
    /// `--reply`: this user id instead of NO-USER or a failed lookup's UNKNOWN-ERROR.
    pub on_failure: Option<String>,
    /// `--error`: every ERROR is UNKNOWN-ERROR, so a querier cannot tell a hidden
    /// user from an absent one, nor a malformed request from either.
    pub errors_unknown: bool,
}

impl Overrides {
    /// The answer to any well-formed request, fixed before a lookup: `--reply-all`'s.
    pub fn fixed(&self) -> Option<Answer> {
        self.reply_all.clone().map(Answer::User)
    }

    /// `answer` as it is sent.
    pub fn apply(&self, answer: Answer) -> Answer {
        let answer = match (answer, &self.on_failure) {
            (Answer::Error(ErrorToken::NoUser | ErrorToken::UnknownError), Some(user)) => {
                Answer::User(user.clone())
            }
            (answer, _) => answer,
        };
        match answer {
            Answer::Error(_) if self.errors_unknown => Answer::Error(ErrorToken::UnknownError),
            answer => answer,
        }
    }
}

#[cfg(test)]
mod tests;
