//! The owner record a link lock holds, and how records written by other versions of
//! racefree are read.
//!
//! Format 1 (racefree 0.1) is six lines: the magic `racefree-lock 1`, then `host`,
//! `pid`, `boot`, `start` and `token`. Its parser reads those six lines and ignores
//! whatever follows. Format 2 keeps them byte for byte (the `pid` and `start` lines
//! name the racefree that took the lock) and adds lines after them: `format 2`, then
//! a `holder PID START` line for each other process that may hold the lock, COMMAND,
//! on the same host and boot. So during a rolling upgrade on a shared filesystem:
//!
//! - a format-1 racefree reads a format-2 record as the live racefree that took it,
//!   and waits, as it always did (it does not know the holders: once that racefree is
//!   dead it breaks the lock, even while COMMAND runs, as format 1 always did);
//! - a format-2 racefree reads a format-1 record as a lock held by its one process;
//! - a record of a later format is honoured by its first six lines, and never judged
//!   dead on them alone, since it may name holders in lines this version cannot read.

use std::fmt;

/// The first line of every record, whatever its format.
const MAGIC: &str = "racefree-lock 1";

/// The format this version writes.
pub const FORMAT: u32 = 2;

/// Who holds a link lock, as written in the lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    /// The racefree that took the lock.
    pub pid: i32,
    pub boot: String,
    /// Its start time, in clock ticks after boot (field 22 of /proc/PID/stat).
    pub start: u64,
    /// Unique to this one acquisition.
    pub token: String,
    /// The record's format: 1 for a record without a `format` line.
    pub format: u32,
    /// The other processes that may hold the lock (COMMAND), on the same host and boot.
    pub holders: Vec<Holder>,
}

/// A process named in a record, by its pid and its start time (a pid alone may have
/// been reused by another process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub start: u64,
}

impl Owner {
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{MAGIC}\nhost {}\npid {}\nboot {}\nstart {}\ntoken {}\nformat {FORMAT}\n",
            self.host, self.pid, self.boot, self.start, self.token
        );
        for h in &self.holders {
            text.push_str(&format!("holder {} {}\n", h.pid, h.start));
        }
        text
    }

    /// Parses a record of any format; `None` for anything that is not one.
    pub fn parse(text: &str) -> Option<Owner> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut field = |key: &str| -> Option<String> { value(lines.next()?, key) };
        let mut owner = Owner {
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            boot: field("boot")?,
            start: field("start")?.parse().ok()?,
            token: field("token")?,
            format: 1,
            holders: Vec::new(),
        };
        if owner.pid <= 0 {
            return None;
        }
        let Some(line) = lines.next() else {
            return Some(owner);
        };
        owner.format = value(line, "format")?.parse().ok()?;
        if owner.format < 2 {
            return None;
        }
        if owner.format > FORMAT {
            return Some(owner);
        }
        for line in lines {
            let v = value(line, "holder")?;
            let (pid, start) = v.split_once(' ')?;
            let holder = Holder {
                pid: pid.parse().ok()?,
                start: start.parse().ok()?,
            };
            if holder.pid <= 0 {
                return None;
            }
            owner.holders.push(holder);
        }
        Some(owner)
    }
}

/// The value of a `key value` line; `None` if the key differs or the value is empty.
fn value(line: &str, key: &str) -> Option<String> {
    let v = line.strip_prefix(key)?.strip_prefix(' ')?;
    (!v.is_empty()).then(|| v.to_string())
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        for h in &self.holders {
            write!(f, " and COMMAND pid {}", h.pid)?;
        }
        write!(f, " on {}", self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(holders: Vec<Holder>) -> Owner {
        Owner {
            host: "h".into(),
            pid: 7,
            boot: "b".into(),
            start: 100,
            token: "t".into(),
            format: FORMAT,
            holders,
        }
    }

    /// The parser of racefree 0.1 (format 1), kept as it was: what a racefree not yet
    /// upgraded does with the records this one writes.
    fn parse_format_1(text: &str) -> Option<(String, i32, String, u64, String)> {
        let mut lines = text.lines();
        if lines.next()? != "racefree-lock 1" {
            return None;
        }
        let mut field = |key: &str| -> Option<String> {
            let line = lines.next()?;
            let v = line.strip_prefix(key)?.strip_prefix(' ')?;
            (!v.is_empty()).then(|| v.to_string())
        };
        let owner = (
            field("host")?,
            field("pid")?.parse().ok()?,
            field("boot")?,
            field("start")?.parse().ok()?,
            field("token")?,
        );
        (owner.1 > 0).then_some(owner)
    }

    #[test]
    fn a_record_round_trips_with_its_holders() {
        let o = owner(vec![Holder { pid: 9, start: 120 }]);
        assert_eq!(
            o.to_text(),
            "racefree-lock 1\nhost h\npid 7\nboot b\nstart 100\ntoken t\nformat 2\nholder 9 120\n"
        );
        assert_eq!(Owner::parse(&o.to_text()), Some(o));
        assert_eq!(Owner::parse(&owner(vec![]).to_text()), Some(owner(vec![])));
    }

    #[test]
    fn a_format_1_racefree_reads_a_format_2_record_as_its_live_taker() {
        let o = owner(vec![Holder { pid: 9, start: 120 }]);
        assert_eq!(
            parse_format_1(&o.to_text()),
            Some(("h".into(), 7, "b".into(), 100, "t".into()))
        );
    }

    #[test]
    fn a_format_1_record_is_honoured_as_a_lock_held_by_its_one_process() {
        let text = "racefree-lock 1\nhost h\npid 7\nboot b\nstart 100\ntoken t\n";
        assert_eq!(
            Owner::parse(text),
            Some(Owner {
                format: 1,
                ..owner(vec![])
            })
        );
    }

    #[test]
    fn a_later_format_is_read_by_its_first_six_lines() {
        let text = "racefree-lock 1\nhost h\npid 7\nboot b\nstart 100\ntoken t\nformat 3\nwhatever 3 adds\n";
        assert_eq!(
            Owner::parse(text),
            Some(Owner {
                format: 3,
                ..owner(vec![])
            })
        );
    }

    #[test]
    fn anything_else_is_not_a_record() {
        let head = "racefree-lock 1\nhost h\npid 7\nboot b\nstart 100\ntoken t\n";
        for text in [
            "",
            "12345\n",
            "racefree-lock 1\nhost h\npid 0\nboot b\nstart 1\ntoken t\n",
            "racefree-lock 1\nhost h\npid 5\n",
            &format!("{head}format 1\n"),
            &format!("{head}format two\n"),
            &format!("{head}holder 9 120\n"),
            &format!("{head}format 2\nholder 9\n"),
            &format!("{head}format 2\nholder 0 120\n"),
            &format!("{head}format 2\nholder 9 120\nextra\n"),
        ] {
            assert_eq!(Owner::parse(text), None, "{text:?}");
        }
    }
}
