//! The directory a run works in: made exclusively for the run (removed at the end
//! unless kept, and on any early return or signal), or shared by instances on many
//! hosts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::args::{RaceArgs, WorkArgs};

pub struct WorkDir {
    pub path: PathBuf,
    temp: Option<tempfile::TempDir>,
}

impl Drop for WorkDir {
    /// Removes the work directory (unless kept). A racer's last step may still be
    /// landing in it (a `racefree lock` child finishing its write after its racer
    /// was killed by a signal): if removal meets a new entry, it tries again, a
    /// bounded number of times.
    fn drop(&mut self) {
        if let Some(t) = self.temp.take() {
            for _ in 0..50 {
                match std::fs::remove_dir_all(t.path()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    _ => break,
                }
            }
        }
    }
}

impl WorkDir {
    /// In `--dir` (which must exist) or `$TMPDIR`: a fresh directory, or with
    /// `--barrier-file` the one every instance agrees on.
    pub fn make(race: &RaceArgs, work: &WorkArgs) -> anyhow::Result<WorkDir> {
        if let Some(dir) = &work.dir {
            refuse_missing(dir)?;
        }
        let base = work.dir.clone().unwrap_or_else(std::env::temp_dir);
        match &race.barrier_file {
            Some(b) => WorkDir::shared(&base, b),
            None => WorkDir::fresh(&base),
        }
    }

    /// `racefree-stress-NAME` after the barrier file's name, made tolerantly: every
    /// instance makes it, and each may be the first.
    fn shared(base: &Path, barrier: &Path) -> anyhow::Result<WorkDir> {
        let name = barrier
            .file_name()
            .map_or("shared".into(), |n| n.to_string_lossy());
        let path = base.join(format!("racefree-stress-{name}"));
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !std::fs::symlink_metadata(&path)?.is_dir() {
                    bail!(
                        "'{}' exists and is not a directory (symbolic links are not followed)",
                        path.display()
                    );
                }
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create work directory '{}'", path.display()));
            }
        }
        Ok(WorkDir { path, temp: None })
    }

    /// Where one instance of a run across hosts races its control: a fresh
    /// `controls-ID-*` in the shared work directory, removed like a one-host run's.
    pub fn controls(shared: &Path, instance: u32) -> anyhow::Result<WorkDir> {
        WorkDir::fresh_named(shared, &format!("controls-{instance}-"))
    }

    fn fresh(base: &Path) -> anyhow::Result<WorkDir> {
        WorkDir::fresh_named(base, "racefree-stress-")
    }

    fn fresh_named(base: &Path, prefix: &str) -> anyhow::Result<WorkDir> {
        let temp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(base)
            .with_context(|| format!("cannot create a work directory in '{}'", base.display()))?;
        Ok(WorkDir {
            path: temp.path().to_path_buf(),
            temp: Some(temp),
        })
    }

    /// Keeps the directory (`--keep`): it is no longer removed when dropped.
    pub fn keep(mut self) {
        if let Some(t) = self.temp.take() {
            let _ = t.keep();
        }
    }
}

/// A `--dir` that is missing or not a directory is refused, never made: a mistyped
/// `--dir` must not leave a tree behind.
fn refuse_missing(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(crate::exit::usage(format!(
            "--dir '{}' is not a directory",
            dir.display()
        ))),
        Err(e) => Err(crate::exit::usage(format!(
            "--dir '{}': {}; the run works in a new directory it makes inside an existing one",
            dir.display(),
            e.raw_os_error().map_or_else(
                || e.to_string(),
                |n| nix::errno::Errno::from_raw(n).desc().to_string()
            )
        ))),
    }
}
