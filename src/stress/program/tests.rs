//! Program racers: released together, each status and output kept, a hung one
//! killed with all it started, one that cannot run saying why.

use super::*;

fn sh(script: &str, dir: &std::path::Path) -> Program {
    Program {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        dir: dir.to_path_buf(),
        env: vec![("RACEFREE_TEST".into(), "yes".into())],
    }
}

#[test]
fn racers_are_released_together_and_each_status_and_output_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let programs: Vec<Program> = (0..4)
        .map(|i| {
            sh(
                &format!("echo out$RACEFREE_TEST; echo err >&2; exit {i}"),
                t.path(),
            )
        })
        .collect();
    let done = race(&programs, Duration::from_secs(30), None, None).unwrap();
    for (i, e) in done.iter().enumerate() {
        assert_eq!(e.code, Some(i as i32), "{e:?}");
        assert!(e.exited_with(i as i32));
        assert_eq!(e.stdout.head, "outyes\n");
        assert_eq!(e.stderr.head, "err\n");
        assert!(e.started_ns > 0);
    }
    assert!(gate::spread_ns(done.iter().map(|e| e.started_ns)) < 5_000_000_000);
}

#[test]
fn two_races_at_once_in_one_process_both_end() {
    // Each race's held children would hold the other's gate shut; one waits.
    let t = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let (tx, dir) = (tx.clone(), t.path().to_path_buf());
        std::thread::spawn(move || {
            for _ in 0..5 {
                let programs = vec![sh("exit 0", &dir); 4];
                race(&programs, Duration::from_secs(30), None, None).unwrap();
            }
            tx.send(()).unwrap();
        });
    }
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(120))
            .expect("two races at once held each other's gate shut");
    }
}

#[test]
fn output_is_kept_up_to_its_bound_and_counted_past_it() {
    let t = tempfile::tempdir().unwrap();
    let e = run(
        &sh("head -c 100000 /dev/zero | tr '\\0' a", t.path()),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(e.stdout.bytes, 100_000);
    assert_eq!(e.stdout.head.len(), OUTPUT_KEPT);
}

#[test]
fn a_hung_racer_and_what_it_started_are_killed_when_the_time_is_up() {
    let t = tempfile::tempdir().unwrap();
    let begin = Instant::now();
    let done = race(
        &[
            sh("sleep 300 & sleep 300; echo never", t.path()),
            sh("exit 0", t.path()),
        ],
        Duration::from_millis(300),
        None,
        None,
    )
    .unwrap();
    assert!(begin.elapsed() < Duration::from_secs(60));
    assert!(done[0].timed_out, "{:?}", done[0]);
    assert_eq!(done[0].signal, Some(libc::SIGKILL));
    assert!(done[0].how(Duration::from_millis(300)).starts_with("hung"));
    assert!(done[1].exited_with(0), "{:?}", done[1]);
}

#[test]
fn a_child_left_behind_holding_the_output_does_not_hold_the_round() {
    let t = tempfile::tempdir().unwrap();
    let begin = Instant::now();
    let e = run(
        &sh("sleep 300 & echo started", t.path()),
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(
        begin.elapsed() < Duration::from_secs(60),
        "{:?}",
        begin.elapsed()
    );
    assert!(e.exited_with(0), "{e:?}");
    assert_eq!(e.stdout.head, "started\n");
}

#[test]
fn what_a_program_said_is_shown_briefly_and_cannot_reach_the_terminal() {
    let e = Exited {
        stderr: Kept {
            head: "\n  \nbad\x1b[31m red\nsecond\n".into(),
            bytes: 0,
        },
        ..Exited::default()
    };
    assert_eq!(e.said(1), vec!["bad\\u{1b}[31m red", "second"]);
    let e = Exited {
        stdout: Kept {
            head: "only out\n".into(),
            bytes: 9,
        },
        ..Exited::default()
    };
    assert_eq!(e.said(3), vec!["only out"]);
    let e = Exited {
        stderr: Kept {
            head: "Traceback\n a\n b\n c\nFileExistsError: 'out/a'\n".into(),
            bytes: 0,
        },
        ..Exited::default()
    };
    assert_eq!(
        e.said(2),
        vec!["Traceback", " a", "...", "FileExistsError: 'out/a'"]
    );
    assert_eq!(gist(&e.said(2)), ": FileExistsError: 'out/a'");
}

#[test]
fn a_command_is_found_on_path_or_by_its_path() {
    assert!(findable("sh"));
    assert!(findable("/bin/sh"));
    assert!(!findable("racefree-no-such-command"));
    assert!(!findable("/nonexistent/sh"));
}

#[test]
fn a_program_that_cannot_be_run_says_why() {
    let t = tempfile::tempdir().unwrap();
    let p = Program {
        argv: vec!["/nonexistent/racefree-no-such-program".into()],
        dir: t.path().to_path_buf(),
        env: Vec::new(),
    };
    let e = run(&p, Duration::from_secs(30)).unwrap();
    assert_eq!(e.error.as_deref(), Some("No such file or directory"));
    assert!(!e.exited_with(0));
    // A directory that is not there fails before the gate: an error of the round.
    let p = Program {
        dir: t.path().join("missing"),
        ..sh("true", t.path())
    };
    assert!(run(&p, Duration::from_secs(30)).is_err());
}
