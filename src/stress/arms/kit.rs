//! What arms share: a round's directory, a counter file read and stored the plain
//! way (the control arms' building blocks) or read back for the verdict, and the
//! order each racer takes.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};

use crate::stress::race::RoundCtx;
use crate::stress::tree;

/// Makes a round's directory; across hosts every instance may, so one that is
/// already there (and is a directory, not a symlink) is fine.
pub fn make_round_dir(ctx: &RoundCtx) -> anyhow::Result<()> {
    match std::fs::create_dir(&ctx.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && ctx.shared => {
            if std::fs::symlink_metadata(&ctx.dir)?.is_dir() {
                Ok(())
            } else {
                bail!("'{}' is not a directory", ctx.dir.display())
            }
        }
        Err(e) => Err(e).with_context(|| format!("creating '{}'", ctx.dir.display())),
    }
}

/// Reads a counter file without any lock; an absent file is 0.
pub fn read_value(file: &Path) -> anyhow::Result<i64> {
    match std::fs::read(file) {
        Ok(bytes) => crate::counter::parse(&bytes)
            .map_err(|why| anyhow::anyhow!("'{}' does not hold a number: {why}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading '{}'", file.display())),
    }
}

/// An atomic store: the value goes to a temporary file beside `file`, renamed over
/// it. Readers never see a torn number; a read-modify-write around it is still
/// not atomic.
pub fn store_atomically(file: &Path, value: i64) -> anyhow::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in '{}'", dir.display()))?;
    writeln!(tmp, "{value}")?;
    tmp.persist(file)
        .with_context(|| format!("renaming over '{}'", file.display()))?;
    Ok(())
}

/// The number a round left in the counter file `work/rel`, read for the verdict
/// without following a symlink.
pub fn counter_on_disk(work: &Path, rel: &Path) -> anyhow::Result<i64> {
    let bytes = tree::read_file(work, rel, crate::counter::MAX_LEN as u64)?;
    crate::counter::parse(&bytes)
        .map_err(|why| anyhow::anyhow!("'{}' does not hold a number: {why}", rel.display()))
}

/// A deterministic shuffle (xorshift64), so each racer takes its own order and a
/// failing run can be replayed.
pub fn shuffle<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut s = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}
