//! The file a replacement replaces, resolved to its directory and name, and the
//! temporary file beside it: how it is created, named and linked.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, linkat, unlinkat};

use super::{cleanup, leftovers};
use crate::quote::quote;

/// How the temporary file is made. `Auto` is O_TMPFILE where it works, else a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TempKind {
    Auto,
    /// Always a named O_EXCL file: the path filesystems without O_TMPFILE take.
    Named,
}

/// How the temporary file is named while it has a name (see [`leftovers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Naming {
    /// A name of its own that proves its writer; every successful replacement
    /// removes the dead writers' names of its FILE.
    Stamped,
    /// `.NAME.rf-counter`, for a caller holding a lock that every other user of the
    /// name takes too: a name found there was left by a dead holder.
    UnderLock,
}

/// The file to replace, resolved: its directory (held open) and its name there.
pub(super) struct Target {
    /// The path as the user gave it, for messages.
    shown: PathBuf,
    /// The directory that will hold the new file.
    pub(super) dir_path: PathBuf,
    pub(super) dir: OwnedFd,
    pub(super) name: CString,
}

/// What stands at the target's name.
pub(super) enum Existing {
    Absent,
    File(FileStat),
    Symlink,
}

/// Symlink hops followed before giving up, as the kernel's own limit (ELOOP).
const MAX_SYMLINKS: usize = 40;

/// Follows symlinks at `path` (only the last component, hop by hop, as open(2)
/// would) to the file that should be replaced. A dangling link resolves to the
/// path it names, which is then created, as `echo > link` would.
///
/// Each hop is one readlink(2), whose EINVAL says "not a symlink": asking lstat
/// first and readlink after would fail when the name is swapped from a symlink to
/// a file between the two.
pub(crate) fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match std::fs::read_link(&p) {
            Ok(t) => {
                p = match p.parent() {
                    Some(parent) if t.is_relative() => parent.join(t),
                    _ => t,
                };
            }
            // Not a symlink, absent, or out of reach: whatever opening it finds.
            Err(_) => return Ok(p),
        }
    }
    bail!(
        "cannot resolve {}: too many levels of symbolic links",
        quote(path.as_os_str())
    )
}

impl Target {
    pub(crate) fn open(path: &Path, follow: bool) -> anyhow::Result<Target> {
        if path.as_os_str().is_empty() {
            return Err(crate::exit::usage("FILE is empty"));
        }
        let real = if follow {
            resolve(path)?
        } else {
            path.to_path_buf()
        };
        let name = match real.file_name() {
            Some(n) if !real.as_os_str().as_bytes().ends_with(b"/") => n.to_os_string(),
            _ => bail!(
                "cannot replace {}: it names a directory",
                quote(path.as_os_str())
            ),
        };
        let dir_path = match real.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let cdir = cstring(dir_path.as_os_str())?;
        let dir = match open(
            cdir.as_c_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => dir,
            Err(e) => bail!(
                "cannot open directory {}: {}",
                quote(dir_path.as_os_str()),
                e.desc()
            ),
        };
        Ok(Target {
            shown: path.to_path_buf(),
            dir_path,
            dir,
            name: cstring(&name)?,
        })
    }

    pub(super) fn shown(&self) -> String {
        quote(self.shown.as_os_str())
    }

    /// What is at the name now: a regular file to replace, nothing, or a symlink.
    pub(super) fn existing(&self) -> anyhow::Result<Existing> {
        let st = match fstatat(
            &self.dir,
            self.name.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(Existing::Absent),
            Err(e) => bail!("cannot examine {}: {}", self.shown(), e.desc()),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Ok(Existing::File(st)),
            libc::S_IFLNK => Ok(Existing::Symlink),
            libc::S_IFDIR => bail!("cannot replace {}: it is a directory", self.shown()),
            _ => bail!("cannot replace {}: it is not a regular file", self.shown()),
        }
    }

    /// A name for the temporary file, as `naming` names it.
    fn temp_name(&self, naming: Naming) -> CString {
        match naming {
            Naming::Stamped => leftovers::stamped_name(&self.name),
            Naming::UnderLock => leftovers::locked_name(&self.name),
        }
    }

