//! The identd. Each job has its own file:
//!
//! - `launch`: how it was started (inetd nowait or wait, systemd socket activation,
//!   standalone) and keeping fd 2 quiet when it may be the client's socket;
//! - `policy`: who may be named, a pure function of what was found;
//! - `owner`: finding it out (the one place an owner is looked up);
//! - `privsep` and `privdrop`: under `--user`, a privileged helper that answers
//!   "who owns this and may they be named", and the drop of every privilege by the
//!   process that reads the network;
//! - `accept` and `conn`: the accept loops and the per-connection loop;
//! - `log`: syslog, stderr or nowhere;
//! - `child`: the server as a child process of ours, as the stress harness and the
//!   integration tests run it ([`ServeChild`]).
//!
//! **Who may learn what.** The querier learns about connections between itself and
//! this host, nothing else: the tuple looked up is built from the ident connection's
//! own addresses (its local address is the queried connection's local address, the
//! querier's address its remote address) plus the two ports asked for. A connection
//! between two other addresses can never match, so it answers NO-USER.
//!
//! **Quiet modes.** Under inetd, and under systemd with `StandardInput=socket`,
//! fd 2 is often the client's socket: one stray diagnostic would be sent to the
//! querier as if it were a reply. In those modes fd 2 is pointed at /dev/null before
//! anything can be written to it and everything goes to syslog instead. The same
//! holds for a command-line error clap finds before `serve` runs: `cli::parse` hands
//! it to [`reported_usage_error_quietly`], which sends it to syslog when inetd or
//! systemd may have started us.

mod accept;
pub mod child;
mod conn;
mod launch;
mod log;
mod owner;
pub mod policy;
mod privdrop;
mod privsep;

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use super::lookup::{Matcher, Source, Tuple};
use super::proto::{self, Answer, ErrorToken};

pub use accept::ServerHandle;
pub use child::ServeChild;
pub use conn::MAX_REQUESTS_PER_CONN;
pub use launch::{
    Mode, ModeChoice, SocketKind, classify, decide_mode, reported_usage_error_quietly,
    silence_stderr, systemd_fd_count,
};
pub use log::{LogTarget, Logger};
pub use owner::check_home;
use policy::Findings;
pub use privdrop::{drop_privileges, target as privdrop_target};
pub use privsep::{Helper, HelperConfig};

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
    /// Connections served at once; past it new ones are closed at once.
    pub max_conns: usize,
    /// `--nat`, `--forward`, `--proxy`: what to do when the lookup finds no owner.
    pub nat: super::nat::NatConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            source: Source::Proc,
            matcher: Matcher::FourTuple,
            numeric: false,
            hide_uids: Vec::new(),
            hide_all: false,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            max_conns: DEFAULT_MAX_CONNS as usize,
            nat: super::nat::NatConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Where owners are looked up, and what `--nat` does when this host has none.
    pub fn finder(&self) -> owner::Finder<'_> {
        owner::Finder {
            source: self.source,
            matcher: self.matcher,
            nat: &self.nat,
            numeric: self.numeric,
            hide_all: self.hide_all,
        }
    }

    /// The operator's part of the disclosure policy.
    pub fn rules(&self) -> policy::Rules<'_> {
        policy::Rules {
            hide_all: self.hide_all,
            hide_uids: &self.hide_uids,
            numeric: self.numeric,
        }
    }
}

/// An identd: configuration, log and the count of connections being served.
/// Cheap to clone; clones share the count.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

struct Shared {
    config: ServerConfig,
    log: Logger,
    /// Under `--user`: the privileged helper that looks owners up.
    helper: Option<Helper>,
    active: AtomicUsize,
    stop: AtomicBool,
}

impl Server {
    /// A server that looks owners up itself, with the privileges it has.
    pub fn new(config: ServerConfig, log: Logger) -> Server {
        Server::build(config, log, None)
    }

    /// A server that asks `helper` who owns each connection and whether they may be
    /// named (privilege separation: this process may then drop every privilege).
    pub fn with_helper(config: ServerConfig, log: Logger, helper: Helper) -> Server {
        Server::build(config, log, Some(helper))
    }

