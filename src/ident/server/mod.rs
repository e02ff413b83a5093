//! The identd. Each job has its own file:
//!
//! - `config` and `identd`: what the server answers, and its answer to one request;
//! - `launch`: how it was started (inetd nowait or wait, systemd socket activation,
//!   standalone) and keeping fd 2 quiet when it may be the client's socket;
//! - `policy`: who may be named, a pure function of what was found;
//! - `owner`: finding it out (the one place an owner is looked up);
//! - `oidentd` and `userfile`: `--config`, oidentd's system file held and
//!   reloaded, and a user's file read as that user;
//! - `reload`: SIGHUP, which reads the system file again;
//! - `privsep` and `privdrop`: under `--user`, a privileged helper that answers
//!   "who owns this and may they be named", and the drop of every privilege by the
//!   process that reads the network;
//! - `listen`: what `--listen` names and binding it (every address: dual stack);
//! - `accept`, `table` and `conn`: the accept loops, the table of connections (who
//!   gives up a place when a new connection needs one), and the per-connection loop;
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
mod config;
mod conn;
mod identd;
mod launch;
pub mod listen;
mod log;
mod oidentd;
mod owner;
pub mod policy;
mod privdrop;
mod privsep;
mod reload;
mod table;
mod userfile;

pub use accept::ServerHandle;
pub use child::ServeChild;
pub use config::{
    DEFAULT_FIRST_LINE_TIMEOUT_SECS, DEFAULT_MAX_CONNS, DEFAULT_TIMEOUT_SECS, ServerConfig,
};
pub use conn::MAX_REQUESTS_PER_CONN;
pub use identd::Server;
pub use launch::{
    Mode, ModeChoice, SocketKind, classify, decide_mode, reported_usage_error_quietly,
    silence_stderr, systemd_fd_count,
};
pub use log::{LogTarget, Logger};
pub use oidentd::SystemConfig;
pub use owner::check_home;
pub use policy::Overrides;
pub use privdrop::{drop_privileges, target as privdrop_target};
pub use privsep::Helper;
pub use reload::reload_on_sighup;
