//! ctnetlink, read as messages: one `IPCTNL_MSG_CT_GET` carrying `CTA_TUPLE_REPLY`
//! (the kernel hashes either direction, so this is an exact lookup whatever the
//! table size), and the entry in the kernel's answer, checked against the question.

use std::io;
use std::net::SocketAddr;

use anyhow::bail;
use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple as CtTuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};

use super::entry::{Entry, Flow, Miss, canonical_flow};
use crate::ident::netlink::{self, NETFILTER};

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
    use crate::ident::lookup::Tuple;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
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
