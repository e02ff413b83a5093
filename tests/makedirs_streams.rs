//! `makedirs` with big inputs and unwilling outputs: --from is read as a stream in
//! bounded batches, -j starts no more threads than the work needs, and output that
//! cannot be written never costs a directory nor passes for success.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::testenv::{Expected, TestEnv, assert_output, racefree};

#[test]
fn a_reader_that_leaves_costs_no_directory_and_is_not_success() {
    let env = TestEnv::new();
    let list: String = (0..20_000).map(|i| format!("d/{i}\n")).collect();
    env.write("list", &list);
    let mut child = env
        .racefree_process(["makedirs", "-v", "--from", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read one line and go. 20,000 lines are far more than a pipe
    // holds, so racefree is still writing when the reader leaves.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // 'd' is announced by whichever path's worker made it, so the first line is
    // either 'd' (made for d/0) or d/0 itself (another worker made 'd' first).
    assert!(
        first == "racefree: created directory 'd'\n"
            || first == "racefree: created directory 'd/0'\n",
        "{first:?}"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "racefree: error: writing to stdout: Broken pipe (output stopped there; every PATH was still worked on)\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let made = fs::read_dir(env.root().join("d")).unwrap().count();
    assert_eq!(
        made, 20_000,
        "every directory is made after the reader left"
    );
}

#[test]
fn a_full_stdout_is_named_as_stdout() {
    let env = TestEnv::new();
    let out = env
        .racefree_process(["makedirs", "-v", "a", "b"])
        .stdout(fs::File::options().write(true).open("/dev/full").unwrap())
        .output()
        .unwrap();
    // stdout went to /dev/full, so none of it is captured.
    assert_output(
        &out,
        &Expected::failure(
            1,
            "racefree: error: writing to stdout: No space left on device (output stopped there; every PATH was still worked on)\n",
        ),
    );
    assert!(env.root().join("a").is_dir() && env.root().join("b").is_dir());
}

#[test]
fn from_dev_zero_fails_at_once_on_the_first_entry() {
    racefree()
        .args(["makedirs", "-0", "--from", "/dev/zero"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(2)
        .stdout("")
        .stderr("racefree: error: '/dev/zero', entry 1: empty path\n");
    // Without -0 no newline ever comes: the entry limit ends it, not memory.
    racefree()
        .args(["makedirs", "--from", "/dev/zero"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr("racefree: error: '/dev/zero', entry 1: longer than 1048576 bytes\n");
}

#[test]
fn the_first_bad_entry_stops_the_list_after_the_paths_before_it() {
    let env = TestEnv::new();
    env.write("list", "a\nb/c\n\nafter\n");
    env.assert_run(
        ["makedirs", "-v", "--from", "list"],
        &Expected {
            code: 2,
            stdout: "racefree: created directory 'a'\n\
                     racefree: created directory 'b'\n\
                     racefree: created directory 'b/c'\n",
            stderr: "racefree: error: 'list', entry 3: empty path\n",
        },
    );
    assert!(!env.root().join("after").exists());
    // From standard input, the entry is counted the same way.
    env.assert_run_with_stdin(
        ["makedirs", "-0", "--from", "-"],
        &b"x\0y\0z\0w\0\0v\0"[..],
        &Expected::failure(2, "racefree: error: standard input, entry 5: empty path\n"),
    );
    assert!(env.root().join("w").is_dir() && !env.root().join("v").exists());
}

#[test]
fn order_is_kept_across_batches() {
    let env = TestEnv::new();
    let list: Vec<String> = (0..9_000).map(|i| format!("o/{}/{i}", i % 7)).collect();
    let out = env
        .racefree(["makedirs", "--json", "-j", "4", "--from", "-"])
        .write_stdin(list.join("\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let paths: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(paths, list);
}

/// The peak resident memory of a running process, in KiB (VmHWM: a high-water
/// mark, so it holds the peak of everything the process did so far).
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_stays_flat_whatever_the_input_length() {
    const ENTRIES: usize = 1_000_000;
    let env = TestEnv::new();
    // 100 bytes an entry, 100 MB in all, through a pipe from a writer thread: read
    // whole before the work starts (as it was), that alone is 100 MB resident.
    let entry = format!("{}/{}\n", "p".repeat(48), "q".repeat(50));
    let mut child = env
        .racefree_process(["makedirs", "--json", "--from", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
    // The writer keeps stdin open until told, so racefree is still alive (waiting
    // for more input) when its high-water mark is read.
    let writer = std::thread::spawn(move || {
        let chunk = entry.repeat(1000);
        for _ in 0..ENTRIES / 1000 {
            stdin.write_all(chunk.as_bytes()).unwrap();
        }
        close_rx.recv().unwrap();
        drop(stdin);
    });
    let stdout = child.stdout.take().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<usize>();
    let reader = std::thread::spawn(move || {
        let mut n = 0;
        for line in BufReader::new(stdout).lines() {
            line.unwrap();
            n += 1;
            if n % 10_000 == 0 {
                let _ = seen_tx.send(n);
            }
        }
        n
    });
    // All but the last partial batch reported: every entry was read and worked on.
    loop {
        let seen = seen_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("no progress: the whole input is read before any work starts");
        if seen >= ENTRIES - 10_000 {
            break;
        }
    }
    let peak_kib = vm_hwm_kib(child.id());
    close_tx.send(()).unwrap();
    writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), ENTRIES);
    assert!(child.wait().unwrap().success());
    assert!(
        env.root()
            .join("p".repeat(48))
            .join("q".repeat(50))
            .is_dir()
    );
    assert!(
        peak_kib < 40 * 1024,
        "peak RSS {peak_kib} KiB for {ENTRIES} entries: memory grows with the input"
    );
}

/// Sets a resource limit in `cmd`'s child, after any `pre_exec` set before it.
fn set_rlimit(cmd: &mut Command, resource: libc::__rlimit_resource_t, value: libc::rlim_t) {
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn jobs_beyond_the_work_start_no_extra_threads() {
    // 20,000 threads need far more than 1 GiB of address space (2 MiB stacks), and
    // a thread for each of three paths far less.
    let env = TestEnv::new();
    let mut cmd = env.racefree_process(["makedirs", "-j", "20000", "a", "b", "c"]);
    set_rlimit(&mut cmd, libc::RLIMIT_AS, 1 << 30);
    assert_output(&cmd.output().unwrap(), &Expected::QUIET);
    for d in ["a", "b", "c"] {
        assert!(env.root().join(d).is_dir());
    }
}

#[test]
fn a_worker_that_cannot_start_is_a_clean_error() {
    let env = TestEnv::new();
    env.chmod(".", 0o777);
    let mut cmd = env.racefree_as_nobody(["makedirs", "-j", "2", "a", "b"]);
    // One task for the user: the process itself. Set after racefree_as_nobody's
    // setuid, so the limit binds nobody's threads, not the exec.
    set_rlimit(&mut cmd, libc::RLIMIT_NPROC, 1);
    assert_output(
        &cmd.output().unwrap(),
        &Expected::failure(
            1,
            "racefree: error: starting 2 worker threads: Resource temporarily unavailable\n",
        ),
    );
}
