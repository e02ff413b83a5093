//! The `racefree ident` command line: `Args`, the three subcommands, their output
//! and exit statuses, and `run`. The work is in `lookup`, `server` and `client`;
//! this is the thin shell around them.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use serde::Serialize;

use super::lookup::{self, Source, TcpState, Tuple};
use super::nat::{self, NatConfig};
use super::server::listen::{self, Listen};
use super::server::{
    self, LogTarget, Logger, Mode, ModeChoice, Server, ServerConfig, SocketKind, SystemConfig,
};
use super::{client, config, proto};
use crate::exit::{self, Exit, usage};
use crate::help;

/// `ident`'s own statuses (a usage error before any subcommand ran).
pub const STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "the operation failed",
    },
    exit::Status {
        code: 2,
        meaning: "usage error (clap's own, or a bad value found later)",
    },
];

/// `ident lookup`'s exit statuses, for `--help` and the man page.
pub const LOOKUP_STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "the connection has no owner (no such connection, or only a TIME_WAIT row), or the socket table could not be read",
    },
    exit::Status {
        code: 2,
        meaning: "usage error: bad option, an address that is not ADDR:PORT, port 0, LOCAL and REMOTE of different families or on different interfaces",
    },
];

/// `ident query`'s exit statuses.
pub const QUERY_STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "the server answered ERROR, or gave no usable answer in time (refused, timed out, malformed, or for other ports)",
    },
    exit::Status {
        code: 2,
        meaning: "usage error",
    },
];

/// `ident serve`'s exit statuses.
pub const SERVE_STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "the server could not start (bind, privilege drop, a --config file missing or malformed: FILE:LINE:COLUMN and what was expected), its listening socket failed, or its privileged helper (--user) died",
    },
    exit::Status {
        code: 2,
        meaning: "usage error, including: nothing to serve (no --listen, stdin not a socket) or --mode not matching how it was started",
    },
];

#[derive(Debug, ClapArgs)]
#[command(
    subcommand_required = true,
    arg_required_else_help = true,
    after_long_help = exit::help_text(STATUSES)
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// `ident lookup`'s examples, for `--help` and the man page.
pub const LOOKUP_EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "who owns this host's end of an SSH session: this host's address first",
        lines: "racefree ident lookup 192.0.2.10:22 198.51.100.7:51234",
    },
    help::Example {
        what: "uid, user, TCP state, inode and the source that answered, as JSON",
        lines: "racefree ident lookup --json 127.0.0.1:40312 127.0.0.1:5432",
    },
];

/// `ident serve`'s examples: the ways it is started, and oidentd's options.
pub const SERVE_EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "standalone on port 113 of every address (IPv4 and IPv6); only a small helper stays root",
        lines: "racefree ident serve --listen 113 --user nobody",
    },
    help::Example {
        what: "the same as a systemd service ([Service] of a unit of your own)",
        lines: "ExecStart=/usr/bin/racefree ident serve --listen 113 --user nobody
Restart=on-failure",
    },
    help::Example {
        what: "under xinetd (a service in /etc/xinetd.d/ with wait = no and user = root)",
        lines: "server      = /usr/bin/racefree
server_args = ident serve --user nobody",
    },
    help::Example {
        what: "under inetd (/etc/inetd.conf)",
        lines: "ident stream tcp nowait root /usr/bin/racefree racefree ident serve --user nobody",
    },
    help::Example {
        what: "systemd socket activation: the service of a socket with ListenStream=113, Accept=yes",
        lines: "ExecStart=/usr/bin/racefree ident serve --user nobody",
    },
    help::Example {
        what: "in place of `oidentd -q -e -r unknown`: no log, one error token, a fixed failure answer",
        lines: "racefree ident serve --listen 113 --user nobody --log none -e -r unknown",
    },
];

/// `ident query`'s examples.
pub const QUERY_EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "an IRC server (port 6667 here) asks who connected from port 51234 of 198.51.100.7",
        lines: "racefree ident query 198.51.100.7 51234 6667",
    },
    help::Example {
        what: "the whole reply and its verdict, as JSON",
        lines: "racefree ident query --json 198.51.100.7 51234 6667",
    },
];

#[derive(Debug, Subcommand)]
// One value per process, made once from argv: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Print the user that owns a TCP connection, matched on its 4-tuple only
    #[command(long_about = LOOKUP_ABOUT, after_long_help = help::long_help(LOOKUP_EXAMPLES, LOOKUP_STATUSES))]
    Lookup(LookupArgs),
    /// Serve RFC 1413 ident under inetd, systemd socket activation, or standalone
    #[command(long_about = SERVE_ABOUT, after_long_help = help::long_help(SERVE_EXAMPLES, SERVE_STATUSES))]
    Serve(ServeArgs),
    /// Ask a host's identd who owns a connection
    #[command(long_about = QUERY_ABOUT, after_long_help = help::long_help(QUERY_EXAMPLES, QUERY_STATUSES))]
    Query(QueryArgs),
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        Command::Lookup(a) => lookup(a),
        Command::Serve(a) => serve(a),
        Command::Query(a) => query(a),
    }
}

