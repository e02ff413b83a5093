//! What the /proc reads of `--nat`'s namespace search cost, written by hand (as
//! src/ident/nat/netns.rs reads them) and through the procfs crate, side by side
//! in one run. A benchmark, not a test; its results are in bench/RESULTS-netns-proc.md.
//!
//! Usage: cargo run --release --example netns_proc -- [PROCESSES] [SOCKETS]
//! (default 500 2000): starts PROCESSES idle children so /proc has that many more
//! entries, and opens SOCKETS sockets in this process, then times, median of 31:
//! - grouping every process by network namespace (the search's first step, once
//!   per query): a stat of /proc/PID/ns/net each, or procfs's all_processes() and
//!   Process::namespaces();
//! - finding which process holds a socket (the pod case): readlink of each
//!   /proc/PID/fd entry, or procfs's Process::fd().

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use procfs::process::{FDTarget, Process};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let processes = args.next().unwrap_or(500);
    let sockets = args.next().unwrap_or(2000);
    let mut children: Vec<Child> = (0..processes)
        .map(|_| {
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .spawn()
                .expect("starting sleep")
        })
        .collect();
    let held: Vec<(UnixStream, UnixStream)> = (0..sockets)
        .map(|_| UnixStream::pair().expect("a socketpair"))
        .collect();
    let last = held.last().map(|(a, _)| inode_of(a)).expect("one socket");
    let me = std::process::id();

    let in_proc = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .count();
    println!("{in_proc} processes in /proc, {sockets} sockets held by this one\n");
    println!("| read | by hand, median ms | procfs, median ms | procfs / by hand |");
    println!("|---|---:|---:|---:|");
    row(
        "every process grouped by network namespace",
        median(|| namespaces_by_hand().len()),
        median(|| namespaces_with_procfs().len()),
    );
    row(
        "the process holding a socket, among its fds",
        median(|| usize::from(holds_by_hand(me, last))),
        median(|| usize::from(holds_with_procfs(me, last))),
    );
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn row(what: &str, hand: f64, procfs: f64) {
    println!(
        "| {what} | {hand:.2} | {procfs:.2} | {:.1} |",
        procfs / hand
    );
}

fn median(mut f: impl FnMut() -> usize) -> f64 {
    let mut times: Vec<f64> = (0..31)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn inode_of(s: &UnixStream) -> u64 {
    use std::os::fd::AsRawFd;
    fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd()))
        .unwrap()
        .ino()
}

/// As netns.rs does: one stat of /proc/PID/ns/net per process.
fn namespaces_by_hand() -> HashMap<(u64, u64), Vec<u32>> {
    let mut by_ns: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(meta) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        by_ns.entry((meta.dev(), meta.ino())).or_default().push(pid);
    }
    by_ns
}

/// procfs: a descriptor per process, and a stat of every one of its namespaces.
fn namespaces_with_procfs() -> HashMap<(u64, u64), Vec<i32>> {
    let mut by_ns: HashMap<(u64, u64), Vec<i32>> = HashMap::new();
    for process in procfs::process::all_processes().unwrap().flatten() {
        let Ok(spaces) = process.namespaces() else {
            continue;
        };
        if let Some(net) = spaces.0.get(std::ffi::OsStr::new("net")) {
            let key = (net.device_id, net.identifier);
            by_ns.entry(key).or_default().push(process.pid);
        }
    }
    by_ns
}

/// As netns.rs does: one readlink per descriptor.
fn holds_by_hand(pid: u32, inode: u64) -> bool {
    let wanted = format!("socket:[{inode}]");
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .any(|fd| {
            fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())
        })
}

/// procfs: an open, a readlink and a stat per descriptor.
fn holds_with_procfs(pid: u32, inode: u64) -> bool {
    let process = Process::new(pid as i32).unwrap();
    process
        .fd()
        .unwrap()
        .flatten()
        .any(|fd| matches!(fd.target, FDTarget::Socket(i) if i == inode))
}
