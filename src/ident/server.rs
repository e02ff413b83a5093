//! The identd: how it is started (inetd nowait or wait, systemd socket activation,
//! standalone), who may learn what, and the per-connection loop.
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
//! holds for a command-line error clap finds before `serve` runs: `main` asks
//! [`started_by_a_superserver`] and sends it to syslog with [`log_usage_error_quietly`].

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::socket::{self as sock, sockopt};
use nix::unistd::{Gid, Uid, User};

use super::lookup::{self, Matcher, Source, Tuple};
use super::proto::{self, Answer, ErrorToken, Framed, LineFramer, MAX_LINE};

/// Requests answered on one connection before it is closed. RFC 1413 allows
/// several per connection but sets no limit; real clients send one. The cap, with
/// the per-line deadline, bounds how long one client can hold a connection slot.
pub const MAX_REQUESTS_PER_CONN: usize = 100;

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
            timeout: Duration::from_secs(60),
            max_conns: 64,
            nat: super::nat::NatConfig::default(),
        }
    }
}

/// Where the server's log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogTarget {
    /// The local syslog daemon (facility daemon); silently nothing if there is none.
    Syslog,
    /// Standard error (refused in inetd and systemd modes, where fd 2 may be the socket).
    Stderr,
    /// Nowhere.
    None,
}

/// A thread-safe log: one line per query, per refusal and per error.
pub struct Logger {
    sink: Mutex<Sink>,
}

enum Sink {
    Syslog(Box<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>),
    Stderr,
    Discard,
}

impl Sink {
    /// Syslog, facility daemon, with `process` as the ident.
    fn syslog(process: &str) -> Sink {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_DAEMON,
            hostname: None,
            process: process.into(),
            pid: std::process::id(),
        };
        // No syslog daemon (a container, say): there is nowhere safe to say so.
        syslog::unix(formatter).map_or(Sink::Discard, |l| Sink::Syslog(Box::new(l)))
    }
}

impl Logger {
    pub fn new(target: LogTarget) -> Logger {
        let sink = match target {
            LogTarget::Syslog => Sink::syslog("racefree-identd"),
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::None => Sink::Discard,
        };
        Logger {
            sink: Mutex::new(sink),
        }
    }

    pub fn info(&self, msg: &str) {
        self.write(msg, false);
    }

    pub fn error(&self, msg: &str) {
        self.write(msg, true);
    }

