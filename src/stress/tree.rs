//! Reading what racers left on disk without ever following a symbolic link: a tree
//! (or a report) on a shared filesystem is input, and a symlink planted in it must
//! not lead the check into /usr.
//!
//! Every path below the base is opened one component at a time with `openat` and
//! `O_NOFOLLOW`, relative to a directory already held.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use nix::dir::{Dir, Type};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat};

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Opens `base` (the caller's own path, followed as given) as a directory.
fn open_base(base: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        base,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// The plain names of `rel`'s components; `..`, `/` and `.` are refused.
fn components(rel: &Path) -> anyhow::Result<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => bail!("'{}' is not a plain relative path", rel.display()),
        })
        .collect()
}

/// Opens the directory `base/rel`, refusing a symlink at any component below `base`.
pub fn open_dir(base: &Path, rel: &Path) -> anyhow::Result<OwnedFd> {
    let mut fd = open_base(base).with_context(|| format!("opening '{}'", base.display()))?;
    for name in components(rel)? {
        fd = openat(&fd, name, dir_flags(), Mode::empty()).with_context(|| {
            format!(
                "opening '{}' (a symbolic link is never followed)",
                base.join(rel).display()
            )
        })?;
    }
    Ok(fd)
}

/// Reads the file `base/rel`, at most `cap` bytes (more is an error), refusing a
/// symlink at any component below `base`.
pub fn read_file(base: &Path, rel: &Path, cap: u64) -> anyhow::Result<Vec<u8>> {
    let mut file = open_file(base, rel)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading '{}'", base.join(rel).display()))?;
    if bytes.len() as u64 > cap {
        bail!(
            "'{}' is larger than {cap} bytes: not a file this run wrote",
            base.join(rel).display()
        );
    }
    Ok(bytes)
}

/// Opens the regular file `base/rel` for reading, refusing a symlink anywhere below
/// `base`.
pub fn open_file(base: &Path, rel: &Path) -> anyhow::Result<File> {
    let names = components(rel)?;
    let Some((last, dirs)) = names.split_last() else {
        bail!("an empty file name");
    };
    let dir = open_dir(base, &dirs.iter().collect::<PathBuf>())?;
    let fd = openat(
        &dir,
        *last,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .with_context(|| {
        format!(
            "opening '{}' (a symbolic link is never followed)",
            base.join(rel).display()
        )
    })?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        bail!("'{}' is not a regular file", base.join(rel).display());
    }
    Ok(file)
}

/// What kind of entry a name below `base` is, without following it; `None` if absent.
pub fn kind(base: &Path, rel: &Path) -> anyhow::Result<Option<SFlag>> {
    let names = components(rel)?;
    let Some((last, dirs)) = names.split_last() else {
        bail!("an empty file name");
    };
    let dir = open_dir(base, &dirs.iter().collect::<PathBuf>())?;
    match fstatat(&dir, *last, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(
            st.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("examining '{}'", base.join(rel).display())),
    }
}

/// Every directory in the tree `base/rel` (relative to `base`, `rel` included) and
/// every entry that is not a directory (symlinks among them: listed, not entered).
/// An absent `rel` is an empty tree; a `rel` that is a symlink is one stray.
pub fn scan(base: &Path, rel: &Path) -> anyhow::Result<(BTreeSet<PathBuf>, Vec<PathBuf>)> {
    let mut dirs = BTreeSet::new();
    let mut strays = Vec::new();
    match kind(base, rel)? {
        None => return Ok((dirs, strays)),
        Some(k) if k != SFlag::S_IFDIR => {
            strays.push(rel.to_path_buf());
            return Ok((dirs, strays));
        }
        Some(_) => {}
    }
    let mut stack = vec![(rel.to_path_buf(), open_dir(base, rel)?)];
    while let Some((path, fd)) = stack.pop() {
        let mut dir = Dir::from_fd(fd).with_context(|| format!("reading '{}'", path.display()))?;
        let mut subdirs = Vec::new();
        for entry in dir.iter() {
            let entry = entry.with_context(|| format!("reading '{}'", path.display()))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(t) => t == Type::Directory,
                None => kind(base, &path.join(name))? == Some(SFlag::S_IFDIR),
            };
            if is_dir {
                subdirs.push(name.to_os_string());
            } else {
                strays.push(path.join(name));
            }
        }
        for name in subdirs {
            let fd = openat(dir.as_fd(), name.as_os_str(), dir_flags(), Mode::empty())
                .with_context(|| format!("opening '{}'", path.join(&name).display()))?;
            stack.push((path.join(&name), fd));
        }
        dirs.insert(path);
    }
    Ok((dirs, strays))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_listed_never_entered() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("r/a")).unwrap();
        std::os::unix::fs::symlink("/usr", t.path().join("r/a/evil")).unwrap();
        std::os::unix::fs::symlink("/usr", t.path().join("round-9")).unwrap();
        let (dirs, strays) = scan(t.path(), Path::new("r")).unwrap();
        assert_eq!(dirs.len(), 2);
        assert_eq!(strays, vec![PathBuf::from("r/a/evil")]);
        let (dirs, strays) = scan(t.path(), Path::new("round-9")).unwrap();
        assert!(dirs.is_empty());
        assert_eq!(strays, vec![PathBuf::from("round-9")]);
        assert!(read_file(t.path(), Path::new("r/a/evil/bin"), 10).is_err());
        assert!(open_dir(t.path(), Path::new("round-9")).is_err());
    }

    #[test]
    fn a_file_larger_than_the_cap_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"12345").unwrap();
        assert_eq!(read_file(t.path(), Path::new("f"), 5).unwrap(), b"12345");
        assert!(read_file(t.path(), Path::new("f"), 4).is_err());
        assert!(read_file(t.path(), Path::new("../f"), 4).is_err());
    }
}
