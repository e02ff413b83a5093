//! `--nat`: answer for connections that leave this host through NAT.
//!
//! When the asked-about tuple is no socket of this host, it may be the outside face
//! of a translated connection. Then, in order:
//!
//! 1. **Translate** ([`conntrack`]): the conntrack entry whose *reply* direction is
//!    the asked tuple gives the *original* one, as the connection's real client
//!    sent it. The addr-pair rule holds by construction: the reply direction's
//!    source is the querier's own address, so a third party's question matches no
//!    entry.
//! 2. **Containers on this host** ([`netns`]): a socket with the original 4-tuple
//!    in one of this host's network namespaces is the connection; its owner is
//!    named from that container's own password database.
//! 3. **Other hosts** ([`forward`]): with `--forward`, the original source host's
//!    identd is to be asked about the original ports and its answer relayed;
//!    without it, NO-USER. Resolving stops at saying whom to ask
//!    ([`Resolution::Elsewhere`]): the query is network input, so the caller makes
//!    it ([`forwarded`]), which under `ident serve --user` is the unprivileged side.
//!
//! - [`passwd`]: the strict parsers for a container's `/etc/passwd` and `uid_map`.
//! - `report`: `ident lookup --nat`'s output.

pub mod conntrack;
pub mod forward;
pub mod netns;
pub mod passwd;
mod report;

pub use report::{Format, print_lookup};

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::ident::lookup::{Owner, Source, Tuple};
use crate::ident::proto::{Answer, ErrorToken, ReplyKind, is_wire_safe};
use conntrack::Flow;
pub use forward::Forward;

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
/// [`Resolution::Elsewhere`], for the caller to ask ([`forwarded`]).
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

/// What a server hook does with a tuple its lookup found no owner for.
#[derive(Debug)]
pub enum Unowned {
    /// A connection of this host after all (a trusted proxy's query): the server's
    /// own policy (hiding, `--numeric`) decides what to say about this owner.
    Owner(Owner),
    /// The reply to give.
    Answer(Answer),
    /// Ask this host behind this one, and relay its answer ([`forwarded`]).
    Forward(Forward),
}

/// The server's one hook: called when the lookup of `tuple` found no owner.
/// `numeric` and `hide_all` are the server's flags; `log` takes error lines.
pub fn unowned(
    nat: &NatConfig,
    tuple: &Tuple,
    numeric: bool,
    hide_all: bool,
    log: impl Fn(&str),
) -> Unowned {
    if !nat.translate && nat.proxies.is_empty() {
        return Unowned::Answer(Answer::Error(ErrorToken::NoUser));
    }
    match resolve(nat, tuple, Some(tuple.remote.ip())) {
        Ok(Resolution::Proxied(owner)) => Unowned::Owner(owner),
        Ok(Resolution::Container { found, .. }) => {
            Unowned::Answer(container_answer(&found, numeric, hide_all))
        }
        Ok(Resolution::Elsewhere { forward, .. }) => Unowned::Forward(forward),
        Ok(Resolution::NoUser(_)) => Unowned::Answer(Answer::Error(ErrorToken::NoUser)),
        Err(e) => {
            log(&format!("--nat: looking up {tuple}: {e:#}"));
            Unowned::Answer(Answer::Error(ErrorToken::UnknownError))
        }
    }
}

/// The reply naming a container's user. `--hide-all` hides them too; `--hide` and
/// `.noident` concern this host's users only (a container's uids are its own).
pub fn container_answer(found: &netns::Found, numeric: bool, hide_all: bool) -> Answer {
    if hide_all {
        return Answer::Error(ErrorToken::HiddenUser);
    }
    match (&found.name, found.inside_uid) {
        (Some(name), Some(_)) if !numeric && is_wire_safe(name) => Answer::User(name.clone()),
        (_, Some(uid)) => Answer::Uid(uid),
        // Unmapped in the container: only this host's number names it.
        (_, None) => Answer::Uid(found.outside_uid),
    }
}

/// The reply relaying another host's: `--hide-all` hides it when it names someone
/// (a relayed NO-USER stays one).
pub fn relayed_answer(reply: &ReplyKind, hide_all: bool) -> Answer {
    if hide_all && matches!(reply, ReplyKind::UserId { .. }) {
        return Answer::Error(ErrorToken::HiddenUser);
    }
    forward::relay(reply)
}

