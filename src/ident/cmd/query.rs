//! `racefree ident query`: ask a host's identd.

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use clap::Args as ClapArgs;

use crate::exit::{self, Exit, usage};
use crate::help;
use crate::ident::lookup::{self, Source, Tuple};
use crate::ident::{client, proto};

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
