//! Who owns a tuple, and what the policy needs to know about them: the one place the
//! server looks an owner up, `--nat` and `--proxy` included. Under `--user` this runs
//! in the privileged helper ([`super::privsep`]), otherwise in the serving thread.
//! It reads no network input: for `--forward`, and for a `forward` of `--config`'s
//! files, it says whom to ask ([`Findings::Forward`], [`Findings::ConfigForward`])
//! and the serving thread asks, in either case.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use super::config::ServerConfig;
use super::log::Logger;
use super::oidentd;
use super::policy::{Findings, HomeCheck, Passwd, home_allows_naming};
use crate::ident::config::Connection;
use crate::ident::lookup::{self, Tuple};
use crate::ident::nat::{self, Unowned};
use crate::ident::proto::{Answer, ErrorToken};

/// Looks up the owner of `tuple`, their password entry and their home: everything
/// [`super::policy::decide`] needs. `config` says where to look (`--source`) and what
/// `--nat` does; of its rules only `--numeric` and `--hide-all` are applied here, to
/// what `--nat` finds (its answers are decided where they are found,
/// [`Findings::Decided`]), and `--config`'s files, which need the user's own file
/// ([`oidentd::findings`]). When no socket of this host has the tuple, the
/// NAT hook ([`nat::unowned`]) looks further. Failures are logged here, where their
/// detail is.
pub fn find(tuple: &Tuple, config: &ServerConfig, log: &Logger) -> Findings {
    let owner = match lookup::lookup_owner_with(tuple, config.source, config.matcher) {
        Ok(Some(owner)) => owner,
        Ok(None) => return unowned(tuple, config, log),
        Err(e) => {
            log.error(&format!("looking up {tuple}: {e:#}"));
            return Findings::LookupFailed;
        }
    };
    owned(owner.uid, tuple, config, log)
}

/// The NAT hook: NO-USER unless `--nat` or `--proxy` finds more.
fn unowned(tuple: &Tuple, config: &ServerConfig, log: &Logger) -> Findings {
    match nat::unowned(&config.nat, tuple, config.numeric, config.hide_all, |m| {
        log.error(m)
    }) {
        // A trusted NAT host's query about a socket of this host: its owner is one
        // of ours, and the whole policy (--hide, .noident, --config) applies.
        Unowned::Owner(owner) => owned(owner.uid, tuple, config, log),
        Unowned::Answer(Answer::Error(ErrorToken::NoUser)) => Findings::NoOwner,
        Unowned::Answer(answer) => Findings::Decided(answer),
        // Whom to ask, not the answer: the caller asks (unprivileged under --user).
        Unowned::Forward(forward) => Findings::Forward(forward),
    }
}

/// What the policy needs to know about `uid`, this host's user, whose connection
/// `tuple` is: their password entry, whether their home lets them be named and,
/// under `--config`, what the files answer (not for a user `--hide` or
/// `--hide-all` hides, nor one whose home cannot be checked: both are hidden).
fn owned(uid: u32, tuple: &Tuple, config: &ServerConfig, log: &Logger) -> Findings {
    let user = match lookup::user_entry(uid) {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Findings::Owner {
                uid,
                passwd: Passwd::NoEntry,
            };
        }
        Err(e) => {
            log.error(&format!(
                "reading the password entry of uid {uid}: {e}; answering HIDDEN-USER"
            ));
            return Findings::Owner {
                uid,
                passwd: Passwd::Unreadable,
            };
        }
    };
    let (home, why) = check_home(&user.dir);
    if let Some(e) = why {
        log.error(&format!(
            "checking {}/.noident of {} (uid {uid}): {e}; answering HIDDEN-USER",
            user.dir.display(),
            user.name,
        ));
    }
    match &config.oidentd {
        Some(files) if home != HomeCheck::CouldNotCheck && !config.rules().hides(uid) => {
            let conn = Connection {
                local: tuple.local,
                foreign: tuple.remote,
            };
            oidentd::findings(files, &conn, &user, home, log)
        }
        _ => Findings::Owner {
            uid,
            passwd: Passwd::Entry {
                name: user.name,
                may_be_named: home_allows_naming(home),
            },
        },
    }
}