/// Makes a forward query and says what to reply: the other host's answer, relayed
/// ([`relayed_answer`]), or UNKNOWN-ERROR when it could not be asked or its reply
/// was not one (logged with `log`). Bounded by `timeout`. Under `ident serve
/// --user` this runs on the unprivileged side: the privileged helper only said
/// whom to ask, so it is never held by a host that does not answer.
pub fn forwarded(
    forward: &Forward,
    timeout: Duration,
    hide_all: bool,
    log: impl Fn(&str),
) -> Answer {
    let what = || {
        format!(
            "--forward: asking identd at {} about {}, {}",
            forward.identd, forward.server_port, forward.client_port
        )
    };
    if !forward.is_sound() {
        log(&format!("{}: not a query to make", what()));
        return Answer::Error(ErrorToken::UnknownError);
    }
    match forward.ask(timeout) {
        Ok(reply) => relayed_answer(&reply, hide_all),
        Err(e) => {
            log(&format!("{}: {e:#}", what()));
            Answer::Error(ErrorToken::UnknownError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::lookup::TcpState;

    fn t(local: &str, remote: &str) -> Tuple {
        Tuple::new(local.parse().unwrap(), remote.parse().unwrap())
    }

    fn container(name: Option<&str>, inside: Option<u32>) -> netns::Found {
        netns::Found {
            pid: 1,
            outside_uid: 101000,
            inside_uid: inside,
            name: name.map(String::from),
            state: TcpState::FinWait2,
            inode: 7,
        }
    }

    #[test]
    fn a_container_user_is_named_from_the_container() {
        assert_eq!(
            container_answer(&container(Some("ircuser"), Some(1000)), false, false),
            Answer::User("ircuser".into())
        );
        assert_eq!(
            container_answer(&container(Some("ircuser"), Some(1000)), true, false),
            Answer::Uid(1000)
        );
        assert_eq!(
            container_answer(&container(None, Some(1000)), false, false),
            Answer::Uid(1000)
        );
        assert_eq!(
            container_answer(&container(Some("a b"), Some(1000)), false, false),
            Answer::Uid(1000)
        );
        assert_eq!(
            container_answer(&container(None, None), false, false),
            Answer::Uid(101000)
        );
        assert_eq!(
            container_answer(&container(Some("ircuser"), Some(1000)), false, true),
            Answer::Error(ErrorToken::HiddenUser)
        );
    }

    #[test]
    fn hide_all_hides_a_relayed_answer_only_when_it_names_someone() {
        let user = ReplyKind::UserId {
            os: "UNIX".into(),
            charset: None,
            user: "lanuser".into(),
        };
        assert_eq!(relayed_answer(&user, false), Answer::User("lanuser".into()));
        assert_eq!(
            relayed_answer(&user, true),
            Answer::Error(ErrorToken::HiddenUser)
        );
        assert_eq!(
            relayed_answer(&ReplyKind::Error("NO-USER".into()), true),
            Answer::Error(ErrorToken::NoUser)
        );
    }

    #[test]
    fn a_forward_that_is_no_query_to_make_is_not_made() {
        // Port 0 and the unspecified address would reach this host itself: refused
        // before any connection (a connection would be logged as a failure instead).
        for bad in ["0.0.0.0:113", "198.18.2.2:0", "[::ffff:198.18.2.2]:113"] {
            let forward = Forward {
                identd: bad.parse().unwrap(),
                server_port: 40000,
                client_port: 6667,
            };
            let logged = std::cell::RefCell::new(Vec::new());
            let got = forwarded(&forward, Duration::from_secs(1), false, |m| {
                logged.borrow_mut().push(m.to_string())
            });
            assert_eq!(got, Answer::Error(ErrorToken::UnknownError), "{bad}");
            assert_eq!(
                logged.into_inner(),
                vec![format!(
                    "--forward: asking identd at {forward} about 40000, 6667: not a query to make",
                    forward = forward.identd
                )]
            );
        }
    }

    #[test]
    fn without_nat_or_proxies_the_hook_says_no_user_and_reads_nothing() {
        let nat = NatConfig::default();
        let got = unowned(
            &nat,
            &t("198.19.0.1:1", "198.19.0.2:2"),
            false,
            false,
            |m| panic!("logged {m}"),
        );
        assert!(matches!(
            got,
            Unowned::Answer(Answer::Error(ErrorToken::NoUser))
        ));
    }
}
