//! Request lines out of a byte stream: CRLF, LF or CR, bounded in length.

/// The longest request line accepted, terminator excluded. A line still without an
/// end after this many bytes is refused and the connection closed.
pub const MAX_LINE: usize = 1000;

/// Splits a byte stream into lines ended by CRLF, LF or CR, bounded in length.
///
/// A CR followed by LF is one terminator even when the two arrive in separate
/// reads, so `1,2\r` then `\n3,4\r\n` is two requests, not three.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// The last terminator seen was a CR: a LF at the very start of the next bytes
    /// belongs to it.
    after_cr: bool,
    limit: usize,
}

/// One step of [`LineFramer::next_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// A complete line, terminator removed.
    Line(Vec<u8>),
    /// More than the limit arrived without a terminator: refuse and close.
    Overlong,
    /// No complete line buffered yet.
    NeedMore,
}

impl LineFramer {
    /// A framer that refuses lines longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            after_cr: false,
            limit,
        }
    }

    /// Appends bytes just read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete line, if any.
    pub fn next_line(&mut self) -> Framed {
        if self.after_cr && !self.buf.is_empty() {
            if self.buf[0] == b'\n' {
                self.buf.remove(0);
            }
            self.after_cr = false;
        }
        match self.buf.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(end) if end <= self.limit => {
                let line = self.buf[..end].to_vec();
                let mut consumed = end + 1;
                if self.buf[end] == b'\r' {
                    match self.buf.get(end + 1) {
                        Some(b'\n') => consumed += 1,
                        Some(_) => {}
                        None => self.after_cr = true,
                    }
                }
                self.buf.drain(..consumed);
                Framed::Line(line)
            }
            Some(_) => Framed::Overlong,
            None if self.buf.len() > self.limit => Framed::Overlong,
            None => Framed::NeedMore,
        }
    }

    /// Bytes received after the last complete line (an unterminated request).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::{BadRequest, parse_request};
    use super::*;

    fn lines(framer: &mut LineFramer) -> Vec<Framed> {
        let mut out = Vec::new();
        loop {
            match framer.next_line() {
                Framed::NeedMore => return out,
                f => {
                    let stop = f == Framed::Overlong;
                    out.push(f);
                    if stop {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn lines_end_in_crlf_lf_or_cr() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,2\r\n3,4\n5,6\r7,8");
        assert_eq!(
            lines(&mut f),
            vec![
                Framed::Line(b"1,2".to_vec()),
                Framed::Line(b"3,4".to_vec()),
                Framed::Line(b"5,6".to_vec())
            ]
        );
        assert_eq!(f.pending(), b"7,8");
        f.feed(b"\r\n");
        assert_eq!(lines(&mut f), vec![Framed::Line(b"7,8".to_vec())]);
        assert!(f.pending().is_empty());
    }

    #[test]
    fn a_crlf_split_across_reads_is_one_terminator() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,2\r");
        assert_eq!(lines(&mut f), vec![Framed::Line(b"1,2".to_vec())]);
        f.feed(b"\n3,4\r");
        assert_eq!(lines(&mut f), vec![Framed::Line(b"3,4".to_vec())]);
        // A CR then a bare CR: the second ends an empty line.
        f.feed(b"\r");
        assert_eq!(lines(&mut f), vec![Framed::Line(Vec::new())]);
    }

    #[test]
    fn lf_cr_is_two_terminators_and_blank_lines_are_lines() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,2\n\r\n");
        assert_eq!(
            lines(&mut f),
            vec![Framed::Line(b"1,2".to_vec()), Framed::Line(Vec::new())]
        );
    }

    #[test]
    fn nul_bytes_do_not_end_a_line() {
        let mut f = LineFramer::new(MAX_LINE);
        f.feed(b"1,\x002\r\n");
        let got = lines(&mut f);
        assert_eq!(got, vec![Framed::Line(b"1,\x002".to_vec())]);
        assert_eq!(parse_request(b"1,\x002"), Err(BadRequest::Malformed));
    }

    #[test]
    fn a_line_of_the_limit_is_accepted_one_more_byte_is_refused() {
        let mut f = LineFramer::new(MAX_LINE);
        let exact = vec![b' '; MAX_LINE];
        f.feed(&exact);
        assert_eq!(f.next_line(), Framed::NeedMore);
        f.feed(b"\n");
        assert_eq!(f.next_line(), Framed::Line(exact));

        let mut f = LineFramer::new(MAX_LINE);
        f.feed(&vec![b'1'; MAX_LINE + 1]);
        assert_eq!(f.next_line(), Framed::Overlong);

        // Even when the terminator arrives in the same read, the line is too long.
        let mut f = LineFramer::new(MAX_LINE);
        let mut long = vec![b' '; MAX_LINE + 1];
        long.extend_from_slice(b"1,2\r\n");
        f.feed(&long);
        assert_eq!(f.next_line(), Framed::Overlong);
    }

    #[test]
    fn a_short_line_after_an_answered_one_is_measured_alone() {
        let mut f = LineFramer::new(10);
        f.feed(b"1,2\n");
        assert_eq!(f.next_line(), Framed::Line(b"1,2".to_vec()));
        f.feed(b"0123456789");
        assert_eq!(f.next_line(), Framed::NeedMore);
        f.feed(b"0");
        assert_eq!(f.next_line(), Framed::Overlong);
    }
}
