//! What a killed `lock --nfs` leaves beside its link lock, and the rule that removes it.
//!
//! Taking the link lock L (`LOCKFILE.nfslock`) writes the owner record under an aside
//! name, `L.STAMP.tmp`, links it to L and removes the aside. A taker killed between
//! creating the aside and removing it leaves the aside behind, whole, half written or
//! empty. A breaker takes the breaker lock `L.break-T` the same way, through
//! `L.break-T.STAMP.tmp`; killed while it holds `L.break-T`, it leaves that lock, and
//! nobody judges it again once L no longer holds token T.
//!
//! STAMP names the taker as `write`'s temporary files name their writer
//! ([`leftovers`]): host, boot, pid and start time. So the name alone says whether
//! the taker lives, even for an aside killed before its first byte.
//!
//! The rule, applied to the names in L's directory by every racefree that has just
//! taken L (listing a big directory only sometimes, by `write`'s rule,
//! [`leftovers::worth_listing`]):
//! - an aside, `L.[break-T.]...STAMP.tmp`: removed when its taker is provably dead,
//!   or, when that cannot be told (another host, or a name of racefree before 0.2,
//!   `L.T.tmp`), once unmodified for [`FOREIGN_AGE`] ([`leftovers::decide`]). An
//!   aside is never a lock: a link made from it is another name of the same file,
//!   which removing the aside leaves in place.
//! - a breaker lock, `L.break-T[.break-U...]`: removed when every process its record
//!   names is provably dead ([`judge`]), or, when that cannot be told (another host,
//!   no record), once unmodified for [`FOREIGN_AGE`]. This is safe while we hold L:
//!   L holds our own fresh token, and no lock ever holds T again, so whoever holds
//!   `L.break-T`, before or after we remove it, re-reads L, finds another token and
//!   breaks nothing.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::dir::Dir;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::record::{Record, judge, read_owner};
use crate::owner::{self, Verdict};
use crate::write::leftovers::{self, FOREIGN_AGE};

/// A fresh aside name for the lock whose name is `lock`: `lock.STAMP.tmp`.
pub fn aside_for(lock: &Path) -> std::path::PathBuf {
    let mut name = lock.as_os_str().to_os_string();
    name.push(format!(".{}.tmp", leftovers::stamp()));
    name.into()
}

/// What a name beside L is, from what follows `L.`.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// An aside, by the stamp in its name.
    Aside(leftovers::Kind),
    /// A breaker lock.
    Breaker,
    /// Not a name this rule touches.
    Other,
}

/// Classifies the part of a name after `L.`.
pub fn classify(rest: &[u8]) -> Kind {
    let Ok(mut rest) = std::str::from_utf8(rest) else {
        return Kind::Other;
    };
    while let Some(after) = rest.strip_prefix("break-") {
        let Some((token, tail)) = after.split_at_checked(16) else {
            return Kind::Other;
        };
        if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Kind::Other;
        }
        match tail.strip_prefix('.') {
            _ if tail.is_empty() => return Kind::Breaker,
            Some(next) => rest = next,
            None => return Kind::Other,
        }
    }
    match rest
        .strip_suffix(".tmp")
        .map(|s| leftovers::parse(s.as_bytes()))
    {
        None | Some(leftovers::Kind::Other) => Kind::Other,
        Some(stamp) => Kind::Aside(stamp),
    }
}

/// Removes what dead takers and breakers of `lock` left beside it (see the module's
/// comment). Best effort: a name that cannot be examined or removed stays for a
/// later call. Call only while holding `lock`.
pub fn remove_dead(lock: &Path) {
    let (dir, Some(name)) = (lock.parent(), lock.file_name()) else {
        return;
    };
    let dir = match dir {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let Ok(fd) = open(dir, flags, Mode::empty()) else {
        return;
    };
    match fstat(&fd) {
        Ok(st) if leftovers::worth_listing(st.st_size.max(0) as u64, leftovers::random_u64()) => {}
        _ => return,
    }
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(b'.');
    let stamps = leftovers::judge_from_here();
    let Ok(mut listing) = Dir::openat(fd.as_fd(), c".", flags, Mode::empty()) else {
        return;
    };
    let now = SystemTime::now();
    // This host, read from /proc once, and only if a breaker lock is found.
    let here = std::cell::OnceCell::new();
    for entry in listing.iter().flatten() {
        let entry_name = entry.file_name();
        let Some(rest) = entry_name.to_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let kind = classify(rest);
        if kind == Kind::Other {
            continue;
        }
        // An aside may have two names (its taker died between link and unlink).
        let Some((age, _)) = leftovers::regular_file_age(&fd, entry_name, now) else {
            continue;
        };
        let dead = match kind {
            Kind::Aside(stamp) => leftovers::decide(&stamp, age, &stamps, owner::process),
            Kind::Breaker => {
                let path = dir.join(OsStr::from_bytes(entry_name.to_bytes()));
                breaker_is_dead(&path, age, here.get_or_init(owner::here).as_ref().ok())
            }
            Kind::Other => false,
        };
        if dead {
            let _ = unlinkat(&fd, entry_name, UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Whether the breaker lock at `path`, last modified `age` ago, is a dead breaker's.
fn breaker_is_dead(path: &Path, age: Duration, here: Option<&owner::Here>) -> bool {
    let judged = match (read_owner(path), here) {
        (Ok(Record::Owner(o)), Some(here)) => judge(&o, here, owner::process),
        (Ok(Record::Absent), _) => return false,
        _ => Verdict::Unknown(String::new()),
    };
    match judged {
        Verdict::Live => false,
        Verdict::Stale(_) => true,
        Verdict::Unknown(_) => age >= FOREIGN_AGE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_by_their_whole_shape() {
        let stamp = "0a1b2c3d-0a1b2c3d-42-1234-deadbeef";
        let token = "0123456789abcdef";
        assert!(matches!(
            classify(format!("{stamp}.tmp").as_bytes()),
            Kind::Aside(leftovers::Kind::Stamped(s)) if s.pid == 42 && s.start == 1234
        ));
        assert_eq!(
            classify(format!("{token}.tmp").as_bytes()),
            Kind::Aside(leftovers::Kind::Unstamped),
            "racefree 0.1's asides"
        );
        assert!(matches!(
            classify(format!("break-{token}.break-{token}.{stamp}.tmp").as_bytes()),
            Kind::Aside(leftovers::Kind::Stamped(_))
        ));
        assert_eq!(classify(format!("break-{token}").as_bytes()), Kind::Breaker);
        assert_eq!(
            classify(format!("break-{token}.break-{token}").as_bytes()),
            Kind::Breaker
        );
        for other in [
            "tmp".to_string(),
            ".tmp".to_string(),
            stamp.to_string(),
            format!("{stamp}.tmp.x"),
            format!("break-{token}x"),
            format!("break-{}", &token[1..]),
            format!("break-{token}.notes"),
            "break-0123456789abcdeg".to_string(),
            "notes.tmp".to_string(),
        ] {
            assert_eq!(classify(other.as_bytes()), Kind::Other, "{other}");
        }
    }
}