pub const LOOKUP_ABOUT: &str = "Print the user that owns a TCP connection of this host.\n\n\
    The connection is found by its 4-tuple only: any TCP state counts (a client that \
    half-closed with shutdown(SHUT_WR) is in FIN_WAIT1 or FIN_WAIT2 and still has an \
    owner). A TIME_WAIT row has no owner (the kernel's uid 0 there is not root). On a \
    miss the table is read once more before answering, since /proc is not a snapshot.\n\n\
    A link-local IPv6 end may name its interface ([fe80::1%eth0]:22, or its index): the \
    same addresses and ports can be a connection on each of two links, and then only the \
    one on that interface matches. sock_diag says which interface a connection is on; \
    /proc/net/tcp6 does not, so --source proc refuses such a question (exit 1).\n\n\
    With --nat, a connection that is no socket of this host is looked up as the \
    outside face of a NAT: LOCAL is this host's translated end. Its conntrack entry \
    gives the original connection; a container (network namespace) of this host \
    holding it is named from its own /etc/passwd; a connection from another host is \
    asked about at that host's identd with --forward.";

#[derive(Debug, ClapArgs)]
pub struct LookupArgs {
    /// This host's end of the connection, ADDR:PORT ([V6ADDR]:PORT for IPv6; a link-local one may name its interface, [fe80::1%eth0]:22, and then matches only there)
    #[arg(value_name = "LOCAL", value_parser = lookup::parse_endpoint)]
    local: SocketAddr,
    /// The other end, ADDR:PORT ([V6ADDR]:PORT or [V6ADDR%SCOPE]:PORT for IPv6)
    #[arg(value_name = "REMOTE", value_parser = lookup::parse_endpoint)]
    remote: SocketAddr,
    /// Print the uid instead of the user name
    #[arg(long, conflicts_with = "json")]
    numeric: bool,
    /// Print uid, user, state, inode and source as one JSON object
    #[arg(long)]
    json: bool,
    /// Where to read the kernel's socket table
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    source: Source,
    #[command(flatten)]
    nat: NatArgs,
}

/// `--nat` and `--forward`, shared by `lookup` and `serve`.
#[derive(Debug, ClapArgs)]
struct NatArgs {
    /// Answer for connections this host translated (masquerade, SNAT): look the
    /// conntrack entry up, then the container holding the original connection
    /// (needs root)
    #[arg(long)]
    nat: bool,
    /// With --nat: ask the identd of a host behind this one (not a container here)
    /// on PORT, and relay its answer (ident serve --user makes that query as the
    /// user; only reading conntrack, to know whom to ask, stays privileged)
    #[arg(long, value_name = "PORT", num_args = 0..=1, require_equals = true,
          default_missing_value = "113", requires = "nat",
          value_parser = clap::value_parser!(u16).range(1..))]
    forward: Option<u16>,
}

impl NatArgs {
    fn config(&self, source: Source, timeout: Duration) -> NatConfig {
        NatConfig {
            translate: self.nat,
            forward: self.forward,
            proxies: Vec::new(),
            source,
            timeout,
        }
    }
}

/// How long `lookup --nat --forward` waits for the other host's identd.
const LOOKUP_FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize)]
struct LookupJson {
    uid: u32,
    user: String,
    state: TcpState,
    inode: u64,
    source: Source,
}

pub fn lookup(args: LookupArgs) -> anyhow::Result<Exit> {
    check_port("LOCAL", args.local)?;
    check_port("REMOTE", args.remote)?;
    let tuple = Tuple::new(args.local, args.remote);
    if !tuple.is_one_family() {
        return Err(usage("LOCAL and REMOTE must both be IPv4 or both IPv6"));
    }
    if tuple.has_two_scopes() {
        return Err(usage(
            "LOCAL and REMOTE name different interfaces: a link-local connection is on one",
        ));
    }
    let Some(owner) = lookup::lookup_owner(&tuple, args.source)? else {
        if args.nat.nat {
            let config = args.nat.config(args.source, LOOKUP_FORWARD_TIMEOUT);
            let format = nat::Format::new(args.json, args.numeric);
            return nat::print_lookup(&config, &tuple, format);
        }
        exit::print_error(format_args!("no owner for the connection {tuple}"));
        return Ok(Exit::Failure);
    };
    let mut out = io::stdout().lock();
    if args.json {
        let json = LookupJson {
            uid: owner.uid,
            user: lookup::user_name(owner.uid),
            state: owner.state,
            inode: owner.inode,
            source: owner.source,
        };
        writeln!(out, "{}", serde_json::to_string(&json)?)?;
    } else if args.numeric {
        writeln!(out, "{}", owner.uid)?;
    } else {
        writeln!(out, "{}", lookup::user_name(owner.uid))?;
    }
    out.flush()?;
    Ok(Exit::Success)
}