    fn write(&self, msg: &str, is_error: bool) {
        let msg = crate::exit::one_line(msg);
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::Syslog(l) => {
                let _ = if is_error { l.err(msg) } else { l.info(msg) };
            }
            Sink::Stderr => {
                let kind = if is_error { "error: " } else { "" };
                let _ = writeln!(io::stderr().lock(), "racefree ident: {kind}{msg}");
            }
            Sink::Discard => {}
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
    active: AtomicUsize,
    stop: AtomicBool,
}

impl Server {
    pub fn new(config: ServerConfig, log: Logger) -> Server {
        Server {
            shared: Arc::new(Shared {
                config,
                log,
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
    pub fn answer(&self, local: SocketAddr, peer: SocketAddr, request: proto::Request) -> Answer {
        let config = &self.shared.config;
        // set_port keeps a link-local address's scope id, which netlink's lookup needs.
        let with_port = |mut addr: SocketAddr, port| {
            addr.set_port(port);
            addr
        };
        let tuple = Tuple::new(
            with_port(local, request.server_port),
            with_port(peer, request.client_port),
        );
        let owner = match lookup::lookup_owner_with(&tuple, config.source, config.matcher) {
            Ok(Some(owner)) => owner,
            // The NAT hook: NO-USER unless --nat or --proxy finds more.
            Ok(None) => match super::nat::unowned(
                &config.nat,
                &tuple,
                config.numeric,
                config.hide_all,
                |m| self.shared.log.error(m),
            ) {
                super::nat::Unowned::Owner(owner) => owner,
                super::nat::Unowned::Answer(answer) => return answer,
            },
            Err(e) => {
                self.shared.log.error(&format!("looking up {tuple}: {e:#}"));
                return Answer::Error(ErrorToken::UnknownError);
            }
        };
        let entry = lookup::user_entry(owner.uid);
        if let Err(e) = &entry {
            self.shared.log.error(&format!(
                "reading the password entry of uid {}: {e}; answering HIDDEN-USER",
                owner.uid
            ));
        }
        if is_hidden(config, owner.uid, &entry) {
            return Answer::Error(ErrorToken::HiddenUser);
        }
        match entry {
            Ok(Some(user)) if !config.numeric && proto::is_wire_safe(&user.name) => {
                Answer::User(user.name)
            }
            // A uid with no password entry, or a name that cannot go on the wire.
            _ => Answer::Uid(owner.uid),
        }
    }

    /// The reply line to one request line.
    pub fn respond(&self, local: SocketAddr, peer: SocketAddr, line: &[u8]) -> String {
        let (ports, answer) = match proto::parse_request(line) {
            Ok(req) => (
                (u32::from(req.server_port), u32::from(req.client_port)),
                self.answer(local, peer, req),
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
                        let reply = self.respond(local, peer, &line);
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
                        let reply = self.respond(local, peer, framer.pending());
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
    fn serve_and_log(&self, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "a client".to_string(), |p| p.to_string());
        if let Err(e) = self.serve_connection(stream) {
            self.shared.log.error(&format!("serving {peer}: {e}"));
        }
    }

    /// Accepts on every listener until one fails for good, then stops them all and
    /// returns that error (after logging it). Runs forever otherwise.
    pub fn run(&self, listeners: Vec<TcpListener>) -> anyhow::Result<()> {
        let listeners: Vec<Arc<TcpListener>> = listeners.into_iter().map(Arc::new).collect();
        thread::scope(|scope| {
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
        })
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

    /// Serves a new connection on its own thread, or closes it at once when
    /// `max_conns` are already being served: never queued without bound.
    fn dispatch(&self, stream: TcpStream, peer: SocketAddr) {
        let max = self.shared.config.max_conns;
        if self.shared.active.fetch_add(1, Ordering::SeqCst) >= max {
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
            self.shared
                .log
                .info(&format!("{peer}: {max} connections already open; closing"));
            return;
        }
        let slot = Slot(Arc::clone(&self.shared));
        let server = self.clone();
        let spawned = thread::Builder::new()
            .name("identd-conn".into())
            .spawn(move || {
                let _slot = slot;
                server.serve_and_log(stream);
            });
        if let Err(e) = spawned {
            // The closure, and with it the slot and the stream, was dropped.
            self.shared
                .log
                .error(&format!("{peer}: cannot start a thread: {e}; closing"));
        }
    }
}

/// One of the `max_conns` slots, given back when the connection's thread ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
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
        Ok(())
    }
}

/// Whether the owner `uid` is answered HIDDEN-USER, given what the password database
/// said about it (`Ok(None)`: no entry; `Err`: it could not be read).
fn is_hidden(config: &ServerConfig, uid: u32, entry: &nix::Result<Option<User>>) -> bool {
    if config.hide_all || config.hide_uids.contains(&uid) {
        return true;
    }
    match entry {
        Ok(Some(user)) => noident_hides(&user.dir),
        // No entry, no home: nothing could have asked to be hidden.
        Ok(None) => false,
        // An unreadable database (NSS down, say) hides a home that may hold a
        // .noident: fail closed, as for a home that cannot be checked.
        Err(_) => true,
    }
}

/// True when `~/.noident` exists in `home`, or when that cannot be checked: a home
/// that is missing, relative, not a directory, or unreadable to us hides its user
/// (fail closed).
pub fn noident_hides(home: &Path) -> bool {
    if !home.is_absolute() {
        return true;
    }
    match fs::metadata(home) {
        Ok(m) if m.is_dir() => {}
        _ => return true,
    }
    match fs::symlink_metadata(home.join(".noident")) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// How the server was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// stdin is the connection: serve it on fd 0/1 and exit.
    InetdNowait,
    /// stdin is a listening socket: accept on it.
    InetdWait,
    /// `LISTEN_FDS` sockets from systemd, listening (Accept=no) or connected (Accept=yes).
    Systemd,
    /// `--listen` addresses bound here.
    Standalone,
}

impl Mode {
    /// Modes in which fd 2 may be the client's socket.
    pub fn is_quiet(self) -> bool {
        self != Mode::Standalone
    }
}

/// `--mode`: detect, or insist on one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// systemd if LISTEN_FDS is for us, else standalone if --listen is given, else by stdin
    Auto,
    /// stdin is one accepted connection: serve it, then exit
    InetdNowait,
    /// stdin is a listening socket: accept on it
    InetdWait,
    /// sockets passed as fds 3.. (LISTEN_FDS, LISTEN_PID)
    Systemd,
    /// bind every --listen address here
    Standalone,
}

/// What a descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    NotSocket,
    Listening,
    Connected,
}

/// Classifies a descriptor: a TCP-capable stream socket that listens, one that is
/// connected, or anything else.
pub fn classify(fd: BorrowedFd<'_>) -> SocketKind {
    match sock::getsockopt(&fd, sockopt::SockType) {
        Ok(sock::SockType::Stream) => {}
        _ => return SocketKind::NotSocket,
    }
    match sock::getsockopt(&fd, sockopt::AcceptConn) {
        Ok(true) => SocketKind::Listening,
        Ok(false) if sock::getpeername::<sock::SockaddrStorage>(fd.as_raw_fd()).is_ok() => {
            SocketKind::Connected
        }
        _ => SocketKind::NotSocket,
    }
}

/// The mode to run in, from `--mode`, whether `--listen` was given, whether systemd
/// passed sockets for this process, and what stdin is. Errors are usage errors.
pub fn decide_mode(
    choice: ModeChoice,
    listen: bool,
    systemd: bool,
    stdin: SocketKind,
) -> Result<Mode, String> {
    if listen && !matches!(choice, ModeChoice::Auto | ModeChoice::Standalone) {
        return Err("--listen is only for standalone mode".into());
    }
    match choice {
        ModeChoice::Auto if systemd => Ok(Mode::Systemd),
        ModeChoice::Auto if listen => Ok(Mode::Standalone),
        ModeChoice::Auto => match stdin {
            SocketKind::Connected => Ok(Mode::InetdNowait),
            SocketKind::Listening => Ok(Mode::InetdWait),
            SocketKind::NotSocket => Err(
                "nothing to serve: give --listen ADDR:PORT, or start under inetd \
                                          (stdin a socket) or systemd socket activation"
                    .into(),
            ),
        },
        ModeChoice::Standalone if listen => Ok(Mode::Standalone),
        ModeChoice::Standalone => {
            Err("standalone mode needs at least one --listen ADDR:PORT".into())
        }
        ModeChoice::InetdNowait if stdin == SocketKind::Connected => Ok(Mode::InetdNowait),
        ModeChoice::InetdNowait => {
            Err("--mode inetd-nowait: stdin is not a connected stream socket".into())
        }
        ModeChoice::InetdWait if stdin == SocketKind::Listening => Ok(Mode::InetdWait),
        ModeChoice::InetdWait => {
            Err("--mode inetd-wait: stdin is not a listening stream socket".into())
        }
        ModeChoice::Systemd if systemd => Ok(Mode::Systemd),
        ModeChoice::Systemd => {
            Err("--mode systemd: LISTEN_FDS/LISTEN_PID do not pass sockets to this process".into())
        }
    }
}

/// The number of sockets systemd passed to this process (fds 3, 4, ...), if any:
/// `LISTEN_PID` must be our pid, so variables inherited from a parent do not count.
pub fn systemd_fd_count() -> Option<usize> {
    if !listen_pid_is_ours() {
        return None;
    }
    std::env::var("LISTEN_FDS")
        .ok()?
        .parse()
        .ok()
        .filter(|&n: &usize| n > 0)
}

fn listen_pid_is_ours() -> bool {
    std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id())
}

/// True when inetd or systemd may have started this process, so that fd 2 may be a
/// client's socket: fd 0 is a socket of any kind, or `LISTEN_PID` names us. Cruder
/// than the mode detection on purpose: it runs before the command line is
/// understood, and a false "yes" costs only an error message sent to syslog.
pub fn started_by_a_superserver() -> bool {
    let stdin_is_socket = nix::sys::stat::fstat(io::stdin().as_fd()).is_ok_and(|st| {
        nix::sys::stat::SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
            == nix::sys::stat::SFlag::S_IFSOCK
    });
    stdin_is_socket || listen_pid_is_ours()
}

/// Reports a command-line error that clap found when [`started_by_a_superserver`]:
/// clap would print it on fd 2, which under inetd is the client's socket, before
/// `serve` could silence it. Instead fd 2 goes to /dev/null (so nothing later can
/// write there either) and the error's first line to syslog, ident `racefree`.
pub fn log_usage_error_quietly(message: &str) {
    // If /dev/null cannot be opened there is nothing better to do: we print nothing.
    let _ = silence_stderr();
    let first = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let log = Logger {
        sink: Mutex::new(Sink::syslog("racefree")),
    };
    log.error(&format!("usage error: {first}"));
}

/// Points fd 2 at /dev/null, so nothing (a fatal error printed by `main`, a panic
/// message) can reach a client whose socket fd 2 may be.
pub fn silence_stderr() -> anyhow::Result<()> {
    let null = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let mut stderr = unsafe_stderr_fd();
    nix::unistd::dup2(null.as_fd(), &mut stderr).context("pointing fd 2 at /dev/null")?;
    std::mem::forget(stderr);
    Ok(())
}

/// fd 2 as an `OwnedFd` for `dup2`'s target, forgotten afterwards so it is never closed.
fn unsafe_stderr_fd() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 2 exists for the life of the process (dup2 onto it replaces it in
    // place) and the OwnedFd is forgotten right after, never closing it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(2) }
}

/// Drops to `name` (supplementary groups, gid, uid, in that order) and checks that
/// the drop holds: real, effective and saved ids all changed, and root cannot be
/// regained.
pub fn drop_privileges(name: &str) -> anyhow::Result<()> {
    let user = User::from_name(name)
        .with_context(|| format!("looking up user {name}"))?
        .ok_or_else(|| crate::exit::usage(format!("--user: no user named {name}")))?;
    let context = || {
        format!(
            "dropping privileges to {name} (uid {}, gid {})",
            user.uid, user.gid
        )
    };
    nix::unistd::setgroups(&[user.gid]).with_context(context)?;
    nix::unistd::setgid(user.gid).with_context(context)?;
    nix::unistd::setuid(user.uid).with_context(context)?;
    verify_dropped(user.uid, user.gid).with_context(context)
}

fn verify_dropped(uid: Uid, gid: Gid) -> anyhow::Result<()> {
    let r = nix::unistd::getresuid()?;
    let g = nix::unistd::getresgid()?;
    if [r.real, r.effective, r.saved] != [uid; 3] || [g.real, g.effective, g.saved] != [gid; 3] {
        bail!("the ids did not all change");
    }
    if nix::unistd::getgroups()?.iter().any(|&x| x != gid) {
        bail!("supplementary groups remain");
    }
    if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("root could be regained");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn noident_hides_its_owner_and_fails_closed() {
        let home = tempfile::tempdir().unwrap();
        assert!(!noident_hides(home.path()));
        fs::write(home.path().join(".noident"), "").unwrap();
        assert!(noident_hides(home.path()));
        // A dangling symlink is still a .noident the user made.
        fs::remove_file(home.path().join(".noident")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-target", home.path().join(".noident")).unwrap();
        assert!(noident_hides(home.path()));

        assert!(
            noident_hides(&home.path().join("missing")),
            "a missing home fails closed"
        );
        assert!(
            noident_hides(Path::new("relative/home")),
            "a relative home fails closed"
        );
        let file = home.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(noident_hides(&file), "a home that is a file fails closed");
    }

    #[test]
    fn a_password_database_error_hides_and_no_entry_does_not() {
        let config = ServerConfig::default();
        let uid = 4_000_000_000;
        assert!(
            is_hidden(&config, uid, &Err(nix::errno::Errno::EIO)),
            "an unreadable password database must fail closed"
        );
        assert!(!is_hidden(&config, uid, &Ok(None)));
        let home = tempfile::tempdir().unwrap();
        let mut user = User::from_uid(Uid::effective()).unwrap().unwrap();
        user.dir = home.path().to_path_buf();
        assert!(!is_hidden(
            &config,
            user.uid.as_raw(),
            &Ok(Some(user.clone()))
        ));
        fs::write(home.path().join(".noident"), "").unwrap();
        assert!(is_hidden(&config, user.uid.as_raw(), &Ok(Some(user))));
        let hide_all = ServerConfig {
            hide_all: true,
            ..ServerConfig::default()
        };
        assert!(is_hidden(&hide_all, uid, &Ok(None)));
    }

    #[test]
    fn an_unsearchable_home_fails_closed() {
        if Uid::effective().is_root() {
            eprintln!("note: running as root, which reads any home; skipping");
            return;
        }
        let home = tempfile::tempdir().unwrap();
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(noident_hides(home.path()));
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn mode_detection_follows_pidentd() {
        use ModeChoice::*;
        use SocketKind::*;
        assert_eq!(
            decide_mode(Auto, false, false, Connected),
            Ok(Mode::InetdNowait)
        );
        assert_eq!(
            decide_mode(Auto, false, false, Listening),
            Ok(Mode::InetdWait)
        );
        assert_eq!(decide_mode(Auto, false, true, NotSocket), Ok(Mode::Systemd));
        assert_eq!(
            decide_mode(Auto, true, false, Connected),
            Ok(Mode::Standalone)
        );
        assert!(decide_mode(Auto, false, false, NotSocket).is_err());
        assert!(decide_mode(Standalone, false, false, NotSocket).is_err());
        assert!(decide_mode(InetdNowait, false, false, Listening).is_err());
        assert!(decide_mode(InetdWait, false, false, Connected).is_err());
        assert!(decide_mode(Systemd, false, false, Listening).is_err());
        assert!(decide_mode(InetdNowait, true, false, Connected).is_err());
        assert_eq!(
            decide_mode(InetdWait, false, true, Listening),
            Ok(Mode::InetdWait)
        );
        assert!(
            Mode::InetdNowait.is_quiet()
                && Mode::Systemd.is_quiet()
                && !Mode::Standalone.is_quiet()
        );
    }

    #[test]
    fn descriptors_are_classified_by_what_they_are() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(classify(listener.as_fd()), SocketKind::Listening);
        assert_eq!(classify(client.as_fd()), SocketKind::Connected);
        let file = tempfile::tempfile().unwrap();
        assert_eq!(classify(file.as_fd()), SocketKind::NotSocket);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(classify(udp.as_fd()), SocketKind::NotSocket);
    }

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
        let got = server.answer(here, querier, req);
        let hidden = Answer::Error(ErrorToken::HiddenUser);
        assert!(got == Answer::User(me.clone()) || got == hidden, "{got:?}");
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
        let got = numeric.answer(here, querier, req);
        assert!(
            got == Answer::Uid(Uid::effective().as_raw()) || got == hidden,
            "{got:?}"
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
