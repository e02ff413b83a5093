//! Privilege separation, after OpenBSD's identd: under `--user`, the process that
//! parses network input runs with no privilege, and a small privileged helper
//! answers one question: who owns this tuple, and may they be named? With `--nat`
//! and `--proxy` the same question reaches further, through conntrack, into this
//! host's containers, or to a trusted NAT host's forwarded query ([`owner::find`]
//! is the one lookup, here and in-process alike). With `--forward`, its answer may
//! be "ask that host": see below.
//!
//! Why a helper stays privileged: whether a user may be named depends on
//! `~/.noident`, and a home is often 0700: only its owner, or root, can look in it.
//! A server that dropped to `nobody` and looked itself would hide root and every
//! user with a private home (it cannot tell "no .noident" from "cannot look").
//!
//! The helper is forked before the drop and keeps root; it holds nothing but its
//! end of a socketpair (every other descriptor is closed, stdin and stdout point at
//! /dev/null) and dies with the network side (end of file on the socketpair, and
//! PR_SET_PDEATHSIG). Requests and replies are fixed-size binary records:
//!
//! - request: id (u64), server port (u16), client port (u16), and the ident
//!   connection itself, passed as a descriptor (SCM_RIGHTS);
//! - reply: id, what the lookup found (no owner / failed / owner / refused /
//!   decided by `--nat` / forward), the owner's uid, whether the password database
//!   has an entry (and its name), and whether the home check lets them be named;
//!   or, for an answer `--nat` decided, which answer (a name, a uid, an error
//!   token); or, for a forward, the host's address family, and in the bytes a name
//!   takes otherwise: its address (4 or 16 bytes), its identd's port and the two
//!   original ports to ask about.
//!
//! A reply is accepted only in the exact form the encoder gives its value (every
//! unused byte zero, a name of the stated length, UTF-8 and, for a `--nat` name, fit
//! for the wire; a forward's payload exactly as long as its family says, an
//! address one host answers on, no port 0); anything else is a failed lookup,
//! never a name and never a connection.
//!
//! **Forwards are made by the network side, unprivileged.** With `--forward`, only
//! the privileged part stays in the helper: reading conntrack (root's) to find the
//! original tuple, and deciding that it came from a host behind this one. The query
//! to that host's identd (an outgoing connection and one reply line of network input,
//! parsed by the strict client, bounded by `--timeout`) is made by the network
//! side, which holds no privilege, and which relays the answer with the ports
//! translated back. A host that never answers thus holds one of the network side's
//! connections, as a slow querier would, and no helper worker: local lookups do
//! not wait behind it.
//!
//! The helper trusts nothing the network side says beyond the two ports: it reads
//! the querier's address and the local address from the passed ident connection
//! itself, so it can only ever answer about a connection between the querier and
//! the address the querier reached (the addr-pair rule, enforced here too). A
//! request that is not exactly one record with exactly one connected TCP socket
//! is refused.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use nix::sys::socket::{
    self as sock, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    SockaddrStorage, sockopt,
};

use super::super::lookup::{Matcher, Source, Tuple};
use super::super::nat::{Forward, NatConfig};
use super::super::proto::{Answer, ErrorToken, is_wire_safe};
use super::log::{LogTarget, Logger};
use super::owner;
use super::policy::{Findings, Passwd};

/// id, server port, client port, padding.
const REQUEST_LEN: usize = 16;
/// The longest name a reply carries: `proto::is_wire_safe`'s limit.
const NAME_MAX: usize = 512;
/// id, kind, detail (passwd or answer), flag (may_be_named or error token),
/// padding, uid, name length, name.
const REPLY_LEN: usize = 8 + 1 + 1 + 1 + 1 + 4 + 2 + NAME_MAX;

const KIND_NO_OWNER: u8 = 0;
const KIND_FAILED: u8 = 1;
const KIND_OWNER: u8 = 2;
const KIND_REFUSED: u8 = 3;
/// `--nat` decided the answer ([`Findings::Decided`]); detail says which kind.
const KIND_DECIDED: u8 = 4;
/// `--nat --forward`: ask a host behind this one ([`Findings::Forward`]); detail
/// says the address family, the name bytes carry the query.
const KIND_FORWARD: u8 = 5;

const FAMILY_V4: u8 = 0;
const FAMILY_V6: u8 = 1;

const PASSWD_ENTRY: u8 = 0;
const PASSWD_NONE: u8 = 1;
const PASSWD_UNREADABLE: u8 = 2;

const ANSWER_USER: u8 = 0;
const ANSWER_UID: u8 = 1;
const ANSWER_ERROR: u8 = 2;

/// The error tokens a decided answer may carry, by their code on the channel.
const ERROR_TOKENS: [ErrorToken; 4] = [
    ErrorToken::InvalidPort,
    ErrorToken::NoUser,
    ErrorToken::HiddenUser,
    ErrorToken::UnknownError,
];

/// How long the network side waits for a reply. The helper answers every request,
/// and makes no network query of its own (`--forward`'s is made by the asker), so
/// this only guards against a bug.
const REPLY_BOUND: Duration = Duration::from_secs(120);

/// What the helper needs to answer: where to look, what `--nat` does, and how to log.
#[derive(Clone, Debug)]
pub struct HelperConfig {
    pub source: Source,
    pub matcher: Matcher,
    /// `--nat`, `--forward`, `--proxy`, resolved in the helper (a forward only as
    /// far as whom to ask: the asker makes the query).
    pub nat: NatConfig,
    /// `--numeric` and `--hide-all`, which `--nat` applies to what it finds.
    pub numeric: bool,
    pub hide_all: bool,
    pub log: LogTarget,
    /// Requests answered at once (at most 32): the network side's connection limit.
    pub workers: usize,
}

