//! The conntrack side of `--nat`: which connection did the kernel translate into
//! the one asked about?
//!
//! A masqueraded connection has two directions in the kernel's connection tracker:
//! the *original* one, as its client sent it (`198.18.1.2:40000 -> IRC:6667`), and
//! the *reply* one, as the far end answers it after translation (`IRC:6667 ->
//! PUBLIC:40000`). The ident question names the connection as the far end sees it,
//! so it is the reply direction, reversed; its original direction says where the
//! connection really started.
//!
//! Two sources, as for sockets:
//! - `/proc/net/nf_conntrack` (kernels built with `NF_CONNTRACK_PROCFS`): scanned
//!   for the reply direction printed exactly as the kernel prints it, and only a
//!   line that hits is parsed ([`find_in_text`]).
//! - ctnetlink: one `IPCTNL_MSG_CT_GET` carrying `CTA_TUPLE_REPLY`; the kernel
//!   hashes either direction, so this is an exact lookup whatever the table size.
//!   Messages are netlink-packet-netfilter's; the exchange is ident's one netlink
//!   exchange ([`crate::ident::netlink`]).
//!
//! This file is pure (text and bytes in, entries out: [`parse_line`],
//! [`find_in_text`], [`get_request`], [`take_reply`]) and tested on captured text
//! and bytes; the system calls are in `sys` ([`lookup_proc`], [`lookup_netlink`]).

mod sys;

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use anyhow::bail;
use memchr::memmem;
use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple as CtTuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};

use crate::ident::lookup::Tuple;
use crate::ident::netlink::{self, NETFILTER};
pub use sys::{lookup_netlink, lookup_proc};

/// The kernel's conntrack table when it is compiled in with its /proc view.
pub const PROC_CONNTRACK: &str = "/proc/net/nf_conntrack";

/// One direction of a tracked TCP connection: who sent, to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Flow {
    /// The direction in which the far end of `asked` sends to this host: the reply
    /// direction of a connection this host's side (or a host behind it) opened.
    pub fn reply_of(asked: &Tuple) -> Flow {
        Flow {
            src: asked.remote,
            dst: asked.local,
        }
    }

    /// The connection as its sender's socket sees it: local is the source.
    pub fn as_tuple(&self) -> Tuple {
        Tuple::new(self.src, self.dst)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)
    }
}

/// A tracked TCP connection: both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub original: Flow,
    pub reply: Flow,
}

impl Entry {
    /// True when the two directions are mirror images: nothing was translated, so
    /// the original direction names the same connection that was asked about.
    pub fn is_untranslated(&self) -> bool {
        self.original.src == self.reply.dst && self.original.dst == self.reply.src
    }
}

/// Parses one line of `/proc/net/nf_conntrack`, if it is a TCP entry:
///
/// `ipv4     2 tcp      6 431999 ESTABLISHED src=A dst=B sport=P dport=Q
/// [UNREPLIED] src=B dst=C sport=Q dport=R [ASSURED] mark=0 zone=0 use=2`
///
/// The first `src dst sport dport` group is the original direction, the second the
/// reply. Anything out of that shape (a key missing, repeated, out of order, an
/// address of the wrong family) is no entry: a line we do not fully understand
/// must not translate a connection.
pub fn parse_line(line: &str) -> Option<Entry> {
    let mut tokens = line.split_ascii_whitespace();
    let family = tokens.next()?;
    tokens.next()?; // the family number
    if tokens.next()? != "tcp" {
        return None;
    }
    const KEYS: [&str; 4] = ["src", "dst", "sport", "dport"];
    let mut values: Vec<&str> = Vec::with_capacity(8);
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        if values.len() < 8 && KEYS.contains(&key) {
            if key != KEYS[values.len() % 4] {
                return None;
            }
            values.push(value);
        } else if KEYS.contains(&key) {
            return None;
        }
    }
    if values.len() != 8 {
        return None;
    }
    let addr = |ip: &str, port: &str| -> Option<SocketAddr> {
        let ip: IpAddr = ip.parse().ok()?;
        let ok_family = match family {
            "ipv4" => ip.is_ipv4(),
            "ipv6" => ip.is_ipv6(),
            _ => false,
        };
        ok_family.then_some(SocketAddr::new(ip, port.parse().ok()?))
    };
    let flow = |v: &[&str]| -> Option<Flow> {
        Some(Flow {
            src: addr(v[0], v[2])?,
            dst: addr(v[1], v[3])?,
        })
    };
    Some(Entry {
        original: flow(&values[..4])?,
        reply: flow(&values[4..])?,
    })
}

