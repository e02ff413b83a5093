//! Who owns a TCP connection: the kernel lookup and the policy around it.
//!
//! The policy, whatever the source:
//! - **The 4-tuple only, never the state.** A client that called `shutdown(SHUT_WR)`
//!   is in FIN_WAIT1 or FIN_WAIT2 within microseconds and its peer in CLOSE_WAIT, then
//!   LAST_ACK or CLOSING; all of them still have an owner. The classic identd that
//!   demanded ESTABLISHED answered nothing for exactly these (kept here only as the
//!   [`Matcher::EstablishedOnly`] control arm for `racefree stress ident`).
//! - **Inode 0 is not an owner.** The kernel prints uid 0 for a TIME_WAIT socket (and
//!   for any socket no file holds any more); that is nobody, not root. Such a row is
//!   skipped and the search goes on for another with the same tuple.
//! - **Retry once on a miss.** `/proc/net/tcp` is not a snapshot: a row can move past
//!   the read position while the table changes, so a miss is read once more before
//!   the answer is "no owner".

mod netlink;
mod proc_net;
pub mod single_flight;

/// The /proc scan over another namespace's tables (`/proc/PID/net`), for `--nat`.
pub(crate) use proc_net::find_in as find_in_proc_dir;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::OnceLock;

use anyhow::Context;
use serde::Serialize;

/// A TCP connection as seen from this host: its local and remote ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Tuple {
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Tuple {
        Tuple { local, remote }
    }

    /// The same connection with IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// written as IPv4 and flow labels dropped: the form the lookup compares. An
    /// IPv6 scope id (the interface of a link-local address) is kept: the kernel
    /// binds a link-local connection to its interface, and netlink's exact lookup
    /// finds it only when told which one. Comparisons ignore it ([`Tuple::same_ends`]).
    pub fn canonical(&self) -> Tuple {
        Tuple {
            local: canonical_addr(self.local),
            remote: canonical_addr(self.remote),
        }
    }

    /// True when both ends have the same addresses and ports, scope ids aside:
    /// /proc prints no scope, and a connection's addresses and ports name it.
    pub fn same_ends(&self, other: &Tuple) -> bool {
        let ends = |t: &Tuple| (t.local.ip(), t.local.port(), t.remote.ip(), t.remote.port());
        ends(self) == ends(other)
    }

    /// The interface of a link-local IPv6 connection (either end's scope id), or 0.
    pub fn scope_id(&self) -> u32 {
        match (self.local, self.remote) {
            (SocketAddr::V6(l), _) if l.scope_id() != 0 => l.scope_id(),
            (_, SocketAddr::V6(r)) => r.scope_id(),
            _ => 0,
        }
    }

    /// True when both ends are IPv4 (after unmapping) or both IPv6. A mixed tuple
    /// names no connection that can exist.
    pub fn is_one_family(&self) -> bool {
        let t = self.canonical();
        t.local.is_ipv4() == t.remote.is_ipv4()
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.local, self.remote)
    }
}

fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, v6.scope_id())),
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The IPv4-mapped IPv6 form of an IPv4 address (how a dual-stack socket sees it).
fn mapped(v4: Ipv4Addr) -> Ipv6Addr {
    v4.to_ipv6_mapped()
}

/// Where the kernel's socket table is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `/proc/net/tcp` and `/proc/net/tcp6`, scanned for the tuple: works in any container and kernel; each read costs time in proportion to the sockets on the host (the kernel formats every one), shared by the lookups that arrive together
    Proc,
    /// The kernel's sock_diag exact lookup: one request, constant time whatever the number of sockets; needs the tcp_diag module, which some sandboxes block
    Netlink,
    /// Netlink, falling back to /proc when netlink sock_diag is unavailable.
    Auto,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Proc => "proc",
            Source::Netlink => "netlink",
            Source::Auto => "auto",
        })
    }
}

/// Which rows count as the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// The 4-tuple only: racefree's behaviour.
    FourTuple,
    /// The 4-tuple and state ESTABLISHED: the classic identd, known to answer nothing
    /// for a half-closed connection. Only for stress's control arm.
    EstablishedOnly,
}

/// The kernel's TCP states (include/net/tcp_states.h), as /proc and sock_diag number them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    BoundInactive,
    /// A number this build does not know.
    Other(u8),
}

