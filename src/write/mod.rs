//! `racefree write`: replace a file's content atomically (Go's renameio, the
//! atomic-write-file crate, moreutils sponge made crash-safe).
//!
//! The new content goes to a temporary file in FILE's own directory (so the final
//! rename can never cross a device), is made durable, and is renamed over FILE.
//! Readers see the old content or the new one, never a mixture or an empty file,
//! and a crash at any point leaves one of the two.
//!
//! Where the kernel and filesystem allow it the temporary file is created with
//! O_TMPFILE: it has no name while the content is written, and gets one only for
//! the instant between linkat and rename. Elsewhere it has a name from the start,
//! made with O_EXCL. Either way the name is registered with [`cleanup`] while it
//! exists, so the command's signal handler can unlink it; a call killed outright
//! (SIGKILL, a crash) leaves it, and names it so that the next successful call can
//! prove its writer dead and remove it ([`leftovers`] has the names and the rule).

pub mod cleanup;
pub mod cmd;
pub mod leftovers;
mod target;

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, open, renameat};
use nix::sys::stat::{FileStat, Mode, fstat};
use nix::unistd::{UnlinkatFlags, fsync, linkat, unlink, unlinkat, write};

use crate::quote::quote;
pub(crate) use leftovers::random_u64;
pub use target::TempKind;
use target::{Existing, Target};
pub(crate) use target::{Naming, resolve};

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
    /// Refuse to replace a non-empty FILE with empty content (`--no-empty`).
    pub refuse_empty: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: None,
            follow: true,
            sync: true,
            refuse_empty: false,
        }
    }
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
    let mut new = Replacement::begin(path, opts, kind)?;
    new.fill(content, "the new content")?;
    new.commit()
}

/// A replacement in progress: FILE resolved, its temporary file open. Write the new
/// content into [`Replacement::file`], then [`Replacement::commit`]; dropping it
/// instead leaves FILE as it was and removes the temporary file.
pub struct Replacement {
    target: Target,
    existing: Option<FileStat>,
    mode: u32,
    opts: Options,
    naming: Naming,
    file: std::fs::File,
    /// The temporary file's name while it has one, registered for the signal handler.
    name: Option<(CString, cleanup::Slot)>,
}

/// Resolutions of a symlink at FILE that may each find it swapped for a file (or
/// back) before giving up, as makedirs bounds its walks.
const RESOLVE_ATTEMPTS: usize = 8;

impl Replacement {
    /// Resolves FILE and opens a temporary file beside the file it names.
    pub fn begin(path: &Path, opts: &Options, kind: TempKind) -> anyhow::Result<Replacement> {
        Replacement::begin_named(path, opts, kind, Naming::Stamped)
    }

    pub(crate) fn begin_named(
        path: &Path,
        opts: &Options,
        kind: TempKind,
        naming: Naming,
    ) -> anyhow::Result<Replacement> {
        let mut attempt = 0;
        let (target, existing) = loop {
            attempt += 1;
            let target = Target::open(path, opts.follow)?;
            match target.existing()? {
                Existing::File(st) => break (target, Some(st)),
                Existing::Absent => break (target, None),
                Existing::Symlink if !opts.follow => break (target, None),
                // Resolved to a file that a symlink has replaced since: following
                // means its target is what must be replaced, so resolve again.
                Existing::Symlink if attempt < RESOLVE_ATTEMPTS => continue,
                Existing::Symlink => bail!(
                    "cannot replace {}: it kept changing between a symbolic link and a file \
                     ({RESOLVE_ATTEMPTS} attempts)",
                    target.shown()
                ),
            }
        };
        let mode = opts.mode.unwrap_or_else(|| match &existing {
            Some(st) => st.st_mode & 0o7777,
            None => 0o666 & !crate::makedirs::mode::umask(),
        });
        let (file, name) = target.create_temp(kind, naming)?;
        Ok(Replacement {
            target,
            existing,
            mode,
            opts: opts.clone(),
            naming,
            file,
            name,
        })
    }

    /// The temporary file, to write the new content into.
    pub fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    /// Copies all of `content` into the temporary file. `source` names it in the
    /// error ("standard input"), which says which side of the copy failed.
    pub fn fill<R: Read + ?Sized>(&mut self, content: &mut R, source: &str) -> anyhow::Result<()> {
        // std::io::copy, generic over the reader: for standard input it moves the
        // bytes inside the kernel (copy_file_range from a file, splice from a pipe),
        // where a read/write loop cost 40% more on 64 MiB (bench/RESULTS-primitives.md).
        // One system call then reads and writes, so its errno alone tells the side:
        // writing a new regular file fails, in practice, only for want of space.
        if let Err(e) = io::copy(content, &mut self.file) {
            let errno = e.raw_os_error().map(Errno::from_raw);
            let side = match errno {
                Some(Errno::ENOSPC | Errno::EDQUOT | Errno::EFBIG) => "writing its new content",
                _ => &format!("reading {source}"),
            };
            let why = errno.map_or_else(|| e.to_string(), |n| n.desc().to_string());
            bail!("cannot replace {}: {side}: {why}", self.target.shown());
        }
        Ok(())
    }

    /// Gives the temporary file FILE's owner, group and mode, makes it durable if
    /// asked, and renames it over FILE; then removes what dead writers left. On any
    /// error before the rename the temporary file is gone and FILE is as it was.
    pub fn commit(mut self) -> anyhow::Result<()> {
        if self.opts.refuse_empty
            && let Some(st) = &self.existing
            && st.st_size > 0
        {
            let new = fstat(&self.file)
                .map_err(io::Error::from)
                .context("cannot examine the temporary file")?;
            if new.st_size == 0 {
                bail!(
                    "refusing to replace {} ({} bytes) with empty content (--no-empty); it was left as it was",
                    self.target.shown(),
                    st.st_size
                );
            }
        }
        self.target.prepare(
            &self.file,
            self.existing.as_ref(),
            self.mode,
            self.opts.sync,
        )?;
        if self.name.is_none() {
            self.name = Some(self.target.link_tmpfile(&self.file, self.naming)?);
        }
        let target = &self.target;
        let (name, _) = self.name.as_ref().expect("named by now");
        leftovers::maybe_die_before_rename();
        if let Err(e) = renameat(
            &target.dir,
            name.as_c_str(),
            &target.dir,
            target.name.as_c_str(),
        ) {
            bail!(
                "cannot rename the new content over {}: {}",
                target.shown(),
                e.desc()
            );
        }
        // The name now belongs to FILE: nothing to clean up any more.
        self.name.take();
        if self.naming == Naming::Stamped {
            leftovers::remove_dead(&target.dir, &target.name);
        }
        if self.opts.sync
            && let Err(e) = fsync(&target.dir)
        {
            bail!(
                "replaced {}, but cannot sync its directory {}: {}",
                target.shown(),
                quote(target.dir_path.as_os_str()),
                e.desc()
            );
        }
        Ok(())
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if let Some((name, slot)) = self.name.take() {
            let _ = unlinkat(
                &self.target.dir,
                name.as_c_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            drop(slot);
        }
    }
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
