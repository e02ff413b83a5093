//! Users made for one test, and sockets that belong to a user: what the tests of
//! who is named (`ident_privsep`, `ident_oidentd`) are built from. Root's to use.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrStorage};
use racefree::ident::{Source, Tuple, lookup_owner};

use super::as_fsuid;

/// A user made for one test, with a home of its own (0700 unless changed);
/// removed on drop, pass or fail.
pub struct ThrowawayUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: tempfile::TempDir,
}

impl ThrowawayUser {
    /// `rf` + `tag` + this process's id: short enough for useradd, unique across
    /// concurrent test runs.
    pub fn create(tag: &str) -> ThrowawayUser {
        let name = format!("rf{tag}{}", std::process::id());
        let home = tempfile::Builder::new()
            .prefix("racefree-home-")
            .tempdir()
            .unwrap();
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg("--home-dir")
            .arg(home.path())
            .arg(&name)
            .status()
            .expect("running useradd");
        assert!(status.success(), "useradd {name} failed");
        let user = nix::unistd::User::from_name(&name).unwrap().unwrap();
        let made = ThrowawayUser {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home,
        };
        made.chown(made.home.path());
        made.set_home_mode(0o700);
        made
    }

    pub fn set_home_mode(&self, mode: u32) {
        std::fs::set_permissions(self.home.path(), std::fs::Permissions::from_mode(mode)).unwrap();
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

    /// Writes `rel` in the home as this user's own file with `mode` (its
    /// directories made, the user's too), replacing whatever was there.
    pub fn write(&self, rel: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.home.path().join(rel);
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
        let path = self.home.path().join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
            Ok(_) => std::fs::remove_file(&path).unwrap(),
            Err(_) => {}
        }
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
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
