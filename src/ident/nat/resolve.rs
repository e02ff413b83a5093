//! Where `--nat` finds a connection that is no socket of this host: through
//! conntrack to its original tuple, then into this host's containers, or to the
//! host behind this one that `--forward` would ask. Nothing here reads the network.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::conntrack::{self, Flow};
use super::forward::{self, Forward};
use super::netns;
use crate::ident::lookup::{Owner, Source, Tuple};

/// identd's port, where `--forward` asks by default.
pub const IDENT_PORT: u16 = 113;

/// What `--nat`, `--forward` and `--proxy` asked for.
#[derive(Clone, Debug)]
pub struct NatConfig {
    /// `--nat`: look through conntrack and into this host's namespaces.
    pub translate: bool,
    /// `--forward[=PORT]`: ask the original host's identd on this port.
    pub forward: Option<u16>,
    /// `--proxy ADDR`: NAT hosts whose forwarded queries this host answers.
    pub proxies: Vec<IpAddr>,
    /// How the conntrack table is read: `Netlink` asks ctnetlink; otherwise
    /// `/proc/net/nf_conntrack` when it exists, else ctnetlink.
    pub source: Source,
    /// Bounds a forwarded query (connect, send and reply together).
    pub timeout: Duration,
}

impl Default for NatConfig {
    /// Everything off: the hook answers NO-USER without reading anything.
    fn default() -> Self {
        NatConfig {
            translate: false,
            forward: None,
            proxies: Vec::new(),
            source: Source::Proc,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where `--nat` found a connection that is no socket of this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// In a network namespace (a container) of this host.
    Container {
        original: Tuple,
        found: netns::Found,
    },
    /// From another host behind this one, whose identd `--forward` says to ask.
    Elsewhere { original: Tuple, forward: Forward },
    /// A trusted NAT host's forwarded query, about a connection of this host.
    Proxied(Owner),
    /// No owner can be named, and why.
    NoUser(Why),
}

/// Why `--nat` names no owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// No conntrack entry has the asked tuple as its reply direction.
    NotTracked,
    /// Several conntrack entries or namespaces match: none is certain.
    Ambiguous,
    /// The entry translates nothing (the asked tuple is its own original).
    Untranslated,
    /// The original source is on no namespace of this host, and `--forward` is off.
    ElsewhereNotForwarded(Tuple),
    /// A trusted NAT host asked about ports no connection of this host has.
    NotProxied,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NotTracked => f.write_str("no conntrack entry has it as its reply direction"),
            Why::Ambiguous => f.write_str("several conntrack entries or namespaces match it"),
            Why::Untranslated => f.write_str("its conntrack entry is not translated"),
            Why::ElsewhereNotForwarded(t) => write!(
                f,
                "it is {t} on another host (no namespace here has it); --forward would ask there"
            ),
            Why::NotProxied => f.write_str("no connection of this host has these ports"),
        }
    }
}

/// Resolves a tuple the host's own lookup found no owner for. `peer` is the
/// querier's address (a trusted `--proxy` is answered by ports). Nothing here
/// reads the network: a connection from a host behind this one is
/// [`Resolution::Elsewhere`], for the caller to ask ([`super::forwarded`]).
pub fn resolve(nat: &NatConfig, tuple: &Tuple, peer: Option<IpAddr>) -> anyhow::Result<Resolution> {
    if let Some(peer) = peer
        && forward::is_trusted(&nat.proxies, peer)
    {
        return Ok(
            match forward::owner_by_ports(tuple.local, tuple.remote.port())? {
                Some(owner) => Resolution::Proxied(owner),
                None => Resolution::NoUser(Why::NotProxied),
            },
        );
    }
    if !nat.translate {
        return Ok(Resolution::NoUser(Why::NotTracked));
    }
    let entry = match translate(nat.source, tuple)? {
        Ok(entry) => entry,
        Err(conntrack::Miss::NotTracked) => return Ok(Resolution::NoUser(Why::NotTracked)),
        Err(conntrack::Miss::Ambiguous) => return Ok(Resolution::NoUser(Why::Ambiguous)),
    };
    if entry.is_untranslated() {
        return Ok(Resolution::NoUser(Why::Untranslated));
    }
    let original = entry.original.as_tuple();
    match netns::find(&original)? {
        Ok(found) => return Ok(Resolution::Container { original, found }),
        Err(netns::Miss::Ambiguous) => return Ok(Resolution::NoUser(Why::Ambiguous)),
        Err(netns::Miss::NotHere) => {}
    }
    let Some(port) = nat.forward else {
        return Ok(Resolution::NoUser(Why::ElsewhereNotForwarded(original)));
    };
    Ok(Resolution::Elsewhere {
        original,
        forward: Forward::to(&original, port),
    })
}

/// The conntrack entry whose reply direction is `tuple` seen from outside.
/// `Proc` reads `/proc/net/nf_conntrack` when it exists, else asks ctnetlink;
/// `Netlink` asks ctnetlink (an exact lookup); `Auto` asks ctnetlink and falls back
/// to the /proc file when ctnetlink refuses.
fn translate(
    source: Source,
    tuple: &Tuple,
) -> anyhow::Result<Result<conntrack::Entry, conntrack::Miss>> {
    let reply = Flow::reply_of(tuple);
    let proc_file = Path::new(conntrack::PROC_CONNTRACK);
    match source {
        Source::Netlink => conntrack::lookup_netlink(&reply),
        Source::Proc => match conntrack::lookup_proc(proc_file, &reply)? {
            Some(found) => Ok(found),
            None => conntrack::lookup_netlink(&reply),
        },
        Source::Auto => match conntrack::lookup_netlink(&reply) {
            Ok(found) => Ok(found),
            Err(e) => conntrack::lookup_proc(proc_file, &reply)?.ok_or(e),
        },
    }
}
