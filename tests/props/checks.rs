//! Properties of racefree's parsers, each defined once and run two ways: by the
//! property tests in this directory (proptest, a bounded number of cases, on stable,
//! in every `cargo test`), and by the cargo-fuzz targets in fuzz/ (coverage-guided,
//! for as long as one cares to run them), which include this file by `#[path]`.
//! Each function panics when its property fails; it depends on racefree and std only.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use racefree::ident::config;
use racefree::ident::lookup::scan_proc_table;
use racefree::ident::proto::{
    Answer, BadRequest, ErrorToken, Framed, LineFramer, MAX_LINE, Request, format_reply,
    is_wire_safe, parse_reply, parse_request,
};
use racefree::ident::{Matcher, ReplyKind, TcpState, Tuple};

// ---------------------------------------------------------------------------
// RFC 1413 requests

/// Any bytes: the parser never panics; a request it accepts has ports 1..=65535 and
/// reads back from its canonical form; one it refuses for range echoes numbers of
/// at most five digits, one of them out of range; a reply to it parses back.
pub fn request(line: &[u8]) {
    let parsed = parse_request(line);
    match parsed {
        Ok(r) => {
            assert!(r.server_port != 0 && r.client_port != 0, "{r:?}");
            let again = format!("{} , {}", r.server_port, r.client_port);
            assert_eq!(parse_request(again.as_bytes()), Ok(r));
            // Whatever a request is, no byte of a line break survives in it.
            assert!(!line.contains(&b'\n') && !line.contains(&b'\r'), "{line:?}");
        }
        Err(BadRequest::PortOutOfRange {
            server_port,
            client_port,
        }) => {
            assert!(server_port <= 99_999 && client_port <= 99_999);
            let out_of_range = |p: u32| p == 0 || p > 65_535;
            assert!(out_of_range(server_port) || out_of_range(client_port));
        }
        Err(BadRequest::Malformed) => {}
    }
    let echo = match parsed {
        Ok(Request {
            server_port,
            client_port,
        }) => (u32::from(server_port), u32::from(client_port)),
        Err(bad) => bad.echo(),
    };
    // The server's reply to it, as a client reads it: the ports echoed exactly
    // (a reply to a malformed request echoes 0, 0, which no client accepts).
    let reply = format_reply(echo, &Answer::Error(ErrorToken::NoUser));
    let body = reply.strip_suffix("\r\n").expect("a reply ends in CRLF");
    match parse_reply(body.as_bytes()) {
        Ok(r) => {
            assert_eq!((u32::from(r.server_port), u32::from(r.client_port)), echo);
            assert_eq!(r.kind, ReplyKind::Error("NO-USER".into()));
        }
        Err(_) => assert!(parsed.is_err(), "the reply to {parsed:?} does not parse"),
    }
}

/// A well-formed request, written with any blanks around its parts, parses to its ports.
pub fn request_round_trip(server_port: u16, client_port: u16, blanks: [&str; 4]) {
    let line = format!(
        "{}{server_port}{},{}{client_port}{}",
        blanks[0], blanks[1], blanks[2], blanks[3]
    );
    let want = if server_port == 0 || client_port == 0 {
        Err(BadRequest::PortOutOfRange {
            server_port: server_port.into(),
            client_port: client_port.into(),
        })
    } else {
        Ok(Request {
            server_port,
            client_port,
        })
    };
    assert_eq!(parse_request(line.as_bytes()), want, "{line:?}");
}

// ---------------------------------------------------------------------------
// The line framer

/// What the framer makes of a byte stream: its lines, and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Framing {
    lines: Vec<Vec<u8>>,
    overlong: bool,
    pending: Vec<u8>,
}

/// Feeds `chunks` one after another, taking every complete line after each, as the
/// server's read loop does, until the framer says a line is overlong.
fn frame<'a>(limit: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Framing {
    let mut framer = LineFramer::new(limit);
    let mut lines = Vec::new();
    for chunk in chunks {
        framer.feed(chunk);
        loop {
            match framer.next_line() {
                Framed::Line(l) => lines.push(l),
                Framed::NeedMore => break,
                Framed::Overlong => {
                    return Framing {
                        lines,
                        overlong: true,
                        pending: Vec::new(),
                    };
                }
            }
        }
    }
    Framing {
        lines,
        overlong: false,
        pending: framer.pending().to_vec(),
    }
}

