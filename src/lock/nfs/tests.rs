use std::sync::atomic::{AtomicBool, Ordering};

use procfs::process::Stat;

use super::*;
use crate::lock::Busy;
use crate::owner::{Here, Process};

fn stale_owner(token: &str) -> Owner {
    let here = here().unwrap();
    // Our own pid with another start time: the pid "now belongs to another process".
    Owner {
        host: here.host.clone(),
        pid: std::process::id() as i32,
        boot: here.boot.clone(),
        start: here.start + 1,
        token: token.into(),
    }
}

fn nonblock() -> Options {
    Options {
        nonblock: true,
        ..Options::default()
    }
}

fn is_busy<T>(r: &anyhow::Result<T>) -> bool {
    matches!(r, Err(e) if e.downcast_ref::<Busy>().is_some())
}

#[test]
fn owner_text_round_trips_and_garbage_is_not_an_owner() {
    let o = stale_owner("00ff");
    assert_eq!(Owner::parse(&o.to_text()), Some(o));
    assert_eq!(Owner::parse("12345\n"), None);
    assert_eq!(
        Owner::parse("racefree-lock 1\nhost h\npid 0\nboot b\nstart 1\ntoken t\n"),
        None
    );
    assert_eq!(Owner::parse("racefree-lock 1\nhost h\npid 5\n"), None);
}

/// A /proc/PID/stat line as [`process`] reads it.
fn parse_stat(stat: &[u8]) -> Option<Process> {
    use procfs::FromRead;
    Stat::from_read(stat).ok().map(|s| Process::from(&s))
}

/// Fields 4 to 37 of a /proc/PID/stat line, with `start` as field 22.
fn stat_fields(start: u64) -> String {
    let mut fields: Vec<String> = (4..=37).map(|n| n.to_string()).collect();
    fields[22 - 4] = start.to_string();
    fields.join(" ")
}

#[test]
fn stat_fields_are_found_after_the_last_parenthesis() {
    let line = format!("42 (a) b (c) R {}", stat_fields(987654));
    assert_eq!(
        parse_stat(line.as_bytes()),
        Some(Process {
            start: 987654,
            zombie: false
        })
    );
    let line = format!("42 (x) Z {}", stat_fields(5));
    assert!(parse_stat(line.as_bytes()).unwrap().zombie);
    assert_eq!(parse_stat(b"42 (x) R 1"), None);
}

#[test]
fn judge_breaks_only_provably_dead_owners() {
    let here = Here {
        host: "h".into(),
        boot: "b".into(),
        start: 1,
    };
    let owner = Owner {
        host: "h".into(),
        pid: 7,
        boot: "b".into(),
        start: 100,
        token: "t".into(),
    };
    let alive = |_| {
        Some(Process {
            start: 100,
            zombie: false,
        })
    };
    assert_eq!(judge(&owner, &here, alive), Verdict::Live);
    assert!(matches!(judge(&owner, &here, |_| None), Verdict::Stale(_)));
    let reused = |_| {
        Some(Process {
            start: 101,
            zombie: false,
        })
    };
    assert!(matches!(judge(&owner, &here, reused), Verdict::Stale(_)));
    let zombie = |_| {
        Some(Process {
            start: 100,
            zombie: true,
        })
    };
    assert!(matches!(judge(&owner, &here, zombie), Verdict::Stale(_)));
    let rebooted = Owner {
        boot: "old".into(),
        ..owner.clone()
    };
    assert!(matches!(judge(&rebooted, &here, alive), Verdict::Stale(_)));
    // Another host: never stale, whatever our /proc says about that pid.
    let remote = Owner {
        host: "other".into(),
        ..owner
    };
    assert!(matches!(
        judge(&remote, &here, |_| None),
        Verdict::Unknown(_)
    ));
}

#[test]
fn threads_exclude_each_other_and_release_on_drop() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    let link = Options {
        nfs: true,
        ..Options::default()
    };
    let held = crate::lock::acquire(&l, &link).unwrap();
    assert_eq!(held.method(), "link");
    assert!(dotlock_path(&l).exists());
    std::thread::scope(|s| {
        s.spawn(|| assert!(is_busy(&acquire(&l, &nonblock()))));
    });
    drop(held);
    assert!(!dotlock_path(&l).exists());
    let again = acquire(&l, &nonblock()).unwrap();
    drop(again);
    // Nothing but the lock itself ever stays: no temporary or breaker files.
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

#[test]
fn a_stale_lock_is_broken_and_a_remote_one_never() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    std::fs::write(dotlock_path(&l), stale_owner("dead").to_text()).unwrap();
    let held = acquire(&l, &nonblock()).unwrap();
    drop(held);

    let remote = Owner {
        host: "another-host.invalid".into(),
        ..stale_owner("remote")
    };
    std::fs::write(dotlock_path(&l), remote.to_text()).unwrap();
    assert!(is_busy(&acquire(&l, &nonblock())));
    std::fs::write(dotlock_path(&l), "not a racefree lock\n").unwrap();
    assert!(is_busy(&acquire(&l, &nonblock())));
}

/// The race the breaker lock exists for: breaker A judges the dead owner's lock
/// stale; before A acts, breaker B judges it too, breaks it, and takes the lock
/// (alive). When A goes on, it must not remove B's live lock.
#[test]
fn a_late_breaker_never_breaks_the_live_lock_taken_in_between() {
    struct Interleave<'a> {
        lockfile: &'a Path,
        fired: AtomicBool,
        b_held: std::sync::Mutex<Option<LinkHeld>>,
    }
    impl Hook for Interleave<'_> {
        fn judged_stale(&self, lock: &Path, _owner: &Owner) {
            if lock == dotlock_path(self.lockfile) && !self.fired.swap(true, Ordering::SeqCst) {
                // Breaker B runs to completion here, between A's verdict and A's break.
                let b = std::thread::scope(|s| {
                    s.spawn(|| acquire(self.lockfile, &nonblock()))
                        .join()
                        .unwrap()
                });
                *self.b_held.lock().unwrap() =
                    Some(b.expect("B breaks the stale lock and takes it"));
            }
        }
    }
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    std::fs::write(dotlock_path(&l), stale_owner("dead").to_text()).unwrap();
    let hook = Interleave {
        lockfile: &l,
        fired: AtomicBool::new(false),
        b_held: std::sync::Mutex::new(None),
    };
    let a = acquire_with_hook(&l, &nonblock(), &hook);
    assert!(hook.fired.load(Ordering::SeqCst), "the seam ran");
    assert!(
        is_busy(&a),
        "A must find B's live lock, not break it: {a:?}"
    );
    let owner = read_owner(&dotlock_path(&l)).unwrap().unwrap();
    assert_eq!(owner.pid, std::process::id() as i32);
    assert_ne!(owner.token, "dead", "B's lock still stands");
    drop(hook.b_held.lock().unwrap().take());
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}