impl HelperConfig {
    fn finder(&self) -> owner::Finder<'_> {
        owner::Finder {
            source: self.source,
            matcher: self.matcher,
            nat: &self.nat,
            numeric: self.numeric,
            hide_all: self.hide_all,
        }
    }
}

/// The network side's handle on the helper. Many threads may ask at once.
pub struct Helper {
    channel: Arc<OwnedFd>,
    waiting: Arc<Mutex<HashMap<u64, SyncSender<Findings>>>>,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    pid: nix::unistd::Pid,
    /// How long an asker waits for its reply.
    reply_bound: Duration,
}

/// The helper's channel: a socketpair of records (SOCK_SEQPACKET keeps each request
/// and reply whole), closed on exec.
fn channel() -> nix::Result<(OwnedFd, OwnedFd)> {
    sock::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

impl Helper {
    /// Forks the helper. Call while this process has one thread and still has its
    /// privileges, then drop them; the helper keeps them.
    pub fn start(config: HelperConfig, log: &Logger) -> anyhow::Result<Helper> {
        let (ours, theirs) = channel().context("creating the privileged helper's socketpair")?;
        // fork copies only the calling thread: with others running, a lock one of
        // them held would stay locked forever in the child.
        let threads = std::fs::read_dir("/proc/self/task")
            .context("counting this process's threads")?
            .count();
        anyhow::ensure!(
            threads == 1,
            "the privileged helper must be forked while the server has one thread, not {threads}"
        );
        let parent = nix::unistd::getpid();
        // SAFETY: this process has one thread (checked above), so the child may do anything.
        match unsafe { nix::unistd::fork() }.context("forking the privileged helper")? {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                let code = helper_main(theirs, parent, config);
                // Never return into the network side's code.
                std::process::exit(code);
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(theirs);
                Helper::over(ours, child, log)
            }
        }
    }

    /// The network side's handle on a helper at the other end of `channel`.
    fn over(channel: OwnedFd, pid: nix::unistd::Pid, log: &Logger) -> anyhow::Result<Helper> {
        let helper = Helper {
            channel: Arc::new(channel),
            waiting: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
            alive: Arc::new(AtomicBool::new(true)),
            pid,
            reply_bound: REPLY_BOUND,
        };
        helper.start_reader(log)?;
        Ok(helper)
    }

    /// A helper as [`Helper::start`] makes one, but in `workers` threads of this
    /// process (no fork, no privilege), answering with `find`: the seam through
    /// which a test makes the helper say anything it can say.
    #[cfg(test)]
    fn in_threads(
        workers: usize,
        find: impl Fn(&Tuple) -> Findings + Send + Sync + 'static,
    ) -> Helper {
        let (ours, theirs) = channel().unwrap();
        let (theirs, find) = (Arc::new(theirs), Arc::new(find));
        for _ in 0..workers {
            let (theirs, find) = (Arc::clone(&theirs), Arc::clone(&find));
            thread::spawn(move || serve_requests(&theirs, &Logger::new(LogTarget::None), &*find));
        }
        Helper::over(ours, nix::unistd::getpid(), &Logger::new(LogTarget::None)).unwrap()
    }

    /// The helper's process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Asks about the connection between `connection`'s ends, on the ports asked.
    /// Any failure to get an answer is a failed lookup (UNKNOWN-ERROR), never a name.
    pub fn ask(&self, connection: BorrowedFd<'_>, server_port: u16, client_port: u16) -> Findings {
        if !self.alive.load(Ordering::SeqCst) {
            return Findings::LookupFailed;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.waiting).insert(id, tx);
        let mut request = [0u8; REQUEST_LEN];
        request[..8].copy_from_slice(&id.to_le_bytes());
        request[8..10].copy_from_slice(&server_port.to_le_bytes());
        request[10..12].copy_from_slice(&client_port.to_le_bytes());
        let fds = [connection.as_raw_fd()];
        let sent = sock::sendmsg::<()>(
            self.channel.as_raw_fd(),
            &[IoSlice::new(&request)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        if sent != Ok(REQUEST_LEN) {
            lock(&self.waiting).remove(&id);
            return Findings::LookupFailed;
        }
        // The helper answers every request; the bound only guards against a bug.
        rx.recv_timeout(self.reply_bound)
            .unwrap_or(Findings::LookupFailed)
    }

    /// One thread reads the helper's replies and hands each to its asker. When the
    /// helper is gone, every asker is told so (their senders are dropped).
    fn start_reader(&self, log: &Logger) -> anyhow::Result<()> {
        let (channel, waiting, alive) = (
            Arc::clone(&self.channel),
            Arc::clone(&self.waiting),
            Arc::clone(&self.alive),
        );
        let log_gone = log.clone_target();
        thread::Builder::new()
            .name("identd-privsep".into())
            .spawn(move || {
                let mut buf = [0u8; REPLY_LEN];
                loop {
                    match sock::recv(channel.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                        Ok(REPLY_LEN) => {
                            let (id, findings) = decode_reply(&buf);
                            if let Some(tx) = lock(&waiting).remove(&id) {
                                let _ = tx.send(findings);
                            }
                        }
                        Err(nix::errno::Errno::EINTR) => {}
                        other => {
                            alive.store(false, Ordering::SeqCst);
                            lock(&waiting).clear();
                            log_gone.error(&format!(
                                "the privileged helper is gone ({other:?}); answering UNKNOWN-ERROR"
                            ));
                            return;
                        }
                    }
                }
            })
            .context("starting the privileged helper's reader")?;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The helper process: answer requests until the network side goes away.
fn helper_main(channel: OwnedFd, parent: nix::unistd::Pid, config: HelperConfig) -> i32 {
    // Die with the network side, even if it is killed before closing its end.
    // SAFETY: prctl with these arguments only sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if nix::unistd::getppid() != parent {
        return 0;
    }
    if isolate(channel.as_raw_fd()).is_err() {
        return 1;
    }
    let log = Logger::new(config.log);
    let channel = Arc::new(channel);
    let workers = config.workers.clamp(1, 32);
    let config = Arc::new(config);
    let threads: Vec<_> = (0..workers)
        .filter_map(|_| {
            let channel = Arc::clone(&channel);
            let config = Arc::clone(&config);
            let log = log.clone_target();
            thread::Builder::new()
                .name("identd-helper".into())
                .spawn(move || {
                    serve_requests(&channel, &log, &|t| owner::find(t, config.finder(), &log))
                })
                .ok()
        })
        .collect();
    if threads.is_empty() {
        return 1;
    }
    // Each worker returns on end of file or on a request that breaks the protocol;
    // either way the network side is gone or not to be trusted: end the process.
    let (done_tx, done_rx) = mpsc::channel();
    for t in threads {
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            let code = t.join().unwrap_or(1);
            let _ = done_tx.send(code);
        });
    }
    done_rx.recv().unwrap_or(1)
}

/// Leaves the helper holding nothing but its channel (and fd 2, which quiet modes
/// have already pointed at /dev/null): no listener, no client socket. Under inetd
/// stdin is the client's connection, which must close when the network side closes it.
fn isolate(channel: RawFd) -> nix::Result<()> {
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )?;
    for target in [0, 1] {
        // SAFETY: fds 0 and 1 exist for the process's life; dup2 replaces them in
        // place and the OwnedFd is forgotten, never closing them.
        let mut fd = unsafe { OwnedFd::from_raw_fd(target) };
        let r = nix::unistd::dup2(null.as_fd(), &mut fd);
        std::mem::forget(fd);
        r?;
    }
    drop(null);
    let close_range = |first: RawFd, last: RawFd| {
        if first <= last {
            // SAFETY: close_range closes descriptors this process owns; the only one
            // we keep (the channel) is outside the range.
            unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) };
        }
    };
    close_range(3, channel - 1);
    close_range(channel + 1, RawFd::MAX);
    Ok(())
}

