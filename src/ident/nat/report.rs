//! `ident lookup --nat`'s output: the owner found through NAT, for a person or as
//! JSON.

use std::io::{self, Write};
use std::net::SocketAddr;

use anyhow::Context;
use serde::Serialize;

use super::forward::Forward;
use super::netns::Found;
use super::resolve::{NatConfig, Resolution, resolve};
use crate::exit::{self, Exit};
use crate::ident::lookup::{TcpState, Tuple};
use crate::ident::proto;

#[derive(Serialize)]
struct NatJson {
    /// The uid as the container numbers it (`null`: unmapped there).
    uid: Option<u32>,
    /// The uid as this host numbers it.
    host_uid: u32,
    user: String,
    state: TcpState,
    inode: u64,
    /// A process of the container's network namespace (the socket's holder).
    pid: u32,
    original_local: SocketAddr,
    original_remote: SocketAddr,
}

#[derive(Serialize)]
struct ForwardedJson {
    user: String,
    os: String,
    identd: SocketAddr,
    original_local: SocketAddr,
    original_remote: SocketAddr,
}

/// How `lookup` prints an owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Name,
    Numeric,
    Json,
}

impl Format {
    pub fn new(json: bool, numeric: bool) -> Format {
        match (json, numeric) {
            (true, _) => Format::Json,
            (false, true) => Format::Numeric,
            (false, false) => Format::Name,
        }
    }
}

/// `ident lookup --nat`, once this host's own table had no owner for `tuple`:
/// prints the owner found through NAT, or says why there is none (exit 1).
pub fn print_lookup(config: &NatConfig, tuple: &Tuple, how: Format) -> anyhow::Result<Exit> {
    let resolution =
        resolve(config, tuple, None).with_context(|| format!("--nat lookup of {tuple}"))?;
    let mut out = io::stdout().lock();
    match resolution {
        Resolution::Container { original, found } => {
            print_container(&mut out, how, &original, &found)?;
        }
        Resolution::Elsewhere { original, forward } => match forward
            .ask(config.timeout)
            .with_context(|| format!("--nat lookup of {tuple}"))?
        {
            proto::ReplyKind::UserId { os, user, .. } => {
                print_forwarded(&mut out, how, &original, &forward, os, user)?;
            }
            proto::ReplyKind::Error(token) => {
                exit::print_error(format_args!(
                    "{token} (identd at {}, for the original connection {original})",
                    forward.identd
                ));
                return Ok(Exit::Failure);
            }
        },
        Resolution::Proxied(_) => unreachable!("lookup passes no querier to trust"),
        Resolution::NoUser(why) => {
            exit::print_error(format_args!("no owner for the connection {tuple}: {why}"));
            return Ok(Exit::Failure);
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// A container's user, as its own database names them.
fn print_container(
    out: &mut impl Write,
    how: Format,
    original: &Tuple,
    found: &Found,
) -> anyhow::Result<()> {
    let user = match (&found.name, found.inside_uid) {
        (Some(name), Some(_)) => name.clone(),
        (None, Some(uid)) => uid.to_string(),
        (_, None) => found.outside_uid.to_string(),
    };
    match how {
        Format::Json => {
            let json = NatJson {
                uid: found.inside_uid,
                host_uid: found.outside_uid,
                user,
                state: found.state,
                inode: found.inode,
                pid: found.pid,
                original_local: original.local,
                original_remote: original.remote,
            };
            writeln!(out, "{}", serde_json::to_string(&json)?)?;
        }
        Format::Numeric => writeln!(out, "{}", found.inside_uid.unwrap_or(found.outside_uid))?,
        Format::Name => writeln!(out, "{}", quote_name(&user))?,
    }
    Ok(())
}

/// The user the host behind this one named, and its operating system.
fn print_forwarded(
    out: &mut impl Write,
    how: Format,
    original: &Tuple,
    forward: &Forward,
    os: String,
    user: String,
) -> anyhow::Result<()> {
    if how == Format::Json {
        let json = ForwardedJson {
            user,
            os,
            identd: forward.identd,
            original_local: original.local,
            original_remote: original.remote,
        };
        writeln!(out, "{}", serde_json::to_string(&json)?)?;
    } else {
        writeln!(out, "{}", quote_name(&user))?;
    }
    Ok(())
}

/// A name from a container's database or another host, for a terminal: as is when
/// plain, else shell-quoted like GNU coreutils (`'a b'`, or `$'\e...'` when it holds
/// control characters), since a container controls its own `/etc/passwd`.
fn quote_name(name: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-+@%,=/:".contains(c);
    if !name.is_empty() && name.chars().all(plain) {
        return name.to_string();
    }
    if !name.chars().any(char::is_control) {
        return format!("'{}'", name.replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::quote_name;

    #[test]
    fn names_are_quoted_like_coreutils_when_not_plain() {
        assert_eq!(quote_name("ircuser"), "ircuser");
        assert_eq!(quote_name("a b"), "'a b'");
        assert_eq!(quote_name("it's"), "'it'\\''s'");
        assert_eq!(quote_name("x\x1b[31m"), "$'x\\033[31m'");
        assert_eq!(quote_name("a\nb'"), "$'a\\nb\\''");
        assert_eq!(quote_name(""), "''");
    }
}
