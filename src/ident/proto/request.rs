//! A request line: `<port-on-server> , <port-on-client>`, parsed strictly.

/// A well-formed request: the ports as the querier sent them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The port on the host running identd (the queried connection's local port).
    pub server_port: u16,
    /// The port on the querier's host (the queried connection's remote port).
    pub client_port: u16,
}

/// Why a request line is not a request. Both answer `INVALID-PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Two numbers of at most 5 digits were there, but one is 0 or above 65535:
    /// the reply echoes them.
    PortOutOfRange { server_port: u32, client_port: u32 },
    /// Not two short numbers separated by a comma: the reply echoes `0, 0`.
    Malformed,
}

impl BadRequest {
    /// The port pair a reply to this bad request echoes.
    pub fn echo(self) -> (u32, u32) {
        match self {
            BadRequest::PortOutOfRange {
                server_port,
                client_port,
            } => (server_port, client_port),
            BadRequest::Malformed => (0, 0),
        }
    }
}

/// Parses one request line (its terminator already removed).
pub fn parse_request(line: &[u8]) -> Result<Request, BadRequest> {
    let mut rest = skip_blanks(line);
    let (server_port, after) = number(rest).ok_or(BadRequest::Malformed)?;
    rest = skip_blanks(after);
    rest = rest.strip_prefix(b",").ok_or(BadRequest::Malformed)?;
    rest = skip_blanks(rest);
    let (client_port, after) = number(rest).ok_or(BadRequest::Malformed)?;
    if !skip_blanks(after).is_empty() {
        return Err(BadRequest::Malformed);
    }
    match (port(server_port), port(client_port)) {
        (Some(server_port), Some(client_port)) => Ok(Request {
            server_port,
            client_port,
        }),
        _ => Err(BadRequest::PortOutOfRange {
            server_port,
            client_port,
        }),
    }
}

fn skip_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', tail @ ..] = s {
        s = tail;
    }
    s
}

/// 1 to 5 ASCII digits at the start of `s`; a sixth digit makes the whole thing
/// malformed rather than silently truncated.
fn number(s: &[u8]) -> Option<(u32, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 {
        return None;
    }
    let value = s[..digits]
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Some((value, &s[digits..]))
}

fn port(n: u32) -> Option<u16> {
    u16::try_from(n).ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &[u8]) -> Result<Request, BadRequest> {
        parse_request(s)
    }

    fn ok(server_port: u16, client_port: u16) -> Result<Request, BadRequest> {
        Ok(Request {
            server_port,
            client_port,
        })
    }

    #[test]
    fn plain_requests_parse_in_the_order_sent() {
        assert_eq!(req(b"6193, 23"), ok(6193, 23));
        assert_eq!(req(b"6193,23"), ok(6193, 23));
        assert_eq!(req(b"23 , 6193"), ok(23, 6193));
        assert_eq!(req(b" \t6193 \t,\t 23 \t"), ok(6193, 23));
        assert_eq!(req(b"1,65535"), ok(1, 65535));
        assert_eq!(req(b"00023,00001"), ok(23, 1));
    }

    #[test]
    fn out_of_range_ports_are_echoed_as_invalid() {
        assert_eq!(
            req(b"0, 23"),
            Err(BadRequest::PortOutOfRange {
                server_port: 0,
                client_port: 23
            })
        );
        assert_eq!(
            req(b"65536,1"),
            Err(BadRequest::PortOutOfRange {
                server_port: 65536,
                client_port: 1
            })
        );
        assert_eq!(
            req(b"99999 , 99999"),
            Err(BadRequest::PortOutOfRange {
                server_port: 99999,
                client_port: 99999
            })
        );
    }

    #[test]
    fn anything_but_two_short_unsigned_numbers_is_malformed() {
        for bad in [
            &b""[..],
            b" ",
            b"23",
            b"23,",
            b",23",
            b"23 23",
            b"+23,1",
            b"-23,1",
            b"23,-1",
            b"123456,1",
            b"1,000001",
            b"1,2,3",
            b"1,2 x",
            b"0x10,1",
            b"1.0,2",
            b"\xef\xbc\x91,2",
            b"1,\x002",
            b"\x001,2",
            b"1,2\x00",
            b"1\x00,2",
            b"1\x0b,2",
            b"\xff\xfe",
            b"1,2\r",
            b"1,2\n",
        ] {
            assert_eq!(req(bad), Err(BadRequest::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn bad_requests_echo_what_they_can() {
        assert_eq!(BadRequest::Malformed.echo(), (0, 0));
        assert_eq!(
            BadRequest::PortOutOfRange {
                server_port: 0,
                client_port: 7
            }
            .echo(),
            (0, 7)
        );
    }
}
