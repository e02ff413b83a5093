//! A tracked TCP connection as ident needs it: its two directions, and why a lookup
//! may give none.

use std::fmt;
use std::net::SocketAddr;

use crate::ident::lookup::Tuple;

/// One direction of a tracked TCP connection: who sent, to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Flow {
    /// The direction in which the far end of `asked` sends to this host: the reply
    /// direction of a connection this host's side (or a host behind it) opened.
    pub fn reply_of(asked: &Tuple) -> Flow {
        Flow {
            src: asked.remote,
            dst: asked.local,
        }
    }

    /// The connection as its sender's socket sees it: local is the source.
    pub fn as_tuple(&self) -> Tuple {
        Tuple::new(self.src, self.dst)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)
    }
}

/// A tracked TCP connection: both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub original: Flow,
    pub reply: Flow,
}

impl Entry {
    /// True when the two directions are mirror images: nothing was translated, so
    /// the original direction names the same connection that was asked about.
    pub fn is_untranslated(&self) -> bool {
        self.original.src == self.reply.dst && self.original.dst == self.reply.src
    }
}

/// Why a lookup gave no single answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// No entry has this reply direction.
    NotTracked,
    /// Several entries do (conntrack zones can hold the same tuple twice): which
    /// one is meant cannot be told, so none is.
    Ambiguous,
}

/// IPv4-mapped addresses as plain IPv4: conntrack tracks an IPv4 connection of a
/// dual-stack socket as IPv4.
pub(super) fn canonical_flow(flow: &Flow) -> Flow {
    let t = flow.as_tuple().canonical();
    let strip = |a: SocketAddr| SocketAddr::new(a.ip(), a.port());
    Flow {
        src: strip(t.local),
        dst: strip(t.remote),
    }
}