fn check_port(what: &str, addr: SocketAddr) -> anyhow::Result<()> {
    if addr.port() == 0 {
        return Err(usage(format!("{what} {addr}: port 0 names no connection")));
    }
    Ok(())
}

pub const SERVE_ABOUT: &str = "Serve RFC 1413 ident.\n\n\
    The mode is detected like pidentd's: LISTEN_FDS/LISTEN_PID for this process means \
    systemd socket activation (a connected socket is served once, a listening one is \
    accepted on); --listen means standalone; otherwise stdin decides: a connected socket \
    is inetd nowait (serve it, then exit), a listening socket is inetd wait. --mode \
    insists on one. --listen with a socket on stdin (an inetd line that asks for \
    --listen) is a usage error, reported to syslog only, unless --mode standalone.\n\n\
    Who is named: the owner, unless --hide or --hide-all say otherwise, or ~/.noident \
    exists. A home that does not exist (nobody's /nonexistent) holds no .noident, so its \
    user is named, as oidentd and pidentd name it; HIDDEN-USER is also the answer when \
    the home or the password database cannot be read.\n\n\
    A querier learns only about connections between its own address and the address it \
    connected to; anything else is NO-USER. A connection is closed after 100 requests, \
    or when its first request line is not complete within --first-line-timeout of \
    connecting, or a later one within --timeout of the one before (a deadline for the \
    whole line, however slowly its bytes arrive). Standalone and inetd wait, at most \
    --max-conns connections are served, and --max-conns-per-addr from one address (an \
    IPv6 /64); past either, a new connection takes the place of the oldest idle one (no \
    complete request yet) of the address holding the most, so that no one address can \
    keep the others out. In inetd and systemd modes nothing is ever \
    written to stderr (fd 2 may be the client's socket): logs go to syslog.\n\n\
    Standalone, each bound address is printed on stdout (only there, and to syslog with \
    --log syslog) as `listening on ADDR:PORT` once the server is ready, so port 0 can be \
    used and found.\n\n\
    --nat answers for connections this host masquerades: the conntrack entry whose reply \
    direction is the asked tuple gives the original connection, and the container \
    (network namespace) of this host holding it is named from its own /etc/passwd. \
    --forward asks the identd of a host behind this one instead (it must trust this \
    host with --proxy). Cost: a query that misses this host's own table pays one \
    conntrack lookup and one sock_diag lookup per network namespace; with --source proc \
    (or auto where sock_diag is refused), also whole reads of /proc/net/tcp{,6} and \
    /proc/net/nf_conntrack, which grow with every connection on the machine (sock_diag \
    keeps it to milliseconds). --nat needs root; with --user, the privileged helper \
    reads conntrack and the containers, and --forward's query to the host behind is \
    made as the user.\n\n\
    --config reads oidentd.conf(5) as oidentd 2.5 reads it: the system file's rules \
    (spoof, spoof_all, spoof_privport, hide, random, random_numeric, numeric, forward, \
    force, by user and by host and port ranges) and, where they let it matter, each \
    user's ~/.config/oidentd.conf, else ~/.oidentd.conf, read at each query as that \
    user (never following a link, only a regular file the user owns, at most 64 KiB), \
    so a file in a 0700 home counts. A user's file that cannot be used is logged and \
    the real name answered; every other answer it or the system file gives is logged \
    with the real user. --hide and --hide-all hide whatever the files say; \
    ~/.noident hides where the system file grants hide. SIGHUP reads the system file \
    again; if it no longer parses, the rules read before stay and the error is logged. \
    With --user, the privileged helper reads the files.";

