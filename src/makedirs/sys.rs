//! Thin wrappers over the handful of system calls the walk makes.
//!
//! nix's calls rather than std's: the walk names each component relative to a
//! directory it holds (std has no *at calls), and its cost is counted in system
//! calls (bench/makedirs.sh checks it with strace), so every call here is exactly
//! one system call with no hidden probes, and errors come back as a bare `Errno`.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, fchmodat, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// What a path names, as far as the walk cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    RegularFile,
    Symlink,
    Socket,
    Fifo,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    fn from_mode(mode: libc::mode_t) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Directory,
            libc::S_IFREG => Kind::RegularFile,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            _ => Kind::Unknown,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Directory => "directory",
            Kind::RegularFile => "regular file",
            Kind::Symlink => "symbolic link",
            Kind::Socket => "socket",
            Kind::Fifo => "fifo",
            Kind::CharDevice => "character device",
            Kind::BlockDevice => "block device",
            Kind::Unknown => "file of unknown type",
        }
    }
}

/// A directory the walk works relative to: the process's cwd or a held descriptor.
#[derive(Clone, Copy, Debug)]
pub struct At<'fd>(BorrowedFd<'fd>);

impl At<'static> {
    pub const CWD: At<'static> = At(AT_FDCWD);
}

impl<'fd> At<'fd> {
    pub fn of(fd: &'fd OwnedFd) -> At<'fd> {
        At(fd.as_fd())
    }
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits)
}

pub fn mkdirat(at: At, name: &CStr, bits: u32) -> Result<(), Errno> {
    nix::sys::stat::mkdirat(at.0, name, mode(bits))
}

/// The kind of what `name` names; `follow` chooses stat over lstat semantics.
pub fn kind_at(at: At, name: &CStr, follow: bool) -> Result<Kind, Errno> {
    let flags = if follow {
        AtFlags::empty()
    } else {
        AtFlags::AT_SYMLINK_NOFOLLOW
    };
    Ok(Kind::from_mode(fstatat(at.0, name, flags)?.st_mode))
}

/// The mode bits (st_mode) of what `fd` refers to; O_PATH descriptors work.
pub fn mode_of(fd: &OwnedFd) -> Result<u32, Errno> {
    Ok(fstat(fd)?.st_mode)
}

/// Which file a name or descriptor refers to: (st_dev, st_ino).
pub type Identity = (u64, u64);

fn identity_of(st: FileStat) -> Identity {
    (st.st_dev, st.st_ino)
}

/// The identity of what `name` names, without following a symlink.
pub fn identity_at(at: At, name: &CStr) -> Result<Identity, Errno> {
    fstatat(at.0, name, AtFlags::AT_SYMLINK_NOFOLLOW).map(identity_of)
}

/// The identity of what `fd` refers to.
pub fn identity(fd: &OwnedFd) -> Result<Identity, Errno> {
    fstat(fd).map(identity_of)
}

/// Removes the empty directory `name` in `at` (rmdir relative to a held descriptor).
pub fn rmdir_at(at: At, name: &CStr) -> Result<(), Errno> {
    unlinkat(at.0, name, UnlinkatFlags::RemoveDir)
}

/// Opens a directory for use as an anchor (O_PATH: needs only search permission).
pub fn open_dir(at: At, name: &CStr, follow: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    openat(at.0, name, flags, Mode::empty())
}

/// openat2(2) with RESOLVE_BENEATH: the kernel refuses any resolution that leaves `at`.
/// `Err(ENOSYS)` on kernels before 5.6.
pub fn open_dir_beneath(at: At, name: &CStr, follow: bool) -> Result<OwnedFd, Errno> {
    let mut resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    if !follow {
        resolve |= ResolveFlag::RESOLVE_NO_SYMLINKS;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(resolve);
    openat2(at.0, name, how)
}

/// Sets the mode of exactly the directory `fd` refers to. `fd` may be O_PATH, so go
/// through its /proc/self/fd link (what glibc's fchmodat does for O_PATH); without
/// /proc, fall back to `at`+`name`, which names the same directory unless swapped.
pub fn chmod_dir(fd: &OwnedFd, at: At, name: &CStr, bits: u32) -> Result<(), Errno> {
    let link = format!("/proc/self/fd/{}\0", fd.as_raw_fd());
    let link = CStr::from_bytes_with_nul(link.as_bytes()).expect("no interior NUL");
    match fchmodat(AT_FDCWD, link, mode(bits), FchmodatFlags::FollowSymlink) {
        Err(Errno::ENOENT) => fchmodat(at.0, name, mode(bits), FchmodatFlags::FollowSymlink),
        other => other,
    }
}
