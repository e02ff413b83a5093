//! How racefree prints a name a path (or a peer) chose, so the name cannot forge output.
//!
//! A name is bytes: it may hold a newline (forging a second line of `-v` output),
//! an escape sequence (reaching the terminal), or bytes that are not UTF-8 (which a
//! lossy conversion would print as U+FFFD, so two different names would look alike).
//!
//! - [`quote`] is GNU coreutils' `shell-escape-always` style in the C locale, what
//!   GNU `mkdir -v` prints (`quoteaf`): always in quotes, `'plain'`, and anything not
//!   printable ASCII as a `$'\ooo'` escape: `'nl'$'\n''x'`, `''$'\377'`. Pasted into
//!   a shell it is the name again, byte for byte.
//! - [`quote_if_needed`] is `shell-escape` (`ls --quoting-style=shell-escape`): the
//!   same, but a plain name is printed bare.
//!
//! Both use the C locale's notion of printable whatever the user's locale: every byte
//! above 0x7e is escaped, so a bidirectional override (U+202E) or a zero-width space
//! can never rearrange a line on the terminal. tests/makedirs.rs checks both against
//! GNU `mkdir -v` and `ls` on generated names.
//!
//! [`json_path`] is the lossless JSON form of a path (see its documentation).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// A name as GNU `mkdir -v` quotes it in the C locale: `'a/b'`, `"it's"`,
/// `'nl'$'\n''x'`. Accepts anything that is bytes underneath (`Path`, `OsStr`, `str`).
pub fn quote(name: impl AsRef<OsStr>) -> String {
    render(name.as_ref().as_bytes(), false)
}

/// A name as `ls --quoting-style=shell-escape` prints it in the C locale: bare when
/// plain (`a/b`), otherwise exactly as [`quote`].
pub fn quote_if_needed(name: impl AsRef<OsStr>) -> String {
    render(name.as_ref().as_bytes(), true)
}

/// How one byte is treated, as gnulib's quotearg classifies it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Printed as is and harmless inside double quotes as well (letters, digits,
    /// `%+,-./:@]_`, a space, a leading `#` or `~`, a lone `{` or `}`).
    Compatible,
    /// Printed as is inside single quotes, but special to a shell: `!"$&()*;<=>?[\^`|`
    /// and the others printable ASCII that double quotes would not protect.
    Printable,
    /// The single quote itself.
    SingleQuote,
    /// Not printable in the C locale: written as a `$'...'` escape.
    Escaped(Escape),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// `\n`, `\t`, ...: a one-letter C escape.
    Letter(u8),
    /// `\ooo`.
    Octal(u8),
}

fn classify(bytes: &[u8], i: usize) -> Class {
    let c = bytes[i];
    match c {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => Class::Compatible,
        b'%' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b']' | b'_' | b'@' | b' ' => {
            Class::Compatible
        }
        b'#' | b'~' if i == 0 => Class::Compatible,
        b'{' | b'}' if bytes.len() == 1 => Class::Compatible,
        b'\'' => Class::SingleQuote,
        b'\x07' => Class::Escaped(Escape::Letter(b'a')),
        b'\x08' => Class::Escaped(Escape::Letter(b'b')),
        b'\x0c' => Class::Escaped(Escape::Letter(b'f')),
        b'\n' => Class::Escaped(Escape::Letter(b'n')),
        b'\r' => Class::Escaped(Escape::Letter(b'r')),
        b'\t' => Class::Escaped(Escape::Letter(b't')),
        b'\x0b' => Class::Escaped(Escape::Letter(b'v')),
        0x21..=0x7e => Class::Printable,
        _ => Class::Escaped(Escape::Octal(c)),
    }
}

/// Whether `shell-escape` may print the name bare: nothing in it a shell would read
/// differently. A space, `'`, a leading `#`/`~`, a lone brace and every shell
/// metacharacter need quotes even though some are "compatible" above.
fn is_plain(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.iter().enumerate().all(|(i, &c)| match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
            b'%' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b']' | b'_' | b'@' => true,
            b'#' | b'~' => i != 0,
            b'{' | b'}' => bytes.len() > 1,
            _ => false,
        })
}

fn render(bytes: &[u8], bare_if_plain: bool) -> String {
    if bare_if_plain && is_plain(bytes) {
        return String::from_utf8(bytes.to_vec()).expect("plain names are ASCII");
    }
    let classes: Vec<Class> = (0..bytes.len()).map(|i| classify(bytes, i)).collect();
    // A name whose only trouble is an apostrophe reads better in double quotes, and
    // needs no escapes there when everything else in it is compatible: "it's".
    if classes.contains(&Class::SingleQuote)
        && classes
            .iter()
            .all(|c| matches!(c, Class::Compatible | Class::SingleQuote))
    {
        let mut s = String::with_capacity(bytes.len() + 2);
        s.push('"');
        s.push_str(std::str::from_utf8(bytes).expect("compatible bytes are ASCII"));
        s.push('"');
        return s;
    }
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('\'');
    // Inside a `'$'...` segment: the next plain byte must first close it and reopen
    // an ordinary single-quoted one.
    let mut in_escape = false;
    for (&c, class) in bytes.iter().zip(classes) {
        match class {
            Class::Escaped(esc) => {
                if !in_escape {
                    s.push_str("'$'");
                    in_escape = true;
                }
                s.push('\\');
                match esc {
                    Escape::Letter(l) => s.push(l as char),
                    Escape::Octal(o) => {
                        s.push((b'0' + (o >> 6)) as char);
                        s.push((b'0' + ((o >> 3) & 7)) as char);
                        s.push((b'0' + (o & 7)) as char);
                    }
                }
            }
            Class::SingleQuote => {
                s.push_str("'\\''");
                in_escape = false;
            }
            Class::Compatible | Class::Printable => {
                if in_escape {
                    s.push_str("''");
                    in_escape = false;
                }
                s.push(c as char);
            }
        }
    }
    s.push('\'');
    s
}

