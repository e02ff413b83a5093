//! The files as oidentd holds them once read: rules with their names looked up,
//! and which rule applies to a connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use super::ast::Grant;
use super::text::Cap;

/// A capability set, one bit per capability, as oidentd keeps it. `reply` has a
/// bit too: `force reply` sets it, and a top-level `default` range passes it on
/// like any other, though nothing ever asks for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(u16);

impl Caps {
    const REPLY: u16 = 1 << 7;
    const FORWARD: u16 = 1 << 8;

    fn bit(grant: Grant) -> u16 {
        match grant {
            Grant::Cap(cap) => match cap {
                Cap::Spoof => 1,
                Cap::SpoofAll => 1 << 1,
                Cap::SpoofPrivport => 1 << 2,
                Cap::Hide => 1 << 3,
                Cap::Random => 1 << 4,
                Cap::RandomNumeric => 1 << 5,
                Cap::Numeric => 1 << 6,
            },
            Grant::Forward => Self::FORWARD,
        }
    }

    pub fn has(self, grant: Grant) -> bool {
        self.0 & Self::bit(grant) != 0
    }

    /// The set as bits, for a process that decides on one side of a channel and
    /// finishes a `forward` on the other; [`Caps::from_bits`] reads them back.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// The set these bits name, if each is a capability's.
    pub fn from_bits(bits: u16) -> Option<Caps> {
        const ALL: u16 = (Caps::FORWARD << 1) - 1;
        (bits & !ALL == 0).then_some(Caps(bits))
    }

    pub(super) fn allow(self, grant: Grant) -> Caps {
        Caps(self.0 | Self::bit(grant))
    }

    pub(super) fn deny(self, grant: Grant) -> Caps {
        Caps(self.0 & !Self::bit(grant))
    }

    /// What `force` leaves: that one capability and no other.
    pub(super) fn only(grant: Grant) -> Caps {
        Caps(Self::bit(grant))
    }

    pub(super) fn only_reply() -> Caps {
        Caps(Self::REPLY)
    }
}

/// What a forced directive, or a range of a user's file, answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// `force spoof`, `force spoof_all`, `force spoof_privport`: oidentd answers
    /// the real name and does not read the user's file. Never in a user's file.
    RealName,
    Hide,
    Random,
    RandomNumeric,
    Numeric,
    /// One of these, picked at random each query.
    Reply(Vec<String>),
    Forward(SocketAddr),
}

impl Choice {
    /// The statement's name, for log notes.
    pub fn word(&self) -> &'static str {
        match self {
            Choice::RealName => "spoof",
            Choice::Hide => "hide",
            Choice::Random => "random",
            Choice::RandomNumeric => "random_numeric",
            Choice::Numeric => "numeric",
            Choice::Reply(_) => "reply",
            Choice::Forward(_) => "forward",
        }
    }
}

/// Which connections a range applies to; `None` matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct When {
    pub to: Option<IpAddr>,
    pub from: Option<IpAddr>,
    pub fport: Option<RangeInclusive<u16>>,
    pub lport: Option<RangeInclusive<u16>>,
}

/// The connection a query asks about, in oidentd's terms.
///
/// The ports are the query's: `local` carries the port on this host (the first
/// number of the request), `foreign` the port on the querier's. The addresses are
/// those of the ident query's own connection, as oidentd takes them
/// (getsockname and getpeername of the socket the query came in on): the same
/// hosts as the queried connection's unless a NAT or proxy sits between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    pub local: SocketAddr,
    pub foreign: SocketAddr,
}

impl When {
    /// Whether a connection is in this range. An IPv4-mapped IPv6 address is
    /// compared as the IPv4 address it maps, as oidentd compares it; an address
    /// matches only one of its own family (`to ::ffff:10.0.0.1` matches nothing).
    pub fn matches(&self, conn: &Connection) -> bool {
        let port_in = |range: &Option<RangeInclusive<u16>>, port: u16| {
            range.as_ref().is_none_or(|r| r.contains(&port))
        };
        let addr_is =
            |want: &Option<IpAddr>, addr: IpAddr| want.is_none_or(|w| w == addr.to_canonical());
        port_in(&self.lport, conn.local.port())
            && port_in(&self.fport, conn.foreign.port())
            && addr_is(&self.from, conn.local.ip())
            && addr_is(&self.to, conn.foreign.ip())
    }
}

/// One range of the system file, with the capabilities it grants there and what
/// it forces, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub when: When,
    pub caps: Caps,
    /// Set when the range's last directive is a `force`: oidentd then answers
    /// with it and never reads the user's file. A `force` followed by an `allow`
    /// or `deny` in the same range forces nothing; its capability stays granted.
    pub forced: Option<Choice>,
}

/// The system file, read: the rules of the `default` block and of each user's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemPolicy {
    /// Rules in file order; the last that matches applies.
    pub(super) default: Vec<Rule>,
    pub(super) users: HashMap<u32, Vec<Rule>>,
}

impl Default for SystemPolicy {
    /// No file, or one with no `default` block: one range that matches every
    /// connection and grants nothing, so every user is answered by real name.
    fn default() -> Self {
        SystemPolicy {
            default: vec![Rule {
                when: When::default(),
                caps: Caps::default(),
                forced: None,
            }],
            users: HashMap::new(),
        }
    }
}

impl SystemPolicy {
    /// The rule for this user's connection: the last matching range of the user's
    /// own block, else the last matching range of the `default` block. `None`
    /// when neither has a match (a `default` block with only filtered ranges),
    /// where oidentd dereferences a null pointer and the query gets no answer.
    pub fn rule_for(&self, uid: u32, conn: &Connection) -> Option<&Rule> {
        fn last_match<'r>(rules: &'r [Rule], conn: &Connection) -> Option<&'r Rule> {
            rules.iter().rev().find(|r| r.when.matches(conn))
        }
        self.users
            .get(&uid)
            .and_then(|rules| last_match(rules, conn))
            .or_else(|| last_match(&self.default, conn))
    }

    /// Whether answering for `uid` on this connection reads the user's file: not
    /// when a rule forces the answer (nor when no rule applies).
    pub fn reads_user_file(&self, uid: u32, conn: &Connection) -> bool {
        self.rule_for(uid, conn).is_some_and(|r| r.forced.is_none())
    }
}

/// A user's file, read: its ranges in file order, the last that matches applying.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPrefs {
    pub(super) ranges: Vec<(When, Choice)>,
}

impl UserPrefs {
    pub fn choice_for(&self, conn: &Connection) -> Option<&Choice> {
        self.ranges
            .iter()
            .rev()
            .find(|(when, _)| when.matches(conn))
            .map(|(_, c)| c)
    }
}
