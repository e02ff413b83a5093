//! The identd itself: its configuration, its log, the connections it is serving,
//! and its answer to one request line. The accept loops (`accept`), the
//! per-connection loop (`conn`) and the table of connections (`table`) are its
//! other parts.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::socket as sock;

use super::config::ServerConfig;
use super::log::Logger;
use super::oidentd;
use super::owner;
use super::policy::{self, Findings};
use super::privsep::Helper;
use super::table::Table;
use crate::ident::lookup::Tuple;
use crate::ident::nat;
use crate::ident::proto::{self, Answer, ErrorToken};

/// An identd: configuration, log and the connections being served.
/// Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct Server {
    pub(super) shared: Arc<Shared>,
}

/// What every clone of a [`Server`] shares; the accept loops count and stop by it.
pub(super) struct Shared {
    pub(super) config: ServerConfig,
    pub(super) log: Logger,
    /// Under `--user`: the privileged helper that looks owners up.
    helper: Option<Helper>,
    pub(super) table: Arc<Table>,
    pub(super) stop: AtomicBool,
    halt: Mutex<Halt>,
}

/// Why the server must stop although its listeners are fine, and the listeners
/// to wake when it must.
#[derive(Default)]
struct Halt {
    reason: Option<String>,
    listeners: Vec<Arc<TcpListener>>,
}

impl Server {
    /// A server that looks owners up itself, with the privileges it has.
    pub fn new(config: ServerConfig, log: Logger) -> Server {
        Server::build(config, log, None)
    }

    /// A server that asks `helper` who owns each connection and whether they may be
    /// named (privilege separation: this process may then drop every privilege).
    /// Should the helper die, the server stops: it can no longer answer anyone, and
    /// a supervisor that sees it exit can start it again.
    pub fn with_helper(config: ServerConfig, log: Logger, helper: Helper) -> Server {
        let server = Server::build(config, log, Some(helper));
        let weak = Arc::downgrade(&server.shared);
        if let Some(helper) = &server.shared.helper {
            helper.when_gone(Box::new(move |reason: &str| {
                if let Some(shared) = weak.upgrade() {
                    Server { shared }.halt(reason);
                }
            }));
        }
        server
    }

    fn build(config: ServerConfig, log: Logger, helper: Option<Helper>) -> Server {
        let table = Table::new(config.max_conns, config.max_conns_per_addr);
        Server {
            shared: Arc::new(Shared {
                config,
                log,
                helper,
                table: Arc::new(table),
                stop: AtomicBool::new(false),
                halt: Mutex::new(Halt::default()),
            }),
        }
    }

    /// Stops the server for `reason`: every accept loop returns, and `run` returns
    /// the reason as its error. Logged here, once.
    fn halt(&self, reason: &str) {
        let mut halt = lock(&self.shared.halt);
        if halt.reason.is_some() {
            return;
        }
        self.shared
            .log
            .error(&format!("{reason}; stopping the server"));
        halt.reason = Some(reason.to_string());
        self.shared.stop.store(true, Ordering::SeqCst);
        for l in &halt.listeners {
            let _ = sock::shutdown(l.as_raw_fd(), sock::Shutdown::Both);
        }
    }

    /// Registers `listeners` to be woken by a halt; if the server was halted
    /// already, wakes them now.
    pub(super) fn watch_for_halt(&self, listeners: &[Arc<TcpListener>]) {
        let mut halt = lock(&self.shared.halt);
        halt.listeners.extend(listeners.iter().cloned());
        if halt.reason.is_some() {
            for l in listeners {
                let _ = sock::shutdown(l.as_raw_fd(), sock::Shutdown::Both);
            }
        }
    }

    /// Why the server stopped, if something other than its listeners stopped it
    /// (its privileged helper died): a server that cannot answer must not look
    /// healthy, under inetd as much as standalone.
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.halt).reason.clone()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    pub fn log(&self) -> &Logger {
        &self.shared.log
    }

    /// Reads `--config`'s system file again, where the rules are applied: in the
    /// privileged helper under `--user` (which logs how it went), else here.
    pub fn reload_config(&self) {
        let Some(files) = &self.shared.config.oidentd else {
            return;
        };
        match &self.shared.helper {
            Some(helper) => {
                if let Err(e) = helper.reload() {
                    self.shared.log.error(&format!("{e:#}"));
                }
            }
            None => files.reload_and_log(&self.shared.log),
        }
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
        if let Some(fixed) = config.overrides.fixed() {
            return fixed;
        }
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
                owner::find(&tuple, config, &self.shared.log)
            }
        };
        let answer = match found {
            // Asked here, in the process that reads the network: under --user it
            // holds no privilege, and no helper worker waits on the other host.
            Findings::Forward(forward) => {
                nat::forwarded(&forward, config.nat.timeout, config.hide_all, |m| {
                    self.shared.log.error(m)
                })
            }
            Findings::ConfigForward(f) => oidentd::forwarded(
                f,
                request.server_port,
                config.timeout,
                config.rules(),
                &self.shared.log,
            ),
            found => policy::decide(config.rules(), &found),
        };
        config.overrides.apply(answer)
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
        let config = &self.shared.config;
        let (ports, answer) = match proto::parse_request(line) {
            Ok(req) => (
                (u32::from(req.server_port), u32::from(req.client_port)),
                self.answer_on(connection, local, peer, req),
            ),
            Err(bad) => (
                bad.echo(),
                config
                    .overrides
                    .apply(Answer::Error(ErrorToken::InvalidPort)),
            ),
        };
        let reply = proto::format_reply_as(ports, &answer, &config.format);
        self.shared.log.info(&format!(
            "{peer} asked {local} about {}: {}",
            String::from_utf8_lossy(line).escape_debug(),
            reply.trim_end()
        ));
        reply
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
