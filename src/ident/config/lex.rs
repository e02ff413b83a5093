//! The tokens of oidentd.conf, cut from bytes the way oidentd 2.5's scanner cuts them.
//!
//! - Blanks are spaces and tabs; a newline ends a line. Nothing else is a blank: a
//!   carriage return, a form feed or a NUL byte is part of a word (so a file with
//!   CRLF line ends does not parse, in oidentd either).
//! - `#` at the start of a token comments out the rest of its line; `/*` opens a
//!   comment that the first `*/` closes, across lines. One left open at the end of
//!   the file ends it silently, as in oidentd.
//! - `{` and `}` are tokens of their own, wherever they stand.
//! - `"` opens a quoted string, which must close on its line. Escapes: `\n \t \r \f
//!   \b \v \a \e`, `\` and one to three octal digits (at most `\377`), `\x` and one or
//!   two hex digits; `\8` and `\9` are errors; `\` before any other character stands
//!   for that character (`\"`, `\\`, `\q` is `q`).
//! - Anything else is a word: a run up to the next blank, newline or brace (a `"`,
//!   `#` or `/*` inside a word is part of it). A word starting with `/` needs a
//!   second character other than `*`; a `/` alone is a stray character.
//! - A word that is exactly a keyword, in any ASCII case, is that keyword; any other
//!   word, like a quoted string, is a value (`user root` and `user "root"` are one
//!   thing; `user "default"` needs its quotes).
//! - A value ends at its first NUL byte, as a C string does; bytes that are not
//!   UTF-8 read as U+FFFD.

use super::text::{Cap, Pos, quote};

/// A word oidentd reads as a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keyword {
    User,
    Default,
    Global,
    To,
    From,
    Fport,
    Lport,
    Allow,
    Deny,
    Force,
    Reply,
    Forward,
    Cap(Cap),
}

impl Keyword {
    /// Every keyword, as written.
    pub(super) const ALL: [(&'static str, Keyword); 12] = [
        ("user", Keyword::User),
        ("default", Keyword::Default),
        ("global", Keyword::Global),
        ("to", Keyword::To),
        ("from", Keyword::From),
        ("fport", Keyword::Fport),
        ("lport", Keyword::Lport),
        ("allow", Keyword::Allow),
        ("deny", Keyword::Deny),
        ("force", Keyword::Force),
        ("reply", Keyword::Reply),
        ("forward", Keyword::Forward),
    ];

    pub(super) fn word(self) -> &'static str {
        if let Keyword::Cap(cap) = self {
            return cap.word();
        }
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(w, _)| *w)
            .expect("every keyword but a capability is in ALL")
    }

    fn of(word: &[u8]) -> Option<Keyword> {
        let is = |w: &str| w.as_bytes().eq_ignore_ascii_case(word);
        Self::ALL
            .iter()
            .find(|(w, _)| is(w))
            .map(|(_, k)| *k)
            .or_else(|| {
                Cap::ALL
                    .into_iter()
                    .find(|c| is(c.word()))
                    .map(Keyword::Cap)
            })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Keyword(Keyword),
    /// A word that is no keyword, or a quoted string: its value.
    Value {
        text: String,
        quoted: bool,
    },
    Open,
    Close,
    /// A `/` that starts neither a comment nor a word.
    Stray,
    End,
}

impl Tok {
    /// How an error message names this token.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Keyword(k) => format!("`{}`", k.word()),
            Tok::Value { text, quoted: true } => format!("string {}", quote(text)),
            Tok::Value {
                text,
                quoted: false,
            } if text.contains('\r') => format!(
                "word {} (a carriage return: CRLF line ends do not parse)",
                quote(text)
            ),
            Tok::Value {
                text,
                quoted: false,
            } => format!("word {}", quote(text)),
            Tok::Open => "`{`".into(),
            Tok::Close => "`}`".into(),
            Tok::Stray => "`/`".into(),
            Tok::End => "end of file".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub tok: Tok,
    pub at: Pos,
}

/// A lexing error: where, and the message.
pub(super) type LexError = (Pos, String);