/// However the stream is cut into reads, the framer sees the same lines (a CRLF split
/// between two reads is still one terminator) and the same verdict; no line holds
/// a CR or LF or exceeds the limit; and what it framed is the stream itself.
pub fn framer(data: &[u8], cuts: &[usize]) {
    for limit in [MAX_LINE, 8] {
        let whole = frame(limit, [data]);
        let mut chunks = Vec::new();
        let mut rest = data;
        for &cut in cuts.iter().cycle().take(data.len()) {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(cut.clamp(1, rest.len()));
            chunks.push(head);
            rest = tail;
        }
        if !rest.is_empty() {
            chunks.push(rest);
        }
        let pieces = frame(limit, chunks.iter().copied());
        assert_eq!(pieces, whole, "limit {limit}, reads {chunks:?}");
        for line in &whole.lines {
            assert!(line.len() <= limit);
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
        }
        if !whole.overlong {
            // The stream is the lines, each with some terminator, then what is pending.
            let mut rest = data;
            for line in &whole.lines {
                rest = rest
                    .strip_prefix(&line[..])
                    .expect("a line from the stream");
                rest = rest
                    .strip_prefix(b"\r\n")
                    .or_else(|| rest.strip_prefix(b"\r"))
                    .or_else(|| rest.strip_prefix(b"\n"))
                    .expect("a terminator after each line");
            }
            assert!(
                rest == &whole.pending[..] || rest.strip_prefix(b"\n") == Some(&whole.pending[..]),
                "pending {:?}, stream rest {rest:?}",
                whole.pending
            );
        }
    }
}

// ---------------------------------------------------------------------------
// RFC 1413 replies, as `ident query` reads them

/// Any bytes: the parser never panics; a reply it accepts has non-empty fields with
/// no control character and no blank at either end, and reads back the same from
/// its canonical form.
pub fn reply(line: &[u8]) {
    let Ok(r) = parse_reply(line) else { return };
    assert!(r.server_port != 0 && r.client_port != 0);
    let clean = |field: &str| {
        !field.is_empty()
            && !field.chars().any(char::is_control)
            && field.trim_matches([' ', '\t']) == field
    };
    let canonical = match &r.kind {
        ReplyKind::UserId { os, charset, user } => {
            assert!(clean(os) && clean(user), "{r:?}");
            assert!(!os.contains([',', ':']), "{r:?}");
            if let Some(cs) = charset {
                assert!(
                    !cs.contains(':') && !cs.chars().any(char::is_control),
                    "{r:?}"
                );
            }
            let cs = charset
                .as_ref()
                .map(|c| format!(" , {c}"))
                .unwrap_or_default();
            format!(
                "{} , {} : USERID : {os}{cs} : {user}",
                r.server_port, r.client_port
            )
        }
        ReplyKind::Error(token) => {
            assert!(clean(token), "{r:?}");
            format!("{} , {} : ERROR : {token}", r.server_port, r.client_port)
        }
    };
    assert_eq!(
        parse_reply(canonical.as_bytes()).as_ref(),
        Ok(&r),
        "{canonical:?}"
    );
}

/// What the server says about a user, `ident query` reads back: the name itself
/// when it is fit for the wire, otherwise an error, never a different name.
pub fn reply_round_trip(server_port: u16, client_port: u16, name: &str, uid: u32) {
    let ports = (u32::from(server_port), u32::from(client_port));
    for answer in [
        Answer::User(name.to_string()),
        Answer::Uid(uid),
        Answer::Error(ErrorToken::HiddenUser),
    ] {
        let wire = format_reply(ports, &answer);
        let body = wire.strip_suffix("\r\n").expect("CRLF");
        assert!(!body.contains(['\r', '\n']), "{wire:?}");
        let r = parse_reply(body.as_bytes()).unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        assert_eq!((r.server_port, r.client_port), (server_port, client_port));
        let want = match &answer {
            Answer::User(n) if is_wire_safe(n) => ReplyKind::UserId {
                os: "UNIX".into(),
                charset: None,
                user: n.clone(),
            },
            Answer::User(_) => ReplyKind::Error("UNKNOWN-ERROR".into()),
            Answer::Uid(u) => ReplyKind::UserId {
                os: "OTHER".into(),
                charset: None,
                user: u.to_string(),
            },
            Answer::Error(t) => ReplyKind::Error(t.as_str().into()),
        };
        assert_eq!(r.kind, want, "{wire:?}");
    }
}

