use nix::sys::signal::SigSet;

use super::*;

fn nonblock(shared: bool) -> Options {
    Options {
        shared,
        nonblock: true,
        ..Options::default()
    }
}

fn is_busy(r: &anyhow::Result<Held>) -> bool {
    matches!(r, Err(e) if e.downcast_ref::<Busy>().is_some())
}

#[test]
fn each_acquire_has_its_own_description_so_threads_exclude_each_other() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    let held = acquire(&l, &Options::default()).unwrap();
    assert_eq!(held.method(), "flock");
    std::thread::scope(|s| {
        s.spawn(|| assert!(is_busy(&acquire(&l, &nonblock(false)))));
        s.spawn(|| assert!(is_busy(&acquire(&l, &nonblock(true)))));
    });
    drop(held);
    let a = acquire(&l, &nonblock(true)).unwrap();
    let b = acquire(&l, &nonblock(true)).unwrap();
    assert!(is_busy(&acquire(&l, &nonblock(false))));
    drop((a, b));
    assert!(l.is_file(), "the lock file is never removed");
}

#[test]
fn a_timeout_gives_up_with_busy_after_roughly_that_long() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    let _held = acquire(&l, &Options::default()).unwrap();
    let opts = Options {
        timeout: Some(Duration::from_millis(30)),
        ..Options::default()
    };
    let err = acquire(&l, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "timed out after 0.03 s waiting for the lock on '{}'",
            l.display()
        )
    );
}

#[test]
fn a_timed_wait_blocks_in_the_kernel_and_the_release_wakes_it() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    let held = acquire(&l, &Options::default()).unwrap();
    let ino = std::fs::metadata(&l).unwrap().ino();
    let waiter = {
        let l = l.clone();
        std::thread::spawn(move || {
            let opts = Options {
                timeout: Some(Duration::from_secs(120)),
                ..Options::default()
            };
            acquire(&l, &opts).map(|h| h.method())
        })
    };
    // /proc/locks lists a request blocked in flock(2) with "->"; a waiter that
    // polls with LOCK_NB never appears there.
    let pid = std::process::id();
    let blocked = |locks: &str| {
        locks.lines().any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.get(1) == Some(&"->")
                && f.get(2) == Some(&"FLOCK")
                && f.get(5) == Some(&pid.to_string().as_str())
                && f.get(6)
                    .is_some_and(|dev_ino| dev_ino.ends_with(&format!(":{ino}")))
        })
    };
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut locks = String::new();
    while Instant::now() < give_up {
        locks = std::fs::read_to_string("/proc/locks").unwrap();
        if blocked(&locks) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        blocked(&locks),
        "no blocked flock request in /proc/locks:\n{locks}"
    );
    drop(held);
    assert_eq!(waiter.join().unwrap().unwrap(), "flock");
}

#[test]
fn a_timed_wait_ends_even_in_a_thread_that_blocks_every_signal() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    let _held = acquire(&l, &Options::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        SigSet::all().thread_block().unwrap();
        let opts = Options {
            timeout: Some(Duration::from_millis(50)),
            ..Options::default()
        };
        let _ = tx.send(is_busy(&acquire(&l, &opts)));
    });
    let busy = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the timed wait never ended");
    assert!(busy, "a timed-out wait is Busy");
}

#[test]
fn ones_own_symlink_at_the_lock_file_is_followed_as_flock_follows_it() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    let target = t.path().join("elsewhere");
    std::os::unix::fs::symlink(&target, &l).unwrap();
    let held = acquire(&l, &Options::default()).unwrap();
    assert!(
        target.is_file(),
        "created through the link, as flock(1) does"
    );
    assert!(is_busy(&acquire(&target, &nonblock(false))));
    drop(held);
    let nfs = Options {
        nfs: true,
        ..nonblock(false)
    };
    // The link lock is named after the file, not the link: one lock, two names.
    let held = acquire(&l, &nfs).unwrap();
    assert!(nfs::dotlock_path(&target).exists());
    assert!(!nfs::dotlock_path(&l).exists());
    assert!(is_busy(&acquire(&target, &nfs)));
    drop(held);
}

#[test]
fn nfs_and_plain_lockers_exclude_each_other() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    let nfs = Options {
        nfs: true,
        ..nonblock(false)
    };
    let held = acquire(&l, &nfs).unwrap();
    assert!(is_busy(&acquire(&l, &nonblock(false))));
    assert!(is_busy(&acquire(&l, &nonblock(true))));
    drop(held);
    let held = acquire(&l, &nonblock(true)).unwrap();
    assert!(is_busy(&acquire(&l, &nfs)));
    assert!(
        !nfs::dotlock_path(&l).exists(),
        "a --nfs locker turned away by the flock leaves no link lock"
    );
    drop(held);
}

#[test]
fn a_wait_too_long_for_any_clock_waits_as_long_as_it_takes() {
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("l");
    for timeout in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let opts = Options {
            timeout: Some(timeout),
            ..Options::default()
        };
        assert_eq!(opts.deadline(Instant::now()), None);
        drop(acquire(&l, &opts).unwrap());
        let link = Options { nfs: true, ..opts };
        drop(acquire(&l, &link).unwrap());
    }
}
