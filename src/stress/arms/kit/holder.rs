//! A lock holder that logs its hold and checks it holds the lock itself: the
//! COMMAND a lock arm runs under `racefree lock`, and the reading of its log.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// A lock holder, the COMMAND a lock arm runs under `racefree lock`: logs its entry
/// in `log`, works a while (up to 2 ms, as a real holder would, so that a second
/// holder let in early acts before it leaves), then logs its exit, each line one
/// append. At its entry and at its exit it checks that it holds the lock itself,
/// as COMMAND must to outlive racefree's death ([`holds_lock`]); [`read_log`]
/// judges the log.
pub fn hold(log: &Path, lockfile: &Path, nfs: bool) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .with_context(|| format!("opening '{}'", log.display()))?;
    let id = crate::write::random_u64();
    let line = |what: &str| {
        let unheld = if holds_lock(lockfile, nfs) {
            ""
        } else {
            " unheld"
        };
        format!("{what} {id:016x}{unheld}\n")
    };
    f.write_all(line("enter").as_bytes())?;
    std::thread::sleep(Duration::from_micros(id % 2000));
    f.write_all(line("exit").as_bytes())?;
    Ok(())
}

/// Whether this process holds the lock on `lockfile` itself: a link lock whose
/// record names it (`--nfs`, or a filesystem without flock), or, unless `nfs`, a
/// write lock held by a descriptor it has (the kernel lists each open file's
/// locks in /proc/self/fdinfo).
pub fn holds_lock(lockfile: &Path, nfs: bool) -> bool {
    let me = format!("holder {} ", std::process::id());
    let named = std::fs::read_to_string(crate::lock::nfs::dotlock_path(lockfile))
        .is_ok_and(|r| r.lines().any(|l| l.starts_with(&me)));
    if named || nfs {
        return named;
    }
    let (Ok(want), Ok(fds)) = (
        std::fs::metadata(lockfile),
        std::fs::read_dir("/proc/self/fd"),
    ) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        let info = Path::new("/proc/self/fdinfo").join(fd.file_name());
        std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == (want.dev(), want.ino()))
            && std::fs::read_to_string(info).is_ok_and(|i| {
                i.lines()
                    .any(|l| l.starts_with("lock:") && l.contains(" WRITE "))
            })
    })
}

/// What a holders' log shows.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Holds {
    pub holders: u64,
    /// Holders that entered and never left: killed holding the lock.
    pub died_holding: u64,
    /// Lines of a holder while another held the lock (or no holder's at all).
    pub overlaps: u64,
    /// Holders that found they did not hold the lock.
    pub unheld: u64,
    pub problems: Vec<String>,
}

/// Reads a holders' log ([`hold`]): `enter ID` and `exit ID` lines, `unheld` after
/// them when the holder did not hold the lock. A holder's exit comes right after
/// its own entry: any line between is another holder acting while it held the lock.
pub fn read_log(log: &[u8]) -> Holds {
    let mut h = Holds::default();
    let text = String::from_utf8_lossy(log);
    let (mut entered, mut exited) = (BTreeSet::new(), BTreeSet::new());
    let mut inside = None;
    for (n, line) in text.lines().enumerate() {
        let mut bad = |count: &mut u64, why: String| {
            *count += 1;
            if h.problems.len() < 3 {
                h.problems
                    .push(format!("holders' log, line {}: {why}", n + 1));
            }
        };
        let words: Vec<&str> = line.split(' ').collect();
        let (what, id) = match words[..] {
            [w @ ("enter" | "exit"), id] => (w, id),
            [w @ ("enter" | "exit"), id, "unheld"] => {
                bad(
                    &mut h.unheld,
                    format!("holder {id} did not hold the lock at its {w}"),
                );
                (w, id)
            }
            _ => {
                bad(&mut h.overlaps, format!("{line:?} is no holder's line"));
                inside = None;
                continue;
            }
        };
        if what == "exit" {
            exited.insert(id);
            if inside != Some(id) {
                bad(
                    &mut h.overlaps,
                    format!(
                        "holder {id} left after another holder's line: two held the lock at once"
                    ),
                );
            }
        } else {
            entered.insert(id);
        }
        inside = (what == "enter").then_some(id);
    }
    h.holders = entered.len() as u64;
    h.died_holding = entered.difference(&exited).count() as u64;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_shows_holders_killed_inside_two_at_once_and_one_without_the_lock() {
        let log = b"enter a\nexit a\nenter b\nenter c\nexit c\n";
        let h = read_log(log);
        assert_eq!(
            (h.holders, h.died_holding, h.overlaps, h.unheld),
            (3, 1, 0, 0)
        );
        let h = read_log(b"enter a\nenter b\nexit a\nexit b\n");
        assert_eq!((h.overlaps, h.died_holding), (2, 0));
        assert_eq!(
            h.problems[0],
            "holders' log, line 3: holder a left after another holder's line: two held the lock at once"
        );
        let h = read_log(b"enter a unheld\nexit a\nenter b\nexit\n");
        assert_eq!((h.unheld, h.overlaps), (1, 1));
        assert_eq!(read_log(b""), Holds::default());
    }

    #[test]
    fn a_holder_holds_the_lock_through_its_descriptor_or_its_link_lock_record() {
        let t = tempfile::tempdir().unwrap();
        let lockfile = t.path().join("lock");
        assert!(!holds_lock(&lockfile, false));
        let held = crate::lock::acquire(&lockfile, &crate::lock::Options::default()).unwrap();
        assert!(holds_lock(&lockfile, false));
        // --nfs: the flock is not enough; the link lock's record must name it.
        assert!(!holds_lock(&lockfile, true));
        let record = crate::lock::nfs::dotlock_path(&lockfile);
        std::fs::write(&record, format!("holder {} 1\n", std::process::id())).unwrap();
        assert!(holds_lock(&lockfile, true));
        drop(held);
    }
}
