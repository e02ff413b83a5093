//! Containers on this host: find a connection in the network namespace that holds
//! it, and name its owner as that container names it.
//!
//! Each distinct network namespace (`/proc/PID/ns/net`, told apart by device and
//! inode) is searched once, with the host lookup's own rules (the 4-tuple only, any
//! TCP state, inode 0 is no owner): by sock_diag's exact lookup from a short-lived
//! thread that `setns`es into it, or, where sock_diag is unavailable, through one
//! of its processes' `/proc/PID/net/tcp{,6}` and the same row matcher as the host's. The owner's name comes from the password database of
//! the process that holds the socket (several containers can share one network
//! namespace, as in a Kubernetes pod, each with its own `/etc/passwd`), read inside
//! that process's root with `openat2(RESOLVE_IN_ROOT)`: a container's
//! `/etc/passwd` that is a symlink to `/etc/shadow` resolves to the container's
//! shadow, never the host's.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use procfs::process::{FDTarget, Process};

use super::passwd;
use crate::ident::lookup::{self, Matcher, Owner, Source, TcpState, Tuple};

/// A password file bigger than this is not one we read (a container controls it).
const MAX_PASSWD: u64 = 16 * 1024 * 1024;

/// The connection found in a namespace of this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// A process of the namespace: the one holding the socket when it was found.
    pub pid: u32,
    /// The owner as this process's user namespace numbers it.
    pub outside_uid: u32,
    /// The owner as the container numbers it (`None`: unmapped there).
    pub inside_uid: Option<u32>,
    /// The owner's name in the container's own password database.
    pub name: Option<String>,
    pub state: TcpState,
    pub inode: u64,
}

/// Why the search gave no owner.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// No namespace of this host has a socket with this 4-tuple.
    NotHere,
    /// More than one namespace has one (containers with overlapping private
    /// addresses): which is meant cannot be told from the tuple.
    Ambiguous,
}

/// Searches every network namespace of this host for the connection `tuple`.
pub fn find(tuple: &Tuple) -> anyhow::Result<Result<Found, Miss>> {
    let wanted = tuple.canonical();
    let spaces = namespaces()?;
    let hits = if lookup::resolve(Source::Netlink).is_ok() {
        search_netlink(&spaces, &wanted)
    } else {
        (0..spaces.len())
            .filter_map(|i| search_proc(&spaces[i], &wanted).map(|row| (i, row)))
            .collect()
    };
    let (index, row) = match hits.as_slice() {
        [] => return Ok(Err(Miss::NotHere)),
        [hit] => *hit,
        _ => return Ok(Err(Miss::Ambiguous)),
    };
    let pids = &spaces[index];
    let pid = holder(pids, row.inode).unwrap_or(pids[0]);
    // procfs has no reader for uid_map.
    let inside_uid = fs::read_to_string(format!("/proc/{pid}/uid_map"))
        .ok()
        .and_then(|map| passwd::map_to_inside(&map, row.uid));
    let name = inside_uid.and_then(|uid| {
        read_passwd(pid)
            .ok()
            .and_then(|text| passwd::name_of(&text, uid))
    });
    Ok(Ok(Found {
        pid,
        outside_uid: row.uid,
        inside_uid,
        name,
        state: row.state,
        inode: row.inode,
    }))
}

/// One namespace's table through `/proc/PID/net/tcp{,6}` and the host lookup's row
/// matcher. A process can exit between the listing and the read: then the next one
/// of the same namespace is tried.
fn search_proc(pids: &[u32], wanted: &Tuple) -> Option<Owner> {
    let row = pids.iter().find_map(|pid| {
        let dir = PathBuf::from(format!("/proc/{pid}/net"));
        lookup::find_in_proc_dir(&dir, wanted, Matcher::FourTuple).ok()
    })??;
    Some(Owner {
        uid: row.uid,
        inode: row.inode,
        state: row.state,
        source: Source::Proc,
    })
}

/// Every namespace's exact sock_diag lookup, from one short-lived thread that
/// enters each namespace in turn (`setns` moves only the calling thread; the thread
/// ends, so no other code ever runs in a container's namespace). Why not /proc:
/// each `/proc/PID/net/tcp` read walks the machine's whole established hash (all
/// namespaces share it), so N namespaces would cost N full walks; measured in
/// bench/RESULTS-ident-nat.md. A namespace the thread cannot enter is read via /proc.
fn search_netlink(spaces: &[Vec<u32>], wanted: &Tuple) -> Vec<(usize, Owner)> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut hits = Vec::new();
                for (i, pids) in spaces.iter().enumerate() {
                    let found = match enter_namespace_of(pids) {
                        Some(()) => {
                            lookup::lookup_owner_with(wanted, Source::Netlink, Matcher::FourTuple)
                                .ok()
                                .flatten()
                        }
                        None => search_proc(pids, wanted),
                    };
                    if let Some(owner) = found {
                        hits.push((i, owner));
                    }
                }
                hits
            })
            .join()
            .unwrap_or_default()
    })
}

