//! What a server answers and how long it waits: the operator's choices, read once
//! from the command line and shared read-only by every connection (and, under
//! `--user`, by the privileged helper, which looks owners up by the same ones).

use std::time::Duration;

use super::policy;
use crate::ident::lookup::{Matcher, Source};
use crate::ident::nat::NatConfig;
use crate::ident::proto::ReplyFormat;

/// `--timeout`'s default, in seconds: RFC 1413 suggests 60 to 180.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// `--max-conns`'s default.
pub const DEFAULT_MAX_CONNS: u32 = 64;

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
    /// Connections served at once; past it new ones are closed at once. Under
    /// `--user`, also the privileged helper's workers (at most 32).
    pub max_conns: usize,
    /// `--nat`, `--forward`, `--proxy`: what to do when the lookup finds no owner.
    pub nat: NatConfig,
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
            max_conns: DEFAULT_MAX_CONNS as usize,
            nat: NatConfig::default(),
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