    /// Handles a temporary name that is taken: a stamped name was someone else's
    /// (try another); the locked name is a dead holder's, removed here. Other
    /// errors are returned. Gives up on a locked name that keeps coming back.
    fn name_taken(
        &self,
        naming: Naming,
        name: &CString,
        e: Errno,
        tries: &mut u32,
    ) -> anyhow::Result<()> {
        if e != Errno::EEXIST {
            return Err(self.dir_error(e));
        }
        *tries += 1;
        if naming == Naming::UnderLock {
            if *tries > 3 {
                bail!(
                    "cannot replace {}: its temporary file {} keeps reappearing although its lock is held",
                    self.shown(),
                    quote(OsStr::from_bytes(name.as_bytes()))
                );
            }
            match unlinkat(&self.dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(self.dir_error(e)),
            }
        }
        Ok(())
    }

    /// A new, empty temporary file in the target's directory, mode 0600 until
    /// commit sets the real mode (so no one reads a half-written file), and its
    /// name if it has one.
    pub(super) fn create_temp(
        &self,
        kind: TempKind,
        naming: Naming,
    ) -> anyhow::Result<(std::fs::File, Option<(CString, cleanup::Slot)>)> {
        let private = Mode::S_IRUSR | Mode::S_IWUSR;
        if kind == TempKind::Auto && proc_fd_usable() {
            let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
            match openat(&self.dir, c".", flags, private) {
                Ok(fd) => return Ok((fd.into(), None)),
                // Filesystems and kernels without O_TMPFILE say so in several ways.
                Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL | Errno::ENOENT) => {}
                Err(e) => return Err(self.dir_error(e)),
            }
        }
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let mut tries = 0;
        loop {
            let name = self.temp_name(naming);
            let slot = cleanup::register(&self.dir_path, &name);
            match openat(&self.dir, name.as_c_str(), flags, private) {
                Ok(fd) => return Ok((fd.into(), Some((name, slot)))),
                Err(e) => {
                    // Not ours: the slot must not unlink someone else's file.
                    drop(slot);
                    self.name_taken(naming, &name, e, &mut tries)?;
                }
            }
        }
    }

    fn dir_error(&self, e: Errno) -> anyhow::Error {
        anyhow!(
            "cannot create a temporary file in {} to replace {}: {}",
            quote(self.dir_path.as_os_str()),
            self.shown(),
            e.desc()
        )
    }

    /// Gives the temporary file FILE's owner, group and `mode`, and makes it
    /// durable if asked.
    pub(super) fn prepare(
        &self,
        file: &std::fs::File,
        existing: Option<&FileStat>,
        mode: u32,
        sync: bool,
    ) -> anyhow::Result<()> {
        if let Some(st) = existing {
            let mine = fstat(file)
                .map_err(io::Error::from)
                .context("cannot examine the temporary file")?;
            if (mine.st_uid, mine.st_gid) != (st.st_uid, st.st_gid) {
                // chown before chmod: chown clears setuid and setgid bits.
                let (uid, gid) = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
                if let Err(e) = fchown(file, Some(uid), Some(gid)) {
                    bail!(
                        "cannot keep the owner and group of {} ({}:{}): {}; it was left as it was",
                        self.shown(),
                        st.st_uid,
                        st.st_gid,
                        e.desc()
                    );
                }
            }
        }
        if let Err(e) = fchmod(file, Mode::from_bits_truncate(mode)) {
            bail!(
                "cannot set mode {mode:04o} for {}: {}",
                self.shown(),
                e.desc()
            );
        }
        if sync && let Err(e) = fsync(file) {
            bail!(
                "cannot sync the new content of {}: {}",
                self.shown(),
                e.desc()
            );
        }
        Ok(())
    }

    /// Gives an O_TMPFILE file its name, through /proc/self/fd: linkat with
    /// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH.
    pub(super) fn link_tmpfile(
        &self,
        file: &std::fs::File,
        naming: Naming,
    ) -> anyhow::Result<(CString, cleanup::Slot)> {
        let proc = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
        let mut tries = 0;
        loop {
            let name = self.temp_name(naming);
            // Registered before the link exists: a signal right after linkat
            // still finds it.
            let slot = cleanup::register(&self.dir_path, &name);
            match linkat(
                AT_FDCWD,
                proc.as_c_str(),
                &self.dir,
                name.as_c_str(),
                AtFlags::AT_SYMLINK_FOLLOW,
            ) {
                Ok(()) => return Ok((name, slot)),
                Err(e) => {
                    drop(slot);
                    self.name_taken(naming, &name, e, &mut tries)?;
                }
            }
        }
    }
}

fn proc_fd_usable() -> bool {
    use std::sync::OnceLock;
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

fn cstring(s: &OsStr) -> anyhow::Result<CString> {
    CString::new(s.as_bytes().to_vec())
        .map_err(|_| crate::exit::usage(format!("{}: a NUL byte inside a path", quote(s))))
}