/// A path in `--json` output, lossless: a JSON string when the path is valid UTF-8
/// (almost always), otherwise an object `{"bytes_hex": "..."}` holding every byte of
/// the path as two lowercase hex digits. A reader decodes it with, for example,
/// Python's `bytes.fromhex(v["bytes_hex"])`; two different paths never print alike.
pub fn json_path(path: impl AsRef<OsStr>) -> serde_json::Value {
    let bytes = path.as_ref().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::Value::String(s.to_owned()),
        Err(_) => {
            let mut hex = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                hex.push_str(&format!("{b:02x}"));
            }
            serde_json::json!({ "bytes_hex": hex })
        }
    }
}

/// The inverse of [`json_path`], for readers written in Rust (and for the tests).
pub fn path_from_json(v: &serde_json::Value) -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    match v {
        serde_json::Value::String(s) => Some(s.into()),
        serde_json::Value::Object(o) if o.len() == 1 => {
            let hex = o.get("bytes_hex")?.as_str()?.as_bytes();
            if hex.len() % 2 != 0 {
                return None;
            }
            let bytes = hex
                .chunks(2)
                .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            // The object form is only ever written for bytes that are not UTF-8.
            if std::str::from_utf8(&bytes).is_ok() {
                return None;
            }
            Some(std::ffi::OsString::from_vec(bytes))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(bytes: &[u8]) -> String {
        quote(OsStr::from_bytes(bytes))
    }

    fn qn(bytes: &[u8]) -> String {
        quote_if_needed(OsStr::from_bytes(bytes))
    }

    /// Each row: the name, GNU `mkdir -v`'s quoting, `ls --quoting-style=shell-escape`'s
    /// (both in the C locale, coreutils 9.1).
    const TABLE: &[(&[u8], &str, &str)] = &[
        (b"plain", "'plain'", "plain"),
        (b"a/b/c", "'a/b/c'", "a/b/c"),
        (b"", "''", "''"),
        (b"sp ace", "'sp ace'", "'sp ace'"),
        (b"nl\nx", "'nl'$'\\n''x'", "'nl'$'\\n''x'"),
        (b"it's", "\"it's\"", "\"it's\""),
        (b"it's!", "'it'\\''s!'", "'it'\\''s!'"),
        (b"\xff", "''$'\\377'", "''$'\\377'"),
        (b"\xc3\xbc", "''$'\\303\\274'", "''$'\\303\\274'"),
        (b"a$b", "'a$b'", "'a$b'"),
        (b"~x", "'~x'", "'~x'"),
        (b"a~", "'a~'", "a~"),
        (b"#a", "'#a'", "'#a'"),
        (b"a#", "'a#'", "a#"),
        (b"-x", "'-x'", "-x"),
        (b"a=b", "'a=b'", "'a=b'"),
        (b"a@b", "'a@b'", "a@b"),
        (b"{a}", "'{a}'", "{a}"),
        (b"{", "'{'", "'{'"),
        (b"e\x1b[1m", "'e'$'\\033''[1m'", "'e'$'\\033''[1m'"),
        (b"\x1b\x07x", "''$'\\033\\a''x'", "''$'\\033\\a''x'"),
        (
            b"a\xe2\x80\xaeb",
            "'a'$'\\342\\200\\256''b'",
            "'a'$'\\342\\200\\256''b'",
        ),
        (b"'\n", "''\\'''$'\\n'", "''\\'''$'\\n'"),
        (b"\x7f", "''$'\\177'", "''$'\\177'"),
        (b"a\\b", "'a\\b'", "'a\\b'"),
        (b"q?", "'q?'", "'q?'"),
    ];

    #[test]
    fn quotes_like_gnu_in_the_c_locale() {
        for (name, always, if_needed) in TABLE {
            assert_eq!(
                &q(name),
                always,
                "quote({:?})",
                String::from_utf8_lossy(name)
            );
            assert_eq!(
                &qn(name),
                if_needed,
                "quote_if_needed({:?})",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn a_quoted_name_is_one_line_of_printable_ascii() {
        for b in 0u8..=255 {
            let name = [b'x', b, b'y'];
            let out = q(&name);
            assert!(out.bytes().all(|c| (0x20..0x7f).contains(&c)), "{out:?}");
        }
    }

    #[test]
    fn json_paths_round_trip_and_never_collide() {
        let names: &[&[u8]] = &[
            b"plain",
            b"\xff",
            b"\xef\xbf\xbd",
            b"a\nb",
            b"\xc3",
            b"\xc3\xbc",
        ];
        let mut seen = std::collections::HashSet::new();
        for name in names {
            let v = json_path(OsStr::from_bytes(name));
            assert!(seen.insert(v.to_string()), "{v} printed twice");
            let back = path_from_json(&v).unwrap();
            assert_eq!(back.as_bytes(), *name);
        }
        assert_eq!(
            json_path(OsStr::from_bytes(b"a\xffb")).to_string(),
            r#"{"bytes_hex":"61ff62"}"#
        );
        assert_eq!(json_path("ok").to_string(), r#""ok""#);
        // The object form for UTF-8 bytes is not what we write, so not what we read.
        assert!(path_from_json(&serde_json::json!({"bytes_hex": "6f6b"})).is_none());
    }
}