impl TcpState {
    pub fn from_kernel(n: u8) -> TcpState {
        match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            13 => TcpState::BoundInactive,
            n => TcpState::Other(n),
        }
    }

    /// The name `ss` and the kernel use.
    pub fn name(self) -> String {
        match self {
            TcpState::Established => "ESTABLISHED".into(),
            TcpState::SynSent => "SYN_SENT".into(),
            TcpState::SynRecv => "SYN_RECV".into(),
            TcpState::FinWait1 => "FIN_WAIT1".into(),
            TcpState::FinWait2 => "FIN_WAIT2".into(),
            TcpState::TimeWait => "TIME_WAIT".into(),
            TcpState::Close => "CLOSE".into(),
            TcpState::CloseWait => "CLOSE_WAIT".into(),
            TcpState::LastAck => "LAST_ACK".into(),
            TcpState::Listen => "LISTEN".into(),
            TcpState::Closing => "CLOSING".into(),
            TcpState::NewSynRecv => "NEW_SYN_RECV".into(),
            TcpState::BoundInactive => "BOUND_INACTIVE".into(),
            TcpState::Other(n) => format!("STATE_{n}"),
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for TcpState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// The owner of a connection and where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub uid: u32,
    /// The socket's inode (never 0: a row with inode 0 has no owner).
    pub inode: u64,
    /// The TCP state the connection was in when found (informative, never a filter).
    pub state: TcpState,
    /// The source that answered: `Proc` or `Netlink`, never `Auto`.
    pub source: Source,
}

/// One row of the kernel's table as a source reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub tuple: Tuple,
    pub state: TcpState,
    pub uid: u32,
    pub inode: u64,
}

impl Matcher {
    /// The one decision: does this row answer for `wanted`? Sources call it on every
    /// row whose tuple matched their fast pre-filter, so it re-checks the tuple.
    pub(crate) fn accepts(self, row: &Row, wanted: &Tuple) -> bool {
        if !row.tuple.canonical().same_ends(wanted) || row.inode == 0 {
            return false;
        }
        match self {
            // LISTEN is not a connection: sock_diag answers an exact-lookup miss with
            // the listener on the local port, whose tuple differs anyway.
            Matcher::FourTuple => row.state != TcpState::Listen,
            Matcher::EstablishedOnly => row.state == TcpState::Established,
        }
    }
}

/// Finds the user owning the connection `tuple`, matching its 4-tuple only.
/// `Ok(None)` means no owner: no such connection, or only rows with inode 0.
pub fn lookup_owner(tuple: &Tuple, source: Source) -> anyhow::Result<Option<Owner>> {
    lookup_owner_with(tuple, source, Matcher::FourTuple)
}

/// The classic, known-bad lookup that also demands state ESTABLISHED: it answers
/// nothing for a half-closed connection. For stress's `--control` arm only.
pub fn lookup_owner_established_only(
    tuple: &Tuple,
    source: Source,
) -> anyhow::Result<Option<Owner>> {
    lookup_owner_with(tuple, source, Matcher::EstablishedOnly)
}

/// [`lookup_owner`] with an explicit matcher. Safe to call from many threads at once.
pub fn lookup_owner_with(
    tuple: &Tuple,
    source: Source,
    matcher: Matcher,
) -> anyhow::Result<Option<Owner>> {
    let wanted = tuple.canonical();
    if !wanted.is_one_family() {
        return Ok(None);
    }
    let source = resolve(source)?;
    // One retry on a miss: /proc can skip a row that moved while we read; sock_diag is
    // retried too so both sources keep the same contract.
    for _attempt in 0..2 {
        let found = match source {
            Source::Netlink => netlink::find(&wanted, matcher)
                .with_context(|| format!("netlink sock_diag lookup of {wanted}"))?,
            _ => proc_net::find_coalesced(&wanted, matcher)?,
        };
        if let Some(row) = found {
            return Ok(Some(Owner {
                uid: row.uid,
                inode: row.inode,
                state: row.state,
                source,
            }));
        }
    }
    Ok(None)
}

/// The `/proc/net/tcp{,6}` scan over table bytes from any reader, as [`lookup_owner_with`]
/// runs it on the real files (`ipv6_table` picks the form tcp6 prints the tuple in).
/// Public for the fuzz targets (fuzz/) and property tests, which feed it crafted tables.
#[doc(hidden)]
pub fn scan_proc_table(
    table: &mut impl std::io::Read,
    tuple: &Tuple,
    ipv6_table: bool,
    matcher: Matcher,
) -> std::io::Result<Option<Owner>> {
    let wanted = tuple.canonical();
    if !wanted.is_one_family() {
        return Ok(None);
    }
    Ok(
        proc_net::scan_for(table, &wanted, ipv6_table, matcher)?.map(|row| Owner {
            uid: row.uid,
            inode: row.inode,
            state: row.state,
            source: Source::Proc,
        }),
    )
}

/// `Auto` becomes `Netlink` when the kernel answers sock_diag, else `Proc`.
pub fn resolve(source: Source) -> anyhow::Result<Source> {
    static NETLINK_WORKS: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = || NETLINK_WORKS.get_or_init(|| netlink::probe().map_err(|e| format!("{e:#}")));
    Ok(match source {
        Source::Proc => Source::Proc,
        Source::Netlink => match probe() {
            Ok(()) => Source::Netlink,
            Err(e) => anyhow::bail!("netlink sock_diag is unavailable: {e}"),
        },
        Source::Auto => match probe() {
            Ok(()) => Source::Netlink,
            Err(_) => Source::Proc,
        },
    })
}

/// The user name for a uid from the password database, or the uid as a number when
/// it has no entry (or the database cannot be read).
pub fn user_name(uid: u32) -> String {
    match user_entry(uid) {
        Ok(Some(u)) => u.name,
        Ok(None) | Err(_) => uid.to_string(),
    }
}

