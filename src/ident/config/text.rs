//! What every part of the config reader shares: where a thing is in a file
//! ([`Pos`]), what is wrong with a file ([`ConfigError`]), the capabilities' words,
//! how a value is quoted, and the limits oidentd sets on replies.

use std::fmt::{self, Write as _};

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

/// The capabilities oidentd reads as one word each (`forward` is a keyword of its
/// own, since `force forward` takes a host and a port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cap {
    Spoof,
    SpoofAll,
    SpoofPrivport,
    Hide,
    Random,
    RandomNumeric,
    Numeric,
}

impl Cap {
    /// The word oidentd reads for it.
    pub fn word(self) -> &'static str {
        match self {
            Cap::Spoof => "spoof",
            Cap::SpoofAll => "spoof_all",
            Cap::SpoofPrivport => "spoof_privport",
            Cap::Hide => "hide",
            Cap::Random => "random",
            Cap::RandomNumeric => "random_numeric",
            Cap::Numeric => "numeric",
        }
    }

    pub const ALL: [Cap; 7] = [
        Cap::Spoof,
        Cap::SpoofAll,
        Cap::SpoofPrivport,
        Cap::Hide,
        Cap::Random,
        Cap::RandomNumeric,
        Cap::Numeric,
    ];
}

/// A value as a quoted string that reads back as itself: `"` and `\` escaped, and
/// every control character as `\xNN` (two digits, so a hex digit after it is not
/// taken into the escape).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