#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// Standalone: listen on ADDR:PORT ([V6ADDR]:PORT, or [V6ADDR%SCOPE]:PORT for a link-local one), or on every address, IPv4 and IPv6, with PORT or :PORT (port 0 picks one); repeatable
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<Listen>,
    /// How the server was started
    #[arg(long, value_enum, default_value_t = ModeChoice::Auto)]
    mode: ModeChoice,
    /// Standalone and inetd wait: connections served at once; when all are taken, a new one replaces the oldest idle one (no complete request yet) of the address holding the most, or is closed if none is idle. At most what RLIMIT_NOFILE allows (the soft limit is raised as needed; the log says when the hard limit bounds it)
    #[arg(long, value_name = "N", default_value_t = server::DEFAULT_MAX_CONNS, value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_conns: u32,
    /// Connections one address may hold (IPv6: one /64, what a host is given); a new one past it takes the place of that address's oldest idle one, or is closed if none is idle [default: half of --max-conns]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_conns_per_addr: Option<u32>,
    /// Seconds a new connection may take to send its first request line in full (at most --timeout)
    #[arg(long, value_name = "SECS", default_value_t = server::DEFAULT_FIRST_LINE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    first_line_timeout: u64,
    /// Seconds a request line may take to arrive in full, counted from the previous one (RFC 1413 suggests 60 to 180)
    #[arg(long, value_name = "SECS", default_value_t = server::DEFAULT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// After binding, run everything that reads the network as this user (its uid and gid, no other group, no capability; verified). A forked helper alone stays root, for one question: who owns a connection and may they be named, since ~/.noident sits in homes often closed (0700) to anyone but their owner and root. The helper takes only the two ports and the ident connection itself, and answers only about that connection's own addresses. With --nat and --proxy the helper also resolves what this host's own table lacks (conntrack, containers' tables and their /etc/passwd: root's to read). With --forward the helper only says which host and ports to ask, since only conntrack, read as root, knows; the query to that host and its reply (network input) are made and parsed as this user, and a host that never answers holds no helper worker
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Answer HIDDEN-USER for this user (name or uid); repeatable
    #[arg(long, value_name = "USER")]
    hide: Vec<String>,
    /// Answer HIDDEN-USER for everyone
    #[arg(long)]
    hide_all: bool,
    /// Answer `USERID : OTHER : <uid>` instead of the user name
    #[arg(long)]
    numeric: bool,
    /// When no owner is found or the lookup fails, answer USERID with this user id instead of NO-USER or UNKNOWN-ERROR; a hidden user stays HIDDEN-USER (oidentd -r)
    #[arg(short = 'r', long, value_name = "USERID", value_parser = wire_user_id)]
    reply: Option<String>,
    /// Answer every well-formed request USERID with this user id, looking nothing up (oidentd -R)
    #[arg(short = 'R', long, value_name = "USERID", value_parser = wire_user_id,
          conflicts_with_all = ["reply", "hide", "hide_all", "numeric", "nat", "proxy"])]
    reply_all: Option<String>,
    /// The operating system field of every USERID reply; OTHER when given without a value [default: UNIX for a name, OTHER for a uid] (oidentd -o)
    #[arg(short = 'o', long, value_name = "OS", num_args = 0..=1,
          default_missing_value = "OTHER", value_parser = wire_token)]
    other: Option<String>,
    /// Name this character set in USERID replies, after the OS: `UNIX,UTF-8` (oidentd -c)
    #[arg(short = 'c', long, value_name = "CHARSET", value_parser = wire_token)]
    charset: Option<String>,
    /// Answer UNKNOWN-ERROR for every error, NO-USER, HIDDEN-USER and INVALID-PORT included, so a querier cannot tell a hidden user from an absent one (oidentd -e)
    #[arg(short = 'e', long)]
    error: bool,
    /// Where to read the kernel's socket table (what each costs: bench/RESULTS-identd.md)
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    source: Source,
    #[command(flatten)]
    nat: NatArgs,
    /// Answer queries forwarded by this NAT host (`racefree ident serve --nat --forward`
    /// or oidentd -f) about this host's connections by ports alone; repeatable
    #[arg(long, value_name = "ADDR")]
    proxy: Vec<std::net::IpAddr>,
    /// Where to log queries and errors [default: syslog under inetd and systemd, stderr standalone]
    #[arg(long, value_enum, value_name = "TARGET")]
    log: Option<LogTarget>,
    #[command(flatten)]
    oidentd: OidentdArgs,
}

/// `--config` and `-C`: oidentd's files.
#[derive(Debug, ClapArgs)]
struct OidentdArgs {
    /// Apply oidentd.conf(5): the system FILE (without one, /etc/oidentd.conf, where
    /// no such file means oidentd's defaults) and users' ~/.config/oidentd.conf or
    /// ~/.oidentd.conf where it lets them matter. SIGHUP reads FILE again
    #[arg(long = "config", value_name = "FILE", num_args = 0..=1, require_equals = true)]
    config: Option<Option<PathBuf>>,
    /// oidentd's spelling of --config=FILE
    #[arg(short = 'C', value_name = "FILE", conflicts_with = "config")]
    config_file: Option<PathBuf>,
}

