//! `racefree write`: replace a file's content atomically (Go's renameio, the
//! atomic-write-file crate, moreutils sponge made crash-safe).
//!
//! The new content goes to a temporary file in FILE's own directory (so the final
//! rename can never cross a device), is made durable, and is renamed over FILE.
//! Readers see the old content or the new one, never a mixture or an empty file,
//! and a crash at any point leaves one of the two.
//!
//! Where the kernel and filesystem allow it the temporary file is created with
//! O_TMPFILE: it has no name while the content is written, so nothing can be left
//! behind even by SIGKILL; it gets a random name only for the instant between
//! linkat and rename. Elsewhere it is a random name made with O_EXCL. Either way
//! the name is registered with [`cleanup`] while it exists, so the command's
//! signal handler can unlink it.

pub mod cleanup;
pub mod cmd;

use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, open, openat, renameat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, linkat, unlink, unlinkat, write};

use crate::quote::quote;

/// How [`replace`] treats FILE.
#[derive(Clone, Debug)]
pub struct Options {
    /// Mode bits for the new content; `None` keeps the existing file's, or gives a
    /// new file `0666 & ~umask`.
    pub mode: Option<u32>,
    /// A symlink at FILE: replace the file it points to (true) or the link itself.
    pub follow: bool,
    /// fsync the content before the rename and the directory after it.
    pub sync: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: None,
            follow: true,
            sync: true,
        }
    }
}

/// How the temporary file is made. `Auto` is O_TMPFILE where it works, else a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TempKind {
    Auto,
    /// Always a named O_EXCL file: the path filesystems without O_TMPFILE take.
    Named,
}

/// Replaces the content of `path` with everything `content` yields.
pub fn replace(path: &Path, content: &mut dyn Read, opts: &Options) -> anyhow::Result<()> {
    replace_with(path, content, opts, TempKind::Auto)
}

/// [`replace`] for any reader, choosing how the temporary file is made (tests
/// force `Named`).
pub fn replace_with<R: Read + ?Sized>(
    path: &Path,
    content: &mut R,
    opts: &Options,
    kind: TempKind,
) -> anyhow::Result<()> {
    let target = Target::open(path, opts.follow)?;
    let existing = target.existing()?;
    let mode = opts.mode.unwrap_or_else(|| match &existing {
        Some(st) => st.st_mode & 0o7777,
        None => 0o666 & !crate::makedirs::mode::umask(),
    });
    let mut temp = target.create_temp(kind)?;
    // std::io::copy, generic over the reader: for standard input it moves the bytes
    // inside the kernel (copy_file_range from a file, splice from a pipe), where a
    // read/write loop cost 40% more on 64 MiB (bench/RESULTS-primitives.md).
    io::copy(content, &mut temp.file)
        .with_context(|| format!("cannot write new content for {}", quote(path.as_os_str())))?;
    target.publish(&mut temp, existing.as_ref(), mode, opts.sync)
}

/// The file to replace, resolved: its directory (held open) and its name there.
pub(crate) struct Target {
    /// The path as the user gave it, for messages.
    shown: PathBuf,
    /// The directory that will hold the new file.
    dir_path: PathBuf,
    dir: OwnedFd,
    name: CString,
}

/// Symlink hops followed before giving up, as the kernel's own limit (ELOOP).
const MAX_SYMLINKS: usize = 40;

