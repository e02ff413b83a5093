use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
enum TestError {
    Failed(u64),
    Panicked,
}

impl From<ScanPanicked> for TestError {
    fn from(_: ScanPanicked) -> Self {
        TestError::Panicked
    }
}

/// Runs `f` on a thread and fails the test if it has not finished in 60 s: a
/// lost wake-up shows as a test failure, not as a hung test run.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a caller waited forever")
}

/// Spins (yielding) until `n` callers wait: the seam that lets a test know a
/// caller has arrived, without sleeping and hoping.
fn until_waiting<Q: Clone, A, E: Clone + From<ScanPanicked>, F>(
    sf: &SingleFlight<Q, A, E, F>,
    n: usize,
) where
    F: Fn(&[Q]) -> Result<Vec<A>, E>,
{
    while sf.waiting() < n {
        thread::yield_now();
    }
}

/// A scan that reports each batch it got, then blocks until released; each
/// answer is (query, scan number).
type GatedScan = Box<dyn Fn(&[u32]) -> Result<Vec<(u32, u64)>, TestError> + Send + Sync>;
type Gated = SingleFlight<u32, (u32, u64), TestError, GatedScan>;
/// (thread, call) answered with the number of the scan that served it.
type Served = Result<Vec<((u32, u32), u64)>, TestError>;

fn gated() -> (Arc<Gated>, mpsc::Receiver<Vec<u32>>, mpsc::SyncSender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::sync_channel::<()>(0);
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let scans = AtomicU64::new(0);
    let scan: GatedScan = Box::new(move |qs: &[u32]| {
        let n = scans.fetch_add(1, Ordering::SeqCst) + 1;
        started_tx.lock().unwrap().send(qs.to_vec()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        Ok(qs.iter().map(|&q| (q, n)).collect())
    });
    (Arc::new(SingleFlight::new(scan)), started_rx, release_tx)
}

#[test]
fn a_lone_caller_scans_at_once_for_itself() {
    let scans = AtomicU64::new(0);
    let sf = SingleFlight::new(|qs: &[u32]| -> Result<Vec<u32>, TestError> {
        scans.fetch_add(1, Ordering::SeqCst);
        Ok(qs.iter().map(|q| q * 2).collect())
    });
    assert_eq!(sf.call(21), Ok(42));
    assert_eq!(sf.call(5), Ok(10));
    assert_eq!(scans.load(Ordering::SeqCst), 2, "one scan per lone call");
    assert_eq!(sf.waiting(), 0);
}

#[test]
fn a_caller_arriving_during_a_scan_waits_for_the_next_one() {
    let (sf, started, release) = gated();
    let first = {
        let sf = Arc::clone(&sf);
        thread::spawn(move || sf.call(1))
    };
    assert_eq!(started.recv().unwrap(), [1], "scan 1 serves caller 1 alone");
    // Scan 1 is running. Caller 2 arrives now.
    let second = {
        let sf = Arc::clone(&sf);
        thread::spawn(move || sf.call(2))
    };
    until_waiting(&sf, 1);
    release.send(()).unwrap();
    // Scan 1 ends; it must not have answered caller 2: scan 2 starts for it.
    assert_eq!(started.recv().unwrap(), [2]);
    release.send(()).unwrap();
    assert_eq!(first.join().unwrap(), Ok((1, 1)));
    assert_eq!(second.join().unwrap(), Ok((2, 2)));
}

#[test]
fn everyone_who_arrived_during_a_scan_is_served_by_one_next_scan() {
    let (sf, started, release) = gated();
    let callers = 63;
    let first = {
        let sf = Arc::clone(&sf);
        thread::spawn(move || sf.call(0))
    };
    assert_eq!(started.recv().unwrap(), [0]);
    let rest: Vec<_> = (1..=callers)
        .map(|i| {
            let sf = Arc::clone(&sf);
            thread::spawn(move || sf.call(i))
        })
        .collect();
    until_waiting(&sf, callers as usize);
    release.send(()).unwrap();
    let mut batch = started.recv().unwrap();
    batch.sort_unstable();
    assert_eq!(batch, (1..=callers).collect::<Vec<_>>(), "one pass for all");
    release.send(()).unwrap();
    assert_eq!(first.join().unwrap(), Ok((0, 1)));
    for (i, h) in (1..=callers).zip(rest) {
        assert_eq!(h.join().unwrap(), Ok((i, 2)));
    }
    assert!(started.try_recv().is_err(), "no third scan");
}

#[test]
fn errors_reach_every_caller_of_the_failed_scan_and_only_them() {
    let (started_tx, started) = mpsc::channel::<Vec<u32>>();
    let (release, release_rx) = mpsc::sync_channel::<bool>(0);
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let scans = AtomicU64::new(0);
    let sf = Arc::new(SingleFlight::new(
        move |qs: &[u32]| -> Result<Vec<u32>, TestError> {
            let n = scans.fetch_add(1, Ordering::SeqCst) + 1;
            started_tx.lock().unwrap().send(qs.to_vec()).unwrap();
            let ok = release_rx.lock().unwrap().recv().unwrap();
            if ok {
                Ok(qs.to_vec())
            } else {
                Err(TestError::Failed(n))
            }
        },
    ));
    let call = |q| {
        let sf = Arc::clone(&sf);
        thread::spawn(move || sf.call(q))
    };
    let a = call(1);
    assert_eq!(started.recv().unwrap(), [1]);
    let (b, c) = (call(2), call(3));
    until_waiting(&sf, 2);
    release.send(true).unwrap(); // scan 1 succeeds, for a alone
    let mut batch = started.recv().unwrap();
    batch.sort_unstable();
    assert_eq!(batch, [2, 3]);
    let d = call(4);
    until_waiting(&sf, 1);
    release.send(false).unwrap(); // scan 2 fails, for b and c
    assert_eq!(started.recv().unwrap(), [4]);
    release.send(true).unwrap(); // scan 3 succeeds, for d
    assert_eq!(a.join().unwrap(), Ok(1));
    assert_eq!(b.join().unwrap(), Err(TestError::Failed(2)));
    assert_eq!(c.join().unwrap(), Err(TestError::Failed(2)));
    assert_eq!(d.join().unwrap(), Ok(4));
}

#[test]
fn a_panicking_scan_fails_its_callers_instead_of_stranding_them() {
    let (started_tx, started) = mpsc::channel::<Vec<u32>>();
    let (release, release_rx) = mpsc::sync_channel::<()>(0);
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let scans = AtomicU64::new(0);
    let sf = Arc::new(SingleFlight::new(
        move |qs: &[u32]| -> Result<Vec<u32>, TestError> {
            let n = scans.fetch_add(1, Ordering::SeqCst) + 1;
            started_tx.lock().unwrap().send(qs.to_vec()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            if n == 2 {
                panic!("scan 2 panics");
            }
            Ok(qs.to_vec())
        },
    ));
    let call = |q| {
        let sf = Arc::clone(&sf);
        thread::spawn(move || sf.call(q))
    };
    let a = call(1);
    assert_eq!(started.recv().unwrap(), [1]);
    let (b, c) = (call(2), call(3));
    until_waiting(&sf, 2);
    release.send(()).unwrap();
    started.recv().unwrap(); // scan 2, for b and c: it will panic in one of them
    release.send(()).unwrap();
    assert_eq!(a.join().unwrap(), Ok(1));
    let outcomes: Vec<_> = [b, c].into_iter().map(|h| h.join()).collect();
    let panicked = outcomes.iter().filter(|o| o.is_err()).count();
    let told = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Err(TestError::Panicked))))
        .count();
    assert_eq!(
        (panicked, told),
        (1, 1),
        "the leader panics, the other is told"
    );
    // And the flight still works.
    let d = call(4);
    started.recv().unwrap();
    release.send(()).unwrap();
    assert_eq!(d.join().unwrap(), Ok(4));
}

