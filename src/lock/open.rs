//! Opening LOCKFILE: created if missing, followed through a symbolic link only
//! where the link cannot be a trap.
//!
//! flock(1) follows a symlink at LOCKFILE. So does an attack: in /tmp, anyone can
//! plant `/tmp/job.lock -> /etc/nologin`, and a root cron job that locks
//! `/tmp/job.lock` creates /etc/nologin. The kernel's protected_symlinks rule (when
//! that sysctl is on) refuses to follow a link in a sticky world-writable directory
//! unless the follower or the directory's owner owns it. racefree applies that rule
//! itself, whatever the sysctl says, and one more: anywhere else a link is followed
//! only if the caller owns it or its owner owns the file it points to (someone else's
//! link can point only at their own files). So the self-lock idiom
//! `flock -en "$0" "$0"` works when `$0` is a symlink of one's own or of the
//! script's owner, and a planted link is refused.
//!
//! The checks and the open name the same objects: the link is opened itself
//! (O_PATH | O_NOFOLLOW) and read through that descriptor, its target is opened
//! relative to the directory the link is in, and when the verdict rested on who
//! owns the target, the file opened must be the one that was judged. Links in the
//! target's own path are left to the kernel, as for every other path.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::bail;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::geteuid;

use crate::quote::quote;

/// LOCKFILE, open.
#[derive(Debug)]
pub struct Opened {
    pub fd: OwnedFd,
    /// LOCKFILE was a symbolic link, followed to `fd`'s file.
    pub via_link: bool,
}

/// LOCKFILE could not be opened or created: the root cause, for a caller that can
/// do without the file (`--nfs` needs only its directory).
#[derive(Debug)]
pub struct CannotOpen {
    pub errno: Errno,
    message: String,
}

impl std::fmt::Display for CannotOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CannotOpen {}

/// Flags for every open of the lock file. O_NONBLOCK: a FIFO planted at the name
/// must not hang the open. O_CLOEXEC: no child inherits the lock unless racefree
/// hands it on. O_NOCTTY: a terminal at the name must not become ours.
fn base() -> OFlag {
    OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK
}

/// Opens (creating if needed) the file to lock. See the module comment for links.
pub fn lock_file(path: &Path) -> anyhow::Result<Opened> {
    if path.as_os_str().is_empty() {
        return Err(crate::exit::usage("LOCKFILE is empty"));
    }
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| crate::exit::usage("a NUL byte inside LOCKFILE"))?;
    let open = |flags: OFlag| {
        nix::fcntl::open(
            c.as_c_str(),
            base() | OFlag::O_NOFOLLOW | flags,
            Mode::from_bits_truncate(0o666),
        )
    };
    match open_any_way(open) {
        Ok(fd) => Ok(Opened {
            fd,
            via_link: false,
        }),
        // A symbolic link as the last component (or a loop before it, which
        // following reports in its turn).
        Err(Errno::ELOOP) => follow(path),
        Err(errno) => Err(cannot_open(path, errno)),
    }
}

/// The ways a lock file may be opened, tried in turn: created if missing; a
/// directory (no O_CREAT for it: flock(1) allows locking one); a file we may write
/// but not read, which locks just as well. That last open, without O_CREAT, also
/// tells a symbolic link: with O_CREAT, Linux answers EACCES rather than ELOOP for
/// someone else's link in a sticky world-writable directory.
fn open_any_way(open: impl Fn(OFlag) -> Result<OwnedFd, Errno>) -> Result<OwnedFd, Errno> {
    match open(OFlag::O_RDONLY | OFlag::O_CREAT) {
        Err(Errno::EISDIR) => open(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
        Err(Errno::EACCES) => match open(OFlag::O_WRONLY) {
            Err(Errno::ELOOP) => Err(Errno::ELOOP),
            Err(_) => Err(Errno::EACCES),
            ok => ok,
        },
        other => other,
    }
}

fn cannot_open(path: &Path, errno: Errno) -> anyhow::Error {
    anyhow::Error::new(CannotOpen {
        errno,
        message: format!(
            "cannot open lock file {}: {}",
            quote(path.as_os_str()),
            errno.desc()
        ),
    })
}

/// What decides whether a link may be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    /// The link's owner.
    pub link_uid: u32,
    /// The effective uid of the process that would follow it.
    pub caller_uid: u32,
    /// The owner of the directory the link is in.
    pub dir_uid: u32,
    /// That directory is sticky and world-writable, like /tmp.
    pub dir_sticky_world_writable: bool,
    /// The owner of the file the link points to; `None` if there is none (following
    /// the link would create it) or it cannot be examined.
    pub target_uid: Option<u32>,
}

/// Why a link is not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// In a sticky world-writable directory, owned by neither the caller nor the
    /// directory's owner (the kernel's protected_symlinks rule).
    StickyDirectory,
    /// Owned by neither the caller nor the owner of its target.
    NotTargetsOwner,
    /// Owned by someone else, and pointing at nothing: following would create a
    /// file where they chose.
    NoTarget,
}

/// Whether a link may be followed, and, when the answer rests on the target's
/// owner, `Ok(true)`: the file then opened must be the one judged.
pub fn may_follow(f: &LinkFacts) -> Result<bool, Refusal> {
    if f.link_uid == f.caller_uid {
        return Ok(false);
    }
    if f.dir_sticky_world_writable {
        return if f.link_uid == f.dir_uid {
            Ok(false)
        } else {
            Err(Refusal::StickyDirectory)
        };
    }
    match f.target_uid {
        Some(uid) if uid == f.link_uid => Ok(true),
        Some(_) => Err(Refusal::NotTargetsOwner),
        None => Err(Refusal::NoTarget),
    }
}

