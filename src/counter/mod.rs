//! `racefree counter`: an integer in a file, incremented atomically across threads,
//! processes and (with a shared filesystem) hosts. The lesson of a sequence number's
//! read-modify-write (README, "Why"): making each
//! load and store atomic does not make load-add-store atomic; only holding one lock
//! across the whole read-modify-write does.
//!
//! The lock is a sidecar, `FILE.lock`, taken with [`crate::lock::acquire`] and never
//! unlinked. Not FILE itself: FILE is replaced by rename, so a process blocked in
//! flock on the old inode would wake holding a lock on a file no longer at that
//! name, while a newcomer locks the new inode: two holders. Not the directory:
//! that would serialise every counter in it, and need read access to the directory.
//! Never unlinked, because a waiter still blocked on an unlinked lock file would
//! get it at the same moment as a newcomer who created a fresh one.
//!
//! The value is replaced with [`crate::write`]'s temporary-file-and-rename, so
//! readers that take no lock ([`get`], `cat FILE`) never see a torn number. Its
//! temporary file, while named, is `.NAME.rf-counter`, one fixed name: a holder
//! killed between link and rename leaves it, and the next holder, finding it under
//! the lock, knows its maker is dead and removes it (see [`crate::write::leftovers`]).

pub mod cmd;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::quote::quote;
use crate::write::{Naming, Replacement, TempKind};

/// How [`add`] changes the counter.
#[derive(Clone, Debug)]
pub struct Options {
    /// Added to the value; may be negative.
    pub add: i64,
    /// The value a counter that does not exist yet starts from.
    pub init: i64,
    /// Make the new value durable (file and directory fsynced) before returning.
    pub sync: bool,
}

/// `--add`'s default, named once for clap and [`Options::default`].
pub const DEFAULT_ADD: i64 = 1;
/// `--init`'s default.
pub const DEFAULT_INIT: i64 = 0;

impl Default for Options {
    fn default() -> Self {
        Options {
            add: DEFAULT_ADD,
            init: DEFAULT_INIT,
            sync: false,
        }
    }
}

/// What one [`step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The value before, or `None` when this call created the counter.
    pub previous: Option<i64>,
    /// The value now stored.
    pub value: i64,
}

/// Adds `opts.add` and returns the new value. Atomic across threads and processes.
pub fn add(path: &Path, opts: &Options) -> anyhow::Result<i64> {
    step(path, opts).map(|s| s.value)
}

/// The longest file that can hold a counter: a sign, 19 digits and a newline, with
/// room for leading zeros. Anything longer is refused without being read whole.
pub const MAX_LEN: usize = 64;

/// [`add`], reporting the previous value too.
pub fn step(path: &Path, opts: &Options) -> anyhow::Result<Step> {
    // Lock and replace the file the name finally points to, so two symlinks to one
    // counter share one lock.
    let real = crate::write::resolve(path)?;
    let _held = crate::lock::acquire(&lock_path(&real), &crate::lock::Options::default())
        .with_context(|| format!("cannot lock counter {}", quote(path.as_os_str())))?;
    let replace = crate::write::Options {
        mode: None,
        follow: false,
        sync: opts.sync,
        refuse_empty: false,
    };
    // Its temporary file has the one name `.NAME.rf-counter`: under the lock, a name
    // found there is a dead holder's, removed without listing the directory.
    let mut new = Replacement::begin_named(&real, &replace, TempKind::Auto, Naming::UnderLock)?;
    let previous = read_value(path, &real)?;
    let base = previous.unwrap_or(opts.init);
    let Some(value) = base.checked_add(opts.add) else {
        bail!(
            "cannot add {} to {base} in {}: the result is outside the 64-bit range; it was left as it was",
            opts.add,
            quote(path.as_os_str())
        );
    };
    crate::write::write_all(new.file(), format!("{value}\n").as_bytes())
        .with_context(|| format!("cannot write counter {}", quote(path.as_os_str())))?;
    new.commit()?;
    Ok(Step { previous, value })
}

/// Reads the counter without changing it and without locking: the file is only
/// ever replaced whole, so any read sees some complete value. `None` if absent.
pub fn get(path: &Path) -> anyhow::Result<Option<i64>> {
    read_value(path, &crate::write::resolve(path)?)
}

