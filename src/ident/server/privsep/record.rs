//! The helper's channel and its binary records: the one format both sides of the
//! privilege separation speak, and the one place its bytes are read.
//!
//! - request: id (u64), server port (u16), client port (u16), what is asked (a
//!   lookup, or for `--config` a reload of the system file), padding; for a
//!   lookup the ident connection itself travels beside it as a descriptor
//!   (SCM_RIGHTS); a reload carries no port and no descriptor, and has no reply;
//! - reply: id, what the lookup found (no owner / failed / owner / refused /
//!   decided by `--nat` or `--config` / forward / `--config`'s forward), the
//!   owner's uid, whether the password database has an entry (and its name), and
//!   whether the home check lets them be named; or, for a decided answer, which
//!   answer (a name, a uid, an error token); or, for a forward, the host's address
//!   family, and in the bytes a name takes otherwise: its address (4 or 16 bytes),
//!   its identd's port and the two original ports to ask about; or, for
//!   `--config`'s forward, the family and whether the user's file asked for it,
//!   and in those bytes the address, the identd's port, the query's foreign port,
//!   the capabilities granted and the owner's name.
//!
//! A record is accepted only in the exact form the encoder gives its value (every
//! unused byte zero, a name of the stated length, UTF-8 and, for a decided name, fit
//! for the wire; a forward's payload exactly as long as its family says, an
//! address one host answers on, no port 0); anything else is a failed lookup,
//! never a name and never a connection (a request, refused). The decoder proves it
//! by re-encoding what it read and comparing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType};

use super::super::policy::{Findings, Passwd};
use crate::ident::config::policy::Caps;
use crate::ident::config::{Forwarding, Owner};
use crate::ident::nat::Forward;
use crate::ident::nat::forward::is_one_host;
use crate::ident::proto::{Answer, ErrorToken, is_wire_safe};

/// id, server port, client port, what is asked, padding.
pub(super) const REQUEST_LEN: usize = 16;

const ASK_LOOKUP: u8 = 0;
const ASK_RELOAD: u8 = 1;
/// The longest name a reply carries: `proto::is_wire_safe`'s limit.
pub(super) const NAME_MAX: usize = 512;
/// id, kind, detail (passwd or answer), flag (may_be_named or error token),
/// padding, uid, name length, name.
pub(super) const REPLY_LEN: usize = 8 + 1 + 1 + 1 + 1 + 4 + 2 + NAME_MAX;

const KIND_NO_OWNER: u8 = 0;
const KIND_FAILED: u8 = 1;
const KIND_OWNER: u8 = 2;
const KIND_REFUSED: u8 = 3;
/// `--nat` decided the answer ([`Findings::Decided`]); detail says which kind.
const KIND_DECIDED: u8 = 4;
/// `--nat --forward`: ask a host behind this one ([`Findings::Forward`]); detail
/// says the address family, the name bytes carry the query.
const KIND_FORWARD: u8 = 5;
/// `--config`'s `forward` ([`Findings::ConfigForward`]): detail says the address
/// family, flag whether the user's file asked (1) or the system file forced it.
const KIND_CONFIG_FORWARD: u8 = 6;

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

/// The helper's channel: a socketpair of records (SOCK_SEQPACKET keeps each request
/// and reply whole), closed on exec.
pub(super) fn channel() -> nix::Result<(OwnedFd, OwnedFd)> {
    sock::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// What a request asks the helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ask {
    /// Who owns the connection between the passed ident connection's ends, on
    /// these ports, and may they be named?
    Lookup { server_port: u16, client_port: u16 },
    /// Read `--config`'s system file again (the network side got SIGHUP). It
    /// names no file: the helper reads the one it was started with.
    Reload,
}

/// A request: its id and what it asks.
pub(super) fn encode_request(id: u64, ask: Ask) -> [u8; REQUEST_LEN] {
    let mut r = [0u8; REQUEST_LEN];
    r[..8].copy_from_slice(&id.to_le_bytes());
    match ask {
        Ask::Lookup {
            server_port,
            client_port,
        } => {
            r[8..10].copy_from_slice(&server_port.to_le_bytes());
            r[10..12].copy_from_slice(&client_port.to_le_bytes());
            r[12] = ASK_LOOKUP;
        }
        Ask::Reload => r[12] = ASK_RELOAD,
    }
    r
}

