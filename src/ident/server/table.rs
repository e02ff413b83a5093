//! The table of connections a listening server holds, and who gives up a place in
//! it when a new connection needs one: the defence against one address starving
//! the others (slowloris).
//!
//! Every connection is accepted and weighed here before a thread serves it:
//!
//! - **One address holds at most its share** (`--max-conns-per-addr`, by default
//!   half the table). IPv6 addresses count by /64: a host is given a /64, and
//!   can pick any address in it. A connection past an address's share takes the
//!   place of that address's oldest idle connection, or is closed if it has none.
//! - **A full table makes room.** The new connection takes the place of the oldest
//!   idle connection of the address holding the most; when no connection at all
//!   is idle, the new one is closed.
//! - **Idle means no complete request yet.** A connection that sent a request is
//!   answered; one that is being answered, or was answered and may send another,
//!   keeps its place, bounded by `--timeout` a line and 100 requests. One that
//!   never sent a full line keeps it at most `--first-line-timeout`, or until it is
//!   the oldest idle connection of whoever holds the most.
//!
//! So an address opening connections without end only ever closes its own, and
//! the others keep the rest of the table. Eviction shuts the connection down
//! (`shutdown(2)`), which wakes its thread's read at once, and the thread closes
//! it. The new connection does not wait for that (on a loaded host the thread may
//! run only milliseconds later), unless as many evicted connections as the table
//! holds are still closing: the descriptors held stay bounded, and
//! [`fit_descriptor_limit`] sizes the table under `RLIMIT_NOFILE` for them.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{self as sock, Shutdown};

/// How long a new connection waits, when as many evicted connections as the table
/// holds are still closing, for one of them to be closed. Their threads were woken
/// by the shutdown and close at once; this bounds only a host so loaded that they
/// do not run.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Descriptors the process holds besides its connections: stdio, listeners, the
/// log, the helper's channel, and what lookups open.
const FDS_RESERVED: u64 = 64;
/// Descriptors per place in the table: its connection's socket, what its lookup
/// opens meanwhile (a /proc table or a netlink socket, the password database, a
/// home, or the connection to a host behind a NAT), and an evicted connection
/// still closing.
const FDS_PER_CONN: u64 = 3;

/// Who a connection counts against: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Querier {
    V4(std::net::Ipv4Addr),
    /// The first 64 bits.
    V6Net(u64),
}

impl Querier {
    pub fn of(ip: IpAddr) -> Querier {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Querier::V4(v4),
            IpAddr::V6(v6) => Querier::V6Net((v6.to_bits() >> 64) as u64),
        }
    }
}

impl fmt::Display for Querier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Querier::V4(v4) => write!(f, "{v4}"),
            Querier::V6Net(net) => write!(f, "{}/64", Ipv6Addr::from_bits(u128::from(*net) << 64)),
        }
    }
}

/// How many connections the table holds, in all and from one querier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub total: usize,
    pub per_querier: usize,
}

impl Limits {
    /// `total` places, and `per_querier` (by default half of them, at least one)
    /// for one address; never more than the table.
    pub fn new(total: usize, per_querier: Option<usize>) -> Limits {
        let total = total.max(1);
        let per_querier = per_querier.unwrap_or(total.div_ceil(2));
        Limits {
            total,
            per_querier: per_querier.clamp(1, total),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No complete request yet: may be evicted.
    Idle,
    /// Being answered, or answered and waiting for another line.
    InUse,
    /// Shut down to make room; its thread has yet to close it.
    Evicted,
}

struct Entry {
    id: u64,
    querier: Querier,
    peer: SocketAddr,
    accepted: Instant,
    /// The socket, for shutdown(2): valid while the entry exists, since the thread
    /// removes the entry before it closes the socket ([`Admitted`]'s Drop).
    fd: RawFd,
    state: State,
}

/// Why a new connection was closed or an old one evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crowding {
    /// Its querier holds its whole share.
    QuerierFull { querier: Querier, held: usize },
    /// The table is full.
    TableFull { total: usize },
}

impl fmt::Display for Crowding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crowding::QuerierFull { querier, held } => {
                write!(f, "{querier} holds {held} connections, its share")
            }
            Crowding::TableFull { total } => write!(f, "all {total} connections are taken"),
        }
    }
}

