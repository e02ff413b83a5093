//! oidentd's configuration files, read and applied as oidentd 2.5 (Debian's) does:
//! the system-wide `/etc/oidentd.conf` and each user's `~/.config/oidentd.conf` or
//! `~/.oidentd.conf`. Pure: bytes in, rules and decisions out; the host's
//! databases and randomness come in through [`Names`] and [`Lookups`].
//!
//! - `lex`: the tokens (blanks, comments, quoted strings and their escapes).
//! - `parse`: the grammar, into [`ast`]; [`ast`] prints a file back.
//! - `resolve`: names looked up, directives folded into [`policy`]'s rules.
//! - [`mod@decide`]: the answer for one connection.
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
//! name is checked as [`mod@decide`] says. What is not granted, and a file that does
//! not parse, answers the real name.
//!
//! # Where racefree differs
//!
//! - oidentd crashes when no range matches (a `default` block with only filtered
//!   ranges); racefree answers the real name.
//! - A quoted string left open, or a bad escape, ends oidentd's reading of the
//!   file there: between blocks it keeps the blocks above and drops the rest
//!   (logging it for the system file, silently for a user's), inside a block it
//!   is a syntax error. racefree refuses the whole file.
//! - oidentd keeps the inherited capabilities of one reading of the system file
//!   into the next (on SIGHUP), so blocks above the `default` block inherit from
//!   the previous reading; racefree reads each time afresh.
//! - Non-UTF-8 bytes in a value read as U+FFFD (oidentd keeps the bytes; no such
//!   name can go on racefree's wire anyway).

pub mod ast;
pub mod decide;
mod lex;
pub mod names;
mod parse;
pub mod policy;
mod resolve;
mod text;

use std::io::Read;
use std::path::Path;

pub use ast::{SystemFile, UserFile};
pub use decide::{Decision, Forwarding, Lookups, Note, Owner, Reply, Source, Step, decide};
pub use names::{Names, SystemNames};
pub use policy::{Connection, SystemPolicy, UserPrefs};
pub use text::{Cap, ConfigError, Pos, SYSTEM_REPLIES_MAX, USER_REPLIES_MAX, quote};

/// Where oidentd looks for the system file.
pub const SYSTEM_FILE: &str = "/etc/oidentd.conf";
/// A user's file, relative to the home: the first that opens (and is owned by the
/// user) is the one read, even if it does not parse.
pub const USER_FILES: [&str; 2] = [".config/oidentd.conf", ".oidentd.conf"];
/// The largest system file read. Real ones are a few kilobytes.
pub const SYSTEM_FILE_MAX: u64 = 1 << 20;
/// The largest user file read: a user's file is input from that user.
pub const USER_FILE_MAX: u64 = 64 << 10;
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

impl SystemFile {
    /// Looks its names up (users and hosts exist, services are known) and folds
    /// its directives into rules.
    pub fn resolve(&self, file: &str, names: &dyn Names) -> Result<SystemPolicy, ConfigError> {
        resolve::system(self, names).map_err(at(file))
    }
}

impl UserFile {
    pub fn resolve(&self, file: &str, names: &dyn Names) -> Result<UserPrefs, ConfigError> {
        resolve::user(self, names).map_err(at(file))
    }
}

/// Reads at most `max` bytes; a longer input is an error, not a prefix. Reads
/// one byte past `max` to tell, never more, whatever the input is (a FIFO, a
/// device, a file still growing).
pub fn read_bounded(reader: impl Read, max: u64, file: &str) -> Result<Vec<u8>, ConfigError> {
    let error = |what: String| ConfigError {
        file: file.to_string(),
        at: None,
        what,
    };
    let mut bytes = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(error(format!("larger than {max} bytes, the most read")));
    }
    Ok(bytes)
}

/// Reads, parses and resolves a user's file from an already opened reader (the
/// caller opens it as its owner, without following links); `file` names it in
/// errors.
pub fn read_user(
    reader: impl Read,
    file: &str,
    names: &dyn Names,
) -> Result<UserPrefs, ConfigError> {
    let text = read_bounded(reader, USER_FILE_MAX, file)?;
    parse_user(&text, file)?.resolve(file, names)
}

/// Reads, parses and resolves the system file at `path`. `Ok(None)` when there is
/// no such file: oidentd answers real names then if the path is its default one,
/// and refuses to start if the path was given; the caller picks.
pub fn load_system(path: &Path, names: &dyn Names) -> Result<Option<SystemPolicy>, ConfigError> {
    let file = path.display().to_string();
    let reader = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError {
                file,
                at: None,
                what: format!("cannot be opened: {e}"),
            });
        }
    };
    let text = read_bounded(reader, SYSTEM_FILE_MAX, &file)?;
    parse_system(&text, &file)?.resolve(&file, names).map(Some)
}

#[cfg(test)]
mod tests;
