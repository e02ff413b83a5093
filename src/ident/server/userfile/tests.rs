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