pub(super) struct Lexer<'a> {
    text: &'a [u8],
    i: usize,
    pos: Pos,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a [u8]) -> Self {
        Lexer {
            text,
            i: 0,
            pos: Pos { line: 1, column: 1 },
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.text.get(self.i + ahead).copied()
    }

    /// Steps over one byte, keeping the line and column (a column counts
    /// characters: UTF-8 continuation bytes do not move it).
    fn bump(&mut self) -> Option<u8> {
        let b = self.peek(0)?;
        self.i += 1;
        if b == b'\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else if b & 0xC0 != 0x80 {
            self.pos.column += 1;
        }
        Some(b)
    }

    pub(super) fn next_token(&mut self) -> Result<Token, LexError> {
        loop {
            let at = self.pos;
            let Some(b) = self.peek(0) else {
                return Ok(Token { tok: Tok::End, at });
            };
            let tok = match b {
                b' ' | b'\t' | b'\n' => {
                    self.bump();
                    continue;
                }
                b'#' => {
                    while self.peek(0).is_some_and(|b| b != b'\n') {
                        self.bump();
                    }
                    continue;
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    self.block_comment();
                    continue;
                }
                b'/' if self.peek(1).is_none_or(ends_word) => {
                    self.bump();
                    Tok::Stray
                }
                b'{' => {
                    self.bump();
                    Tok::Open
                }
                b'}' => {
                    self.bump();
                    Tok::Close
                }
                b'"' => Tok::Value {
                    text: self.quoted()?,
                    quoted: true,
                },
                _ => self.word(),
            };
            return Ok(Token { tok, at });
        }
    }

    fn block_comment(&mut self) {
        self.bump();
        self.bump();
        while let Some(b) = self.bump() {
            if b == b'*' && self.peek(0) == Some(b'/') {
                self.bump();
                return;
            }
        }
    }

    fn word(&mut self) -> Tok {
        let start = self.i;
        while self.peek(0).is_some_and(|b| !ends_word(b)) {
            self.bump();
        }
        let word = &self.text[start..self.i];
        match Keyword::of(word) {
            Some(k) => Tok::Keyword(k),
            None => Tok::Value {
                text: value(word),
                quoted: false,
            },
        }
    }

    /// A quoted string, its opening quote next.
    fn quoted(&mut self) -> Result<String, LexError> {
        let open = self.pos;
        self.bump();
        let mut bytes = Vec::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some(b'\n') => {
                    return Err((
                        open,
                        "a string that does not end on its line, expected a closing `\"`".into(),
                    ));
                }
                Some(b'"') => return Ok(value(&bytes)),
                Some(b'\\') => bytes.push(self.escape(at)?),
                Some(b) => bytes.push(b),
            }
        }
    }

    /// The byte an escape stands for, its backslash already read.
    fn escape(&mut self, at: Pos) -> Result<u8, LexError> {
        let digits = |lexer: &mut Self, max: usize, radix: u32| {
            let mut n = 0u32;
            let mut count = 0;
            while count < max {
                let Some(d) = lexer.peek(0).and_then(|b| char::from(b).to_digit(radix)) else {
                    break;
                };
                lexer.bump();
                n = n * radix + d;
                count += 1;
            }
            n
        };
        match self.peek(0) {
            Some(b'0'..=b'7') => {
                let n = digits(self, 3, 8);
                u8::try_from(n).map_err(|_| {
                    (
                        at,
                        format!(
                            "escape `\\{n:o}` (above \\377), expected an octal escape of one byte"
                        ),
                    )
                })
            }
            Some(b'8' | b'9') => {
                let d = self.peek(0).map(char::from).unwrap_or_default();
                Err((at, format!("escape `\\{d}`, expected an octal digit 0-7")))
            }
            Some(b'x' | b'X') if self.peek(1).is_some_and(|b| b.is_ascii_hexdigit()) => {
                self.bump();
                Ok(digits(self, 2, 16) as u8)
            }
            None | Some(b'\n') => Err((
                at,
                "a `\\` at the end of a line, expected an escaped character".into(),
            )),
            Some(c) => {
                self.bump();
                Ok(match c {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'f' => 0x0c,
                    b'b' => 0x08,
                    b'v' => 0x0b,
                    b'a' => 0x07,
                    b'e' => 0x1b,
                    other => other,
                })
            }
        }
    }
}

/// What ends a word: a blank, a newline or a brace.
fn ends_word(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'{' | b'}')
}

/// A value as oidentd holds it: up to the first NUL.
fn value(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Result<Vec<Tok>, LexError> {
        let mut lexer = Lexer::new(text.as_bytes());
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token()?.tok;
            if t == Tok::End {
                return Ok(out);
            }
            out.push(t);
        }
    }

    fn v(text: &str) -> Tok {
        Tok::Value {
            text: text.into(),
            quoted: false,
        }
    }

    fn q(text: &str) -> Tok {
        Tok::Value {
            text: text.into(),
            quoted: true,
        }
    }

    #[test]
    fn keywords_in_any_case_and_only_as_whole_words() {
        assert_eq!(
            tokens("DEFAULT Spoof_All users reply\"x\" to{").unwrap(),
            [
                Tok::Keyword(Keyword::Default),
                Tok::Keyword(Keyword::Cap(super::super::Cap::SpoofAll)),
                v("users"),
                v("reply\"x\""),
                Tok::Keyword(Keyword::To),
                Tok::Open,
            ]
        );
    }

    #[test]
    fn comments_and_what_is_not_a_comment() {
        assert_eq!(
            tokens("a#b # rest\n/* x\n * y */ c /d //e a/*b */f").unwrap(),
            [v("a#b"), v("c"), v("/d"), v("//e"), v("a/*b"), v("*/f")]
        );
        // An unclosed block comment ends the file; a lone slash is a token.
        assert_eq!(tokens("a /* b\nc").unwrap(), [v("a")]);
        assert_eq!(tokens("/ {").unwrap(), [Tok::Stray, Tok::Open]);
    }

    #[test]
    fn escapes_as_oidentd_reads_them() {
        assert_eq!(
            tokens(r#""a\x41\101\q\e\x4g\"\\\X" "ab\0cd" "\x""#).unwrap(),
            [q("aAAq\u{1b}\u{4}g\"\\X"), q("ab"), q("x")]
        );
        assert_eq!(
            tokens("\"\\n\\t\\r\\f\\b\\v\\a\"").unwrap(),
            [q("\n\t\r\x0c\x08\x0b\x07")]
        );
    }

    #[test]
    fn blanks_are_spaces_and_tabs_only() {
        assert_eq!(tokens("a\r\nb\x0cc").unwrap(), [v("a\r"), v("b\x0cc")]);
    }

    #[test]
    fn bad_strings_say_where() {
        let at = |line, column| Pos { line, column };
        assert_eq!(tokens("x \"ab\ncd\"").unwrap_err().0, at(1, 3));
        assert_eq!(tokens("\"ab").unwrap_err().0, at(1, 1));
        assert_eq!(
            tokens("é \"a\\8\"").unwrap_err(),
            (at(1, 5), "escape `\\8`, expected an octal digit 0-7".into())
        );
        assert_eq!(
            tokens("\"\\400\"").unwrap_err().1,
            "escape `\\400` (above \\377), expected an octal escape of one byte"
        );
        assert_eq!(tokens("\"\\377\"").unwrap(), [q("\u{fffd}")]);
    }
}
