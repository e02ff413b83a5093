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
mod tests;