/// What to do with a new connection, decided over the table as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Admit,
    /// Evict the entry at this index first, then decide again.
    Evict(usize, Crowding),
    Refuse(Crowding),
}

/// The one decision: admit a connection from `querier`, evict someone first, or
/// refuse it. Evicted entries no longer count: their threads are closing them.
fn decide(entries: &[Entry], querier: Querier, limits: Limits) -> Decision {
    let live = || {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.state != State::Evicted)
    };
    let oldest_idle = |q: Querier| {
        live()
            .filter(|(_, e)| e.querier == q && e.state == State::Idle)
            .min_by_key(|(_, e)| e.accepted)
            .map(|(i, _)| i)
    };
    let held = live().filter(|(_, e)| e.querier == querier).count();
    if held >= limits.per_querier {
        let why = Crowding::QuerierFull { querier, held };
        return oldest_idle(querier).map_or(Decision::Refuse(why), |i| Decision::Evict(i, why));
    }
    if live().count() < limits.total {
        return Decision::Admit;
    }
    let why = Crowding::TableFull {
        total: limits.total,
    };
    // The querier holding the most that has an idle connection; between equals,
    // the one whose idle connection is older. One pass: the table may be large.
    let mut holdings: HashMap<Querier, (usize, Option<usize>)> = HashMap::new();
    for (i, e) in live() {
        let (held, oldest) = holdings.entry(e.querier).or_default();
        *held += 1;
        if e.state == State::Idle && oldest.is_none_or(|o| e.accepted < entries[o].accepted) {
            *oldest = Some(i);
        }
    }
    holdings
        .into_values()
        .filter_map(|(held, oldest)| Some((held, oldest?)))
        .max_by(|(n1, i1), (n2, i2)| {
            n1.cmp(n2)
                .then(entries[*i2].accepted.cmp(&entries[*i1].accepted))
        })
        .map_or(Decision::Refuse(why), |(_, i)| Decision::Evict(i, why))
}

/// A connection evicted to make room: who, how long it had been idle, and why.
#[derive(Clone, Debug)]
pub struct Eviction {
    pub peer: SocketAddr,
    pub idle: Duration,
    pub why: Crowding,
}

/// The server's table. Shared by the accept loops and the connection threads.
pub struct Table {
    inner: Mutex<Inner>,
    /// Signalled whenever an entry leaves.
    left: Condvar,
}

struct Inner {
    limits: Limits,
    /// `--max-conns-per-addr` as given: the share is recomputed if the table shrinks.
    per_querier: Option<usize>,
    next_id: u64,
    entries: Vec<Entry>,
}