/// An address as `/proc/net/nf_conntrack` prints it: dotted IPv4, or IPv6 as eight
/// zero-padded groups (`%pI6`), never compressed.
fn proc_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// The text a flow is printed as, trailing space included so `dport=80` cannot
/// match the start of `dport=8000`.
fn needle(flow: &Flow) -> Vec<u8> {
    format!(
        "src={} dst={} sport={} dport={} ",
        proc_ip(flow.src.ip()),
        proc_ip(flow.dst.ip()),
        flow.src.port(),
        flow.dst.port()
    )
    .into_bytes()
}

/// Why a lookup gave no single answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// No entry has this reply direction.
    NotTracked,
    /// Several entries do (conntrack zones can hold the same tuple twice): which
    /// one is meant cannot be told, so none is.
    Ambiguous,
}

/// Finds in the text of `/proc/net/nf_conntrack` the TCP entry whose reply
/// direction is `reply`. Only lines the printed form of `reply` hits are parsed,
/// and each is parsed whole and compared again (the hit must be its reply half).
pub fn find_in_text(text: &[u8], reply: &Flow) -> Result<Entry, Miss> {
    let reply = canonical_flow(reply);
    let needle = needle(&reply);
    let mut found: Option<Entry> = None;
    for hit in memmem::find_iter(text, &needle) {
        let start = memchr::memrchr(b'\n', &text[..hit]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &text[hit..]).map_or(text.len(), |i| hit + i);
        let Some(entry) = std::str::from_utf8(&text[start..end])
            .ok()
            .and_then(parse_line)
        else {
            continue;
        };
        if entry.reply != reply {
            continue;
        }
        match found {
            Some(previous) if previous != entry => return Err(Miss::Ambiguous),
            _ => found = Some(entry),
        }
    }
    found.ok_or(Miss::NotTracked)
}

/// IPv4-mapped addresses as plain IPv4: conntrack tracks an IPv4 connection of a
/// dual-stack socket as IPv4.
pub(super) fn canonical_flow(flow: &Flow) -> Flow {
    let t = flow.as_tuple().canonical();
    let strip = |a: SocketAddr| SocketAddr::new(a.ip(), a.port());
    Flow {
        src: strip(t.local),
        dst: strip(t.remote),
    }
}

/// The `IPCTNL_MSG_CT_GET` request for the entry whose reply direction is `reply`.
pub fn get_request(reply: &Flow) -> NetlinkMessage<NetfilterMessage> {
    let reply = canonical_flow(reply);
    let family = if reply.src.is_ipv4() {
        NetfilterProtoFamily::IPv4
    } else {
        NetfilterProtoFamily::IPv6
    };
    let tuple = vec![
        CtTuple::Ip(vec![
            IPTuple::SourceAddress(reply.src.ip()),
            IPTuple::DestinationAddress(reply.dst.ip()),
        ]),
        CtTuple::Proto(vec![
            ProtoTuple::Protocol(Protocol::Tcp),
            ProtoTuple::SourcePort(reply.src.port()),
            ProtoTuple::DestinationPort(reply.dst.port()),
        ]),
    ];
    let message = NetfilterMessage::new(
        NetfilterHeader::new(family, 0, 0),
        ConntrackMessage::Get(vec![ConntrackAttribute::CtaTupleReply(tuple)]),
    );
    let header = netlink::header(NLM_F_REQUEST);
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    packet
}

