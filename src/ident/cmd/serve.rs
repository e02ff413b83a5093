//! `racefree ident serve`: the identd, however it was started.

use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args as ClapArgs;

use super::nat::NatArgs;
use crate::exit::{self, Exit, usage};
use crate::help;
use crate::ident::lookup::{self, Source};
use crate::ident::nat::NatConfig;
use crate::ident::server::listen::{self, Listen};
use crate::ident::server::{
    self, LogTarget, Logger, Mode, ModeChoice, Server, ServerConfig, SocketKind, SystemConfig,
};
use crate::ident::{config, proto};
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