impl Table {
    /// A table of `total` places, `per_querier` of them (by default half) for one
    /// querier.
    pub fn new(total: usize, per_querier: Option<usize>) -> Table {
        Table {
            inner: Mutex::new(Inner {
                limits: Limits::new(total, per_querier),
                per_querier,
                next_id: 0,
                entries: Vec::new(),
            }),
            left: Condvar::new(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.lock().limits
    }

    /// Shrinks the table (to fit a descriptor limit); a default share shrinks with
    /// it.
    pub fn bound_total(&self, total: usize) {
        let mut inner = self.lock();
        inner.limits = Limits::new(total.min(inner.limits.total), inner.per_querier);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `stream`, from `peer`, into the table, evicting whoever the limits say
    /// must make room. Returns the connection to serve (it leaves the table when
    /// dropped) and those evicted for it; or, when it cannot be admitted, why, and
    /// the stream is closed.
    pub fn admit(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> (Result<Admitted, Crowding>, Vec<Eviction>) {
        let querier = Querier::of(peer.ip());
        let mut evicted = Vec::new();
        let deadline = Instant::now() + EVICTION_WAIT;
        let mut inner = self.lock();
        loop {
            match decide(&inner.entries, querier, inner.limits) {
                Decision::Evict(i, why) => {
                    let victim = &mut inner.entries[i];
                    victim.state = State::Evicted;
                    // Wakes the victim's thread, blocked reading its first line.
                    let _ = sock::shutdown(victim.fd, Shutdown::Both);
                    evicted.push(Eviction {
                        peer: victim.peer,
                        idle: victim.accepted.elapsed(),
                        why,
                    });
                }
                Decision::Refuse(why) => return (Err(why), evicted),
                // As many evicted as the table holds are still closing: wait for one.
                Decision::Admit if inner.entries.len() >= 2 * inner.limits.total => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let total = inner.limits.total;
                        return (Err(Crowding::TableFull { total }), evicted);
                    }
                    inner = self
                        .left
                        .wait_timeout(inner, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                Decision::Admit => {
                    let id = inner.next_id;
                    inner.next_id += 1;
                    inner.entries.push(Entry {
                        id,
                        querier,
                        peer,
                        accepted: Instant::now(),
                        fd: stream.as_raw_fd(),
                        state: State::Idle,
                    });
                    let admitted = Admitted {
                        table: Arc::clone(self),
                        id,
                        stream,
                    };
                    return (Ok(admitted), evicted);
                }
            }
        }
    }
}

/// A connection in the table: it leaves the table when dropped, and only then is
/// its socket closed, so an eviction can never shut down a descriptor number
/// that has been reused.
pub struct Admitted {
    table: Arc<Table>,
    id: u64,
    // Dropped after Drop::drop has removed the entry.
    stream: TcpStream,
}

impl Admitted {
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Marks the connection in use, as it has sent a complete request: it can no
    /// longer be evicted. False when it was evicted already: it must not be answered.
    pub fn start_request(&self) -> bool {
        let mut inner = self.table.lock();
        match inner.entries.iter_mut().find(|e| e.id == self.id) {
            Some(e) if e.state != State::Evicted => {
                e.state = State::InUse;
                true
            }
            _ => false,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        inner.entries.retain(|e| e.id != self.id);
        drop(inner);
        self.table.left.notify_all();
    }
}

/// The descriptors a table of `total` connections needs, at most.
fn fds_needed(total: usize) -> u64 {
    FDS_RESERVED + FDS_PER_CONN * total as u64
}

/// The largest table `fd_limit` descriptors hold.
fn total_within(fd_limit: u64) -> usize {
    (fd_limit.saturating_sub(FDS_RESERVED) / FDS_PER_CONN).max(1) as usize
}

/// Makes room in `RLIMIT_NOFILE` for a table of `total` connections: raises the
/// soft limit as far as the hard limit allows, and returns the table that fits
/// (`total`, or fewer when the hard limit is lower than it needs).
pub fn fit_descriptor_limit(total: usize) -> usize {
    let needed = fds_needed(total);
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return total;
    };
    if soft >= needed {
        return total;
    }
    let raised = needed.min(hard);
    let limit = match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
        Ok(()) => raised,
        Err(_) => soft,
    };
    total.min(total_within(limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn entry(id: u64, querier: &str, age_ms: u64, state: State) -> Entry {
        let ip: IpAddr = querier.parse().unwrap();
        Entry {
            id,
            querier: Querier::of(ip),
            peer: SocketAddr::new(ip, 1),
            accepted: Instant::now() - Duration::from_millis(age_ms),
            fd: -1,
            state,
        }
    }

    fn q(s: &str) -> Querier {
        Querier::of(s.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(q("2001:db8:1:2::1"), q("2001:db8:1:2:ffff::9"));
        assert_ne!(q("2001:db8:1:2::1"), q("2001:db8:1:3::1"));
        assert_eq!(q("::ffff:192.0.2.1"), q("192.0.2.1"));
        assert_ne!(q("::ffff:192.0.2.1"), q("::ffff:192.0.2.2"));
        assert_eq!(q("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(q("192.0.2.1").to_string(), "192.0.2.1");
    }

    #[test]
    fn the_share_is_half_the_table_by_default_and_never_more_than_it() {
        assert_eq!(Limits::new(256, None).per_querier, 128);
        assert_eq!(Limits::new(1, None).per_querier, 1);
        assert_eq!(Limits::new(3, None).per_querier, 2);
        assert_eq!(Limits::new(10, Some(50)).per_querier, 10);
        assert_eq!(Limits::new(10, Some(0)).per_querier, 1);
    }

    #[test]
    fn a_querier_past_its_share_replaces_its_own_oldest_idle_connection() {
        let limits = Limits::new(10, Some(3));
        let table = [
            entry(0, "127.0.0.2", 300, State::InUse),
            entry(1, "127.0.0.2", 200, State::Idle),
            entry(2, "127.0.0.1", 900, State::Idle),
            entry(3, "127.0.0.2", 100, State::Idle),
        ];
        let why = Crowding::QuerierFull {
            querier: q("127.0.0.2"),
            held: 3,
        };
        assert_eq!(
            decide(&table, q("127.0.0.2"), limits),
            Decision::Evict(1, why)
        );
        // Another querier is admitted: the table has room.
        assert_eq!(decide(&table, q("127.0.0.3"), limits), Decision::Admit);
        // With none of its own idle, the new one is refused, whoever else is idle.
        let busy = [
            entry(0, "127.0.0.2", 300, State::InUse),
            entry(1, "127.0.0.2", 200, State::InUse),
            entry(2, "127.0.0.1", 900, State::Idle),
            entry(3, "127.0.0.2", 100, State::InUse),
        ];
        assert_eq!(decide(&busy, q("127.0.0.2"), limits), Decision::Refuse(why));
        // Evicted entries no longer count against the share.
        let leaving = [
            entry(0, "127.0.0.2", 300, State::InUse),
            entry(1, "127.0.0.2", 200, State::Evicted),
            entry(3, "127.0.0.2", 100, State::Idle),
        ];
        assert_eq!(decide(&leaving, q("127.0.0.2"), limits), Decision::Admit);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_idle_of_whoever_holds_the_most() {
        let limits = Limits::new(6, Some(6));
        let table = [
            entry(0, "127.0.0.1", 900, State::Idle),
            entry(1, "127.0.0.2", 500, State::InUse),
            entry(2, "127.0.0.2", 400, State::Idle),
            entry(3, "127.0.0.2", 300, State::Idle),
            entry(4, "2001:db8::1", 800, State::Idle),
            entry(5, "2001:db8::2", 700, State::Idle),
        ];
        let why = Crowding::TableFull { total: 6 };
        // 127.0.0.2 holds 3: its oldest idle goes, not the older ones of others.
        assert_eq!(
            decide(&table, q("127.0.0.1"), limits),
            Decision::Evict(2, why)
        );
        // Between equal holdings, the older idle connection goes.
        let even = [
            entry(0, "127.0.0.1", 100, State::Idle),
            entry(1, "127.0.0.1", 200, State::InUse),
            entry(2, "127.0.0.2", 50, State::InUse),
            entry(3, "127.0.0.2", 300, State::Idle),
        ];
        let four = Limits::new(4, None);
        assert_eq!(
            decide(&even, q("127.0.0.3"), four),
            Decision::Evict(3, Crowding::TableFull { total: 4 })
        );
        // The biggest holder with nothing idle is passed over for one that has.
        let busy_biggest = [
            entry(0, "127.0.0.2", 100, State::InUse),
            entry(1, "127.0.0.2", 100, State::InUse),
            entry(2, "127.0.0.2", 100, State::InUse),
            entry(3, "127.0.0.1", 10, State::Idle),
        ];
        assert_eq!(
            decide(&busy_biggest, q("127.0.0.3"), Limits::new(4, Some(4))),
            Decision::Evict(3, Crowding::TableFull { total: 4 })
        );
        // Nothing idle anywhere: refused.
        let all_busy = [
            entry(0, "127.0.0.2", 100, State::InUse),
            entry(1, "127.0.0.1", 100, State::InUse),
        ];
        assert_eq!(
            decide(&all_busy, q("127.0.0.3"), Limits::new(2, Some(2))),
            Decision::Refuse(Crowding::TableFull { total: 2 })
        );
    }

    /// A connection accepted on `listener`: (client, accepted, peer).
    fn accepted_from(listener: &TcpListener) -> (TcpStream, TcpStream, SocketAddr) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        (client, accepted, peer)
    }

    #[test]
    fn an_evicted_connection_is_shut_down_and_not_answered() {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let table = Arc::new(Table::new(1, None));
        let (mut old_client, old, old_peer) = accepted_from(&listener);
        let (admitted, evicted) = table.admit(old, old_peer);
        let old = admitted.unwrap();
        assert!(evicted.is_empty());
        // A new one takes the idle one's place at once.
        let (_new_client, new, new_peer) = accepted_from(&listener);
        let (admitted, evicted) = table.admit(new, new_peer);
        let new = admitted.unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].peer, old_peer);
        // The old one's thread reads end of file, and is told not to answer.
        assert_eq!(old.stream().read(&mut [0u8; 1]).unwrap(), 0);
        assert!(!old.start_request());
        drop(old);
        old_client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(old_client.read(&mut [0u8; 1]).unwrap(), 0, "closed");
        // In use, a connection is never evicted: the next one is refused.
        assert!(new.start_request());
        let (_client, third, peer) = accepted_from(&listener);
        let (refused, evicted) = table.admit(third, peer);
        assert!(evicted.is_empty());
        assert!(matches!(
            refused,
            Err(Crowding::QuerierFull { held: 1, .. })
        ));
        // Once it leaves, there is room again.
        drop(new);
        let (_client, fourth, peer) = accepted_from(&listener);
        assert!(table.admit(fourth, peer).0.is_ok());
    }

    #[test]
    fn descriptors_stay_bounded_while_evicted_connections_are_closing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let table = Arc::new(Table::new(1, None));
        let (_c1, s1, p1) = accepted_from(&listener);
        let first = table.admit(s1, p1).0.unwrap();
        let (_c2, s2, p2) = accepted_from(&listener);
        let second = table.admit(s2, p2).0.unwrap();
        // Both evicted and neither closed by its thread: as many closing as the
        // table holds. The next waits for one of them, and is refused in the end.
        let (_c3, s3, p3) = accepted_from(&listener);
        let start = Instant::now();
        let (refused, evicted) = table.admit(s3, p3);
        assert_eq!(refused.err(), Some(Crowding::TableFull { total: 1 }));
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].peer, p2);
        assert!(start.elapsed() >= EVICTION_WAIT);
        // One closes: there is room.
        drop(first);
        let (_c4, s4, p4) = accepted_from(&listener);
        assert!(table.admit(s4, p4).0.is_ok());
        drop(second);
    }

    #[test]
    fn a_shrunk_table_keeps_a_default_share_at_half_and_a_given_one_within_it() {
        let default = Table::new(5000, None);
        default.bound_total(149);
        assert_eq!(default.limits(), Limits::new(149, None));
        assert_eq!(default.limits().per_querier, 75);
        let given = Table::new(5000, Some(100));
        given.bound_total(149);
        assert_eq!(given.limits().per_querier, 100);
        given.bound_total(50);
        assert_eq!(given.limits().per_querier, 50);
    }

    #[test]
    fn a_table_is_sized_within_the_descriptor_limit() {
        assert_eq!(total_within(1024), 320);
        assert_eq!(total_within(10), 1);
        assert!(fds_needed(total_within(1024)) <= 1024);
        assert!(
            fds_needed(256) <= 1024,
            "the default table fits the usual 1024"
        );
    }
}