/// One worker: receive a request, check it, answer it with `find` (the helper's is
/// [`owner::find`]). Returns the process's exit code when the channel ends (0) or
/// the network side broke the protocol (1).
fn serve_requests(channel: &OwnedFd, log: &Logger, find: &dyn Fn(&Tuple) -> Findings) -> i32 {
    let mut buf = [0u8; REQUEST_LEN + 1];
    loop {
        let mut cmsg = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match sock::recvmsg::<()>(
            channel.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 1,
        };
        let len = msg.bytes;
        let truncated = msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
        // Take ownership of every descriptor received, so each is closed.
        let mut fds: Vec<OwnedFd> = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: SCM_RIGHTS installed these descriptors in this process
                    // just now; nothing else refers to them.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
        }
        if len == 0 {
            return 0; // The network side closed its end.
        }
        if len != REQUEST_LEN || truncated {
            log.error("privileged helper: a request of the wrong size; stopping");
            return 1;
        }
        let id = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        let server_port = u16::from_le_bytes([buf[8], buf[9]]);
        let client_port = u16::from_le_bytes([buf[10], buf[11]]);
        let findings = match (fds.as_slice(), server_port, client_port) {
            ([conn], 1.., 1..) => {
                tuple_of(conn.as_fd(), server_port, client_port).map(|tuple| find(&tuple))
            }
            _ => None,
        };
        drop(fds);
        let reply = encode_reply(id, findings.as_ref());
        match sock::send(channel.as_raw_fd(), &reply, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 0,
        }
    }
}

/// The tuple asked about on the ident connection `conn`: this host's end of it on
/// `server_port`, the querier's address on `client_port`. None unless `conn` is a
/// connected TCP socket of the Internet families.
fn tuple_of(conn: BorrowedFd<'_>, server_port: u16, client_port: u16) -> Option<Tuple> {
    if sock::getsockopt(&conn, sockopt::SockType).ok()? != SockType::Stream
        || so_protocol(conn)? != libc::IPPROTO_TCP
    {
        return None;
    }
    let inet = |s: SockaddrStorage| -> Option<SocketAddr> {
        if let Some(v4) = s.as_sockaddr_in() {
            Some(SocketAddr::V4((*v4).into()))
        } else {
            s.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
        }
    };
    let mut local = inet(sock::getsockname(conn.as_raw_fd()).ok()?)?;
    let mut peer = inet(sock::getpeername(conn.as_raw_fd()).ok()?)?;
    // set_port keeps a link-local address's scope id, which netlink's lookup needs.
    local.set_port(server_port);
    peer.set_port(client_port);
    Some(Tuple::new(local, peer))
}