// ---------------------------------------------------------------------------
// The /proc/net/tcp row matcher

/// One row of a generated table.
#[derive(Clone, Debug)]
pub struct GenRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// A generated `/proc/net/tcp` (or tcp6) table, the tuple asked for, and how the
/// table is cut into reads.
#[derive(Clone, Debug)]
pub struct TableCase {
    pub ipv6_table: bool,
    pub rows: Vec<GenRow>,
    /// Lines that are not rows (no colon, no newline), inserted before row `.0`.
    pub junk: Vec<(usize, Vec<u8>)>,
    pub wanted: (SocketAddr, SocketAddr),
    pub established_only: bool,
    pub reads: Vec<usize>,
}

/// An address as the kernel prints it: each 32-bit word with `%08X` of its
/// in-memory (host-order) value; in tcp6, an IPv4 address in its mapped form.
fn kernel_hex(ip: IpAddr, ipv6_table: bool) -> String {
    let octets = match (ip, ipv6_table) {
        (IpAddr::V4(v4), true) => v4.to_ipv6_mapped().octets().to_vec(),
        (IpAddr::V4(v4), false) => v4.octets().to_vec(),
        (IpAddr::V6(v6), _) => v6.octets().to_vec(),
    };
    octets
        .chunks_exact(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect()
}

impl TableCase {
    /// The table's text, header first, rows as Linux 6.x prints them.
    pub fn render(&self) -> Vec<u8> {
        let mut out = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n".to_vec();
        for (i, row) in self.rows.iter().enumerate() {
            for (_, junk) in self.junk.iter().filter(|(at, _)| *at == i) {
                out.extend_from_slice(junk);
                out.push(b'\n');
            }
            let end =
                |a: SocketAddr| format!("{}:{:04X}", kernel_hex(a.ip(), self.ipv6_table), a.port());
            out.extend_from_slice(
                format!(
                    "{i:4}: {} {} {:02X} 00000000:00000000 00:00000000 00000000 {:5}        0 {} 1 0000000000000000 20 4 30 10 -1\n",
                    end(row.local),
                    end(row.remote),
                    row.state,
                    row.uid,
                    row.inode
                )
                .as_bytes(),
            );
        }
        out
    }

    /// The naive reference: the first row, in table order, whose ends are the
    /// wanted ones (IPv4-mapped written as IPv4), that a socket still holds
    /// (inode not 0), in a state the matcher takes (not LISTEN; or ESTABLISHED only).
    pub fn reference(&self) -> Option<(u32, u64, TcpState)> {
        let unmap = |a: SocketAddr| match a.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(a, |v4| SocketAddr::new(v4.into(), a.port())),
            IpAddr::V4(_) => a,
        };
        let ends = |a: SocketAddr| (unmap(a).ip(), a.port());
        let (wl, wr) = self.wanted;
        // An IPv6 tuple is never in the IPv4 table; a mixed one is no connection.
        if !self.ipv6_table && (unmap(wl).is_ipv6() || unmap(wr).is_ipv6()) {
            return None;
        }
        if unmap(wl).is_ipv4() != unmap(wr).is_ipv4() {
            return None;
        }
        self.rows
            .iter()
            .find(|r| {
                ends(r.local) == ends(wl)
                    && ends(r.remote) == ends(wr)
                    && r.inode != 0
                    && if self.established_only {
                        r.state == 1
                    } else {
                        r.state != 10
                    }
            })
            .map(|r| (r.uid, r.inode, TcpState::from_kernel(r.state)))
    }
}

/// Hands out bytes in the sizes given, cycling (a size of 0 counts as 1).
struct Reads<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    next: usize,
}

impl Read for Reads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self
            .sizes
            .get(self.next % self.sizes.len().max(1))
            .copied()
            .unwrap_or(usize::MAX);
        self.next += 1;
        let n = size.max(1).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The matcher finds exactly the row the naive reference picks, however the table
/// is cut into reads.
pub fn table(case: &TableCase) {
    let text = case.render();
    let matcher = if case.established_only {
        Matcher::EstablishedOnly
    } else {
        Matcher::FourTuple
    };
    let wanted = Tuple::new(case.wanted.0, case.wanted.1);
    let mut reads = Reads {
        data: &text,
        sizes: &case.reads,
        next: 0,
    };
    let found = scan_proc_table(&mut reads, &wanted, case.ipv6_table, matcher)
        .expect("a table of short rows reads")
        .map(|o| (o.uid, o.inode, o.state));
    assert_eq!(
        found,
        case.reference(),
        "table:\n{}",
        String::from_utf8_lossy(&text)
    );
}

