//! A user's oidentd.conf, read by the privileged side as that user: the one place
//! the server opens a file a user controls. Under `--user` this runs in the
//! privileged helper, otherwise in the serving thread.
//!
//! A user's file is input from that user, read by root. So it is opened with the
//! user's own filesystem ids (setfsuid and setfsgid, which are per thread: the
//! helper's other workers keep root's), and the home opened by its path, as the
//! `.noident` check opens it. What is refused, each logged and the next file
//! tried, as oidentd tries `~/.oidentd.conf` when `~/.config/oidentd.conf` is not
//! one it may read:
//!
//! - a symbolic link as the file itself (O_NOFOLLOW): a link to /etc/shadow names a
//!   file its user may not read, and a link the user could read adds nothing;
//! - a file that is not regular: a FIFO would hold the reader until someone
//!   writes to it (it is opened with O_NONBLOCK, so the open cannot hang either),
//!   a device could be endless;
//! - a file owned by anyone else, as oidentd refuses one.
//!
//! A file that opens is the one read; past [`config::USER_FILE_MAX`] bytes it is not used
//! (read no further than one byte past it), like one that does not parse, and its
//! user is answered by real name.
//!
//! Where root cannot change its filesystem ids (it always can) nothing is read.
//! A server that is not root (under inetd as `nobody`, say) reads with its own
//! ids, as oidentd does, and so finds no file in a home it may not search.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid, User};

use super::log::Logger;
use crate::ident::config::{self, ConfigError, Names, USER_FILES, UserPrefs};

/// `user`'s file, read and resolved: `None` when there is none that may be read
/// (each refused one is logged).
pub fn read(
    user: &User,
    names: &dyn Names,
    log: &Logger,
) -> Option<Result<UserPrefs, ConfigError>> {
    let (file, path) = open(user, log)?;
    Some(config::read_user(file, &path, names))
}

/// The first of [`USER_FILES`] that may be read, opened as `user`, with its path.
fn open(user: &User, log: &Logger) -> Option<(File, String)> {
    let why_not = |path: &str, why: &str| {
        log.error(&format!(
            "not reading {path} for {} (uid {}): {why}",
            user.name, user.uid
        ));
    };
    let home_path = user.dir.display().to_string();
    let _as_user = match AsUser::switch(user) {
        Ok(switched) => switched,
        Err(why) => {
            why_not(&format!("{home_path}/{}", USER_FILES[0]), &why);
            return None;
        }
    };
    let home = match nix::fcntl::open(
        &user.dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(home) => home,
        // No home, or none that is a directory: no file in it either.
        Err(Errno::ENOENT | Errno::ENOTDIR) => return None,
        Err(e) => {
            why_not(&home_path, &format!("the home cannot be opened: {e}"));
            return None;
        }
    };
    for name in USER_FILES {
        let path = format!("{}/{name}", home_path.trim_end_matches('/'));
        match open_in(home.as_fd(), name, user.uid) {
            Ok(file) => return Some((file, path)),
            Err(Refusal::Absent) => {}
            Err(Refusal::Because(why)) => why_not(&path, &why),
        }
    }
    None
}

enum Refusal {
    /// No such file: nothing to say.
    Absent,
    /// A file that may not be read, and why.
    Because(String),
}

/// Opens `name` below `home` without following it, and checks what it is.
fn open_in(home: BorrowedFd<'_>, name: &str, owner: Uid) -> Result<File, Refusal> {
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(home, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Err(Refusal::Absent),
        Err(Errno::ELOOP) => return Err(Refusal::Because("it is a symbolic link".into())),
        Err(e) => return Err(Refusal::Because(format!("it cannot be opened: {e}"))),
    };
    let stat = nix::sys::stat::fstat(&fd).map_err(|e| Refusal::Because(format!("fstat: {e}")))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG {
        return Err(Refusal::Because(format!(
            "it is {}, not a regular file",
            kind_name(kind)
        )));
    }
    if stat.st_uid != owner.as_raw() {
        return Err(Refusal::Because(format!(
            "it belongs to uid {}, not to its home's user",
            stat.st_uid
        )));
    }
    Ok(File::from(fd))
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        _ => "something else",
    }
}

/// This thread's filesystem ids switched to a user's, switched back when dropped.
/// `None` inside: not root, so nothing was switched (nor could be).
struct AsUser(Option<(Uid, Gid)>);

impl AsUser {
    fn switch(user: &User) -> Result<AsUser, String> {
        if !Uid::effective().is_root() {
            return Ok(AsUser(None));
        }
        // The gid first: with a filesystem uid other than 0 the thread keeps
        // CAP_SETGID, but there is no need to rely on it.
        let gid = nix::unistd::setfsgid(user.gid);
        let uid = nix::unistd::setfsuid(user.uid);
        // From here on the drop switches back, whatever happens below.
        let switched = AsUser(Some((uid, gid)));
        // setfsuid says only what the id was: asked to set an invalid id, it
        // changes nothing and says what it is now.
        let now = (
            nix::unistd::setfsuid(Uid::from_raw(u32::MAX)),
            nix::unistd::setfsgid(Gid::from_raw(u32::MAX)),
        );
        if now != (user.uid, user.gid) {
            return Err(format!(
                "the filesystem ids did not change to {}:{} (they are {}:{})",
                user.uid, user.gid, now.0, now.1
            ));
        }
        Ok(switched)
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if let Some((uid, gid)) = self.0 {
            // The uid first: back at 0, the thread has its capabilities again.
            nix::unistd::setfsuid(uid);
            nix::unistd::setfsgid(gid);
        }
    }
}

#[cfg(test)]
mod tests;
