//! The identds the server lookups go to: racefree's own `ident serve` as a child
//! process, and the control's, a server in this process that demands ESTABLISHED.

use std::net::{SocketAddr, TcpListener};

use anyhow::Context;

use crate::ident::{LogTarget, Logger, Matcher, ServeChild, Server, ServerConfig, ServerHandle};
use crate::stress::cleanup::ChildGuard;

/// `racefree ident serve --listen 127.0.0.1:0` as a [`ServeChild`] (killed and
/// reaped when dropped, killed by the kernel if this process dies first), and also
/// killed by the signal thread on Ctrl-C or SIGTERM.
pub struct ServeProcess {
    // Unregistered before the server is reaped, so the signal thread can never kill
    // a process that took over its pid.
    _guard: ChildGuard,
    server: ServeChild,
}

impl ServeProcess {
    /// Started from the main thread, which outlives the run (see [`ServeChild`]). A
    /// signal that arrives while it starts is caught up with by [`ChildGuard::new`].
    pub fn start(max_conns: usize) -> anyhow::Result<ServeProcess> {
        let exe = std::env::current_exe().context("finding this binary to start the server")?;
        let max_conns = max_conns.to_string();
        // Every racer queries from 127.0.0.1: the whole table is that one address's
        // share, or the per-address rule would evict a racer's connection whose
        // request line is still on its way, and the racer would see it closed
        // without a reply.
        let server = ServeChild::start(
            &exe,
            "127.0.0.1:0",
            [
                "--log",
                "none",
                "--max-conns",
                &max_conns,
                "--max-conns-per-addr",
                &max_conns,
            ],
        )?;
        Ok(ServeProcess {
            _guard: ChildGuard::new(server.pid()),
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

/// The control's identd on loopback: the classic matcher, under the same limit.
pub fn start_control(max_conns: usize) -> anyhow::Result<ServerHandle> {
    let config = ServerConfig {
        matcher: Matcher::EstablishedOnly,
        max_conns,
        max_conns_per_addr: Some(max_conns),
        ..Default::default()
    };
    let server = Server::new(config, Logger::new(LogTarget::None));
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the control identd")?;
    server.spawn(vec![listener])
}