/// How often the link may change under us before we give up.
const ATTEMPTS: usize = 3;

/// Follows the symbolic link at `path`, if [`may_follow`] allows it.
fn follow(path: &Path) -> anyhow::Result<Opened> {
    for _ in 0..ATTEMPTS {
        if let Some(opened) = follow_once(path)? {
            return Ok(opened);
        }
    }
    bail!(
        "cannot lock {}: it kept changing between a symbolic link and a file while it was checked",
        quote(path.as_os_str())
    )
}

/// One attempt; `None` when the name changed under us (try again).
fn follow_once(path: &Path) -> anyhow::Result<Option<Opened>> {
    let (parent, name) = split(path);
    let cannot = |errno: Errno| cannot_open(path, errno);
    let dir = nix::fcntl::open(
        parent.as_path(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(cannot)?;
    let link = match openat(
        &dir,
        name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    let link_st = fstat(&link).map_err(cannot)?;
    if !is(&link_st, SFlag::S_IFLNK) {
        return Ok(None);
    }
    // An empty path reads the link the descriptor is open on (Linux 2.6.39).
    let target = readlinkat(&link, "").map_err(cannot)?;
    let target_st = fstatat(&dir, target.as_os_str(), AtFlags::empty()).ok();
    let dir_st = fstat(&dir).map_err(cannot)?;
    let facts = LinkFacts {
        link_uid: link_st.st_uid,
        caller_uid: geteuid().as_raw(),
        dir_uid: dir_st.st_uid,
        dir_sticky_world_writable: dir_st.st_mode & 0o1002 == 0o1002,
        target_uid: target_st.map(|st| st.st_uid),
    };
    let must_be_judged = match may_follow(&facts) {
        Ok(must) => must,
        Err(why) => return Err(refused(path, &target, &facts, why)),
    };
    let open = |flags: OFlag| {
        openat(
            &dir,
            target.as_os_str(),
            base() | flags,
            Mode::from_bits_truncate(0o666),
        )
    };
    let fd = open_any_way(open).map_err(cannot)?;
    if must_be_judged {
        let (Ok(now), Some(judged)) = (fstat(fd.as_fd()), target_st) else {
            return Ok(None);
        };
        if (now.st_dev, now.st_ino) != (judged.st_dev, judged.st_ino) {
            return Ok(None);
        }
    }
    Ok(Some(Opened { fd, via_link: true }))
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

/// The directory `path` names its last component in, and that component.
fn split(path: &Path) -> (PathBuf, OsString) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| path.as_os_str().to_os_string(), |n| n.to_os_string());
    (parent, name)
}

fn refused(path: &Path, target: &OsString, f: &LinkFacts, why: Refusal) -> anyhow::Error {
    let why = match why {
        Refusal::StickyDirectory => format!(
            "it is a symbolic link owned by uid {}, who is neither you nor the owner of the sticky world-writable directory it is in",
            f.link_uid
        ),
        Refusal::NotTargetsOwner => format!(
            "it is a symbolic link owned by uid {}, who is neither you nor the owner of {}",
            f.link_uid,
            quote(target)
        ),
        Refusal::NoTarget => format!(
            "it is a symbolic link owned by uid {}, who is not you, to {}, which does not exist",
            f.link_uid,
            quote(target)
        ),
    };
    anyhow::anyhow!(
        "refusing to lock {}: {why} (a link someone else may have planted is never followed)",
        quote(path.as_os_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 1000;
    const OTHER: u32 = 1001;
    const ROOT: u32 = 0;

    fn facts(link_uid: u32, sticky: bool, target_uid: Option<u32>) -> LinkFacts {
        LinkFacts {
            link_uid,
            caller_uid: ME,
            dir_uid: ROOT,
            dir_sticky_world_writable: sticky,
            target_uid,
        }
    }

    #[test]
    fn ones_own_link_is_followed_anywhere() {
        for sticky in [false, true] {
            for target in [None, Some(ROOT), Some(OTHER)] {
                assert_eq!(may_follow(&facts(ME, sticky, target)), Ok(false));
            }
        }
    }

    #[test]
    fn elsewhere_a_link_is_followed_to_its_owners_own_file_only() {
        assert_eq!(may_follow(&facts(OTHER, false, Some(OTHER))), Ok(true));
        assert_eq!(may_follow(&facts(ROOT, false, Some(ROOT))), Ok(true));
        assert_eq!(
            may_follow(&facts(OTHER, false, Some(ROOT))),
            Err(Refusal::NotTargetsOwner)
        );
        assert_eq!(
            may_follow(&facts(OTHER, false, Some(ME))),
            Err(Refusal::NotTargetsOwner)
        );
        assert_eq!(
            may_follow(&facts(OTHER, false, None)),
            Err(Refusal::NoTarget)
        );
    }

    #[test]
    fn in_a_sticky_world_writable_directory_the_kernels_rule_holds() {
        // Someone else's link in /tmp is refused even to their own file, as
        // protected_symlinks refuses it; the directory owner's link is followed.
        assert_eq!(
            may_follow(&facts(OTHER, true, Some(OTHER))),
            Err(Refusal::StickyDirectory)
        );
        assert_eq!(may_follow(&facts(ROOT, true, Some(OTHER))), Ok(false));
    }

    #[test]
    fn a_link_is_split_from_the_directory_it_is_in() {
        assert_eq!(split(Path::new("l")), (PathBuf::from("."), "l".into()));
        assert_eq!(
            split(Path::new("a/b/l")),
            (PathBuf::from("a/b"), "l".into())
        );
        assert_eq!(split(Path::new("/l")), (PathBuf::from("/"), "l".into()));
    }
}
