//! The accept loops: one per listener, a thread per connection admitted to the
//! table (`table`), and a clean stop of every loop when one fails for good or the
//! server is halted.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nix::sys::socket as sock;

use super::identd::Server;
use super::table;

impl Server {
    /// Accepts on every listener until one fails for good, or the server is halted
    /// (its privileged helper died), then stops them all and returns that error
    /// (after logging it). Runs forever otherwise.
    pub fn run(&self, listeners: Vec<TcpListener>) -> anyhow::Result<()> {
        let listeners: Vec<Arc<TcpListener>> = listeners.into_iter().map(Arc::new).collect();
        self.prepare_to_listen(&listeners);
        let result = thread::scope(|scope| {
            let loops: Vec<_> = listeners
                .iter()
                .map(|l| scope.spawn(|| self.accept_until_fatal(l, &listeners)))
                .collect();
            let mut first_error = None;
            for h in loops {
                let result = h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow!("an accept loop panicked")));
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        });
        result.and(self.failure().map_or(Ok(()), |why| Err(anyhow!(why))))
    }

    /// Sizes the table within the descriptor limit (saying so when that makes it
    /// smaller than `--max-conns`), and has a halt wake `listeners`.
    fn prepare_to_listen(&self, listeners: &[Arc<TcpListener>]) {
        let table = &self.shared.table;
        let wanted = table.limits().total;
        let fits = table::fit_descriptor_limit(wanted);
        if fits < wanted {
            table.bound_total(fits);
            let limits = table.limits();
            self.shared.log.error(&format!(
                "the descriptor limit (RLIMIT_NOFILE) leaves room for {fits} connections, \
                 not --max-conns {wanted}: serving at most {fits} at once, {} from one address",
                limits.per_querier
            ));
        }
        self.watch_for_halt(listeners);
    }

    /// One accept loop that, when it ends in an error (or a panic), logs it and stops
    /// every other loop. Without that, a server with two listeners whose first one
    /// died would go on half-serving, and the error would wait, unreported, for the
    /// second loop to end: forever.
    fn accept_until_fatal(
        &self,
        listener: &TcpListener,
        all: &[Arc<TcpListener>],
    ) -> anyhow::Result<()> {
        let result = panic::catch_unwind(AssertUnwindSafe(|| self.accept_loop(listener)))
            .unwrap_or_else(|_| Err(anyhow!("an accept loop panicked")));
        if let Err(e) = &result {
            self.shared
                .log
                .error(&format!("{e:#}; stopping the server"));
            self.stop_accepting(all);
        }
        result
    }

    /// Makes every accept loop over `listeners` return: the flag first, so that the
    /// accept() the shutdown wakes (on Linux, shutting a listening socket down does)
    /// reads it and ends quietly instead of reporting the wake-up as an error.
    fn stop_accepting(&self, listeners: &[Arc<TcpListener>]) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for l in listeners {
            let _ = sock::shutdown(l.as_raw_fd(), sock::Shutdown::Both);
        }
    }

    /// Starts serving `listeners` on background threads, for callers (stress, tests)
    /// that run the server in-process.
    pub fn spawn(self, listeners: Vec<TcpListener>) -> anyhow::Result<ServerHandle> {
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        let listeners: Vec<Arc<TcpListener>> = listeners.into_iter().map(Arc::new).collect();
        self.prepare_to_listen(&listeners);
        let threads = listeners
            .iter()
            .map(|l| {
                let (server, l, all) = (self.clone(), Arc::clone(l), listeners.clone());
                thread::Builder::new()
                    .name("identd-accept".into())
                    .spawn(move || server.accept_until_fatal(&l, &all))
            })
            .collect::<io::Result<Vec<_>>>()
            .context("starting accept threads")?;
        Ok(ServerHandle {
            server: self,
            addrs,
            listeners,
            threads,
        })
    }

    fn accept_loop(&self, listener: &TcpListener) -> anyhow::Result<()> {
        let addr = listener
            .local_addr()
            .map_or_else(|_| "a listener".to_string(), |a| a.to_string());
        loop {
            let accepted = listener.accept();
            if self.shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            match accepted {
                Ok((stream, peer)) => self.dispatch(stream, peer),
                Err(e) => match e.raw_os_error() {
                    // The client gave up between SYN and accept, or a signal: next.
                    Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM) => {}
                    // Out of descriptors or memory: refusing is all we can do; give the
                    // connections being served a moment to finish before trying again.
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        self.shared.log.error(&format!("accepting on {addr}: {e}"));
                        thread::sleep(Duration::from_millis(100));
                    }
                    _ => return Err(e).with_context(|| format!("accepting on {addr}")),
                },
            }
        }
    }

    /// Serves a new connection on its own thread once the table admits it (perhaps
    /// evicting an idle one for it), or closes it: never queued without bound.
    fn dispatch(&self, stream: TcpStream, peer: SocketAddr) {
        let (admitted, evicted) = self.shared.table.admit(stream, peer);
        for e in evicted {
            self.shared.log.info(&format!(
                "{}: closed after {:.1}s without a request, for {peer}: {}",
                e.peer,
                e.idle.as_secs_f64(),
                e.why
            ));
        }
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err(why) => {
                self.shared
                    .log
                    .info(&format!("{peer}: {why}, none idle; closing"));
                return;
            }
        };
        let server = self.clone();
        let spawned = thread::Builder::new()
            .name("identd-conn".into())
            .spawn(move || server.serve_admitted_and_log(&admitted));
        if let Err(e) = spawned {
            // The closure, and with it the connection, was dropped: it left the table.
            self.shared
                .log
                .error(&format!("{peer}: cannot start a thread: {e}; closing"));
        }
    }
}

