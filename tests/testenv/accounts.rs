//! Accounts and their connections, for the tests of the shipped identd
//! configurations and of who is named: the identd's own system account as the
//! Debian package makes it, a throwaway user whose home is private (0700, Debian's
//! default for new homes) and the files in it, sockets and connections owned by a
//! given user, and the question a querier asks about one.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage};
use racefree::ident::{Source, Tuple, lookup_owner};

use super::{DEADLINE, NOBODY, TestEnv, as_fsuid, read_line};

/// The account the shipped units and examples name in `ident serve --user`, created
/// by the package's postinst (contrib/debian/postinst).
pub const IDENTD_ACCOUNT: &str = "_racefree-identd";

/// Tests that create, use or remove [`IDENTD_ACCOUNT`] take turns: one may be
/// showing that the package creates it while another needs it to exist.
static ACCOUNT_TURN: Mutex<()> = Mutex::new(());

/// This test's turn with [`IDENTD_ACCOUNT`]; on drop, the account is removed again
/// if it was absent when the turn began, so the machine is left as it was.
pub struct IdentdAccount {
    _turn: MutexGuard<'static, ()>,
    existed: bool,
}

impl IdentdAccount {
    /// Whether the password database has the account now.
    pub fn exists() -> bool {
        nix::unistd::User::from_name(IDENTD_ACCOUNT)
            .unwrap()
            .is_some()
    }

