//! Who may be named: the hide policy.

use std::fs;
use std::io;
use std::path::Path;

use nix::unistd::User;

use super::ServerConfig;

/// Whether the owner `uid` is answered HIDDEN-USER, given what the password database
/// said about it (`Ok(None)`: no entry; `Err`: it could not be read).
pub(crate) fn is_hidden(
    config: &ServerConfig,
    uid: u32,
    entry: &nix::Result<Option<User>>,
) -> bool {
    if config.hide_all || config.hide_uids.contains(&uid) {
        return true;
    }
    match entry {
        Ok(Some(user)) => noident_hides(&user.dir),
        // No entry, no home: nothing could have asked to be hidden.
        Ok(None) => false,
        // An unreadable database (NSS down, say) hides a home that may hold a
        // .noident: fail closed, as for a home that cannot be checked.
        Err(_) => true,
    }
}

/// True when `~/.noident` exists in `home`, or when that cannot be checked: a home
/// that is missing, relative, not a directory, or unreadable to us hides its user
/// (fail closed).
pub fn noident_hides(home: &Path) -> bool {
    if !home.is_absolute() {
        return true;
    }
    match fs::metadata(home) {
        Ok(m) if m.is_dir() => {}
        _ => return true,
    }
    match fs::symlink_metadata(home.join(".noident")) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::Uid;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn noident_hides_its_owner_and_fails_closed() {
        let home = tempfile::tempdir().unwrap();
        assert!(!noident_hides(home.path()));
        fs::write(home.path().join(".noident"), "").unwrap();
        assert!(noident_hides(home.path()));
        // A dangling symlink is still a .noident the user made.
        fs::remove_file(home.path().join(".noident")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-target", home.path().join(".noident")).unwrap();
        assert!(noident_hides(home.path()));

        assert!(
            noident_hides(&home.path().join("missing")),
            "a missing home fails closed"
        );
        assert!(
            noident_hides(Path::new("relative/home")),
            "a relative home fails closed"
        );
        let file = home.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(noident_hides(&file), "a home that is a file fails closed");
    }

    #[test]
    fn a_password_database_error_hides_and_no_entry_does_not() {
        let config = ServerConfig::default();
        let uid = 4_000_000_000;
        assert!(
            is_hidden(&config, uid, &Err(nix::errno::Errno::EIO)),
            "an unreadable password database must fail closed"
        );
        assert!(!is_hidden(&config, uid, &Ok(None)));
        let home = tempfile::tempdir().unwrap();
        let mut user = User::from_uid(Uid::effective()).unwrap().unwrap();
        user.dir = home.path().to_path_buf();
        assert!(!is_hidden(
            &config,
            user.uid.as_raw(),
            &Ok(Some(user.clone()))
        ));
        fs::write(home.path().join(".noident"), "").unwrap();
        assert!(is_hidden(&config, user.uid.as_raw(), &Ok(Some(user))));
        let hide_all = ServerConfig {
            hide_all: true,
            ..ServerConfig::default()
        };
        assert!(is_hidden(&hide_all, uid, &Ok(None)));
    }

    #[test]
    fn an_unsearchable_home_fails_closed() {
        if Uid::effective().is_root() {
            eprintln!("note: running as root, which reads any home; skipping");
            return;
        }
        let home = tempfile::tempdir().unwrap();
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(noident_hides(home.path()));
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }
}