/// Looks for `.noident` in `home`, and says why when the check could not be made.
///
/// The home is opened once (O_PATH, O_DIRECTORY) and `.noident` examined relative to
/// that descriptor, without following it: a home renamed or replaced between two
/// path lookups cannot make the answer about two different directories.
pub fn check_home(home: &Path) -> (HomeCheck, Option<io::Error>) {
    if !home.is_absolute() {
        let why = io::Error::new(io::ErrorKind::InvalidInput, "the home is not absolute");
        return (HomeCheck::CouldNotCheck, Some(why));
    }
    let dir = match nix::fcntl::open(
        home,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(dir) => dir,
        // Missing, or a component (the home itself included) is not a directory.
        Err(Errno::ENOENT | Errno::ENOTDIR) => return (HomeCheck::NoHome, None),
        Err(e) => return (HomeCheck::CouldNotCheck, Some(e.into())),
    };
    match nix::sys::stat::fstatat(dir.as_fd(), ".noident", AtFlags::AT_SYMLINK_NOFOLLOW) {
        // Any kind of file, a dangling symlink included: the user made it.
        Ok(_) => (HomeCheck::Noident, None),
        Err(Errno::ENOENT) => (HomeCheck::NoNoident, None),
        Err(e) => (HomeCheck::CouldNotCheck, Some(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn check(home: &Path) -> HomeCheck {
        check_home(home).0
    }

    #[test]
    fn a_noident_of_any_kind_hides_and_its_absence_does_not() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(check(home.path()), HomeCheck::NoNoident);
        fs::write(home.path().join(".noident"), "").unwrap();
        assert_eq!(check(home.path()), HomeCheck::Noident);
        fs::remove_file(home.path().join(".noident")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-target", home.path().join(".noident")).unwrap();
        assert_eq!(check(home.path()), HomeCheck::Noident, "a dangling symlink");
        fs::remove_file(home.path().join(".noident")).unwrap();
        fs::create_dir(home.path().join(".noident")).unwrap();
        assert_eq!(check(home.path()), HomeCheck::Noident, "a directory");
    }

    #[test]
    fn a_missing_home_or_one_that_is_not_a_directory_is_no_home() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(&dir.path().join("missing")), HomeCheck::NoHome);
        assert_eq!(check(&dir.path().join("missing/deeper")), HomeCheck::NoHome);
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert_eq!(check(&file), HomeCheck::NoHome);
        assert_eq!(check(&file.join("below")), HomeCheck::NoHome);
        assert_eq!(check(Path::new("/nonexistent")), HomeCheck::NoHome);
    }

    #[test]
    fn a_home_that_cannot_be_examined_is_not_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        // A symlink loop: ELOOP, whoever we are (root included).
        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let (got, why) = check_home(&looped);
        assert_eq!(got, HomeCheck::CouldNotCheck);
        assert_eq!(why.unwrap().raw_os_error(), Some(libc::ELOOP));
        assert_eq!(
            check(Path::new("relative/home")),
            HomeCheck::CouldNotCheck,
            "a relative home"
        );
        // A symlink to a real home is that home.
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(check(&link), HomeCheck::NoNoident);
    }

    #[test]
    fn an_unsearchable_home_cannot_be_checked() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        // Mode 0: not even its owner may search it.
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o000)).unwrap();
        let path = home.path().to_path_buf();
        // Root searches anything; so as root, check from a thread whose filesystem
        // uid is nobody's: setfsuid is per thread, and leaving fsuid 0 drops
        // CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from that thread alone.
        let (got, why) = std::thread::spawn(move || {
            if nix::unistd::Uid::effective().is_root() {
                use nix::unistd::{Uid, setfsuid};
                setfsuid(Uid::from_raw(65534));
                // An invalid uid changes nothing and says what the fsuid is.
                assert_eq!(setfsuid(Uid::from_raw(u32::MAX)).as_raw(), 65534);
            }
            check_home(&path)
        })
        .join()
        .unwrap();
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(got, HomeCheck::CouldNotCheck);
        assert_eq!(why.unwrap().raw_os_error(), Some(libc::EACCES));
    }
}