/// The sidecar lock of a counter file: `FILE.lock`.
pub fn lock_path(real: &Path) -> PathBuf {
    let mut s = real.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

fn read_value(shown: &Path, real: &Path) -> anyhow::Result<Option<i64>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(real);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read counter {}", quote(shown.as_os_str())));
        }
    };
    let mut buf = Vec::with_capacity(MAX_LEN + 1);
    f.take(MAX_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read counter {}", quote(shown.as_os_str())))?;
    match parse(&buf) {
        Ok(v) => Ok(Some(v)),
        // Empty is not read as 0: an in-place writer (`echo $n > F`) killed between
        // truncating and writing leaves it so, and 0 would hand out numbers again.
        Err(_) if buf.strip_suffix(b"\n").unwrap_or(&buf).is_empty() => bail!(
            "{} is empty, not a number: remove it, and the next call starts the counter from --init (default 0)",
            quote(shown.as_os_str())
        ),
        Err(why) => bail!("{} does not hold a number: {why}", quote(shown.as_os_str())),
    }
}

/// Strict parse of a counter file: an optional sign, at least one digit, at most
/// one trailing newline, nothing else, at most [`MAX_LEN`] bytes.
pub fn parse(bytes: &[u8]) -> Result<i64, String> {
    if bytes.len() > MAX_LEN {
        return Err(format!("it is longer than {MAX_LEN} bytes"));
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Err("it is empty".into());
    }
    let digits = match body[0] {
        b'+' | b'-' => &body[1..],
        _ => body,
    };
    if digits.is_empty() {
        return Err("a sign with no digits".into());
    }
    let offset = body.len() - digits.len();
    if let Some(i) = digits.iter().position(|b| !b.is_ascii_digit()) {
        let at = offset + i;
        let c = body[at];
        let shown = if c.is_ascii_graphic() {
            format!("'{}'", c as char)
        } else {
            format!("byte 0x{c:02x}")
        };
        return Err(format!("unexpected {shown} at offset {at}"));
    }
    std::str::from_utf8(body)
        .expect("ASCII")
        .parse::<i64>()
        .map_err(|_| "the number is outside the 64-bit range".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_exactly_the_documented_shapes() {
        assert_eq!(parse(b"0"), Ok(0));
        assert_eq!(parse(b"42\n"), Ok(42));
        assert_eq!(parse(b"-7\n"), Ok(-7));
        assert_eq!(parse(b"+7"), Ok(7));
        assert_eq!(parse(b"007\n"), Ok(7));
        assert_eq!(parse(b"9223372036854775807\n"), Ok(i64::MAX));
        assert_eq!(parse(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse(b""), Err("it is empty".into()));
        assert_eq!(parse(b"\n"), Err("it is empty".into()));
        assert_eq!(parse(b"-\n"), Err("a sign with no digits".into()));
        assert_eq!(
            parse(b"1\n\n"),
            Err("unexpected byte 0x0a at offset 1".into())
        );
        assert_eq!(parse(b" 1"), Err("unexpected byte 0x20 at offset 0".into()));
        assert_eq!(parse(b"12a"), Err("unexpected 'a' at offset 2".into()));
        assert_eq!(
            parse(b"1\r\n"),
            Err("unexpected byte 0x0d at offset 1".into())
        );
        assert_eq!(
            parse(b"9223372036854775808"),
            Err("the number is outside the 64-bit range".into())
        );
        assert_eq!(parse(&[b'1'; 65]), Err("it is longer than 64 bytes".into()));
    }

    #[test]
    fn threads_of_one_process_take_every_number_exactly_once() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("n");
        let per = 50;
        let threads = 4;
        let mut got: Vec<i64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        (0..per)
                            .map(|_| add(&f, &Options::default()).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        got.sort();
        assert_eq!(got, (1..=per * threads).collect::<Vec<i64>>());
        assert_eq!(get(&f).unwrap(), Some(per * threads));
    }

    #[test]
    fn overflow_is_an_error_and_the_file_is_untouched() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("n");
        std::fs::write(&f, format!("{}\n", i64::MAX)).unwrap();
        let err = add(&f, &Options::default()).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cannot add 1 to {} in '{}': the result is outside the 64-bit range; it was left as it was",
                i64::MAX,
                f.display()
            )
        );
        assert_eq!(get(&f).unwrap(), Some(i64::MAX));
    }
}
