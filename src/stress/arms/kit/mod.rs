//! What arms share: a round's directory, a counter file read and stored the plain
//! way (the control arms' building blocks) or read back for the verdict, the order
//! each racer takes, the checksummed versions a file is written with and read back,
//! and the temporary files racefree names. By job, below: [`kill`] (a process
//! killed at a chosen instant), [`holder`] (a lock holder that logs and checks its
//! hold), [`takes`] (a counter's values judged when calls died unseen).

pub mod holder;
pub mod kill;
pub mod takes;

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

/// FNV-1a, 64 bits: enough to tell one version from a torn mixture.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One whole version: `racefree-stress-write ID LEN SUM\n`, then LEN bytes.
pub fn version(id: &str) -> Vec<u8> {
    let seed = checksum(id.as_bytes());
    let len = 1024 * (1 + (seed % 64) as usize);
    let mut s = seed | 1;
    let body: Vec<u8> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            b'a' + (s % 26) as u8
        })
        .collect();
    let mut v = format!(
        "racefree-stress-write {id} {len} {:016x}\n",
        checksum(&body)
    )
    .into_bytes();
    v.extend(body);
    v
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    Complete,
    Empty,
    Torn(String),
}

/// Whether `bytes` is exactly one complete version.
pub fn verify(bytes: &[u8]) -> Seen {
    if bytes.is_empty() {
        return Seen::Empty;
    }
    let Some(nl) = bytes.iter().take(200).position(|&b| b == b'\n') else {
        return Seen::Torn(format!("{} bytes with no header line", bytes.len()));
    };
    let header = String::from_utf8_lossy(&bytes[..nl]);
    let body = &bytes[nl + 1..];
    let fields: Vec<&str> = header.split(' ').collect();
    let (len, sum) = match fields.as_slice() {
        ["racefree-stress-write", _, len, sum] => {
            (len.parse::<usize>(), u64::from_str_radix(sum, 16))
        }
        _ => return Seen::Torn(format!("a header that is not one: {header:?}")),
    };
    match (len, sum) {
        (Ok(len), _) if len != body.len() => Seen::Torn(format!(
            "version {} says {len} bytes, {} follow",
            fields[1],
            body.len()
        )),
        (Ok(_), Ok(sum)) if sum == checksum(body) => Seen::Complete,
        _ => Seen::Torn(format!("version {}: checksum mismatch", fields[1])),
    }
}

/// The control writer: truncate FILE, then write the new content into it through
/// a buffer, the way `cat > FILE` or `File::create` + `write_all` do.
pub fn write_in_place(file: &Path, content: &[u8]) -> anyhow::Result<()> {
    let f =
        std::fs::File::create(file).with_context(|| format!("creating '{}'", file.display()))?;
    let mut w = std::io::BufWriter::new(f);
    w.write_all(content)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing '{}'", file.display()))
}

/// xorshift64 seeded at random: a racer's own stream of instants and choices.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        Rng(crate::write::random_u64() | 1)
    }

    pub fn draw(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn one_in(&mut self, n: u64) -> bool {
        self.draw() % n == 0
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.draw() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What is wrong with `file` as one whole version ([`version`]), if anything.
pub fn not_one_version(file: &Path) -> Option<String> {
    match std::fs::read(file) {
        Ok(bytes) => match verify(&bytes) {
            Seen::Complete => None,
            Seen::Empty => Some(format!("'{}' is empty", file.display())),
            Seen::Torn(why) => Some(format!("'{}' is torn: {why}", file.display())),
        },
        Err(e) => Some(format!("reading '{}': {e}", file.display())),
    }
}

/// The temporary files racefree's `write` and `counter` name after `names` (see
/// `write::leftovers`) that are in `dir`.
pub fn temporaries(dir: &Path, names: &[&str]) -> anyhow::Result<Vec<String>> {
    let prefixes: Vec<String> = names.iter().map(|n| format!(".{n}.rf-")).collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing '{}'", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            found.push(name);
        }
    }
    Ok(found)
}
