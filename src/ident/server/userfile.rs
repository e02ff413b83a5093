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
mod tests {
    use super::*;
    use crate::ident::config::Connection;
    use crate::ident::config::SystemNames;
    use crate::ident::config::policy::Choice;
    use std::ffi::CString;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn is_root() -> bool {
        Uid::effective().is_root()
    }

    /// A user that owns a 0700 home: uid 4242 when we are root (no password entry
    /// needed), else ourselves.
    struct Home {
        dir: tempfile::TempDir,
        user: User,
    }

    impl Home {
        fn new() -> Home {
            let dir = tempfile::tempdir().unwrap();
            let (uid, gid) = if is_root() {
                (Uid::from_raw(4242), Gid::from_raw(4242))
            } else {
                (Uid::effective(), Gid::effective())
            };
            let user = User {
                name: "homer".into(),
                passwd: CString::default(),
                uid,
                gid,
                gecos: CString::default(),
                dir: dir.path().to_path_buf(),
                shell: "/bin/sh".into(),
            };
            let home = Home { dir, user };
            home.chown(home.dir.path(), uid);
            fs::set_permissions(home.dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
            home
        }

        fn chown(&self, path: &Path, uid: Uid) {
            if is_root() {
                let gid = Gid::from_raw(uid.as_raw());
                nix::unistd::fchownat(
                    nix::fcntl::AT_FDCWD,
                    path,
                    Some(uid),
                    Some(gid),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .unwrap();
            }
        }

        /// Writes `rel` as the user's own file, mode 0600.
        fn write(&self, rel: &str, text: &str) -> std::path::PathBuf {
            let path = self.dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            self.chown(path.parent().unwrap(), self.user.uid);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            self.chown(&path, self.user.uid);
            path
        }

        fn path(&self, rel: &str) -> String {
            format!("{}/{rel}", self.dir.path().display())
        }

        /// What is read, as a word: `none`, `error: ...` or the reply its global
        /// range asks for; and what was logged.
        fn read(&self) -> (String, Vec<String>) {
            let log = Logger::kept();
            let got = match read(&self.user, &SystemNames, &log) {
                None => "none".to_string(),
                Some(Err(e)) => format!("error: {e}"),
                Some(Ok(prefs)) => {
                    let any = "127.0.0.1:1".parse().unwrap();
                    let conn = Connection {
                        local: any,
                        foreign: any,
                    };
                    match prefs.choice_for(&conn) {
                        Some(Choice::Reply(names)) => names.join(" "),
                        other => format!("{other:?}"),
                    }
                }
            };
            (got, log.lines())
        }
    }

    #[test]
    fn the_xdg_file_comes_first_then_the_dotfile_and_no_file_is_nothing() {
        let home = Home::new();
        assert_eq!(home.read(), ("none".to_string(), Vec::new()));
        home.write(".oidentd.conf", "global { reply \"dot\" }");
        assert_eq!(home.read(), ("dot".to_string(), Vec::new()));
        home.write(".config/oidentd.conf", "global { reply \"xdg\" }");
        assert_eq!(home.read(), ("xdg".to_string(), Vec::new()));
        // A file that opens is the one read, even if it does not parse.
        home.write(".config/oidentd.conf", "global { reply }");
        let (got, log) = home.read();
        assert!(
            got.starts_with(&format!("error: {}:1:", home.path(".config/oidentd.conf"))),
            "{got}"
        );
        assert_eq!(log, Vec::<String>::new());
        // No home at all: no file, and nothing worth a log line.
        let mut gone = Home::new();
        gone.user.dir = gone.dir.path().join("missing");
        assert_eq!(gone.read(), ("none".to_string(), Vec::new()));
    }

    #[test]
    fn links_fifos_directories_and_others_files_are_refused_and_the_next_tried() {
        let home = Home::new();
        let xdg = ".config/oidentd.conf";
        home.write(".oidentd.conf", "global { reply \"dot\" }");
        let refused = |why: &str| {
            vec![format!(
                "error: not reading {} for homer (uid {}): {why}",
                home.path(xdg),
                home.user.uid
            )]
        };
        // A link to a file nobody but root may read, and one to the user's own.
        fs::create_dir_all(home.dir.path().join(".config")).unwrap();
        home.chown(&home.dir.path().join(".config"), home.user.uid);
        for target in ["/etc/shadow", "../.oidentd.conf"] {
            std::os::unix::fs::symlink(target, home.path(xdg)).unwrap();
            assert_eq!(
                home.read(),
                ("dot".to_string(), refused("it is a symbolic link")),
                "{target}"
            );
            fs::remove_file(home.path(xdg)).unwrap();
        }
        // A FIFO with no writer: refused at once, never waited on.
        nix::unistd::mkfifo(home.path(xdg).as_str(), Mode::from_bits_truncate(0o600)).unwrap();
        home.chown(Path::new(&home.path(xdg)), home.user.uid);
        assert_eq!(
            home.read(),
            (
                "dot".to_string(),
                refused("it is a FIFO, not a regular file")
            )
        );
        fs::remove_file(home.path(xdg)).unwrap();
        fs::create_dir(home.path(xdg)).unwrap();
        home.chown(Path::new(&home.path(xdg)), home.user.uid);
        assert_eq!(
            home.read(),
            (
                "dot".to_string(),
                refused("it is a directory, not a regular file")
            )
        );
        fs::remove_dir(home.path(xdg)).unwrap();
        if is_root() {
            // Someone else's file in the user's home: oidentd refuses it too.
            fs::write(home.path(xdg), "global { reply \"planted\" }").unwrap();
            assert_eq!(
                home.read(),
                (
                    "dot".to_string(),
                    refused("it belongs to uid 0, not to its home's user")
                )
            );
        }
    }

    #[test]
    fn a_file_past_the_cap_is_not_used_and_only_the_cap_is_read() {
        let home = Home::new();
        let path = home.write(".oidentd.conf", "global { reply \"big\" }\n");
        // A gigabyte, sparse: reading it whole would take seconds and the memory.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let (got, _) = home.read();
        assert_eq!(
            got,
            format!(
                "error: {}: larger than {} bytes, the most read",
                path.display(),
                config::USER_FILE_MAX
            )
        );
    }

    /// As root: the file is opened as its user, so what the user may not reach is
    /// not read, though root could; and the thread is root again afterwards.
    #[test]
    #[cfg_attr(not(has_root), ignore = "needs root")]
    fn as_root_the_file_is_opened_with_the_users_ids_and_they_are_switched_back() {
        assert!(is_root(), "needs root (build.rs found it, or CI=true)");
        let home = Home::new();
        home.write(".oidentd.conf", "global { reply \"dot\" }");
        // The user's own file in a directory of root's that only root may search.
        let xdg = home.write(".config/oidentd.conf", "global { reply \"xdg\" }");
        let config_dir = home.dir.path().join(".config");
        home.chown(&config_dir, Uid::from_raw(0));
        fs::set_permissions(&config_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let (got, log) = home.read();
        assert_eq!(got, "dot");
        assert_eq!(
            log,
            [format!(
                "error: not reading {} for homer (uid 4242): it cannot be opened: EACCES: Permission denied",
                xdg.display()
            )]
        );
        assert_eq!(nix::unistd::setfsuid(Uid::from_raw(u32::MAX)).as_raw(), 0);
        assert_eq!(nix::unistd::setfsgid(Gid::from_raw(u32::MAX)).as_raw(), 0);
    }
}