/// SO_PROTOCOL, which nix does not wrap: a stream socket may be SCTP, not TCP.
fn so_protocol(fd: BorrowedFd<'_>) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(value)
}

fn encode_reply(id: u64, findings: Option<&Findings>) -> [u8; REPLY_LEN] {
    let mut r = [0u8; REPLY_LEN];
    r[..8].copy_from_slice(&id.to_le_bytes());
    let forward_bytes;
    let (kind, detail, flag, uid, name): (u8, u8, u8, u32, &[u8]) = match findings {
        None => (KIND_REFUSED, 0, 0, 0, b""),
        Some(Findings::NoOwner) => (KIND_NO_OWNER, 0, 0, 0, b""),
        Some(Findings::LookupFailed) => (KIND_FAILED, 0, 0, 0, b""),
        Some(Findings::Owner { uid, passwd }) => match passwd {
            Passwd::Entry { name, may_be_named } => {
                // A name too long to carry is too long for the wire: sent empty, it
                // is answered by number, as an unsafe name is.
                let name = if name.len() <= NAME_MAX {
                    name.as_bytes()
                } else {
                    b""
                };
                (
                    KIND_OWNER,
                    PASSWD_ENTRY,
                    u8::from(*may_be_named),
                    *uid,
                    name,
                )
            }
            Passwd::NoEntry => (KIND_OWNER, PASSWD_NONE, 0, *uid, b""),
            Passwd::Unreadable => (KIND_OWNER, PASSWD_UNREADABLE, 0, *uid, b""),
        },
        Some(Findings::Decided(answer)) => match answer {
            // is_wire_safe bounds a name to NAME_MAX; `--nat` names no other kind.
            Answer::User(name) if is_wire_safe(name) => {
                (KIND_DECIDED, ANSWER_USER, 0, 0, name.as_bytes())
            }
            Answer::User(_) => (
                KIND_DECIDED,
                ANSWER_ERROR,
                error_code(ErrorToken::UnknownError),
                0,
                b"",
            ),
            Answer::Uid(uid) => (KIND_DECIDED, ANSWER_UID, 0, *uid, b""),
            Answer::Error(token) => (KIND_DECIDED, ANSWER_ERROR, error_code(*token), 0, b""),
        },
        Some(Findings::Forward(forward)) if forward.is_sound() => {
            let family;
            (family, forward_bytes) = encode_forward(forward);
            (KIND_FORWARD, family, 0, 0, forward_bytes.as_slice())
        }
        // Not a query to make: nobody is named, and nothing is asked.
        Some(Findings::Forward(_)) => (
            KIND_DECIDED,
            ANSWER_ERROR,
            error_code(ErrorToken::UnknownError),
            0,
            b"",
        ),
    };
    r[8] = kind;
    r[9] = detail;
    r[10] = flag;
    r[12..16].copy_from_slice(&uid.to_le_bytes());
    r[16..18].copy_from_slice(&(name.len() as u16).to_le_bytes());
    r[18..18 + name.len()].copy_from_slice(name);
    r
}

/// A forward's family, and its payload: the address's bytes (4 or 16, network
/// order), then the identd's port, the server port and the client port.
fn encode_forward(forward: &Forward) -> (u8, Vec<u8>) {
    let (family, mut bytes) = match forward.identd.ip() {
        IpAddr::V4(a) => (FAMILY_V4, a.octets().to_vec()),
        IpAddr::V6(a) => (FAMILY_V6, a.octets().to_vec()),
    };
    for port in [
        forward.identd.port(),
        forward.server_port,
        forward.client_port,
    ] {
        bytes.extend(port.to_le_bytes());
    }
    (family, bytes)
}

/// The forward `family` and `payload` say, if exactly that ([`encode_forward`]) and
/// sound ([`Forward::is_sound`]).
fn decode_forward(family: u8, payload: &[u8]) -> Option<Forward> {
    let (ip, ports): (IpAddr, &[u8]) = match family {
        FAMILY_V4 => {
            let (a, rest) = payload.split_first_chunk::<4>()?;
            (Ipv4Addr::from(*a).into(), rest)
        }
        FAMILY_V6 => {
            let (a, rest) = payload.split_first_chunk::<16>()?;
            (Ipv6Addr::from(*a).into(), rest)
        }
        _ => return None,
    };
    let ports: &[u8; 6] = ports.try_into().ok()?;
    let port = |at: usize| u16::from_le_bytes([ports[at], ports[at + 1]]);
    Some(Forward {
        identd: SocketAddr::new(ip, port(0)),
        server_port: port(2),
        client_port: port(4),
    })
    .filter(Forward::is_sound)
}

fn error_code(token: ErrorToken) -> u8 {
    ERROR_TOKENS
        .iter()
        .position(|&t| t == token)
        .expect("every token has a code") as u8
}

/// A reply back to findings. Anything but a record exactly as [`encode_reply`]
/// writes its value is a failed lookup, never a name.
fn decode_reply(r: &[u8; REPLY_LEN]) -> (u64, Findings) {
    let id = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
    let findings = decode_findings(r)
        // Canonical form only: every unused byte zero, every flag 0 or 1, nothing
        // past the name. Re-encoding the value must give back the record.
        .filter(|f| encode_reply(id, Some(f)) == *r)
        .unwrap_or(Findings::LookupFailed);
    (id, findings)
}

