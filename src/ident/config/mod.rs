//! oidentd's configuration files, read and applied as oidentd 2.5 (Debian's) does:
//! the system-wide `/etc/oidentd.conf` and each user's `~/.config/oidentd.conf` or
//! `~/.oidentd.conf`. Pure: bytes in, rules and decisions out; the host's
//! databases and randomness come in through [`Names`] and [`Lookups`].
//!
//! - `lex`: the tokens (blanks, comments, quoted strings and their escapes).
//! - `parse`: the grammar, into [`ast`]; [`ast`] prints a file back.
//! - `resolve`: names looked up, directives folded into [`policy`]'s rules.
//! - [`decide`]: the answer for one connection.
//! - [`names`]: the one part that asks the system (getpwnam, getaddrinfo,
//!   getservbyname).
//!
//! # The grammar
//!
//! The system file is a list of blocks, `default { RANGES }` and `user NAME {
//! RANGES }`, each holding at least one range. A range is `default { DIRECTIVES }`
//! or a filter `{ DIRECTIVES }`, where a filter is one or more of `to HOST`,
//! `from HOST`, `fport PORTS`, `lport PORTS`, each at most once, in any order.
//! `PORTS` is `N`, `lo:hi`, `lo:`, `:hi` or `:`, each port a number or a service
//! name; `HOST` is an address or a host name (no networks). Directives, at least
//! one: `allow CAP`, `deny CAP` (one capability each), `force CAP`, `force reply
//! S...` (at most 255), `force forward HOST PORT`. CAP is `spoof`, `spoof_all`,
//! `spoof_privport`, `hide`, `random`, `random_numeric`, `numeric` or `forward`
//! (`force forward` takes its host and port).
//!
//! A user's file is a list of ranges: `global { STATEMENT }` or a filter `{
//! STATEMENT }`, each holding exactly one statement: `reply S...` (past 20 the
//! rest are dropped), `hide`, `random`, `random_numeric`, `numeric`, `forward
//! HOST PORT`. Any error in it, names that do not resolve included, and oidentd
//! ignores the whole file.
//!
//! Keywords are read in any case. Any value (a name, a host, a port, a reply) may
//! be a bare word or a quoted string; `lex` has the details.
//!
//! # Which rule applies
//!
//! For the system file: the *last* range, in file order, of the owner's `user`
//! block whose filter matches the connection; if none matches, the last matching
//! range of the `default` block. (So a `default` range goes first in its block:
//! placed last, it shadows every range above it.) A second `default` block
//! replaces the first; a second block for a user is an error. A range's
//! capabilities start from what the top-level `default` block's catch-all
//! ranges granted above it (see `resolve`). If the range's last directive is a
//! `force`, that is the answer and the user's file is not read.
//!
//! Otherwise the user's file is read, and its last matching range asks for one
//! thing, which the rule must grant (`hide`, `random`, ..., `forward`); a `reply`
//! name is checked as [`decide`] says. What is not granted, and a file that does
//! not parse, answers the real name.
//!
//! # Where racefree differs
//!
//! - oidentd crashes when no range matches (a `default` block with only filtered
//!   ranges); racefree answers the real name.
//! - A quoted string left open, or a bad escape, stops oidentd reading the file
//!   there, keeping what came before (a system file's error is logged, a user's
//!   is not); racefree refuses the whole file.
//! - Non-UTF-8 bytes in a value read as U+FFFD (oidentd keeps the bytes; no such
//!   name can go on racefree's wire anyway).

pub mod ast;
mod lex;
mod parse;

use std::fmt;

pub use ast::{Cap, SystemFile, UserFile};

/// Where oidentd looks for the system file.
pub const SYSTEM_FILE: &str = "/etc/oidentd.conf";
/// A user's file, relative to the home: the first that opens (and is owned by the
/// user) is the one read, even if it does not parse.
pub const USER_FILES: [&str; 2] = [".config/oidentd.conf", ".oidentd.conf"];
/// The largest system file read. Real ones are a few kilobytes.
pub const SYSTEM_FILE_MAX: u64 = 1 << 20;
/// The largest user file read: a user's file is input from that user.
pub const USER_FILE_MAX: u64 = 64 << 10;
/// `force reply` takes at most this many replies; one more is an error.
pub const SYSTEM_REPLIES_MAX: usize = 255;
/// A user's `reply` keeps at most this many; oidentd drops the rest silently.
pub const USER_REPLIES_MAX: usize = 20;

/// A place in a file: line and column, both from 1; a column counts characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A file that cannot be used: `FILE:LINE:COLUMN: what was found, expected what`,
/// or `FILE: what` when the trouble is not at a place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub at: Option<Pos>,
    pub what: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(Pos { line, column }) => write!(f, "{}:{line}:{column}: {}", self.file, self.what),
            None => write!(f, "{}: {}", self.file, self.what),
        }
    }
}

impl std::error::Error for ConfigError {}

fn at(file: &str) -> impl Fn((Pos, String)) -> ConfigError + '_ {
    move |(pos, what)| ConfigError {
        file: file.to_string(),
        at: Some(pos),
        what,
    }
}

/// Parses a system file; `file` names it in errors.
pub fn parse_system(text: &[u8], file: &str) -> Result<SystemFile, ConfigError> {
    parse::system(text).map_err(at(file))
}

/// Parses a user's file; `file` names it in errors.
pub fn parse_user(text: &[u8], file: &str) -> Result<UserFile, ConfigError> {
    parse::user(text).map_err(at(file))
}

#[cfg(test)]
mod tests;