    fn build(config: ServerConfig, log: Logger, helper: Option<Helper>) -> Server {
        Server {
            shared: Arc::new(Shared {
                config,
                log,
                helper,
                active: AtomicUsize::new(0),
                stop: AtomicBool::new(false),
            }),
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    pub fn log(&self) -> &Logger {
        &self.shared.log
    }

    /// The answer to one request that arrived on an ident connection from `peer`
    /// to `local`: the owner of `local.ip():server_port` to `peer.ip():client_port`.
    /// For a server with a helper, which needs the ident connection itself, see
    /// [`Server::respond_on`]; asked this way it answers UNKNOWN-ERROR.
    pub fn answer(&self, local: SocketAddr, peer: SocketAddr, request: proto::Request) -> Answer {
        self.answer_on(None, local, peer, request)
    }

    fn answer_on(
        &self,
        connection: Option<BorrowedFd<'_>>,
        local: SocketAddr,
        peer: SocketAddr,
        request: proto::Request,
    ) -> Answer {
        let config = &self.shared.config;
        let found = match (&self.shared.helper, connection) {
            // The helper reads both addresses from the connection itself.
            (Some(helper), Some(conn)) => {
                helper.ask(conn, request.server_port, request.client_port)
            }
            (Some(_), None) => Findings::LookupFailed,
            (None, _) => {
                // set_port keeps a link-local address's scope id, which netlink's
                // lookup needs.
                let with_port = |mut addr: SocketAddr, port| {
                    addr.set_port(port);
                    addr
                };
                let tuple = Tuple::new(
                    with_port(local, request.server_port),
                    with_port(peer, request.client_port),
                );
                owner::find(&tuple, config.finder(), &self.shared.log)
            }
        };
        match found {
            // Asked here, in the process that reads the network: under --user it
            // holds no privilege, and no helper worker waits on the other host.
            Findings::Forward(forward) => {
                super::nat::forwarded(&forward, config.nat.timeout, config.hide_all, |m| {
                    self.shared.log.error(m)
                })
            }
            found => policy::decide(config.rules(), &found),
        }
    }

    /// The reply line to one request line.
    pub fn respond(&self, local: SocketAddr, peer: SocketAddr, line: &[u8]) -> String {
        self.respond_on(None, local, peer, line)
    }

    /// The reply line to one request line that arrived on `connection`.
    pub fn respond_on(
        &self,
        connection: Option<BorrowedFd<'_>>,
        local: SocketAddr,
        peer: SocketAddr,
        line: &[u8],
    ) -> String {
        let (ports, answer) = match proto::parse_request(line) {
            Ok(req) => (
                (u32::from(req.server_port), u32::from(req.client_port)),
                self.answer_on(connection, local, peer, req),
            ),
            Err(bad) => (bad.echo(), Answer::Error(ErrorToken::InvalidPort)),
        };
        let reply = proto::format_reply(ports, &answer);
        self.shared.log.info(&format!(
            "{peer} asked {local} about {}: {}",
            String::from_utf8_lossy(line).escape_debug(),
            reply.trim_end()
        ));
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::lookup;
    use nix::unistd::Uid;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_request_is_answered_about_the_queriers_own_connection_only() {
        let server = Server::new(ServerConfig::default(), Logger::new(LogTarget::None));
        // A service on 127.0.0.1 and a client of it: the "service host" asks us.
        let service = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(service.local_addr().unwrap()).unwrap();
        let (_accepted, _) = service.accept().unwrap();
        let req = proto::Request {
            server_port: client.local_addr().unwrap().port(),
            client_port: service.local_addr().unwrap().port(),
        };
        let here: SocketAddr = "127.0.0.1:113".parse().unwrap();
        let querier: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let me = lookup::user_name(Uid::effective().as_raw());
        let hidden = Answer::Error(ErrorToken::HiddenUser);
        assert_eq!(server.answer(here, querier, req), Answer::User(me));
        // The same ports asked from another address: not the querier's connection.
        let elsewhere: SocketAddr = "127.0.0.5:5000".parse().unwrap();
        assert_eq!(
            server.answer(here, elsewhere, req),
            Answer::Error(ErrorToken::NoUser)
        );
        // Asked on another local address of ours: not that connection either.
        let other_local: SocketAddr = "127.0.0.6:113".parse().unwrap();
        assert_eq!(
            server.answer(other_local, querier, req),
            Answer::Error(ErrorToken::NoUser)
        );

        let numeric = Server::new(
            ServerConfig {
                numeric: true,
                ..ServerConfig::default()
            },
            Logger::new(LogTarget::None),
        );
        assert_eq!(
            numeric.answer(here, querier, req),
            Answer::Uid(Uid::effective().as_raw())
        );
        let hide_me = Server::new(
            ServerConfig {
                hide_uids: vec![Uid::effective().as_raw()],
                ..ServerConfig::default()
            },
            Logger::new(LogTarget::None),
        );
        assert_eq!(hide_me.answer(here, querier, req), hidden);
        let hide_all = Server::new(
            ServerConfig {
                hide_all: true,
                ..ServerConfig::default()
            },
            Logger::new(LogTarget::None),
        );
        assert_eq!(hide_all.answer(here, querier, req), hidden);
    }
}
