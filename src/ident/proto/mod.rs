//! RFC 1413, the wire protocol alone: frame request lines, parse a request, format a
//! reply, parse a reply. No I/O, so every hostile byte sequence can be tested here.
//!
//! A request is `<port-on-server> , <port-on-client>`: the port of the connection on
//! the host running identd first, then the port on the querier's host. Spaces and
//! tabs may surround either number; each is 1 to 65535, at most 5 decimal digits, no
//! sign. Lines end in CRLF, LF or CR. A reply echoes the two ports in the request's
//! order and ends in CRLF.
//!
//! - `request`: a request line, parsed;
//! - `reply`: a reply line, formatted by the server and parsed by the client;
//! - `framing`: the lines of a request stream.

mod framing;
mod reply;
mod request;

pub use framing::{Framed, LineFramer, MAX_LINE};
pub use reply::{
    Answer, BadReply, ErrorToken, MAX_REPLY_LINE, Reply, ReplyFormat, ReplyKind, format_reply,
    format_reply_as, is_wire_safe, is_wire_safe_token, parse_reply,
};
pub use request::{BadRequest, Request, parse_request};