/// Follows symlinks at `path` (only the last component, hop by hop, as open(2)
/// would) to the file that should be replaced. A dangling link resolves to the
/// path it names, which is then created, as `echo > link` would.
pub(crate) fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p).with_context(|| {
                    format!("cannot read symbolic link {}", quote(p.as_os_str()))
                })?;
                p = match p.parent() {
                    Some(parent) if t.is_relative() => parent.join(t),
                    _ => t,
                };
            }
            _ => return Ok(p),
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

    fn shown(&self) -> String {
        quote(self.shown.as_os_str())
    }

    /// The file being replaced, if there is one. A symlink here means --no-follow:
    /// the link itself is replaced by a new regular file.
    pub(crate) fn existing(&self) -> anyhow::Result<Option<FileStat>> {
        let st = match fstatat(
            &self.dir,
            self.name.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => bail!("cannot examine {}: {}", self.shown(), e.desc()),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Ok(Some(st)),
            libc::S_IFLNK => Ok(None),
            libc::S_IFDIR => bail!("cannot replace {}: it is a directory", self.shown()),
            _ => bail!("cannot replace {}: it is not a regular file", self.shown()),
        }
    }

    /// A new, empty temporary file in the target's directory, mode 0600 until
    /// publish sets the real mode (so no one reads a half-written file).
    pub(crate) fn create_temp(&self, kind: TempKind) -> anyhow::Result<Temp<'_>> {
        let private = Mode::S_IRUSR | Mode::S_IWUSR;
        if kind == TempKind::Auto && proc_fd_usable() {
            let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
            match openat(&self.dir, c".", flags, private) {
                Ok(fd) => {
                    return Ok(Temp {
                        file: fd.into(),
                        name: None,
                        dir: self.dir.as_fd(),
                    });
                }
                // Filesystems and kernels without O_TMPFILE say so in several ways.
                Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL | Errno::ENOENT) => {}
                Err(e) => return Err(self.dir_error(e)),
            }
        }
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        loop {
            let name = temp_name(&self.name);
            let slot = cleanup::register(&self.dir_path, &name);
            match openat(&self.dir, name.as_c_str(), flags, private) {
                Ok(fd) => {
                    return Ok(Temp {
                        file: fd.into(),
                        name: Some((name, slot)),
                        dir: self.dir.as_fd(),
                    });
                }
                Err(e) => {
                    // Not ours: the slot must not unlink someone else's file.
                    drop(slot);
                    if e != Errno::EEXIST {
                        return Err(self.dir_error(e));
                    }
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

    /// Gives the temporary file FILE's owner, group and `mode`, makes it durable if
    /// asked, and renames it over FILE. On any error the temporary file is gone and
    /// FILE is as it was.
    pub(crate) fn publish(
        &self,
        temp: &mut Temp,
        existing: Option<&FileStat>,
        mode: u32,
        sync: bool,
    ) -> anyhow::Result<()> {
        let file = &temp.file;
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
        if temp.name.is_none() {
            self.link_tmpfile(temp)?;
        }
        let (name, _) = temp.name.as_ref().expect("named by now");
        if let Err(e) = renameat(&self.dir, name.as_c_str(), &self.dir, self.name.as_c_str()) {
            bail!(
                "cannot rename the new content over {}: {}",
                self.shown(),
                e.desc()
            );
        }
        // The name now belongs to FILE: nothing to clean up any more.
        temp.name.take();
        if sync && let Err(e) = fsync(&self.dir) {
            bail!(
                "replaced {}, but cannot sync its directory {}: {}",
                self.shown(),
                quote(self.dir_path.as_os_str()),
                e.desc()
            );
        }
        Ok(())
    }

    /// Gives an O_TMPFILE file a random name, through /proc/self/fd: linkat with
    /// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH.
    fn link_tmpfile(&self, temp: &mut Temp) -> anyhow::Result<()> {
        let proc =
            CString::new(format!("/proc/self/fd/{}", temp.file.as_raw_fd())).expect("no NUL");
        loop {
            let name = temp_name(&self.name);
            // Registered before the link exists: a signal right after linkat
            // still finds it. A random 64-bit name is never someone else's.
            let slot = cleanup::register(&self.dir_path, &name);
            match linkat(
                AT_FDCWD,
                proc.as_c_str(),
                &self.dir,
                name.as_c_str(),
                AtFlags::AT_SYMLINK_FOLLOW,
            ) {
                Ok(()) => {
                    temp.name = Some((name, slot));
                    return Ok(());
                }
                Err(e) => {
                    drop(slot);
                    if e != Errno::EEXIST {
                        return Err(self.dir_error(e));
                    }
                }
            }
        }
    }
}

/// A temporary file being filled, in its target's directory. Dropping it before
/// publish unlinks its name.
pub(crate) struct Temp<'a> {
    pub(crate) file: std::fs::File,
    name: Option<(CString, cleanup::Slot)>,
    dir: BorrowedFd<'a>,
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if let Some((name, slot)) = self.name.take() {
            let _ = unlinkat(self.dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir);
            drop(slot);
        }
    }
}

/// `.NAME.rf-<16 hex>`: hidden, next to FILE, and random so names never collide.
fn temp_name(file: &CString) -> CString {
    let mut bytes = b".".to_vec();
    // Keep room for the suffix within NAME_MAX (255).
    let stem = file.as_bytes();
    bytes.extend_from_slice(&stem[..stem.len().min(200)]);
    bytes.extend_from_slice(format!(".rf-{:016x}", random_u64()).as_bytes());
    CString::new(bytes).expect("no NUL in a file name")
}

pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // libc's getrandom: nix does not wrap it.
    // SAFETY: buf is valid for 8 bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), 8, 0) };
    if n != 8 {
        // No getrandom (very old kernel): time and pid still make a unique-enough
        // name, and O_EXCL catches the rest.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ ((std::process::id() as u64) << 32);
    }
    u64::from_ne_bytes(buf)
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

pub(crate) fn write_all(to: impl AsFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match write(&to, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The step at which [`link_new`] failed, for each caller to say in its own terms.
#[derive(Debug)]
pub(crate) enum LinkNewError {
    /// The aside could not be created (it must not exist yet).
    Create(Errno),
    Write(io::Error),
    /// The aside's stat, which tells whether the link was made.
    Examine(Errno),
    /// link(2) failed, and not because the name was taken.
    Link(Errno),
}

/// Makes `name` appear holding exactly `content` (mode 0644 & ~umask), unless
/// something is there already: the content is written to `aside`, a new name
/// unique to the caller, linked to `name` with link(2), and `aside` removed, so
/// whoever finds `name` finds it whole. `Ok(Some(stat))` of the new file when the
/// link was made, `Ok(None)` when `name` was taken.
pub(crate) fn link_new(
    aside: &Path,
    name: &Path,
    content: &[u8],
) -> Result<Option<FileStat>, LinkNewError> {
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let fd = open(aside, flags, Mode::from_bits_truncate(0o644)).map_err(LinkNewError::Create)?;
    struct Unlink<'a>(&'a Path);
    impl Drop for Unlink<'_> {
        fn drop(&mut self) {
            let _ = unlink(self.0);
        }
    }
    let _unlink_aside = Unlink(aside);
    write_all(&fd, content).map_err(LinkNewError::Write)?;
    let linked = linkat(AT_FDCWD, aside, AT_FDCWD, name, AtFlags::empty());
    let st = fstat(&fd).map_err(LinkNewError::Examine)?;
    match linked {
        Ok(()) => Ok(Some(st)),
        // NFS: a link whose reply was lost reports failure but did happen; the
        // link count tells the truth either way.
        Err(_) if st.st_nlink == 2 => Ok(Some(st)),
        Err(Errno::EEXIST) => Ok(None),
        Err(e) => Err(LinkNewError::Link(e)),
    }
}

#[cfg(test)]
mod tests;
