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
//! - **A link-local connection is on one interface.** Asked with a scope id, only
//!   a row on that interface answers: sock_diag says which interface a socket is
//!   on, /proc does not, so /proc refuses such a question ([`Tuple`] explains).
//! - **Retry once on a miss.** `/proc/net/tcp` is not a snapshot: a row can move past
//!   the read position while the table changes, so a miss is read once more before
//!   the answer is "no owner".
//!
//! `tuple` and `row` hold what both sources share: the connection asked about, and
//! a row of the kernel's table with the one decision over it ([`Matcher`]). The
//! sources are `proc_net` (with `single_flight`, which lets concurrent lookups
//! share one read) and `sock_diag`; `auto` decides between them for `--source
//! auto`, the default; this file runs the chosen one and keeps the retry.

mod auto;
pub use auto::Source;
mod proc_net;
mod row;
pub mod single_flight;
mod sock_diag;
mod tuple;

/// The /proc scan over another namespace's tables (`/proc/PID/net`), for `--nat`.
pub(crate) use proc_net::find_in as find_in_proc_dir;
pub use row::{Matcher, TcpState};
pub use tuple::{Tuple, parse_address, parse_endpoint};

use anyhow::Context;
use serde::Serialize;

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
    if source == Source::Netlink {
        resolve(source)?;
    }
    let diag = || {
        sock_diag::find(&wanted, matcher)
            .with_context(|| format!("netlink sock_diag lookup of {wanted}"))
    };
    // /proc/net/tcp6 has no interface column: a link-local tuple asked with its
    // scope cannot be told from the same addresses on another link there, so /proc
    // (asked for, or auto's fallback) refuses rather than name the wrong owner.
    let proc = || {
        if wanted.link_local_scope().is_some() {
            anyhow::bail!(
                "{wanted}: /proc/net/tcp6 does not say which interface a connection is on, so \
                 a link-local one cannot be told from one with the same addresses on another \
                 interface; netlink sock_diag can (--source netlink)"
            );
        }
        proc_net::find_coalesced(&wanted, matcher)
    };
    // One retry on a miss: /proc can skip a row that moved while we read; sock_diag is
    // retried too so both sources keep the same contract.
    for _attempt in 0..2 {
        let (found, source) = match source {
            Source::Netlink => (diag()?, Source::Netlink),
            Source::Proc => (proc()?, Source::Proc),
            Source::Auto => AUTO.find(sock_diag::probe, diag, proc)?,
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

/// This process's choice for `--source auto` ([`auto`]).
static AUTO: auto::Auto = auto::Auto::new();

/// The source a lookup through `source` tries first: `Auto` becomes `Netlink` when
/// the kernel answers sock_diag here, else `Proc`; `Netlink` is an error when it
/// does not. Probes sock_diag if no lookup has yet.
pub fn resolve(source: Source) -> anyhow::Result<Source> {
    let chosen = match source {
        Source::Proc => return Ok(Source::Proc),
        Source::Netlink | Source::Auto => AUTO.current(sock_diag::probe),
    };
    if source == Source::Auto || chosen == Source::Netlink {
        return Ok(chosen);
    }
    match AUTO.refusal() {
        Some(why) => anyhow::bail!("netlink sock_diag is unavailable: {why}"),
        // Failed this time for a passing reason: this caller insists, so ask again.
        None => sock_diag::probe()
            .map(|()| Source::Netlink)
            .context("netlink sock_diag is unavailable"),
    }
}

/// Why `--source auto` reads /proc in this process, once sock_diag was refused for
/// good (see [`resolve`]); `None` while sock_diag answers or was never asked.
pub fn sock_diag_refusal() -> Option<String> {
    AUTO.refusal().map(str::to_string)
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

    #[test]
    fn a_uid_without_an_entry_is_its_number() {
        assert_eq!(user_name(0), "root");
        // Far above any allocated range, below the invalid (u32)-1.
        assert_eq!(user_name(3_999_999_999), "3999999999");
    }
}
