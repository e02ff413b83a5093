//! What a server answers and how long it waits: the operator's choices, read once
//! from the command line and shared read-only by every connection (and, under
//! `--user`, by the privileged helper, which looks owners up by the same ones).

use std::time::Duration;

use super::oidentd::SystemConfig;
use super::policy;
use crate::ident::lookup::{Matcher, Source};
use crate::ident::nat::NatConfig;
use crate::ident::proto::ReplyFormat;

/// `--timeout`'s default, in seconds: RFC 1413 suggests 60 to 180.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// `--max-conns`'s default: room for an IRC server asking about a burst of
/// clients at once (each query holds a place for milliseconds), within the usual
/// descriptor limit of 1,024 (see `table`).
pub const DEFAULT_MAX_CONNS: u32 = 256;
/// `--first-line-timeout`'s default, in seconds: a client sends its request as soon
/// as it connects (an IRC server gives up on ident after a few seconds); this
/// leaves room for a few lost packets, and frees an idle place six times sooner
/// than `--timeout`.
pub const DEFAULT_FIRST_LINE_TIMEOUT_SECS: u64 = 10;

/// What a server answers and how long it waits. Shared read-only by every connection.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub source: Source,
    /// `FourTuple` for racefree; `EstablishedOnly` for stress's control server.
    pub matcher: Matcher,
    /// Answer `USERID : OTHER : <uid>` instead of the user name.
    pub numeric: bool,
    /// These users are answered HIDDEN-USER.
    pub hide_uids: Vec<u32>,
    /// Every user is answered HIDDEN-USER.
    pub hide_all: bool,
    /// Each request line must be complete this long after the previous one was
    /// (or after the connection opened), or the connection is closed.
    pub timeout: Duration,
    /// The first request line must be complete this long after the connection
    /// opened (at most `timeout`).
    pub first_line_timeout: Duration,
    /// Connections served at once (the table, see `table`). Under `--user`, also
    /// the privileged helper's workers (at most 32).
    pub max_conns: usize,
    /// Connections one address (an IPv6 /64) may hold; `None`: half of `max_conns`.
    pub max_conns_per_addr: Option<usize>,
    /// `--nat`, `--forward`, `--proxy`: what to do when the lookup finds no owner.
    pub nat: NatConfig,
    /// `--config`: oidentd's system file, and with it users' files.
    pub oidentd: Option<SystemConfig>,
    /// `--reply-all`, `--reply`, `--error`: what every answer becomes on its way out.
    pub overrides: policy::Overrides,
    /// `--other`, `--charset`: the OS and charset fields of USERID replies.
    pub format: ReplyFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            source: Source::Auto,
            matcher: Matcher::FourTuple,
            numeric: false,
            hide_uids: Vec::new(),
            hide_all: false,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            first_line_timeout: Duration::from_secs(DEFAULT_FIRST_LINE_TIMEOUT_SECS),
            max_conns: DEFAULT_MAX_CONNS as usize,
            max_conns_per_addr: None,
            nat: NatConfig::default(),
            oidentd: None,
            overrides: policy::Overrides::default(),
            format: ReplyFormat::default(),
        }
    }
}

impl ServerConfig {
    /// The operator's part of the disclosure policy.
    pub fn rules(&self) -> policy::Rules<'_> {
        policy::Rules {
            hide_all: self.hide_all,
            hide_uids: &self.hide_uids,
            numeric: self.numeric,
        }
    }
}