/// A server running on background threads.
pub struct ServerHandle {
    server: Server,
    addrs: Vec<SocketAddr>,
    listeners: Vec<Arc<TcpListener>>,
    threads: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl ServerHandle {
    /// The addresses actually bound (the real port when 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting and waits for the accept threads. Connections being served
    /// finish on their own (client close or timeout). Returns the error that ended
    /// an accept loop early (and with it all the others), if one did.
    pub fn stop(self) -> anyhow::Result<()> {
        self.server.stop_accepting(&self.listeners);
        for t in self.threads {
            t.join()
                .unwrap_or_else(|_| bail!("an accept loop panicked"))?;
        }
        self.server
            .failure()
            .map_or(Ok(()), |why| Err(anyhow!(why)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::proto;
    use crate::ident::server::{LogTarget, Logger, ServerConfig};
    use std::net::TcpStream;

    #[test]
    fn a_fatal_error_in_one_accept_loop_stops_the_server_and_is_returned() {
        let server = Server::new(ServerConfig::default(), Logger::new(LogTarget::None));
        let healthy = TcpListener::bind("127.0.0.1:0").unwrap();
        let failing = TcpListener::bind("127.0.0.1:0").unwrap();
        let failing_addr = failing.local_addr().unwrap();
        let failing_too = failing.try_clone().unwrap();
        let (done, result) = std::sync::mpsc::channel();
        thread::spawn(move || done.send(server.run(vec![healthy, failing])));
        // Shut down under a running accept(), without asking the server to stop:
        // accept fails with EINVAL, which no retry can cure.
        sock::shutdown(failing_too.as_raw_fd(), sock::Shutdown::Both).unwrap();
        let err = result
            .recv_timeout(Duration::from_secs(10))
            .expect("run kept going on its other listener")
            .expect_err("run hid the accept error");
        assert!(
            format!("{err:#}").contains(&failing_addr.to_string()),
            "{err:#}"
        );
    }

    #[test]
    fn an_in_process_server_starts_answers_and_stops() {
        let server = Server::new(ServerConfig::default(), Logger::new(LogTarget::None));
        let handle = server
            .spawn(vec![TcpListener::bind("127.0.0.1:0").unwrap()])
            .unwrap();
        let addr = handle.local_addrs()[0];
        let reply = crate::ident::client::query(addr, 1, 1, Duration::from_secs(10)).unwrap();
        assert_eq!(reply.kind, proto::ReplyKind::Error("NO-USER".into()));
        handle.stop().unwrap();
        assert!(
            TcpStream::connect(addr).is_err(),
            "still accepting after stop"
        );
    }
}