#[test]
fn under_contention_every_answer_comes_from_a_scan_that_started_after_its_call() {
    // 32 threads, 200 calls each, scans that sometimes fail: every call returns
    // (no lost wake-up), every answer is its own query's, and every answer comes
    // from a scan that started after the call began.
    within_a_minute(|| {
        let started = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&started);
        let sf = Arc::new(SingleFlight::new(move |qs: &[(u32, u32)]| -> Served {
            let n = s.fetch_add(1, Ordering::SeqCst) + 1;
            // Let other callers pile up behind this scan.
            for _ in 0..50 {
                thread::yield_now();
            }
            if n % 7 == 0 {
                return Err(TestError::Failed(n));
            }
            Ok(qs.iter().map(|&q| (q, n)).collect())
        }));
        let threads: Vec<_> = (0..32u32)
            .map(|t| {
                let (sf, started) = (Arc::clone(&sf), Arc::clone(&started));
                thread::spawn(move || {
                    let mut served = 0;
                    for i in 0..200u32 {
                        let before = started.load(Ordering::SeqCst);
                        match sf.call((t, i)) {
                            Ok((q, scan)) => {
                                assert_eq!(q, (t, i), "someone else's answer");
                                assert!(
                                    scan > before,
                                    "served by scan {scan}, begun before the call"
                                );
                                served += 1;
                            }
                            Err(TestError::Failed(scan)) => {
                                assert!(scan > before, "failed by an older scan")
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    served
                })
            })
            .collect();
        let served: u32 = threads.into_iter().map(|h| h.join().unwrap()).sum();
        let scans = started.load(Ordering::SeqCst);
        assert!(served > 0);
        assert!(
            scans < 32 * 200,
            "no coalescing: {scans} scans for 6,400 calls"
        );
        assert_eq!(sf.waiting(), 0);
    });
}