/// Any bytes as a table: the scan never panics, and a row it answers with is one
/// whose text holds the tuple asked for, with an inode.
pub fn table_bytes(text: &[u8], wanted: (SocketAddr, SocketAddr), ipv6_table: bool) {
    let tuple = Tuple::new(wanted.0, wanted.1);
    if let Ok(Some(owner)) = scan_proc_table(&mut &text[..], &tuple, ipv6_table, Matcher::FourTuple)
    {
        assert_ne!(owner.inode, 0);
    }
}

// ---------------------------------------------------------------------------
// makedirs -m

/// Any mode text under any umask: no panic; a mode is at most 0o7777; plain octal
/// of up to four digits is taken as written, whatever the umask.
pub fn mode(spec: &str, umask: u32) {
    let umask = umask & 0o777;
    let parsed = racefree::makedirs::mode::parse_mode(spec, umask);
    if let Ok(m) = parsed {
        assert!(
            m.mode <= 0o7777,
            "{spec:?} under {umask:03o} gave {:o}",
            m.mode
        );
        assert!(
            m.mentioned <= 0o7777,
            "{spec:?} under {umask:03o} names {:o}",
            m.mentioned
        );
    }
    if !spec.is_empty() && spec.len() <= 4 && spec.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        assert_eq!(
            parsed.map(|m| m.mode),
            Ok(u32::from_str_radix(spec, 8).unwrap()),
            "{spec:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// oidentd.conf, the system file and a user's

/// The names of a small test host: root, alice and bob, two hosts, two services.
pub struct ConfNames;

impl config::Names for ConfNames {
    fn uid_of(&self, user: &str) -> Option<u32> {
        match user {
            "root" => Some(0),
            "alice" => Some(1000),
            "bob" => Some(1001),
            _ => None,
        }
    }

    fn address_of(&self, host: &str) -> Option<IpAddr> {
        match host {
            "irc.example.net" => Some(IpAddr::from([192, 0, 2, 7])),
            "bouncer.lan" => Some(IpAddr::from([10, 0, 0, 2])),
            _ => None,
        }
    }

    fn port_of(&self, service: &str) -> Option<u16> {
        match service {
            "auth" => Some(113),
            "ircd" => Some(6667),
            _ => None,
        }
    }
}

/// Deciding on the test host: a user's file given, draws counted and in range.
struct ConfLookups {
    user_file: Option<Result<config::UserPrefs, config::ConfigError>>,
    reads: usize,
    draw: u32,
}

impl config::Lookups for ConfLookups {
    fn uid_of(&self, user: &str) -> Option<u32> {
        config::Names::uid_of(&ConfNames, user)
    }

    fn random_below(&mut self, n: u32) -> u32 {
        assert!(n >= 1, "a draw below 0");
        self.draw = self.draw.wrapping_mul(31).wrapping_add(7);
        self.draw % n
    }

    fn user_file(&mut self) -> Option<Result<config::UserPrefs, config::ConfigError>> {
        self.reads += 1;
        self.user_file.take()
    }
}

/// An error is one line, `FILE:LINE:COLUMN: ...`, at a place inside the text (or
/// just past its end).
fn conf_error_is_placed(text: &[u8], error: &config::ConfigError) {
    let shown = error.to_string();
    assert!(!shown.contains('\n'), "{shown:?}");
    let pos = error.at.expect("a parse error has a place");
    let lines = text.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    assert!(
        pos.line >= 1 && pos.line <= lines,
        "{shown} in {lines} lines"
    );
    assert!(
        pos.column >= 1 && pos.column as usize <= text.len() + 1,
        "{shown}"
    );
    assert!(
        shown.starts_with(&format!("f:{}:{}: ", pos.line, pos.column)),
        "{shown}"
    );
    assert!(shown.contains(", expected "), "{shown}");
}

/// Any bytes as a system file and as a user's: no panic; an error says where; a
/// file that parses prints to text that parses to the same file and prints the
/// same again. When both parse and resolve on the test host, every decision keeps
/// oidentd's rules (see `conf_decisions`).
pub fn oidentd_conf(system: &[u8], user: &[u8]) {
    let system_file = match config::parse_system(system, "f") {
        Ok(file) => {
            let printed = file.to_string();
            let again = config::parse_system(printed.as_bytes(), "f")
                .unwrap_or_else(|e| panic!("{e}\n{printed}"));
            assert_eq!(again, file, "{printed}");
            assert_eq!(again.to_string(), printed);
            Some(file)
        }
        Err(e) => {
            conf_error_is_placed(system, &e);
            None
        }
    };
    let user_file = match config::parse_user(user, "f") {
        Ok(file) => {
            let printed = file.to_string();
            let again = config::parse_user(printed.as_bytes(), "f")
                .unwrap_or_else(|e| panic!("{e}\n{printed}"));
            assert_eq!(again, file, "{printed}");
            assert_eq!(again.to_string(), printed);
            Some(file)
        }
        Err(e) => {
            conf_error_is_placed(user, &e);
            None
        }
    };
    let policy = system_file.and_then(|f| f.resolve("f", &ConfNames).ok());
    let prefs = user_file.map(|f| f.resolve("f", &ConfNames));
    if let Some(policy) = policy {
        conf_decisions(&policy, prefs);
    }
}

/// For each user and a few connections: a forced rule never reads the user's file;
/// HIDDEN-USER, another user's name, a spoofed name toward a port below 1024, a
/// random or numeric answer each need the capability (or a `force`); and every
/// answer but the owner's own name is noted with the owner's name.
fn conf_decisions(
    policy: &config::SystemPolicy,
    prefs: Option<Result<config::UserPrefs, config::ConfigError>>,
) {
    use config::Cap;
    use config::ast::Grant;
    use config::{Reply, Step};
    let here = IpAddr::from([192, 0, 2, 1]);
    let peers = [IpAddr::from([192, 0, 2, 7]), IpAddr::from([10, 0, 0, 2])];
    for (uid, name) in [(0, "root"), (1000, "alice"), (1001, "bob")] {
        for (lport, fport, peer) in [
            (40000, 6667, 0),
            (1023, 113, 1),
            (1, 65535, 0),
            (6667, 1024, 1),
        ] {
            let conn = config::Connection {
                local: SocketAddr::new(here, lport),
                foreign: SocketAddr::new(peers[peer], fport),
            };
            let mut env = ConfLookups {
                user_file: prefs.clone(),
                reads: 0,
                draw: uid,
            };
            let owner = config::Owner { uid, name };
            let step = config::decide(policy, &conn, owner, &mut env);
            let rule = policy.rule_for(uid, &conn);
            let forced = rule.is_some_and(|r| r.forced.is_some());
            assert!(env.reads <= 1);
            if forced || rule.is_none() {
                assert_eq!(env.reads, 0, "{name} {conn:?}");
            }
            let Step::Done(decision) = step else { continue };
            let has = |g: Grant| rule.is_some_and(|r| r.caps.has(g));
            let own = matches!(&decision.reply, Reply::Name(n) if config::Names::uid_of(&ConfNames, n) == Some(uid));
            if !forced {
                match &decision.reply {
                    Reply::RealName => {}
                    Reply::Hidden => assert!(has(Grant::Cap(Cap::Hide))),
                    Reply::Uid(u) => assert!(*u == uid && has(Grant::Cap(Cap::Numeric))),
                    Reply::Name(_) if own => {}
                    Reply::Name(n) => {
                        let other_user = config::Names::uid_of(&ConfNames, n).is_some();
                        let random =
                            has(Grant::Cap(Cap::Random)) || has(Grant::Cap(Cap::RandomNumeric));
                        let spoof = has(Grant::Cap(Cap::Spoof))
                            && (fport >= 1024 || has(Grant::Cap(Cap::SpoofPrivport)))
                            && (!other_user || has(Grant::Cap(Cap::SpoofAll)));
                        assert!(
                            spoof || random,
                            "{name} answered {n:?} on {conn:?} under {rule:?}"
                        );
                    }
                }
            }
            let noted = decision.notes.iter().any(|n| {
                matches!(n, config::Note::Answered { user, reply, .. } if user == name && *reply == decision.reply)
            });
            assert_eq!(
                noted,
                decision.reply != Reply::RealName
                    && !matches!(&decision.reply, Reply::Name(n) if n == name),
                "{decision:?}"
            );
        }
    }
}
