//! From the files as written to the rules oidentd applies: names looked up, and
//! each range's directives folded into its capabilities, in file order.
//!
//! Inheritance is by position, as in oidentd: every range starts from the
//! capabilities of the top-level `default` block's `default` ranges read *so
//! far*. A `user` block above the `default` block inherits nothing; one below it
//! inherits what that block's catch-all range granted. `allow` adds to that,
//! `deny` takes away, `force` replaces it with one capability.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use super::ast::{
    Action, Filter, Grant, Owner, Port, Ports, Spanned, Statement, SystemFile, SystemRange, Target,
    Text, UserFile,
};
use super::lex::LexError;
use super::names::Names;
use super::policy::{Caps, Choice, Rule, SystemPolicy, UserPrefs, When};
use super::text::{Cap, Pos, quote};

type Result<T> = std::result::Result<T, LexError>;

pub(super) fn system(file: &SystemFile, names: &dyn Names) -> Result<SystemPolicy> {
    let mut policy = SystemPolicy::default();
    let mut users = HashMap::new();
    let mut inherited = Caps::default();
    for block in &file.blocks {
        let uid = match &block.owner {
            Owner::Default => None,
            Owner::User(name) => {
                let uid = user_uid(&name.value, names).ok_or_else(|| {
                    (
                        name.at,
                        format!(
                            "user {}, expected a user name or uid of this host",
                            quote(&name.value)
                        ),
                    )
                })?;
                if users.contains_key(&uid) {
                    return Err((
                        name.at,
                        format!(
                            "a second block for uid {uid} ({}), expected one block per user",
                            name.value
                        ),
                    ));
                }
                Some(uid)
            }
        };
        let mut rules = Vec::with_capacity(block.ranges.len());
        for range in &block.ranges {
            let rule = rule(range, inherited, names)?;
            if uid.is_none() && range.filter.is_catch_all() {
                inherited = rule.caps;
            }
            rules.push(rule);
        }
        match uid {
            // A later `default` block replaces an earlier one whole.
            None => policy.default = rules,
            Some(uid) => {
                users.insert(uid, rules);
            }
        }
    }
    policy.users = users;
    Ok(policy)
}

fn rule(range: &SystemRange, inherited: Caps, names: &dyn Names) -> Result<Rule> {
    let mut caps = inherited;
    let mut forced = None;
    for statement in &range.statements {
        forced = None;
        match statement {
            Statement::Allow(g) => caps = caps.allow(*g),
            Statement::Deny(g) => caps = caps.deny(*g),
            Statement::Force(cap) => {
                caps = Caps::only(Grant::Cap(*cap));
                forced = Some(forced_cap(*cap));
            }
            Statement::ForceReply(list) => {
                caps = Caps::only_reply();
                forced = Some(Choice::Reply(values(list)));
            }
            Statement::ForceForward(target) => {
                caps = Caps::only(Grant::Forward);
                forced = Some(Choice::Forward(socket(target, names)?));
            }
        }
    }
    Ok(Rule {
        when: when(&range.filter, names)?,
        caps,
        forced,
    })
}

fn forced_cap(cap: Cap) -> Choice {
    match cap {
        Cap::Hide => Choice::Hide,
        Cap::Random => Choice::Random,
        Cap::RandomNumeric => Choice::RandomNumeric,
        Cap::Numeric => Choice::Numeric,
        Cap::Spoof | Cap::SpoofAll | Cap::SpoofPrivport => Choice::RealName,
    }
}

pub(super) fn user(file: &UserFile, names: &dyn Names) -> Result<UserPrefs> {
    let mut prefs = UserPrefs::default();
    for range in &file.ranges {
        let choice = match &range.action {
            Action::Hide => Choice::Hide,
            Action::Random => Choice::Random,
            Action::RandomNumeric => Choice::RandomNumeric,
            Action::Numeric => Choice::Numeric,
            Action::Reply(list) => Choice::Reply(values(list)),
            Action::Forward(target) => Choice::Forward(socket(target, names)?),
        };
        prefs.ranges.push((when(&range.filter, names)?, choice));
    }
    Ok(prefs)
}

fn values(list: &[Text]) -> Vec<String> {
    list.iter().map(|t| t.value.clone()).collect()
}

fn when(filter: &Filter, names: &dyn Names) -> Result<When> {
    let addr = |host: &Option<Text>| host.as_ref().map(|h| address(h, names)).transpose();
    let ports = |p: &Option<Spanned<Ports>>| p.as_ref().map(|p| port_range(p, names)).transpose();
    Ok(When {
        to: addr(&filter.to)?,
        from: addr(&filter.from)?,
        fport: ports(&filter.fport)?,
        lport: ports(&filter.lport)?,
    })
}

fn address(host: &Text, names: &dyn Names) -> Result<IpAddr> {
    host.value
        .parse()
        .ok()
        .or_else(|| names.address_of(&host.value))
        .ok_or_else(|| {
            (
                host.at,
                format!(
                    "host {} does not resolve, expected a host name or address",
                    quote(&host.value)
                ),
            )
        })
}

fn port(port: &Port, at: Pos, names: &dyn Names) -> Result<u16> {
    match port {
        Port::Number(n) => Ok(*n),
        Port::Service(s) => names.port_of(s).ok_or_else(|| {
            (
                at,
                format!(
                    "service {} is unknown, expected a port 1-65535 or a service name",
                    quote(s)
                ),
            )
        }),
    }
}

fn port_range(ports: &Spanned<Ports>, names: &dyn Names) -> Result<RangeInclusive<u16>> {
    let side =
        |p: &Option<Port>, open: u16| p.as_ref().map_or(Ok(open), |p| port(p, ports.at, names));
    match &ports.value {
        Ports::One(p) => {
            let n = port(p, ports.at, names)?;
            Ok(n..=n)
        }
        Ports::Range(lo, hi) => Ok(side(lo, 1)?..=side(hi, u16::MAX)?),
    }
}

fn socket(target: &Target, names: &dyn Names) -> Result<SocketAddr> {
    Ok(SocketAddr::new(
        address(&target.host, names)?,
        port(&target.port.value, target.port.at, names)?,
    ))
}

/// The uid a `user` block names, as oidentd finds it: the user of that name, or
/// failing that the text read as strtoul(3) reads a number, which must be below
/// 2^32 - 1. strtoul reads the empty string as 0, so `user ""` is root's block,
/// and it allows leading blanks and a sign (`-0` is 0 too).
pub(super) fn user_uid(name: &str, names: &dyn Names) -> Option<u32> {
    if let Some(uid) = names.uid_of(name) {
        return Some(uid);
    }
    if name.is_empty() {
        return Some(0);
    }
    let trimmed = name.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // strtoul saturates at ULONG_MAX on overflow, sign or not, and otherwise
    // negates in unsigned long.
    let value = match digits.parse::<u64>() {
        Ok(v) if negative => v.wrapping_neg(),
        Ok(v) => v,
        Err(_) => u64::MAX,
    };
    u32::try_from(value).ok().filter(|&uid| uid != u32::MAX)
}
