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
        format: FORMAT,
        holders: Vec::new(),
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
    let with_command = Owner {
        holders: vec![Holder { pid: 9, start: 3 }],
        ..stale_owner("00ff")
    };
    assert_eq!(Owner::parse(&with_command.to_text()), Some(with_command));
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
        format: FORMAT,
        holders: Vec::new(),
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
    assert_eq!(held.method(), "flock and link");
    assert!(dotlock_path(&l).exists());
    std::thread::scope(|s| {
        s.spawn(|| assert!(is_busy(&acquire(&l, &nonblock()))));
    });
    drop(held);
    assert!(!dotlock_path(&l).exists());
    let again = acquire(&l, &nonblock()).unwrap();
    drop(again);
    // Nothing but the lock itself ever stays: no temporary or breaker files, and
    // LOCKFILE, which the flock half creates and nobody removes.
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["l"]);
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
}

#[test]
fn a_lock_without_a_readable_record_is_an_error_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    for content in ["not a racefree lock\n", ""] {
        std::fs::write(dotlock_path(&l), content).unwrap();
        for opts in [nonblock(), Options::default()] {
            let err = acquire(&l, &opts).unwrap_err();
            let unreadable = err
                .downcast_ref::<Unreadable>()
                .unwrap_or_else(|| panic!("{err:#}"));
            assert_eq!(unreadable.0, dotlock_path(&l));
            let lock = format!("'{}'", dotlock_path(&l).display());
            assert_eq!(
                err.to_string(),
                format!(
                    "the lock {lock} holds no owner record that racefree can read (it is empty or was not written by racefree), so whether its owner lives cannot be told; once no process on any host holds the lock, remove it: rm {lock}"
                )
            );
        }
        assert_eq!(std::fs::read_to_string(dotlock_path(&l)).unwrap(), content);
    }
}

#[test]
fn a_lock_is_stale_only_when_its_taker_and_every_holder_are_dead() {
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
        format: FORMAT,
        holders: vec![Holder { pid: 9, start: 120 }],
    };
    // racefree (7) was SIGKILLed; COMMAND (9) runs on.
    let command_runs = |pid| {
        (pid == 9).then_some(Process {
            start: 120,
            zombie: false,
        })
    };
    assert_eq!(judge(&owner, &here, command_runs), Verdict::Live);
    let command_exited = |pid| {
        (pid == 9).then_some(Process {
            start: 120,
            zombie: true,
        })
    };
    assert_eq!(
        judge(&owner, &here, command_exited),
        Verdict::Stale("held by pid 7, which no longer exists and pid 9, which has exited".into())
    );
    let pid_reused = |pid| {
        (pid == 9).then_some(Process {
            start: 121,
            zombie: false,
        })
    };
    assert!(matches!(
        judge(&owner, &here, pid_reused),
        Verdict::Stale(_)
    ));
    // A record of a later format may name holders this version cannot read.
    let later = Owner {
        format: FORMAT + 1,
        holders: Vec::new(),
        ..owner
    };
    assert!(matches!(
        judge(&later, &here, |_| None),
        Verdict::Unknown(_)
    ));
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
    let Record::Owner(owner) = read_owner(&dotlock_path(&l)).unwrap() else {
        panic!("B's lock has an owner");
    };
    assert_eq!(owner.pid, std::process::id() as i32);
    assert_ne!(owner.token, "dead", "B's lock still stands");
    drop(hook.b_held.lock().unwrap().take());
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}