    /// The account exists while this lives: when missing, it is made by running
    /// the package's own postinst, as dpkg runs it.
    pub fn present() -> IdentdAccount {
        let turn = Self::turn();
        let existed = Self::exists();
        if !existed {
            let postinst = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/debian/postinst");
            let out = Command::new("sh")
                .arg(&postinst)
                .arg("configure")
                .output()
                .unwrap_or_else(|e| panic!("running {}: {e}", postinst.display()));
            assert!(
                out.status.success() && Self::exists(),
                "{} configure (adduser, Debian package adduser) did not create {IDENTD_ACCOUNT}: \
                 {}\n{}",
                postinst.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        IdentdAccount {
            _turn: turn,
            existed,
        }
    }

    /// The account does not exist yet, for a test that shows the package creating
    /// it; whatever the test leaves is removed on drop.
    pub fn absent() -> IdentdAccount {
        let turn = Self::turn();
        assert!(
            !Self::exists(),
            "{IDENTD_ACCOUNT} exists, though no racefree package is installed (a purge keeps \
             it, as Debian keeps system accounts); remove it to run this test: \
             userdel {IDENTD_ACCOUNT}"
        );
        IdentdAccount {
            _turn: turn,
            existed: false,
        }
    }

    fn turn() -> MutexGuard<'static, ()> {
        // A test that failed during its turn still gave the account back (Drop).
        ACCOUNT_TURN.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for IdentdAccount {
    fn drop(&mut self) {
        if !self.existed && Self::exists() {
            // userdel removes the group of the same name with it (USERGROUPS_ENAB).
            let _ = Command::new("userdel").arg(IDENTD_ACCOUNT).status();
            if nix::unistd::Group::from_name(IDENTD_ACCOUNT)
                .ok()
                .flatten()
                .is_some()
            {
                let _ = Command::new("groupdel").arg(IDENTD_ACCOUNT).status();
            }
            if Self::exists() {
                super::note(&format!(
                    "could not remove {IDENTD_ACCOUNT}: userdel {IDENTD_ACCOUNT} by hand"
                ));
            }
        }
    }
}

/// A user made for one test, whose home is 0700 and its own, in a directory anyone
/// may search (as /home is); removed on drop, pass or fail.
pub struct PrivateHomeUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    _parent: TestEnv,
}

impl PrivateHomeUser {
    /// `tag` tells the tests' users apart (a few letters; names stay under 32 bytes).
    pub fn create(tag: &str) -> PrivateHomeUser {
        let name = format!("rf{tag}{}", std::process::id());
        let parent = TestEnv::new();
        parent.chmod(".", 0o755);
        let home = parent.mkdir(&name);
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg("--home-dir")
            .arg(&home)
            .arg(&name)
            .status()
            .expect("running useradd");
        assert!(status.success(), "useradd {name} failed");
        let entry = nix::unistd::User::from_name(&name).unwrap().unwrap();
        let user = PrivateHomeUser {
            name,
            uid: entry.uid.as_raw(),
            gid: entry.gid.as_raw(),
            home,
            _parent: parent,
        };
        nix::unistd::chown(&user.home, Some(entry.uid), Some(entry.gid)).unwrap();
        std::fs::set_permissions(&user.home, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_private_from_nobody(&user.home);
        user
    }
}

impl PrivateHomeUser {
    /// Opens the home to others (0755, as oidentd, running as nobody, needs to
    /// read a user's file), or closes it again (0700).
    pub fn set_home_mode(&self, mode: u32) {
        std::fs::set_permissions(&self.home, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Gives `path` (not followed if a link) to this user.
    pub fn chown(&self, path: &Path) {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(nix::unistd::Uid::from_raw(self.uid)),
            Some(nix::unistd::Gid::from_raw(self.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    /// Writes `rel` in the home as this user's own file with `mode` (its directory
    /// made, the user's too), replacing whatever was there.
    pub fn write(&self, rel: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.home.join(rel);
        let parent = path.parent().unwrap();
        if !parent.exists() {
            std::fs::create_dir_all(parent).unwrap();
            self.chown(parent);
        }
        self.remove(rel);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        self.chown(&path);
        path
    }

    /// Removes `rel` from the home, whatever it is, if it is there.
    pub fn remove(&self, rel: &str) {
        let path = self.home.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
            Ok(_) => std::fs::remove_file(&path).unwrap(),
            Err(_) => {}
        }
    }
}

impl Drop for PrivateHomeUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// The premise of a test that a server names a user with a private home: nobody
/// cannot tell whether `home` holds a `.noident` (a server running as nobody
/// would answer HIDDEN-USER).
#[track_caller]
pub fn assert_private_from_nobody(home: &Path) {
    let noident = home.join(".noident");
    let seen = as_fsuid(NOBODY, move || std::fs::symlink_metadata(noident).map(drop));
    assert_eq!(
        seen.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::PermissionDenied),
        "the premise: nobody cannot search {}",
        home.display()
    );
}

/// A new IPv4 TCP socket owned by `uid` (made on a thread whose filesystem uid is
/// `uid`: a new socket's owner).
pub fn socket_owned_by(uid: u32) -> OwnedFd {
    as_fsuid(uid, || {
        sock::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap()
    })
}

/// A loopback connection whose client socket belongs to `uid`; returns (client,
/// accepted, listener).
pub fn connection_owned_by(uid: u32) -> (TcpStream, TcpStream, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    connection_owned_by_to(uid, None, listener)
}

/// A connection to `listener` whose client socket belongs to `uid`, bound first to
/// `from` if given (an address of this host, and a port or 0); returns (client,
/// accepted, listener). Checks that the kernel records `uid` as its owner.
pub fn connection_owned_by_to(
    uid: u32,
    from: Option<SocketAddr>,
    listener: TcpListener,
) -> (TcpStream, TcpStream, TcpListener) {
    let fd = socket_owned_by(uid);
    if let Some(from) = from {
        sock::setsockopt(&fd, sock::sockopt::ReuseAddr, &true).unwrap();
        sock::bind(fd.as_raw_fd(), &SockaddrStorage::from(from)).unwrap();
    }
    sock::connect(
        fd.as_raw_fd(),
        &SockaddrStorage::from(listener.local_addr().unwrap()),
    )
    .unwrap();
    let client = TcpStream::from(fd);
    let (accepted, _) = listener.accept().unwrap();
    let t = Tuple::new(client.local_addr().unwrap(), client.peer_addr().unwrap());
    let owner = lookup_owner(&t, Source::Proc).unwrap().unwrap();
    assert_eq!(
        owner.uid, uid,
        "the premise: the kernel records {uid} as owner"
    );
    (client, accepted, listener)
}

/// A real connection from `ip` (this host as an identd sees it) to a service on
/// 127.0.0.1, its client socket owned by `uid`.
pub struct OwnedConnection {
    pub client: TcpStream,
    _server: TcpStream,
    _listener: TcpListener,
}

impl OwnedConnection {
    pub fn new(uid: u32, ip: IpAddr) -> OwnedConnection {
        let fd = socket_owned_by(uid);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        sock::bind(
            fd.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::new(ip, 0)),
        )
        .unwrap();
        sock::connect(
            fd.as_raw_fd(),
            &SockaddrStorage::from(listener.local_addr().unwrap()),
        )
        .unwrap();
        let (server, _) = listener.accept().unwrap();
        OwnedConnection {
            client: TcpStream::from(fd),
            _server: server,
            _listener: listener,
        }
    }

    /// Asks the identd on `port` of this connection's client address about it, from
    /// the service's end (127.0.0.1), as the service would; returns the reply after
    /// the ports (`USERID : UNIX : root`, `ERROR : HIDDEN-USER`), or "" when the
    /// identd closed without one.
    pub fn ask_identd(&self, port: u16) -> String {
        let here = self.client.local_addr().unwrap();
        let there = self.client.peer_addr().unwrap();
        let querier = sock::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        sock::bind(
            querier.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::new(there.ip(), 0)),
        )
        .unwrap();
        sock::connect(
            querier.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::new(here.ip(), port)),
        )
        .unwrap_or_else(|e| panic!("connecting to the identd on {}:{port}: {e}", here.ip()));
        let mut querier = TcpStream::from(querier);
        querier.set_read_timeout(Some(DEADLINE)).unwrap();
        querier
            .write_all(format!("{}, {}\r\n", here.port(), there.port()).as_bytes())
            .unwrap();
        let line = read_line(&mut querier);
        let ports = format!("{}, {} : ", here.port(), there.port());
        match line.strip_suffix("\r\n") {
            None if line.is_empty() => String::new(),
            Some(reply) => reply
                .strip_prefix(&ports)
                .unwrap_or_else(|| panic!("a reply about other ports: {line:?}"))
                .to_string(),
            None => panic!("a reply without CRLF: {line:?}"),
        }
    }
}
