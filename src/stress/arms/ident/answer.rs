//! What the racers look up, how, and the one right answer for each lookup.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// How one lookup is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Proc,
    Netlink,
    /// Over RFC 1413 to a server on loopback.
    Server,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Proc => "proc",
            Method::Netlink => "netlink",
            Method::Server => "server",
        }
    }
}

/// One socket to look up and its one right answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The state the socket was held in when the run began (the kernel's name).
    pub state: String,
    /// The report row it counts in: the state, qualified where one state is held
    /// two ways ("LAST_ACK (closed)" has no owner, "LAST_ACK" is still ours).
    pub label: String,
    /// `Some(uid)` while a process holds its descriptor; `None` once only the kernel does.
    pub owner: Option<u32>,
}

/// How a HIDDEN-USER reply is recorded: a uid no user can have ((uid_t)-1).
pub const HIDDEN: u32 = u32::MAX;

/// Whether the server must answer HIDDEN-USER for a stage socket's owner, stated
/// here on its own rather than by calling the server's policy, so that a wrong
/// policy fails the run instead of agreeing with itself. Stage sockets belong to
/// the harness's own user and, as root, to nobody. RFC 1413 practice (oidentd,
/// pidentd): a user is hidden when `~/.noident` exists; a home that is missing
/// (nobody's `/nonexistent`) holds none, so nobody is named; an unreadable password
/// database hides (fail closed); a uid with no entry is answered by number.
pub fn server_hides(uid: u32) -> bool {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.dir.join(".noident").symlink_metadata().is_ok(),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// The one right answer for a lookup of `owner`'s socket by `method`: the owner,
/// except that the server answers HIDDEN-USER for the owners it hides.
pub fn expected_answer(owner: Option<u32>, method: Method, hidden_uids: &[u32]) -> Option<u32> {
    match owner {
        Some(uid) if method == Method::Server && hidden_uids.contains(&uid) => Some(HIDDEN),
        owner => owner,
    }
}