/// A request's id and what it asks; `None` for a record [`encode_request`] never
/// writes (padding set, an unknown question, a reload with ports).
pub(super) fn decode_request(r: &[u8; REQUEST_LEN]) -> (u64, Option<Ask>) {
    let id = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
    let ask = match r[12] {
        ASK_LOOKUP => Some(Ask::Lookup {
            server_port: u16::from_le_bytes([r[8], r[9]]),
            client_port: u16::from_le_bytes([r[10], r[11]]),
        }),
        ASK_RELOAD => Some(Ask::Reload),
        _ => None,
    };
    (id, ask.filter(|&ask| encode_request(id, ask) == *r))
}

/// A reply record's fields, before they are laid out in bytes.
struct Fields {
    kind: u8,
    /// What kind of password entry, answer, or address family.
    detail: u8,
    /// may_be_named, or an error token's code.
    flag: u8,
    uid: u32,
    /// A name, or a forward's address and ports.
    payload: Vec<u8>,
}

impl Fields {
    fn new(kind: u8, detail: u8, flag: u8, uid: u32, payload: &[u8]) -> Fields {
        let payload = payload.to_vec();
        Fields {
            kind,
            detail,
            flag,
            uid,
            payload,
        }
    }

    /// UNKNOWN-ERROR, decided: what is sent in place of something that must not be.
    fn unknown_error() -> Fields {
        let code = error_code(ErrorToken::UnknownError);
        Fields::new(KIND_DECIDED, ANSWER_ERROR, code, 0, b"")
    }
}

/// The reply record for `findings` (`None`: the request was refused).
pub(super) fn encode_reply(id: u64, findings: Option<&Findings>) -> [u8; REPLY_LEN] {
    let f = match findings {
        None => Fields::new(KIND_REFUSED, 0, 0, 0, b""),
        Some(Findings::NoOwner) => Fields::new(KIND_NO_OWNER, 0, 0, 0, b""),
        Some(Findings::LookupFailed) => Fields::new(KIND_FAILED, 0, 0, 0, b""),
        Some(Findings::Owner { uid, passwd }) => owner_fields(*uid, passwd),
        Some(Findings::Decided(answer)) => decided_fields(answer),
        Some(Findings::Forward(forward)) if forward.is_sound() => {
            let (family, bytes) = encode_forward(forward);
            Fields::new(KIND_FORWARD, family, 0, 0, &bytes)
        }
        // Not a query to make: nobody is named, and nothing is asked.
        Some(Findings::Forward(_)) => Fields::unknown_error(),
        Some(Findings::ConfigForward(f)) => {
            config_forward_fields(f).unwrap_or_else(Fields::unknown_error)
        }
    };
    let mut r = [0u8; REPLY_LEN];
    r[..8].copy_from_slice(&id.to_le_bytes());
    r[8] = f.kind;
    r[9] = f.detail;
    r[10] = f.flag;
    r[12..16].copy_from_slice(&f.uid.to_le_bytes());
    r[16..18].copy_from_slice(&(f.payload.len() as u16).to_le_bytes());
    r[18..18 + f.payload.len()].copy_from_slice(&f.payload);
    r
}

fn owner_fields(uid: u32, passwd: &Passwd) -> Fields {
    match passwd {
        Passwd::Entry { name, may_be_named } => {
            // A name too long to carry is too long for the wire: sent empty, it
            // is answered by number, as an unsafe name is.
            let name = if name.len() <= NAME_MAX {
                name.as_bytes()
            } else {
                b""
            };
            Fields::new(KIND_OWNER, PASSWD_ENTRY, u8::from(*may_be_named), uid, name)
        }
        Passwd::NoEntry => Fields::new(KIND_OWNER, PASSWD_NONE, 0, uid, b""),
        Passwd::Unreadable => Fields::new(KIND_OWNER, PASSWD_UNREADABLE, 0, uid, b""),
    }
}

