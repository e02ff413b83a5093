//! One ident connection: read request lines under a deadline, answer each.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::identd::Server;
use crate::ident::proto::{Framed, LineFramer, MAX_LINE};

/// Requests answered on one connection before it is closed. RFC 1413 allows
/// several per connection but sets no limit; real clients send one. The cap, with
/// the per-line deadline, bounds how long one client can hold a connection slot.
pub const MAX_REQUESTS_PER_CONN: usize = 100;

impl Server {
    /// Answers requests on one connection until the client closes, a request is not
    /// complete within the configured timeout, [`MAX_REQUESTS_PER_CONN`] have been
    /// answered, or a line runs over 1,000 bytes. Nothing is sent before a request
    /// arrives.
    ///
    /// The timeout is a deadline per request line, from the end of the previous one
    /// (or the connection's start) to the end of this one, not a limit per read: a
    /// client sending one byte every 59 s would otherwise hold its slot for hours
    /// (1,000 bytes) per line, and forever with many lines. With the request cap,
    /// a connection lasts at most about 100 timeouts.
    pub fn serve_connection(&self, mut stream: TcpStream) -> io::Result<()> {
        let local = stream.local_addr()?;
        let peer = stream.peer_addr()?;
        let timeout = self.shared.config.timeout;
        // A client that never reads its replies must not hold us past the timeout either.
        stream.set_write_timeout(Some(timeout))?;
        let mut framer = LineFramer::new(MAX_LINE);
        let mut buf = [0u8; 1024];
        let mut answered = 0;
        let mut deadline = Instant::now() + timeout;
        loop {
            loop {
                match framer.next_line() {
                    Framed::Line(line) => {
                        let reply = self.respond_on(Some(stream.as_fd()), local, peer, &line);
                        stream.write_all(reply.as_bytes())?;
                        answered += 1;
                        if answered == MAX_REQUESTS_PER_CONN {
                            self.shared.log.info(&format!(
                                "{peer}: {MAX_REQUESTS_PER_CONN} requests answered; closing"
                            ));
                            return Ok(());
                        }
                        deadline = Instant::now() + timeout;
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
                self.log_timeout(peer, timeout);
                return Ok(());
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut buf) {
                Ok(0) => {
                    // The client half-closed after an unterminated request: still answer it.
                    if !framer.pending().is_empty() {
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
                    self.log_timeout(peer, timeout);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn log_timeout(&self, peer: SocketAddr, timeout: Duration) {
        self.shared.log.info(&format!(
            "{peer}: no complete request within {}s; closing",
            timeout.as_secs()
        ));
    }

    /// Serves one connection and logs how it ended.
    pub(super) fn serve_and_log(&self, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "a client".to_string(), |p| p.to_string());
        if let Err(e) = self.serve_connection(stream) {
            self.shared.log.error(&format!("serving {peer}: {e}"));
        }
    }
}