impl OidentdArgs {
    /// The system file, and whether it was named (then it must exist).
    fn system_file(&self) -> Option<(PathBuf, bool)> {
        match (&self.config, &self.config_file) {
            (Some(Some(file)), _) | (_, Some(file)) => Some((file.clone(), true)),
            (Some(None), None) => Some((PathBuf::from(config::SYSTEM_FILE), false)),
            (None, None) => None,
        }
    }

    fn load(&self) -> anyhow::Result<Option<SystemConfig>> {
        let Some((path, named)) = self.system_file() else {
            return Ok(None);
        };
        Ok(Some(SystemConfig::load(&path, named)?))
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let systemd_fds = server::systemd_fd_count();
    let stdin = server::classify(io::stdin().as_fd());
    let listen = !args.listen.is_empty();
    let mode = server::decide_mode(args.mode, listen, systemd_fds.is_some(), stdin);
    // Quiet when the mode is, and also when the mode cannot be decided but stdin is
    // a socket or systemd passed some: then inetd or systemd started us, and even
    // the usage error must not reach fd 2.
    let quiet = match mode {
        Ok(m) => m.is_quiet(),
        Err(_) => stdin != SocketKind::NotSocket || systemd_fds.is_some(),
    };
    if quiet {
        // Before anything else can write to fd 2: it may be the client's socket.
        server::silence_stderr()?;
    }
    let result = match mode {
        Err(e) => Err(usage(e)),
        Ok(_) if quiet && args.log == Some(LogTarget::Stderr) => Err(usage(
            "--log stderr is refused in inetd and systemd modes: fd 2 may be the client's socket",
        )),
        Ok(mode) => {
            let default = if quiet {
                LogTarget::Syslog
            } else {
                LogTarget::Stderr
            };
            let log = Logger::new(args.log.unwrap_or(default));
            serve_in(mode, &args, systemd_fds.unwrap_or(0), log)
        }
    };
    if quiet && let Err(e) = &result {
        // main's report goes to /dev/null now; syslog is the only place it can be read.
        Logger::new(LogTarget::Syslog).error(&format!("{e:#}"));
    }
    result
}

fn serve_in(mode: Mode, args: &ServeArgs, systemd_fds: usize, log: Logger) -> anyhow::Result<Exit> {
    let mut config = args.server_config()?;
    if let (Source::Auto, Some(why)) = (args.source, lookup::sock_diag_refusal()) {
        log.info(&format!(
            "--source auto reads /proc/net/tcp{{,6}}: netlink sock_diag is refused here ({why})"
        ));
    }
    let fds = match mode {
        Mode::Standalone => return serve_standalone(args, config, log).map(|()| Exit::Success),
        Mode::InetdNowait | Mode::InetdWait => vec![
            io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("duplicating stdin")?,
        ],
        Mode::Systemd => systemd_sockets(systemd_fds)?,
    };
    let kinds: Vec<SocketKind> = fds.iter().map(|fd| server::classify(fd.as_fd())).collect();
    config.max_conns = connections_at_once(&kinds, config.max_conns);
    serve_fds(start_server(args, config, log)?, fds)?;
    Ok(Exit::Success)
}

/// The connections a server handed sockets of these kinds serves at once, which
/// under --user is also its privileged helper's worker count: one for a single
/// connected socket (inetd nowait, systemd Accept=yes), all it will ever serve;
/// otherwise --max-conns. Such a server is started per query, and starting 32
/// helper threads was most of what --user cost there.
fn connections_at_once(kinds: &[SocketKind], max_conns: usize) -> usize {
    match kinds {
        [SocketKind::Connected] => 1,
        _ => max_conns,
    }
}

impl ServeArgs {
    /// What the server answers and how long it waits, as the options say.
    fn server_config(&self) -> anyhow::Result<ServerConfig> {
        let timeout = Duration::from_secs(self.timeout);
        // Refuses --source netlink where sock_diag is not, before serving anything.
        lookup::resolve(self.source)?;
        Ok(ServerConfig {
            source: self.source,
            matcher: lookup::Matcher::FourTuple,
            numeric: self.numeric,
            hide_uids: self
                .hide
                .iter()
                .map(|h| resolve_user(h))
                .collect::<anyhow::Result<_>>()?,
            hide_all: self.hide_all,
            timeout,
            first_line_timeout: Duration::from_secs(self.first_line_timeout),
            max_conns: self.max_conns as usize,
            max_conns_per_addr: self.max_conns_per_addr.map(|n| n as usize),
            nat: NatConfig {
                proxies: self.proxy.clone(),
                ..self.nat.config(self.source, timeout)
            },
            oidentd: self.oidentd.load()?,
            overrides: server::Overrides {
                reply_all: self.reply_all.clone(),
                on_failure: self.reply.clone(),
                errors_unknown: self.error,
            },
            format: proto::ReplyFormat {
                os: self.other.clone(),
                charset: self.charset.clone(),
            },
        })
    }
}

/// Binds every `--listen` address, says where it listens, and serves until stopped.
fn serve_standalone(args: &ServeArgs, config: ServerConfig, log: Logger) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for &listen in &args.listen {
        listeners.extend(listen::bind(listen)?);
    }
    let server = start_server(args, config, log)?;
    let mut out = io::stdout().lock();
    for l in &listeners {
        let addr = l.local_addr()?;
        writeln!(out, "listening on {addr}")?;
        // stdout is where a caller learns the port (`--listen ...:0`); on stderr the
        // line would only be said twice. Syslog, a record kept apart from our
        // stdout, still gets it.
        if server.log().target() == LogTarget::Syslog {
            server.log().info(&format!("listening on {addr}"));
        }
    }
    out.flush()?;
    drop(out);
    server.run(listeners)
}