/// The entry in a ctnetlink message (the kernel answers a GET with a NEW message
/// holding both tuples). `None` when either tuple is missing, not TCP, or
/// incomplete.
pub fn entry_from_message(message: &ConntrackMessage) -> Option<Entry> {
    let attributes = match message {
        ConntrackMessage::New(a) | ConntrackMessage::Get(a) => a,
        _ => return None,
    };
    let mut original = None;
    let mut reply = None;
    for attribute in attributes {
        match attribute {
            ConntrackAttribute::CtaTupleOrig(t) => original = flow_of(t),
            ConntrackAttribute::CtaTupleReply(t) => reply = flow_of(t),
            _ => {}
        }
    }
    Some(Entry {
        original: original?,
        reply: reply?,
    })
}

fn flow_of(tuple: &[CtTuple]) -> Option<Flow> {
    let (mut src, mut dst, mut sport, mut dport, mut tcp) = (None, None, None, None, false);
    for part in tuple {
        match part {
            CtTuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        _ => {}
                    }
                }
            }
            CtTuple::Proto(protos) => {
                for p in protos {
                    match p {
                        ProtoTuple::Protocol(proto) => tcp = *proto == Protocol::Tcp,
                        ProtoTuple::SourcePort(port) => sport = Some(*port),
                        ProtoTuple::DestinationPort(port) => dport = Some(*port),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !tcp {
        return None;
    }
    Some(Flow {
        src: SocketAddr::new(src?, sport?),
        dst: SocketAddr::new(dst?, dport?),
    })
}

/// Takes one datagram: the kernel's answer to our GET, if it is in it.
pub fn take_reply(bytes: &[u8], wanted: &Flow) -> anyhow::Result<Option<Result<Entry, Miss>>> {
    for message in netlink::our_messages::<NetfilterMessage>(&NETFILTER, bytes) {
        match message?.payload {
            NetlinkPayload::InnerMessage(NetfilterMessage {
                inner: NetfilterMessageInner::Conntrack(ct),
                ..
            }) => {
                // Checked, not trusted: the entry must have the asked reply direction.
                return Ok(Some(match entry_from_message(&ct) {
                    Some(entry) if entry.reply == *wanted => Ok(entry),
                    _ => Err(Miss::NotTracked),
                }));
            }
            NetlinkPayload::Error(e) if e.code.is_some() => {
                let errno = -e.raw_code();
                if errno == libc::ENOENT {
                    return Ok(Some(Err(Miss::NotTracked)));
                }
                bail!(
                    "the kernel refused the ctnetlink request: {}",
                    io::Error::from_raw_os_error(errno)
                );
            }
            NetlinkPayload::Done(_) | NetlinkPayload::Error(_) => {
                return Ok(Some(Err(Miss::NotTracked)));
            }
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    // Captured from /proc/net/nf_conntrack (kernel 6.18) with the NAT test's
    // topology: 198.18.1.2 masqueraded to 198.19.0.1 talking to 198.19.0.2:6667.
    const CAPTURED: &str = "\
ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.1.2 dst=198.19.0.2 sport=54244 dport=6667 src=198.19.0.2 dst=198.19.0.1 sport=6667 dport=54244 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 25 src=198.18.1.2 dst=198.19.0.2 sport=5353 dport=6667 src=198.19.0.2 dst=198.19.0.1 sport=6667 dport=5353 mark=0 zone=0 use=2
ipv4     2 tcp      6 117 SYN_SENT src=198.18.1.2 dst=198.19.0.2 sport=54250 dport=6667 [UNREPLIED] src=198.19.0.2 dst=198.19.0.1 sport=6667 dport=54250 mark=0 zone=0 use=2
ipv6     10 tcp      6 299 ESTABLISHED src=2001:0db8:0000:0000:0000:0000:0000:0002 dst=2001:0db8:0001:0000:0000:0000:0000:0002 sport=40000 dport=6697 src=2001:0db8:0001:0000:0000:0000:0000:0002 dst=2001:0db8:0001:0000:0000:0000:0000:0001 sport=6697 dport=1024 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 86399 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=41000 dport=113 src=127.0.0.1 dst=127.0.0.1 sport=113 dport=41000 [ASSURED] mark=0 zone=0 use=2
";

    #[test]
    fn a_masqueraded_entry_parses_into_both_directions() {
        let e = parse_line(CAPTURED.lines().next().unwrap()).unwrap();
        assert_eq!(e.original.src, sa("198.18.1.2:54244"));
        assert_eq!(e.original.dst, sa("198.19.0.2:6667"));
        assert_eq!(e.reply.src, sa("198.19.0.2:6667"));
        assert_eq!(e.reply.dst, sa("198.19.0.1:54244"));
        assert!(!e.is_untranslated());
        let plain = parse_line(CAPTURED.lines().nth(4).unwrap()).unwrap();
        assert!(plain.is_untranslated());
    }

    #[test]
    fn the_asked_tuple_is_found_by_its_reply_direction() {
        // The IRC server asks the NAT host about its end 198.19.0.1:54244.
        let asked = Tuple::new(sa("198.19.0.1:54244"), sa("198.19.0.2:6667"));
        let e = find_in_text(CAPTURED.as_bytes(), &Flow::reply_of(&asked)).unwrap();
        assert_eq!(
            e.original.as_tuple(),
            Tuple::new(sa("198.18.1.2:54244"), sa("198.19.0.2:6667"))
        );
        // UNREPLIED entries have a reply direction too.
        let syn = Tuple::new(sa("198.19.0.1:54250"), sa("198.19.0.2:6667"));
        assert!(find_in_text(CAPTURED.as_bytes(), &Flow::reply_of(&syn)).is_ok());
        // IPv6, printed uncompressed by the kernel.
        let v6 = Tuple::new(sa("[2001:db8:1::1]:1024"), sa("[2001:db8:1::2]:6697"));
        let e = find_in_text(CAPTURED.as_bytes(), &Flow::reply_of(&v6)).unwrap();
        assert_eq!(e.original.src, sa("[2001:db8::2]:40000"));
    }

    /// Captured from a namespace's /proc/net/nf_conntrack (kernel 6.18): an IPv6
    /// loopback connection, printed with every group zero-padded (`%pI6`).
    const CAPTURED_V6: &str = "ipv6     10 tcp      6 431999 ESTABLISHED src=0000:0000:0000:0000:0000:0000:0000:0001 dst=0000:0000:0000:0000:0000:0000:0000:0001 sport=35254 dport=7000 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=0000:0000:0000:0000:0000:0000:0000:0001 sport=7000 dport=35254 [ASSURED] mark=0 zone=0 use=2\n";

    #[test]
    fn ipv6_is_matched_in_the_kernels_uncompressed_form() {
        let asked = Tuple::new(sa("[::1]:35254"), sa("[::1]:7000"));
        let e = find_in_text(CAPTURED_V6.as_bytes(), &Flow::reply_of(&asked)).unwrap();
        assert!(e.is_untranslated());
        assert_eq!(e.original.as_tuple(), asked);
    }

    #[test]
    fn the_original_direction_udp_and_prefixes_do_not_match() {
        let text = CAPTURED.as_bytes();
        // The original direction reversed is not a reply direction.
        let orig = Tuple::new(sa("198.19.0.2:6667"), sa("198.18.1.2:54244"));
        assert_eq!(
            find_in_text(text, &Flow::reply_of(&orig)),
            Err(Miss::NotTracked)
        );
        // A UDP entry with the same addresses and ports is not TCP.
        let udp = Tuple::new(sa("198.19.0.1:5353"), sa("198.19.0.2:6667"));
        assert_eq!(
            find_in_text(text, &Flow::reply_of(&udp)),
            Err(Miss::NotTracked)
        );
        // dport=5424 must not match the start of dport=54244.
        let prefix = Tuple::new(sa("198.19.0.1:5424"), sa("198.19.0.2:6667"));
        assert_eq!(
            find_in_text(text, &Flow::reply_of(&prefix)),
            Err(Miss::NotTracked)
        );
    }

    #[test]
    fn two_zones_with_the_same_reply_are_ambiguous() {
        let line = CAPTURED.lines().next().unwrap();
        let other_zone = line.replace("src=198.18.1.2", "src=198.18.7.2");
        let text = format!("{line}\n{other_zone}\n");
        let asked = Tuple::new(sa("198.19.0.1:54244"), sa("198.19.0.2:6667"));
        assert_eq!(
            find_in_text(text.as_bytes(), &Flow::reply_of(&asked)),
            Err(Miss::Ambiguous)
        );
        // The same entry twice (a line re-read) is not.
        let twice = format!("{line}\n{line}\n");
        assert!(find_in_text(twice.as_bytes(), &Flow::reply_of(&asked)).is_ok());
    }

    #[test]
    fn malformed_lines_translate_nothing() {
        for bad in [
            "",
            "ipv4 2 tcp 6 1 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2",
            "ipv4 2 tcp 6 1 ESTABLISHED dst=1.2.3.4 src=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1",
            "ipv4 2 tcp 6 1 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1 src=9.9.9.9",
            "ipv4 2 tcp 6 1 ESTABLISHED src=::1 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1",
            "ipv4 2 tcp 6 1 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=70000 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_get_request_carries_the_reply_tuple_and_a_reply_parses_back() {
        let asked = Tuple::new(sa("198.19.0.1:33322"), sa("198.19.0.2:6667"));
        let wanted = Flow::reply_of(&asked);
        let packet = get_request(&wanted);
        let mut bytes = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut bytes);
        // nlmsghdr: type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET.
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), (1 << 8) | 1);
        // nfgenmsg: AF_INET.
        assert_eq!(bytes[16], 2);
        // CTA_TUPLE_REPLY (2), nested.
        assert_eq!(u16::from_ne_bytes([bytes[22], bytes[23]]) & 0x3fff, 2);

        let answer = CAPTURED_GET_REPLY;
        let got = take_reply(answer, &wanted).unwrap().unwrap().unwrap();
        assert_eq!(got.original.src, sa("198.18.1.2:33322"));
        assert_eq!(got.original.dst, sa("198.19.0.2:6667"));
        assert_eq!(got.reply, wanted);
        // The same bytes do not answer for another tuple.
        let other = Flow::reply_of(&Tuple::new(sa("198.19.0.1:1"), sa("198.19.0.2:6667")));
        assert_eq!(
            take_reply(answer, &other).unwrap(),
            Some(Err(Miss::NotTracked))
        );
    }

    /// The kernel's answer to the GET above (an IPCTNL_MSG_CT_NEW message, sequence
    /// 1, from port 0), captured from `lookup_netlink` on the NAT test's topology
    /// (kernel 6.18): nlmsghdr, nfgenmsg, then the attributes.
    const CAPTURED_GET_REPLY: &[u8] = &[
        212, 0, 0, 0, 0, 1, 2, 0, 1, 0, 0, 0, 38, 60, 0, 0, 2, 0, 0, 0, 52, 0, 1, 128, 20, 0, 1,
        128, 8, 0, 1, 0, 198, 18, 1, 2, 8, 0, 2, 0, 198, 19, 0, 2, 28, 0, 2, 128, 5, 0, 1, 0, 6, 0,
        0, 0, 6, 0, 2, 0, 130, 42, 0, 0, 6, 0, 3, 0, 26, 11, 0, 0, 52, 0, 2, 128, 20, 0, 1, 128, 8,
        0, 1, 0, 198, 19, 0, 2, 8, 0, 2, 0, 198, 19, 0, 1, 28, 0, 2, 128, 5, 0, 1, 0, 6, 0, 0, 0,
        6, 0, 2, 0, 26, 11, 0, 0, 6, 0, 3, 0, 130, 42, 0, 0, 8, 0, 3, 0, 0, 0, 1, 158, 8, 0, 8, 0,
        0, 0, 0, 0, 8, 0, 12, 0, 47, 127, 49, 187, 8, 0, 11, 0, 0, 0, 0, 2, 8, 0, 7, 0, 0, 6, 151,
        114, 48, 0, 4, 128, 44, 0, 1, 128, 5, 0, 1, 0, 3, 0, 0, 0, 5, 0, 2, 0, 10, 0, 0, 0, 5, 0,
        3, 0, 10, 0, 0, 0, 6, 0, 4, 0, 35, 0, 0, 0, 6, 0, 5, 0, 35, 0, 0, 0,
    ];
}
