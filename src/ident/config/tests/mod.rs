//! The two files read and applied end to end, on a test host: a table of its
//! names and a scripted source of randomness.

mod decide;
mod files;
mod syntax;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;

/// This test host: its users, hosts and services.
pub(super) struct Table;

impl Names for Table {
    fn uid_of(&self, user: &str) -> Option<u32> {
        match user {
            "root" | "toor" => Some(0),
            "alice" => Some(1000),
            "bob" => Some(1001),
            "lisa" => Some(1002),
            _ => None,
        }
    }

    fn address_of(&self, host: &str) -> Option<IpAddr> {
        match host {
            "irc.example.net" => Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
            "bouncer.lan" => Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
            _ => None,
        }
    }

    fn port_of(&self, service: &str) -> Option<u16> {
        match service {
            "auth" | "ident" => Some(113),
            "ircd" => Some(6667),
            _ => None,
        }
    }
}

pub(super) struct Env {
    user_file: Option<Result<UserPrefs, ConfigError>>,
    pub(super) draws: VecDeque<u32>,
    pub(super) file_reads: usize,
}

impl Env {
    pub(super) fn new(user_file: Option<&str>) -> Env {
        Env {
            user_file: user_file.map(|text| {
                parse_user(text.as_bytes(), "~/.oidentd.conf")
                    .and_then(|f| f.resolve("~/.oidentd.conf", &Table))
            }),
            draws: VecDeque::new(),
            file_reads: 0,
        }
    }
}

impl Lookups for Env {
    fn uid_of(&self, user: &str) -> Option<u32> {
        Table.uid_of(user)
    }

    fn random_below(&mut self, n: u32) -> u32 {
        let draw = self.draws.pop_front().unwrap_or(0);
        assert!(draw < n, "a draw of {draw} below {n}");
        draw
    }

    fn user_file(&mut self) -> Option<Result<UserPrefs, ConfigError>> {
        self.file_reads += 1;
        self.user_file.take()
    }
}

pub(super) fn policy(text: &str) -> SystemPolicy {
    parse_system(text.as_bytes(), "oidentd.conf")
        .unwrap()
        .resolve("oidentd.conf", &Table)
        .unwrap()
}

pub(super) fn system_error(text: &str) -> String {
    let parsed = parse_system(text.as_bytes(), "oidentd.conf");
    parsed
        .and_then(|f| f.resolve("oidentd.conf", &Table))
        .unwrap_err()
        .to_string()
}

/// A connection from this host (192.0.2.1) to irc.example.net (192.0.2.7).
pub(super) fn conn(lport: u16, fport: u16) -> Connection {
    Connection {
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), lport),
        foreign: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), fport),
    }
}

pub(super) fn owner(name: &str) -> Owner<'_> {
    Owner {
        uid: Table.uid_of(name).expect("a user of the table"),
        name,
    }
}

/// The answer as a word: `real`, `name:X`, `uid:N`, `hidden` or `forward:ADDR`.
pub(super) fn word(step: &Step) -> String {
    match step {
        Step::Done(d) => match &d.reply {
            Reply::RealName => "real".into(),
            Reply::Name(n) => format!("name:{n}"),
            Reply::Uid(u) => format!("uid:{u}"),
            Reply::Hidden => "hidden".into(),
        },
        Step::Forward(f) => format!("forward:{}", f.to),
    }
}

pub(super) fn notes(step: &Step) -> Vec<String> {
    match step {
        Step::Done(d) => d.notes.iter().map(Note::to_string).collect(),
        Step::Forward(_) => Vec::new(),
    }
}

/// Answers for `who`'s connection; also says whether the user's file was read.
pub(super) fn ask(system: &str, user_file: Option<&str>, who: &str, c: Connection) -> (Step, bool) {
    let mut env = Env::new(user_file);
    let step = decide(&policy(system), &c, owner(who), &mut env);
    (step, env.file_reads == 1)
}

pub(super) const SPOOF: &str = "default { default { allow spoof } }";
pub(super) const SPOOF_PRIVPORT: &str = "default { default { allow spoof allow spoof_privport } }";
pub(super) const SPOOF_ALL: &str = "default { default { allow spoof allow spoof_all } }";