/// The `count` sockets systemd passed as fds 3 onwards, each checked to be a stream
/// socket before it is taken.
fn systemd_sockets(count: usize) -> anyhow::Result<Vec<OwnedFd>> {
    (0..count)
        .map(|i| {
            let raw = 3 + i32::try_from(i).context("too many LISTEN_FDS")?;
            // SAFETY: systemd passed fds 3.. LISTEN_FDS-1 to this process
            // (LISTEN_PID is ours); nothing else in racefree opens or owns them.
            let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
            if server::classify(borrowed) == SocketKind::NotSocket {
                anyhow::bail!("LISTEN_FDS: fd {raw} is not a stream socket");
            }
            // SAFETY: as above, and this is the one place that takes fd `raw`, once.
            Ok(unsafe { OwnedFd::from_raw_fd(raw) })
        })
        .collect()
}

/// Serves sockets handed to us: connected ones once each, listening ones until stopped.
fn serve_fds(server: Server, fds: Vec<OwnedFd>) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for fd in fds {
        match server::classify(fd.as_fd()) {
            SocketKind::Listening => listeners.push(TcpListener::from(fd)),
            SocketKind::Connected => {
                let stream = std::net::TcpStream::from(fd);
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| "the client".into(), |p| p.to_string());
                if let Err(e) = server.serve_connection(stream) {
                    server.log().error(&format!("serving {peer}: {e}"));
                }
            }
            SocketKind::NotSocket => anyhow::bail!("a passed descriptor is not a stream socket"),
        }
    }
    if !listeners.is_empty() {
        server.run(listeners)?;
    }
    // Under inetd nowait, one process per query: one whose helper died answered
    // UNKNOWN-ERROR, and exits non-zero so that it is seen.
    match server.failure() {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// The server, once everything privileged is done. With `--user`, a privileged
/// helper is forked first (it alone keeps root, to look in 0700 homes for
/// `.noident` and users' oidentd.conf), then this process, which parses network
/// input, drops to the user. With `--config`, SIGHUP reloads from here on.
fn start_server(args: &ServeArgs, config: ServerConfig, log: Logger) -> anyhow::Result<Server> {
    let server = match &args.user {
        None => Server::new(config, log),
        Some(name) => {
            // Refuse an unknown user before forking anything.
            let user = server::privdrop_target(name)?;
            let helper = server::Helper::start(&config, &log)?;
            server::drop_privileges(&user)?;
            Server::with_helper(config, log, helper)
        }
    };
    if server.config().oidentd.is_some() {
        let reloading = server.clone();
        server::reload_on_sighup(move || reloading.reload_config())?;
    }
    Ok(server)
}

/// A `--reply` or `--reply-all` value: what a USERID reply may carry.
fn wire_user_id(s: &str) -> Result<String, String> {
    if proto::is_wire_safe(s) {
        Ok(s.to_string())
    } else {
        Err("a user id is 1 to 512 visible ASCII characters, without ':'".into())
    }
}

/// An `--other` or `--charset` value: one field of a USERID reply.
fn wire_token(s: &str) -> Result<String, String> {
    if proto::is_wire_safe_token(s) {
        Ok(s.to_string())
    } else {
        Err("1 to 64 visible ASCII characters, without ':' or ','".into())
    }
}

/// A `--hide` value: a user name, or a uid number.
fn resolve_user(s: &str) -> anyhow::Result<u32> {
    if let Ok(uid) = s.parse::<u32>() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(s) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => Err(usage(format!("--hide: no user named {s}"))),
        Err(e) => Err(e).with_context(|| format!("looking up user {s}")),
    }
}