/// The password-database entry of a uid: `Ok(None)` when it has none, `Err` when
/// the database could not be read. The two differ for anyone deciding whether a
/// user asked to be hidden: "no entry" means no home that could hold a `.noident`;
/// "could not read" means we do not know.
pub fn user_entry(uid: u32) -> nix::Result<Option<nix::unistd::User>> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn row(local: &str, remote: &str, state: TcpState, inode: u64) -> Row {
        Row {
            tuple: Tuple::new(sa(local), sa(remote)),
            state,
            uid: 1000,
            inode,
        }
    }

    #[test]
    fn mapped_addresses_compare_as_ipv4() {
        let t = Tuple::new(sa("[::ffff:127.0.0.1]:80"), sa("[::ffff:10.1.2.3]:4000"));
        assert_eq!(
            t.canonical(),
            Tuple::new(sa("127.0.0.1:80"), sa("10.1.2.3:4000"))
        );
        let v6 = Tuple::new(sa("[::1]:80"), sa("[::1]:4000"));
        assert_eq!(v6.canonical(), v6);
        assert!(t.is_one_family());
        assert!(!Tuple::new(sa("127.0.0.1:1"), sa("[::1]:2")).is_one_family());
        assert!(Tuple::new(sa("127.0.0.1:1"), sa("[::ffff:127.0.0.1]:2")).is_one_family());
    }

    #[test]
    fn a_scope_id_is_kept_but_not_compared() {
        let scoped = Tuple::new(sa("[fe80::1%3]:22"), sa("[fe80::2%3]:4000"));
        assert_eq!(scoped.canonical(), scoped);
        assert_eq!(scoped.canonical().scope_id(), 3);
        let unscoped = Tuple::new(sa("[fe80::1]:22"), sa("[fe80::2]:4000"));
        assert_eq!(unscoped.scope_id(), 0);
        assert!(unscoped.same_ends(&scoped) && scoped.same_ends(&unscoped));
        // A /proc row has no scope; it still answers for a scoped question.
        let r = row("[fe80::1]:22", "[fe80::2]:4000", TcpState::Established, 9);
        assert!(Matcher::FourTuple.accepts(&r, &scoped.canonical()));
        let other_port = Tuple::new(sa("[fe80::1%3]:23"), sa("[fe80::2%3]:4000"));
        assert!(!other_port.same_ends(&scoped));
    }

    #[test]
    fn every_state_with_an_inode_is_an_owner() {
        let wanted = Tuple::new(sa("127.0.0.1:5000"), sa("127.0.0.1:80"));
        for n in [1u8, 2, 3, 4, 5, 7, 8, 9, 11, 12] {
            let r = row(
                "127.0.0.1:5000",
                "127.0.0.1:80",
                TcpState::from_kernel(n),
                42,
            );
            assert!(Matcher::FourTuple.accepts(&r, &wanted), "state {n}");
        }
    }

    #[test]
    fn inode_zero_listen_and_other_tuples_are_not_owners() {
        let wanted = Tuple::new(sa("127.0.0.1:5000"), sa("127.0.0.1:80"));
        let tw = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::TimeWait, 0);
        assert!(!Matcher::FourTuple.accepts(&tw, &wanted));
        let orphan = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::FinWait2, 0);
        assert!(!Matcher::FourTuple.accepts(&orphan, &wanted));
        let listener = row("127.0.0.1:5000", "0.0.0.0:0", TcpState::Listen, 7);
        assert!(!Matcher::FourTuple.accepts(&listener, &wanted));
        let swapped = row("127.0.0.1:80", "127.0.0.1:5000", TcpState::Established, 7);
        assert!(!Matcher::FourTuple.accepts(&swapped, &wanted));
        let mapped = row(
            "[::ffff:127.0.0.1]:5000",
            "[::ffff:127.0.0.1]:80",
            TcpState::Established,
            7,
        );
        assert!(Matcher::FourTuple.accepts(&mapped, &wanted));
    }

    #[test]
    fn the_control_matcher_rejects_half_closed_connections() {
        let wanted = Tuple::new(sa("127.0.0.1:5000"), sa("127.0.0.1:80"));
        let fw1 = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::FinWait1, 42);
        assert!(Matcher::FourTuple.accepts(&fw1, &wanted));
        assert!(!Matcher::EstablishedOnly.accepts(&fw1, &wanted));
        let est = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::Established, 42);
        assert!(Matcher::EstablishedOnly.accepts(&est, &wanted));
    }

    #[test]
    fn state_names_match_the_kernel() {
        assert_eq!(TcpState::from_kernel(4).name(), "FIN_WAIT1");
        assert_eq!(TcpState::from_kernel(8).name(), "CLOSE_WAIT");
        assert_eq!(TcpState::from_kernel(200).name(), "STATE_200");
    }

    #[test]
    fn a_uid_without_an_entry_is_its_number() {
        assert_eq!(user_name(0), "root");
        // Far above any allocated range, below the invalid (u32)-1.
        assert_eq!(user_name(3_999_999_999), "3999999999");
    }
}
