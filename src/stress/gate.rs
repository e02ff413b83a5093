//! Releasing racers together, and measuring how closely they started.
//!
//! Threads wait on a `std::sync::Barrier`. Processes block reading their stdin until
//! the parent, having started every one of them, closes all the pipes. Instances on
//! different hosts meet at a barrier file on the shared tree. Each racer notes the
//! wall-clock instant it was released, so the report can say how close the start was.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// Nanoseconds since the epoch: comparable across threads, processes and (with
/// synchronised clocks) hosts.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// For a worker process: block until the parent closes our stdin, then return the
/// release instant.
pub fn wait_for_stdin_close() -> io::Result<u64> {
    let mut sink = Vec::new();
    io::stdin().lock().read_to_end(&mut sink)?;
    Ok(now_ns())
}

/// How far apart a set of racers started, in nanoseconds.
pub fn spread_ns(starts: impl IntoIterator<Item = u64>) -> u64 {
    let (mut lo, mut hi) = (u64::MAX, 0);
    for s in starts {
        lo = lo.min(s);
        hi = hi.max(s);
    }
    hi.saturating_sub(lo)
}

/// This instance's id among many hosts: `--id`, else the launcher's rank variable.
pub fn instance_id(explicit: Option<u32>) -> anyhow::Result<u32> {
    if let Some(id) = explicit {
        return Ok(id);
    }
    for var in [
        "SLURM_PROCID",
        "OMPI_COMM_WORLD_RANK",
        "JOB_COMPLETION_INDEX",
    ] {
        if let Ok(v) = std::env::var(var) {
            return v
                .trim()
                .parse()
                .with_context(|| format!("{var}={v:?} is not an instance number"));
        }
    }
    Ok(0)
}

/// A barrier on a shared filesystem: each instance creates `PATH.arrived.ID`
/// (O_EXCL, so two instances claiming one id is caught), then waits until `expect`
/// arrival files exist. Distinct files, not appends to one file: O_APPEND is not
/// atomic over NFS.
pub fn barrier_file(path: &Path, id: u32, expect: u32, timeout: Duration) -> anyhow::Result<u64> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = path
        .file_name()
        .with_context(|| format!("--barrier-file '{}' names no file", path.display()))?
        .to_string_lossy()
        .into_owned();
    let prefix = format!("{stem}.arrived.");
    let mine: PathBuf = dir.join(format!("{prefix}{id}"));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&mine)
        .with_context(|| format!("arriving at barrier '{}' as instance {id}", mine.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        let arrived = fs::read_dir(dir)
            .with_context(|| format!("reading barrier directory '{}'", dir.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count() as u32;
        if arrived >= expect {
            return Ok(now_ns());
        }
        if Instant::now() >= deadline {
            bail!(
                "barrier '{}': only {arrived} of {expect} instances arrived within {}s",
                path.display(),
                timeout.as_secs()
            );
        }
        // Waiting for other hosts to arrive, not racing anything: poll gently.
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_last_minus_first() {
        assert_eq!(spread_ns([5, 3, 9]), 6);
        assert_eq!(spread_ns([7]), 0);
    }

    #[test]
    fn barrier_file_releases_once_all_have_arrived_and_refuses_a_duplicate_id() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("go");
        let handles: Vec<_> = (0..3)
            .map(|id| {
                let b = b.clone();
                std::thread::spawn(move || {
                    barrier_file(&b, id, 3, Duration::from_secs(20)).unwrap()
                })
            })
            .collect();
        let starts: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(starts.len(), 3);
        let err = barrier_file(&b, 1, 3, Duration::from_secs(1)).unwrap_err();
        assert!(
            format!("{err:#}").contains("arriving at barrier"),
            "{err:#}"
        );
    }

    #[test]
    fn barrier_file_times_out_with_a_count() {
        let t = tempfile::tempdir().unwrap();
        let err = barrier_file(&t.path().join("b"), 0, 2, Duration::from_millis(50)).unwrap_err();
        assert!(
            err.to_string().contains("only 1 of 2 instances arrived"),
            "{err}"
        );
    }
}