pub const QUERY_ABOUT: &str = "Ask HOST's identd who owns the connection between SERVER_PORT on HOST \
    and CLIENT_PORT on this host. Prints the user id on stdout; an ERROR reply prints its \
    token on stderr and exits 1. A reply that is malformed, answers for other ports, or \
    holds control characters (which could drive the terminal it is printed on) or \
    invisible Unicode format characters such as a bidi override U+202E (which make it \
    print as something else) is refused: nothing of it is printed, exit 1.\n\n\
    When the answer is NO-USER and this host has no connection from CLIENT_PORT to \
    HOST's SERVER_PORT but has one from SERVER_PORT to CLIENT_PORT, the message says \
    the ports may be the wrong way round.\n\n\
    --json prints one JSON object on stdout for any reply line, with its verdict: \
    USERID (os, charset, user), ERROR (error: the token as sent) or invalid (reason); \
    always the identd's address, the ports and the line as received (a JSON string; \
    line_hex instead when it is not UTF-8), and a hint when the ports look swapped. \
    The exit status is the same as without --json.";

#[derive(Debug, ClapArgs)]
pub struct QueryArgs {
    /// The host running identd (name or address)
    #[arg(value_name = "HOST")]
    host: String,
    /// The connection's port on HOST
    #[arg(value_name = "SERVER_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    server_port: u16,
    /// The connection's port on this host
    #[arg(value_name = "CLIENT_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    client_port: u16,
    /// identd's port on HOST
    #[arg(long, default_value_t = 113, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Give up after this many seconds (connect, send and reply together)
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Connect from this local address (identd answers only about connections of the
    /// address it is asked from); a link-local one names its interface, fe80::2%eth0
    #[arg(long, value_name = "ADDR", value_parser = lookup::parse_address)]
    bind: Option<SocketAddr>,
    /// Print the reply as one JSON object, whatever its verdict (USERID, ERROR, invalid)
    #[arg(long)]
    json: bool,
}

pub fn query(args: QueryArgs) -> anyhow::Result<Exit> {
    let addrs: Vec<SocketAddr> = host_addrs(&args.host, args.port)?
        .into_iter()
        .filter(|a| args.bind.is_none_or(|b| b.is_ipv4() == a.is_ipv4()))
        .collect();
    if addrs.is_empty() {
        return Err(usage(format!(
            "{} has no address of the --bind address's family",
            args.host
        )));
    }
    let timeout = Duration::from_secs(args.timeout);
    // A reply line that is no usable answer counts as a failure of that address,
    // and the next one is asked; the last failure is the one reported.
    let mut last = None;
    for addr in addrs {
        let asked = client::ask_from(args.bind, addr, args.server_port, args.client_port, timeout);
        match asked {
            Ok(exchange) if matches!(exchange.verdict, client::Verdict::Reply(_)) => {
                return print_reply(&args, addr, exchange);
            }
            other => last = Some(other.map(|exchange| (addr, exchange))),
        }
    }
    match last.expect("at least one address was tried") {
        Ok((addr, exchange)) => print_reply(&args, addr, exchange),
        Err(e) => Err(e),
    }
}

/// HOST's addresses: a scoped link-local address as written (`fe80::1%eth0`, in
/// brackets or not, the interface by name or index), or else what the resolver says.
fn host_addrs(host: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    if host.contains('%') {
        let mut addr =
            lookup::parse_address(host).map_err(|e| usage(format!("HOST {host}: {e}")))?;
        addr.set_port(port);
        return Ok(vec![addr]);
    }
    Ok((host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .collect())
}

/// Prints what identd at `addr` answered: the user id, or the error, or why the
/// line was refused (as text, or all of it as JSON).
fn print_reply(
    args: &QueryArgs,
    addr: SocketAddr,
    exchange: client::Exchange,
) -> anyhow::Result<Exit> {
    use client::Verdict;
    let no_user = matches!(&exchange.verdict,
        Verdict::Reply(client::Reply { kind: proto::ReplyKind::Error(token), .. }) if token == "NO-USER");
    let hint = no_user
        .then(|| swapped_ports_hint(args, addr, exchange.local.ip()))
        .flatten();
    let exit = match &exchange.verdict {
        Verdict::Reply(client::Reply {
            kind: proto::ReplyKind::UserId { .. },
            ..
        }) => Exit::Success,
        _ => Exit::Failure,
    };
    if args.json {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "{}",
            query_json(args, addr, &exchange, hint.as_deref())
        )?;
        out.flush()?;
        return Ok(exit);
    }
    let (s, c) = (args.server_port, args.client_port);
    match exchange.verdict {
        Verdict::Reply(client::Reply {
            kind: proto::ReplyKind::UserId { user, .. },
            ..
        }) => {
            let mut out = io::stdout().lock();
            writeln!(out, "{user}")?;
            out.flush()?;
        }
        Verdict::Reply(client::Reply {
            kind: proto::ReplyKind::Error(token),
            ..
        }) => {
            let hint = hint.map(|h| format!("; {h}")).unwrap_or_default();
            exit::print_error(format_args!(
                "{token} (identd at {addr}, for {s}, {c}){hint}"
            ));
        }
        Verdict::Malformed(bad) => {
            return Err(bad).with_context(|| format!("identd at {addr} sent a malformed reply"));
        }
        Verdict::OtherPorts(reply) => anyhow::bail!(
            "identd at {addr} answered for ports {}, {} instead of {s}, {c}",
            reply.server_port,
            reply.client_port
        ),
    }
    Ok(exit)
}

/// `ident query --json`'s object: every field of the reply, its verdict, and the
/// line as it came.
fn query_json(
    args: &QueryArgs,
    addr: SocketAddr,
    exchange: &client::Exchange,
    hint: Option<&str>,
) -> serde_json::Value {
    use client::Verdict;
    use serde_json::{Value, json};
    let mut object = json!({
        "identd": addr.to_string(),
        "server_port": args.server_port,
        "client_port": args.client_port,
    });
    let fields = match &exchange.verdict {
        Verdict::Reply(client::Reply {
            kind: proto::ReplyKind::UserId { os, charset, user },
            ..
        }) => {
            json!({ "verdict": "USERID", "os": os, "charset": charset, "user": user })
        }
        Verdict::Reply(client::Reply {
            kind: proto::ReplyKind::Error(token),
            ..
        }) => {
            json!({ "verdict": "ERROR", "error": token })
        }
        Verdict::Malformed(bad) => json!({ "verdict": "invalid", "reason": bad.to_string() }),
        Verdict::OtherPorts(reply) => json!({
            "verdict": "invalid",
            "reason": format!("answered for ports {}, {}", reply.server_port, reply.client_port),
        }),
    };
    let map = object.as_object_mut().expect("an object");
    if let Value::Object(fields) = fields {
        map.extend(fields);
    }
    match std::str::from_utf8(&exchange.line) {
        Ok(line) => map.insert("line".into(), line.into()),
        Err(_) => map.insert("line_hex".into(), hex(&exchange.line).into()),
    };
    if let Some(hint) = hint {
        map.insert("hint".into(), hint.into());
    }
    object
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Says the ports look swapped when this host has no connection from CLIENT_PORT to
/// the identd's host's SERVER_PORT (what was asked about) but has one from
/// SERVER_PORT to CLIENT_PORT. `local` is the address the identd saw us from: the
/// address of ours that a connection to that host uses.
fn swapped_ports_hint(
    args: &QueryArgs,
    identd: SocketAddr,
    local: std::net::IpAddr,
) -> Option<String> {
    let (s, c) = (args.server_port, args.client_port);
    let here = |here_port, there_port| {
        let tuple = Tuple::new(
            SocketAddr::new(local, here_port),
            SocketAddr::new(identd.ip(), there_port),
        );
        matches!(lookup::lookup_owner(&tuple, Source::Auto), Ok(Some(_)))
    };
    (!here(c, s) && here(s, c)).then(|| {
        format!(
            "the ports may be the wrong way round: port {s} of this host is connected to \
             port {c} of {}, which `racefree ident query {} {c} {s}` asks about",
            identd.ip(),
            args.host
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_connection_is_served_by_one_slot_and_anything_else_by_max_conns() {
        use SocketKind::{Connected, Listening};
        assert_eq!(connections_at_once(&[Connected], 64), 1);
        assert_eq!(connections_at_once(&[Listening], 64), 64);
        assert_eq!(connections_at_once(&[Connected, Connected], 64), 64);
        assert_eq!(connections_at_once(&[Connected, Listening], 8), 8);
        assert_eq!(connections_at_once(&[], 64), 64);
    }

    use clap::FromArgMatches;

    /// The system file the arguments name, and whether it must exist.
    fn system_file(args: &[&str]) -> Option<(PathBuf, bool)> {
        let command = OidentdArgs::augment_args(clap::Command::new("serve"));
        let matches = command
            .try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap();
        OidentdArgs::from_arg_matches(&matches)
            .unwrap()
            .system_file()
    }

    #[test]
    fn bare_config_is_oidentds_default_path_and_a_named_file_must_exist() {
        assert_eq!(system_file(&[]), None);
        assert_eq!(
            system_file(&["--config"]),
            Some(("/etc/oidentd.conf".into(), false))
        );
        for named in [
            &["--config=/etc/oidentd.conf"][..],
            &["-C", "/etc/oidentd.conf"],
            &["-C/etc/oidentd.conf"],
        ] {
            assert_eq!(
                system_file(named),
                Some(("/etc/oidentd.conf".into(), true)),
                "{named:?}"
            );
        }
    }
}
