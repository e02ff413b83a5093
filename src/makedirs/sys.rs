//! Thin wrappers over the handful of system calls the walk makes.
//!
//! libc directly rather than nix or std: the walk's cost is counted in system calls
//! (bench/makedirs.sh checks it with strace), so every call here is exactly one
//! syscall with no hidden probes, and errors come back as a bare `Errno`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

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
pub struct At(pub RawFd);

impl At {
    pub const CWD: At = At(libc::AT_FDCWD);

    pub fn of(fd: &OwnedFd) -> At {
        At(fd.as_raw_fd())
    }
}

fn check(rc: libc::c_int) -> Result<libc::c_int, Errno> {
    if rc < 0 { Err(Errno::last()) } else { Ok(rc) }
}

pub fn mkdirat(at: At, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: name is a valid NUL-terminated string; at is a live fd or AT_FDCWD.
    check(unsafe { libc::mkdirat(at.0, name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// The kind of what `name` names; `follow` chooses stat over lstat semantics.
pub fn kind_at(at: At, name: &CStr, follow: bool) -> Result<Kind, Errno> {
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success before we read it.
    check(unsafe { libc::fstatat(at.0, name.as_ptr(), st.as_mut_ptr(), flags) })?;
    Ok(Kind::from_mode(unsafe { st.assume_init() }.st_mode))
}

/// The mode bits (st_mode) of what `fd` refers to; O_PATH descriptors work.
pub fn mode_of(fd: &OwnedFd) -> Result<u32, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success before we read it.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    Ok(unsafe { st.assume_init() }.st_mode)
}

/// Which file a name or descriptor refers to: (st_dev, st_ino).
pub type Identity = (u64, u64);

/// The identity of what `name` names, without following a symlink.
pub fn identity_at(at: At, name: &CStr) -> Result<Identity, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success before we read it.
    check(unsafe {
        libc::fstatat(
            at.0,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// The identity of what `fd` refers to.
pub fn identity(fd: &OwnedFd) -> Result<Identity, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: as above.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// Removes the empty directory `name` in `at` (rmdir relative to a held descriptor).
pub fn rmdir_at(at: At, name: &CStr) -> Result<(), Errno> {
    // SAFETY: valid C string and descriptor.
    check(unsafe { libc::unlinkat(at.0, name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

/// Opens a directory for use as an anchor (O_PATH: needs only search permission).
pub fn open_dir(at: At, name: &CStr, follow: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    // SAFETY: as above; a non-negative return is a fresh descriptor we now own.
    let fd = check(unsafe { libc::openat(at.0, name.as_ptr(), flags) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat2(2) with RESOLVE_BENEATH: the kernel refuses any resolution that leaves `at`.
/// `Err(ENOSYS)` on kernels before 5.6.
pub fn open_dir_beneath(at: At, name: &CStr, follow: bool) -> Result<OwnedFd, Errno> {
    let mut resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    if !follow {
        resolve |= libc::RESOLVE_NO_SYMLINKS;
    }
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: how is a valid open_how of the size we pass.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            at.0,
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    let fd = check(rc as libc::c_int)?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the mode of exactly the directory `fd` refers to. `fd` may be O_PATH, so go
/// through its /proc/self/fd link (what glibc's fchmodat does for O_PATH); without
/// /proc, fall back to `at`+`name`, which names the same directory unless swapped.
pub fn chmod_dir(fd: &OwnedFd, at: At, name: &CStr, mode: u32) -> Result<(), Errno> {
    let link = format!("/proc/self/fd/{}\0", fd.as_raw_fd());
    let link = CStr::from_bytes_with_nul(link.as_bytes()).expect("no interior NUL");
    // SAFETY: valid C string.
    match check(unsafe { libc::chmod(link.as_ptr(), mode as libc::mode_t) }) {
        Err(Errno::ENOENT) => {
            check(unsafe { libc::fchmodat(at.0, name.as_ptr(), mode as libc::mode_t, 0) }).map(drop)
        }
        other => other.map(drop),
    }
}