fn decided_fields(answer: &Answer) -> Fields {
    match answer {
        // is_wire_safe bounds a name to NAME_MAX; `--nat` names no other kind.
        Answer::User(name) if is_wire_safe(name) => {
            Fields::new(KIND_DECIDED, ANSWER_USER, 0, 0, name.as_bytes())
        }
        Answer::User(_) => Fields::unknown_error(),
        Answer::Uid(uid) => Fields::new(KIND_DECIDED, ANSWER_UID, 0, *uid, b""),
        Answer::Error(token) => Fields::new(KIND_DECIDED, ANSWER_ERROR, error_code(*token), 0, b""),
    }
}

/// A forward's family, and its payload: the address's bytes (4 or 16, network
/// order), then the identd's port, the server port and the client port.
fn encode_forward(forward: &Forward) -> (u8, Vec<u8>) {
    let (family, mut bytes) = address_bytes(forward.identd.ip());
    for port in [
        forward.identd.port(),
        forward.server_port,
        forward.client_port,
    ] {
        bytes.extend(port.to_le_bytes());
    }
    (family, bytes)
}

/// `--config`'s forward: the family, whether the user's file asked, the owner's uid,
/// and the payload: the address's bytes, the identd's port, the query's foreign
/// port, the capabilities granted (0 when forced) and the owner's name. `None` for
/// one that is no query to make (not [`is_one_host`], foreign port 0) or whose owner
/// has no name that fits.
fn config_forward_fields(f: &Forwarding) -> Option<Fields> {
    let owner = f.owner();
    if !is_one_host(f.to) || f.foreign_port() == 0 || owner.name.is_empty() {
        return None;
    }
    let (family, mut bytes) = address_bytes(f.to.ip());
    bytes.extend(f.to.port().to_le_bytes());
    bytes.extend(f.foreign_port().to_le_bytes());
    bytes.extend(f.checked().map_or(0, Caps::bits).to_le_bytes());
    bytes.extend(owner.name.as_bytes());
    let asked = u8::from(f.checked().is_some());
    (bytes.len() <= NAME_MAX)
        .then(|| Fields::new(KIND_CONFIG_FORWARD, family, asked, owner.uid, &bytes))
}

/// An address as a family and its bytes, in network order.
fn address_bytes(ip: IpAddr) -> (u8, Vec<u8>) {
    match ip {
        IpAddr::V4(a) => (FAMILY_V4, a.octets().to_vec()),
        IpAddr::V6(a) => (FAMILY_V6, a.octets().to_vec()),
    }
}

/// The address `family` says, and the bytes after it.
fn split_address(family: u8, payload: &[u8]) -> Option<(IpAddr, &[u8])> {
    match family {
        FAMILY_V4 => {
            let (a, rest) = payload.split_first_chunk::<4>()?;
            Some((Ipv4Addr::from(*a).into(), rest))
        }
        FAMILY_V6 => {
            let (a, rest) = payload.split_first_chunk::<16>()?;
            Some((Ipv6Addr::from(*a).into(), rest))
        }
        _ => None,
    }
}

/// The `--config` forward the fields say, if exactly that ([`config_forward_fields`]).
fn decode_config_forward(family: u8, asked: u8, uid: u32, payload: &[u8]) -> Option<Forwarding> {
    let (ip, rest) = split_address(family, payload)?;
    let (numbers, name) = rest.split_first_chunk::<6>()?;
    let number = |at: usize| u16::from_le_bytes([numbers[at], numbers[at + 1]]);
    let checked = match asked {
        0 => None,
        1 => Some(Caps::from_bits(number(4))?),
        _ => return None,
    };
    let name = std::str::from_utf8(name).ok()?;
    let owner = Owner { uid, name };
    Some(Forwarding::from_parts(
        SocketAddr::new(ip, number(0)),
        owner,
        number(2),
        checked,
    ))
}

/// The forward `family` and `payload` say, if exactly that ([`encode_forward`]) and
/// sound ([`Forward::is_sound`]).
fn decode_forward(family: u8, payload: &[u8]) -> Option<Forward> {
    let (ip, ports) = split_address(family, payload)?;
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
pub(super) fn decode_reply(r: &[u8; REPLY_LEN]) -> (u64, Findings) {
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
    if kind == KIND_CONFIG_FORWARD {
        return decode_config_forward(detail, flag, uid, bytes).map(Findings::ConfigForward);
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
mod tests;