/// Moves the calling thread into the network namespace of the first of `pids` that
/// still exists. `None` when none can be entered.
fn enter_namespace_of(pids: &[u32]) -> Option<()> {
    pids.iter().find_map(|pid| {
        let ns = File::open(format!("/proc/{pid}/ns/net")).ok()?;
        // Changes only this thread's network namespace; this thread runs nothing else.
        setns(ns, CloneFlags::CLONE_NEWNET).ok()
    })
}

/// The processes of each distinct network namespace, in /proc order. Processes we
/// may not inspect, and those that exit while we look, are left out.
///
/// By hand, one stat of `/proc/PID/ns/net` each, not procfs: its
/// `Process::namespaces()` stats every namespace of the process to give one, and
/// grouping 600 processes took 110 ms with it, 13 ms by hand, on a query whose
/// netlink lookups take 12 to 29 ms (bench/RESULTS-netns-proc.md).
fn namespaces() -> anyhow::Result<Vec<Vec<u32>>> {
    let mut order: Vec<(u64, u64)> = Vec::new();
    let mut by_ns: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
    let entries = fs::read_dir("/proc").map_err(|e| anyhow::anyhow!("listing /proc: {e}"))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(meta) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        let key = (meta.dev(), meta.ino());
        by_ns
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(pid);
    }
    Ok(order.into_iter().filter_map(|k| by_ns.remove(&k)).collect())
}

/// The process among `pids` (one network namespace's) whose password database and
/// uid map name the owner of socket `inode`: any of them when they all share one
/// mount and one user namespace (one container, the usual case: no fd is read);
/// otherwise the one holding the socket open, if any does (a pod's containers share
/// a network namespace, each with its own root). The two namespaces are read by
/// hand, as in [`namespaces`] and for its reason.
fn holder(pids: &[u32], inode: u64) -> Option<u32> {
    let views = |pid: &u32| -> Option<[(u64, u64); 2]> {
        let id =
            |ns: &str| fs::metadata(format!("/proc/{pid}/ns/{ns}")).map(|m| (m.dev(), m.ino()));
        Some([id("mnt").ok()?, id("user").ok()?])
    };
    let first = views(&pids[0]);
    if first.is_some() && pids[1..].iter().all(|p| views(p) == first) {
        return Some(pids[0]);
    }
    holding(pids, inode)
}

/// The process among `pids` that holds the socket `inode` open, if any does.
fn holding(pids: &[u32], inode: u64) -> Option<u32> {
    pids.iter().copied().find(|&pid| {
        let Ok(fds) = Process::new(pid as i32).and_then(|p| p.fd()) else {
            return false;
        };
        fds.flatten()
            .any(|fd| matches!(fd.target, FDTarget::Socket(i) if i == inode))
    })
}

/// `/etc/passwd` as the process `pid` sees it, resolved inside its root.
fn read_passwd(pid: u32) -> anyhow::Result<Vec<u8>> {
    let root: OwnedFd = open(
        Path::new(&format!("/proc/{pid}/root")),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&root, "etc/passwd", how)?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    // O_NONBLOCK made opening a FIFO harmless; reading one is refused here.
    if !meta.file_type().is_file() || meta.file_type().is_fifo() {
        anyhow::bail!("/proc/{pid}/root/etc/passwd is not a regular file");
    }
    let mut text = Vec::new();
    file.take(MAX_PASSWD).read_to_end(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn our_own_namespace_is_searched_and_names_come_from_our_root() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let t = Tuple::new(client.local_addr().unwrap(), client.peer_addr().unwrap());
        let found = find(&t).unwrap().expect("our own connection");
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(found.outside_uid, me);
        assert_eq!(found.inside_uid, Some(me));
        // Which process names the owner depends on the machine's other processes;
        // the one holding the socket is always found by its fds.
        let me_pid = std::process::id();
        assert_eq!(holding(&[1, me_pid], found.inode), Some(me_pid));
        assert_eq!(holding(&[me_pid], found.inode + 1_000_000_000), None);
        assert_eq!(found.name, Some(lookup::user_name(me)));
        // The /proc path (kernels without sock_diag) finds the same socket.
        let by_proc = search_proc(&[me_pid], &t.canonical()).expect("found via /proc");
        assert_eq!((by_proc.uid, by_proc.inode), (me, found.inode));
        drop(client);
        let gone = Tuple::new(t.local, "127.0.0.1:1".parse().unwrap());
        assert_eq!(find(&gone).unwrap(), Err(Miss::NotHere));
        assert_eq!(search_proc(&[me_pid], &gone.canonical()), None);
    }
}
