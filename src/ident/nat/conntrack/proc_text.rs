//! `/proc/net/nf_conntrack`, read as text: the reply direction is searched for
//! exactly as the kernel prints it, and only a line that hits is parsed.

use std::net::{IpAddr, SocketAddr};

use memchr::memmem;

use super::entry::{Entry, Flow, Miss, canonical_flow};

/// The kernel's conntrack table when it is compiled in with its /proc view.
pub const PROC_CONNTRACK: &str = "/proc/net/nf_conntrack";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::lookup::Tuple;

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
}
