//! One ident connection: read request lines under a deadline, answer each.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::identd::Server;
use super::table::Admitted;
use crate::ident::proto::{Framed, LineFramer, MAX_LINE};

/// Requests answered on one connection before it is closed. RFC 1413 allows
/// several per connection but sets no limit; real clients send one. The cap, with
/// the per-line deadline, bounds how long one client can hold a connection slot.
pub const MAX_REQUESTS_PER_CONN: usize = 100;

impl Server {
    /// Answers requests on one connection until the client closes, a request is not
    /// complete in time, [`MAX_REQUESTS_PER_CONN`] have been answered, or a line runs
    /// over 1,000 bytes. Nothing is sent before a request arrives.
    ///
    /// The first request line must be complete within the first-line timeout of the
    /// connection's start, each later one within the configured timeout of the end
    /// of the previous one: a deadline for the whole line, not a limit per read. A
    /// client sending one byte every 59 s would otherwise hold its connection for
    /// hours (1,000 bytes) per line, and forever with many lines. With the request
    /// cap, a connection lasts at most about 100 timeouts.
    pub fn serve_connection(&self, stream: TcpStream) -> io::Result<()> {
        self.serve(&stream, None)
    }

    /// [`Server::serve_connection`] for a connection in the table, which is told
    /// when a request is complete (the connection is no longer idle) and is not
    /// answered once evicted.
    fn serve(&self, stream: &TcpStream, admitted: Option<&Admitted>) -> io::Result<()> {
        let mut stream = stream;
        let local = stream.local_addr()?;
        let peer = stream.peer_addr()?;
        let config = &self.shared.config;
        let timeout = config.timeout;
        let first_line_timeout = config.first_line_timeout.min(timeout);
        // A client that never reads its replies must not hold us past the timeout either.
        stream.set_write_timeout(Some(timeout))?;
        let may_answer = || admitted.is_none_or(Admitted::start_request);
        let mut framer = LineFramer::new(MAX_LINE);
        let mut buf = [0u8; 1024];
        let mut answered = 0;
        let mut allowed = first_line_timeout;
        let mut deadline = Instant::now() + allowed;
        loop {
            loop {
                match framer.next_line() {
                    Framed::Line(line) => {
                        if !may_answer() {
                            return Ok(());
                        }
                        let reply = self.respond_on(Some(stream.as_fd()), local, peer, &line);
                        stream.write_all(reply.as_bytes())?;
                        answered += 1;
                        if answered == MAX_REQUESTS_PER_CONN {
                            self.shared.log.info(&format!(
                                "{peer}: {MAX_REQUESTS_PER_CONN} requests answered; closing"
                            ));
                            return Ok(());
                        }
                        allowed = timeout;
                        deadline = Instant::now() + allowed;
                    }
                    Framed::Overlong => {
                        self.shared
                            .log
                            .info(&format!("{peer}: request over {MAX_LINE} bytes; closing"));
                        return Ok(());
                    }
                    Framed::NeedMore => break,
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.log_timeout(peer, allowed);
                return Ok(());
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut buf) {
                Ok(0) => {
                    // The client half-closed after an unterminated request: still answer
                    // it. (Evicted, the connection reads end of file too: no answer.)
                    if !framer.pending().is_empty() && may_answer() {
                        let reply =
                            self.respond_on(Some(stream.as_fd()), local, peer, framer.pending());
                        stream.write_all(reply.as_bytes())?;
                    }
                    return Ok(());
                }
                Ok(n) => framer.feed(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.log_timeout(peer, allowed);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn log_timeout(&self, peer: SocketAddr, allowed: Duration) {
        self.shared.log.info(&format!(
            "{peer}: no complete request within {}s; closing",
            allowed.as_secs()
        ));
    }

    /// Serves one connection of the table and logs how it ended.
    pub(super) fn serve_admitted_and_log(&self, admitted: &Admitted) {
        let peer = admitted
            .stream()
            .peer_addr()
            .map_or_else(|_| "a client".to_string(), |p| p.to_string());
        if let Err(e) = self.serve(admitted.stream(), Some(admitted)) {
            self.shared.log.error(&format!("serving {peer}: {e}"));
        }
    }
}