/// The value a reply's fields say, if they name one (not yet checked canonical).
fn decode_findings(r: &[u8; REPLY_LEN]) -> Option<Findings> {
    let (kind, detail, flag) = (r[8], r[9], r[10]);
    let uid = u32::from_le_bytes(r[12..16].try_into().expect("4 bytes"));
    let len = usize::from(u16::from_le_bytes([r[16], r[17]]));
    let bytes = r[18..].get(..len)?;
    if kind == KIND_FORWARD {
        return decode_forward(detail, bytes).map(Findings::Forward);
    }
    let name = std::str::from_utf8(bytes).ok()?;
    Some(match (kind, detail) {
        (KIND_NO_OWNER, _) => Findings::NoOwner,
        (KIND_FAILED, _) => Findings::LookupFailed,
        (KIND_OWNER, PASSWD_ENTRY) => Findings::Owner {
            uid,
            passwd: Passwd::Entry {
                name: name.to_string(),
                may_be_named: flag == 1,
            },
        },
        (KIND_OWNER, PASSWD_NONE) => Findings::Owner {
            uid,
            passwd: Passwd::NoEntry,
        },
        (KIND_OWNER, PASSWD_UNREADABLE) => Findings::Owner {
            uid,
            passwd: Passwd::Unreadable,
        },
        (KIND_DECIDED, ANSWER_USER) if is_wire_safe(name) => {
            Findings::Decided(Answer::User(name.to_string()))
        }
        (KIND_DECIDED, ANSWER_UID) => Findings::Decided(Answer::Uid(uid)),
        (KIND_DECIDED, ANSWER_ERROR) => {
            Findings::Decided(Answer::Error(*ERROR_TOKENS.get(usize::from(flag))?))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Server, ServerConfig};
    use super::*;

    #[test]
    fn every_finding_crosses_the_channel_unchanged() {
        let entry = |name: &str, ok| Findings::Owner {
            uid: 1000,
            passwd: Passwd::Entry {
                name: name.into(),
                may_be_named: ok,
            },
        };
        for f in [
            Findings::NoOwner,
            Findings::LookupFailed,
            entry("alice", true),
            entry("alice", false),
            entry(&"x".repeat(NAME_MAX), true),
            Findings::Owner {
                uid: 7,
                passwd: Passwd::NoEntry,
            },
            Findings::Owner {
                uid: 8,
                passwd: Passwd::Unreadable,
            },
        ] {
            assert_eq!(decode_reply(&encode_reply(42, Some(&f))), (42, f.clone()));
        }
        // A refusal, an overlong name, garbage: never a name.
        assert_eq!(
            decode_reply(&encode_reply(1, None)).1,
            Findings::LookupFailed
        );
        let long = entry(&"x".repeat(NAME_MAX + 1), true);
        assert_eq!(
            decode_reply(&encode_reply(1, Some(&long))).1,
            entry("", true)
        );
        let mut junk = [0xffu8; REPLY_LEN];
        junk[8] = 9;
        assert_eq!(decode_reply(&junk).1, Findings::LookupFailed);
    }

    /// Every answer `--nat` can decide, as the helper sends them.
    fn decided() -> Vec<Findings> {
        let mut all = vec![
            Findings::Decided(Answer::User("rfctruser".into())),
            Findings::Decided(Answer::User("n".repeat(NAME_MAX))),
            Findings::Decided(Answer::Uid(0)),
            Findings::Decided(Answer::Uid(4343)),
            Findings::Decided(Answer::Uid(u32::MAX)),
        ];
        all.extend(ERROR_TOKENS.map(|t| Findings::Decided(Answer::Error(t))));
        all
    }

    #[test]
    fn every_answer_nat_decides_crosses_the_channel_unchanged() {
        for f in decided() {
            assert_eq!(
                decode_reply(&encode_reply(7, Some(&f))),
                (7, f.clone()),
                "{f:?}"
            );
        }
        // A name unfit for the wire is never sent as one.
        for unsafe_name in ["", "a b", "a:b", "caf\u{e9}", &"n".repeat(NAME_MAX + 1)] {
            let f = Findings::Decided(Answer::User(unsafe_name.into()));
            assert_eq!(
                decode_reply(&encode_reply(7, Some(&f))).1,
                Findings::Decided(Answer::Error(ErrorToken::UnknownError)),
                "{unsafe_name:?}"
            );
        }
    }

    /// `base` with the bytes at the given offsets replaced: a record the encoder
    /// never writes.
    fn with(base: &[u8; REPLY_LEN], edits: &[(usize, u8)]) -> [u8; REPLY_LEN] {
        let mut r = *base;
        for &(at, byte) in edits {
            r[at] = byte;
        }
        r
    }

    /// Hand-made records the encoder never writes: each is a failed lookup.
    #[test]
    fn every_malformed_decided_record_is_a_failed_lookup() {
        let user = encode_reply(9, Some(&Findings::Decided(Answer::User("bob".into()))));
        let uid = encode_reply(9, Some(&Findings::Decided(Answer::Uid(4343))));
        let error = encode_reply(
            9,
            Some(&Findings::Decided(Answer::Error(ErrorToken::NoUser))),
        );
        let malformed: Vec<(&str, [u8; REPLY_LEN])> = vec![
            ("an unknown answer kind", with(&user, &[(9, 3)])),
            ("an unknown reply kind", with(&user, &[(8, 5)])),
            ("an unknown error token", with(&error, &[(10, 4)])),
            ("a flag on a name", with(&user, &[(10, 1)])),
            ("a flag on a uid", with(&uid, &[(10, 1)])),
            ("padding set", with(&user, &[(11, 1)])),
            ("a uid beside a name", with(&user, &[(12, 1)])),
            ("a uid beside an error", with(&error, &[(12, 1)])),
            ("an empty name", with(&user, &[(16, 0)])),
            ("a name longer than stated", with(&user, &[(16, 2)])),
            ("a name shorter than stated", with(&user, &[(16, 4)])),
            ("a byte past the name", with(&user, &[(21, b'x')])),
            ("the last byte set", with(&user, &[(REPLY_LEN - 1, 1)])),
            (
                "a length past the record",
                with(&user, &[(16, 0xff), (17, 0xff)]),
            ),
            ("a length of NAME_MAX + 1", {
                let len = (NAME_MAX as u16 + 1).to_le_bytes();
                with(&user, &[(16, len[0]), (17, len[1])])
            }),
            ("a space in the name", with(&user, &[(19, b' ')])),
            ("a colon in the name", with(&user, &[(19, b':')])),
            ("a control byte in the name", with(&user, &[(19, b'\n')])),
            ("a non-ASCII name", with(&user, &[(18, 0xc3), (19, 0xa9)])),
            ("a name that is not UTF-8", with(&user, &[(19, 0xff)])),
            ("a name beside a uid", with(&uid, &[(16, 1), (18, b'a')])),
            (
                "a name beside an error",
                with(&error, &[(16, 1), (18, b'a')]),
            ),
        ];
        for (what, record) in &malformed {
            assert_eq!(decode_reply(record), (9, Findings::LookupFailed), "{what}");
        }
    }

    /// Any one byte of any valid record changed (the id aside) is either refused or
    /// exactly the record of another value: nothing is read loosely.
    #[test]
    fn a_changed_byte_is_refused_or_another_values_exact_record() {
        let mut values = decided();
        values.extend(forwards());
        values.extend([
            Findings::NoOwner,
            Findings::LookupFailed,
            Findings::Owner {
                uid: 1000,
                passwd: Passwd::Entry {
                    name: "alice".into(),
                    may_be_named: true,
                },
            },
            Findings::Owner {
                uid: 1000,
                passwd: Passwd::Unreadable,
            },
        ]);
        let bytes = [0u8, 1, 2, 3, 4, 5, b' ', b':', b'a', 0x7f, 0x80, 0xff];
        let mut refused = 0;
        for f in &values {
            let good = encode_reply(3, Some(f));
            for at in 8..REPLY_LEN {
                for &b in &bytes {
                    let mut r = good;
                    r[at] = b;
                    let (id, got) = decode_reply(&r);
                    assert_eq!(id, 3);
                    if got == Findings::LookupFailed {
                        refused += 1;
                    } else {
                        assert_eq!(encode_reply(3, Some(&got)), r, "{f:?}, byte {at} = {b}");
                    }
                }
            }
        }
        assert!(refused > 0);
    }

    fn forward(identd: &str, server_port: u16, client_port: u16) -> Findings {
        Findings::Forward(Forward {
            identd: identd.parse().unwrap(),
            server_port,
            client_port,
        })
    }

    /// Every forward `--nat --forward` can ask, as the helper sends them.
    fn forwards() -> Vec<Findings> {
        vec![
            forward("198.18.2.2:113", 40000, 6667),
            forward("10.0.0.1:1", 1, 65535),
            forward("127.0.0.1:65535", 65535, 1),
            forward("[2001:db8::2]:113", 40000, 6667),
            forward("[fe80::1]:1113", 2, 3),
            forward("[::1]:113", 5, 6),
        ]
    }

    #[test]
    fn every_forward_crosses_the_channel_unchanged() {
        for f in forwards() {
            assert_eq!(
                decode_reply(&encode_reply(11, Some(&f))),
                (11, f.clone()),
                "{f:?}"
            );
        }
        // A forward that is no query to make is never sent as one: nobody is named
        // and nothing is asked.
        for unsound in [
            forward("0.0.0.0:113", 1, 2),
            forward("[::]:113", 1, 2),
            forward("255.255.255.255:113", 1, 2),
            forward("224.0.0.1:113", 1, 2),
            forward("[ff02::1]:113", 1, 2),
            forward("[::ffff:198.18.2.2]:113", 1, 2),
            forward("[fe80::1%3]:113", 1, 2),
            forward("198.18.2.2:0", 1, 2),
            forward("198.18.2.2:113", 0, 2),
            forward("198.18.2.2:113", 1, 0),
        ] {
            assert_eq!(
                decode_reply(&encode_reply(11, Some(&unsound))).1,
                Findings::Decided(Answer::Error(ErrorToken::UnknownError)),
                "{unsound:?}"
            );
        }
    }

    /// Hand-made forward records the encoder never writes: each is a failed lookup,
    /// never a connection to make.
    #[test]
    fn every_malformed_forward_record_is_a_failed_lookup() {
        let v4 = encode_reply(9, Some(&forward("198.18.2.2:113", 40000, 6667)));
        let v6 = encode_reply(9, Some(&forward("[2001:db8::2]:113", 40000, 6667)));
        // The payload starts at 18: address, identd port, server port, client port.
        assert_eq!((v4[8], v4[9], v4[16], v6[9], v6[16]), (5, 0, 10, 1, 22));
        assert_eq!(
            &v4[18..28],
            &[198, 18, 2, 2, 113, 0, 0x40, 0x9c, 0x0b, 0x1a]
        );
        let malformed: Vec<(&str, [u8; REPLY_LEN])> = vec![
            ("an unknown family", with(&v4, &[(9, 2)])),
            ("a v4 payload called v6", with(&v4, &[(9, 1)])),
            ("a v6 payload called v4", with(&v6, &[(9, 0)])),
            ("a flag set", with(&v4, &[(10, 1)])),
            ("padding set", with(&v4, &[(11, 1)])),
            ("a uid beside it", with(&v4, &[(12, 1)])),
            ("a v4 payload one short", with(&v4, &[(16, 9)])),
            ("a v4 payload one long", with(&v4, &[(16, 11)])),
            ("a v6 payload one short", with(&v6, &[(16, 21)])),
            ("a v6 payload one long", with(&v6, &[(16, 23)])),
            ("no payload", with(&v4, &[(16, 0)])),
            ("a byte past the payload", with(&v4, &[(28, 1)])),
            ("the last byte set", with(&v4, &[(REPLY_LEN - 1, 1)])),
            (
                "a length past the record",
                with(&v4, &[(16, 0xff), (17, 0xff)]),
            ),
            (
                "the unspecified address",
                with(&v4, &[(18, 0), (19, 0), (20, 0), (21, 0)]),
            ),
            (
                "a broadcast address",
                with(&v4, &[(18, 255), (19, 255), (20, 255), (21, 255)]),
            ),
            ("a multicast address", with(&v4, &[(18, 224)])),
            ("identd port 0", with(&v4, &[(22, 0)])),
            ("server port 0", with(&v4, &[(24, 0), (25, 0)])),
            ("client port 0", with(&v4, &[(26, 0), (27, 0)])),
            ("an IPv4-mapped v6 address", {
                let mut r = v6;
                r[18..34]
                    .copy_from_slice(&"::ffff:198.18.2.2".parse::<Ipv6Addr>().unwrap().octets());
                r
            }),
            ("a v6 multicast address", with(&v6, &[(18, 0xff)])),
        ];
        for (what, record) in &malformed {
            assert_eq!(decode_reply(record), (9, Findings::LookupFailed), "{what}");
        }
    }

    #[test]
    fn only_a_connected_tcp_socket_names_a_tuple_and_its_own_addresses_are_used() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let t = tuple_of(accepted.as_fd(), 80, 4000).unwrap();
        let expect_local = SocketAddr::new(listener.local_addr().unwrap().ip(), 80);
        assert_eq!(
            t,
            Tuple::new(expect_local, SocketAddr::new(peer.ip(), 4000))
        );
        assert!(tuple_of(listener.as_fd(), 80, 4000).is_none(), "a listener");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.connect(client.local_addr().unwrap()).unwrap();
        assert!(tuple_of(udp.as_fd(), 80, 4000).is_none(), "UDP");
        let file = tempfile::tempfile().unwrap();
        assert!(tuple_of(file.as_fd(), 80, 4000).is_none(), "a file");
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(tuple_of(a.as_fd(), 80, 4000).is_none(), "a Unix socket");
    }

    /// A worker on one end of a socketpair, as in the helper (no fork needed).
    fn worker() -> (OwnedFd, thread::JoinHandle<i32>) {
        let (ours, theirs) = channel().unwrap();
        let config = HelperConfig {
            source: Source::Proc,
            matcher: Matcher::FourTuple,
            nat: NatConfig::default(),
            numeric: false,
            hide_all: false,
            log: LogTarget::None,
            workers: 1,
        };
        let t = thread::spawn(move || {
            let log = Logger::new(LogTarget::None);
            serve_requests(&theirs, &log, &|t| owner::find(t, config.finder(), &log))
        });
        (ours, t)
    }

    fn request(channel: &OwnedFd, id: u64, ports: (u16, u16), fds: &[RawFd]) -> Findings {
        let mut r = [0u8; REQUEST_LEN];
        r[..8].copy_from_slice(&id.to_le_bytes());
        r[8..10].copy_from_slice(&ports.0.to_le_bytes());
        r[10..12].copy_from_slice(&ports.1.to_le_bytes());
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
        sock::sendmsg::<()>(
            channel.as_raw_fd(),
            &[IoSlice::new(&r)],
            cmsgs,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut buf = [0u8; REPLY_LEN];
        assert_eq!(
            sock::recv(channel.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(),
            REPLY_LEN
        );
        let (got_id, findings) = decode_reply(&buf);
        assert_eq!(got_id, id);
        findings
    }

    #[test]
    fn the_helper_answers_only_about_the_passed_connections_own_addresses() {
        let (channel, t) = worker();
        // A service and its client: the client's end is the connection asked about.
        let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(service.local_addr().unwrap()).unwrap();
        let (_served, _) = service.accept().unwrap();
        let (sp, cp) = (
            client.local_addr().unwrap().port(),
            service.local_addr().unwrap().port(),
        );
        // An ident connection from 127.0.0.1 to 127.0.0.1: the pair matches.
        let identd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _querier = std::net::TcpStream::connect(identd.local_addr().unwrap()).unwrap();
        let (ident_conn, _) = identd.accept().unwrap();
        let me = nix::unistd::Uid::effective().as_raw();
        assert!(matches!(
            request(&channel, 1, (sp, cp), &[ident_conn.as_raw_fd()]),
            Findings::Owner { uid, .. } if uid == me
        ));
        // The same ports asked on an ident connection from 127.0.0.2: not its business.
        let from2 = nix::sys::socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let two: SocketAddr = "127.0.0.2:0".parse().unwrap();
        sock::bind(from2.as_raw_fd(), &SockaddrStorage::from(two)).unwrap();
        sock::connect(
            from2.as_raw_fd(),
            &SockaddrStorage::from(identd.local_addr().unwrap()),
        )
        .unwrap();
        let (ident_conn2, _) = identd.accept().unwrap();
        assert_eq!(
            request(&channel, 2, (sp, cp), &[ident_conn2.as_raw_fd()]),
            Findings::NoOwner
        );
        // No descriptor, two, a listener, a port 0: refused, never answered.
        assert_eq!(request(&channel, 3, (sp, cp), &[]), Findings::LookupFailed);
        assert_eq!(
            request(
                &channel,
                4,
                (sp, cp),
                &[ident_conn.as_raw_fd(), ident_conn2.as_raw_fd()]
            ),
            Findings::LookupFailed
        );
        assert_eq!(
            request(&channel, 5, (sp, cp), &[identd.as_raw_fd()]),
            Findings::LookupFailed
        );
        assert_eq!(
            request(&channel, 6, (0, cp), &[ident_conn.as_raw_fd()]),
            Findings::LookupFailed
        );
        // A record of the wrong size ends the helper: it trusts nothing after that.
        sock::send(channel.as_raw_fd(), &[0u8; 3], MsgFlags::empty()).unwrap();
        assert_eq!(t.join().unwrap(), 1);
    }

    /// A forward waiting on the host behind holds no helper worker. The helper has
    /// one worker; while a forward's host has its question and has not answered, a
    /// local lookup is answered, and only then does the host answer, and its answer
    /// is relayed about the ports asked. Were the forward made in the helper, the
    /// local lookup would wait for the forward's --timeout and the forward would end
    /// UNKNOWN-ERROR. The order is forced by the host's stub, not by timing.
    #[test]
    fn a_forward_waiting_on_the_host_behind_holds_no_helper_worker() {
        use std::io::{BufRead, BufReader, Write};
        use std::net::{TcpListener, TcpStream};
        let none = || Logger::new(LogTarget::None);
        // The host behind the NAT: its identd reads the question, says so, and
        // answers only when told.
        let lan = TcpListener::bind("127.0.0.1:0").unwrap();
        let forward = Forward {
            identd: lan.local_addr().unwrap(),
            server_port: 4000,
            client_port: 6667,
        };
        let (asked_tx, asked_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let lan_identd = thread::spawn(move || {
            let (conn, _) = lan.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            asked_tx.send(line).unwrap();
            go_rx.recv().unwrap();
            (&conn).write_all(b"4000 , 6667 : USERID : UNIX : lanuser\r\n")
        });
        // One worker: server port 40000 came from that host (as --nat --forward
        // would find in conntrack); anything else is looked up as the helper does.
        const FORWARDED: u16 = 40000;
        let helper = Helper::in_threads(1, move |t| {
            if t.local.port() == FORWARDED {
                return Findings::Forward(forward);
            }
            let nat = NatConfig::default();
            let finder = owner::Finder {
                source: Source::Proc,
                matcher: Matcher::FourTuple,
                nat: &nat,
                numeric: false,
                hide_all: false,
            };
            owner::find(t, finder, &Logger::new(LogTarget::None))
        });
        let config = ServerConfig {
            nat: NatConfig {
                timeout: Duration::from_secs(30),
                ..NatConfig::default()
            },
            ..ServerConfig::default()
        };
        let server = Server::with_helper(config, none(), helper);
        // Ident connections, as the network side holds them.
        let identd = TcpListener::bind("127.0.0.1:0").unwrap();
        let ident_connection = || {
            let querier = TcpStream::connect(identd.local_addr().unwrap()).unwrap();
            let (conn, _) = identd.accept().unwrap();
            (querier, conn)
        };
        let (_querier1, conn1) = ident_connection();
        let asking = {
            let server = server.clone();
            thread::spawn(move || {
                let (local, peer) = (conn1.local_addr().unwrap(), conn1.peer_addr().unwrap());
                server.respond_on(Some(conn1.as_fd()), local, peer, b"40000, 6667")
            })
        };
        // The forward is under way: the host behind has its question.
        assert_eq!(
            asked_rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            "4000, 6667\r\n"
        );
        // A local lookup meanwhile, answered as a server without a helper would.
        let service = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(service.local_addr().unwrap()).unwrap();
        let (_served, _) = service.accept().unwrap();
        let line = format!(
            "{}, {}",
            client.local_addr().unwrap().port(),
            service.local_addr().unwrap().port()
        );
        let (_querier2, conn2) = ident_connection();
        let (local, peer) = (conn2.local_addr().unwrap(), conn2.peer_addr().unwrap());
        let expected =
            Server::new(ServerConfig::default(), none()).respond(local, peer, line.as_bytes());
        assert!(expected.contains(" : USERID : "), "{expected}");
        assert_eq!(
            server.respond_on(Some(conn2.as_fd()), local, peer, line.as_bytes()),
            expected
        );
        // Only now does the host behind answer: the forward was still waiting.
        go_tx.send(()).unwrap();
        assert_eq!(
            asking.join().unwrap(),
            "40000, 6667 : USERID : UNIX : lanuser\r\n"
        );
        lan_identd.join().unwrap().unwrap();
    }

    #[test]
    fn the_helper_ends_when_the_network_side_closes_its_end() {
        let (channel, t) = worker();
        drop(channel);
        assert_eq!(t.join().unwrap(), 0);
    }
}
