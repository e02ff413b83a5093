//! What `makedirs` prints about a path cannot be forged by the path: names are quoted
//! as GNU mkdir -v quotes them (checked against GNU mkdir and ls on generated names),
//! and --json gives every byte back.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;

use racefree::quote::{path_from_json, quote, quote_if_needed};

use crate::testenv::{Expected, TestEnv};

/// Path components made of the bytes that trouble output: every control character,
/// quotes, shell metacharacters, high bytes, valid and broken UTF-8.
fn generated_components(n: usize) -> Vec<Vec<u8>> {
    let pieces: &[&[u8]] = &[
        b"a",
        b"Z9",
        b"-",
        b".",
        b"_",
        b"~",
        b"#",
        b"{",
        b"}",
        b"@",
        b"%",
        b"+",
        b",",
        b":",
        b"=",
        b"]",
        b"[",
        b" ",
        b"'",
        b"\"",
        b"\\",
        b"$",
        b"!",
        b"?",
        b"*",
        b"&",
        b";",
        b"|",
        b"<",
        b">",
        b"(",
        b")",
        b"^",
        b"`",
        b"\n",
        b"\r",
        b"\t",
        b"\x07",
        b"\x08",
        b"\x0b",
        b"\x0c",
        b"\x1b[31m",
        b"\x01",
        b"\x7f",
        b"\xff",
        b"\xc3\xbc",
        b"\xe2\x80\xae",
        b"\xc3",
    ];
    let mut s: u64 = 0x0dd_ba11_cafe_f00d;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut out: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
    while out.len() < n {
        let len = 1 + next() % 4;
        let c: Vec<u8> = (0..len)
            .flat_map(|_| pieces[(next() % pieces.len() as u64) as usize].to_vec())
            .collect();
        if !c.iter().all(|&b| b == b'.') && !out.contains(&c) {
            out.push(c);
        }
    }
    out.retain(|c| !c.iter().all(|&b| b == b'.'));
    out
}

/// coreutils 9.1 (gnulib quotearg before its fix) prints a name holding a `'` and
/// something only double quotes cannot hold, and ending in a byte it escapes, with
/// its escapes inside plain single quotes: `'\303''...`, which a shell reads back as a
/// backslash and digits. racefree quotes these correctly (checked by the round trip
/// through bash), so GNU is not the oracle for them.
fn gnu_91_misquotes(name: &[u8]) -> bool {
    let escaped = |b: u8| !(0x20..0x7f).contains(&b);
    let double_quotable = |b: u8| b.is_ascii_alphanumeric() || b"%+,-./:]_@ '".contains(&b);
    name.contains(&b'\'')
        && name.last().is_some_and(|&b| escaped(b))
        && !name.iter().all(|&b| double_quotable(b))
}

fn os(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

#[test]
fn verbose_names_are_quoted_exactly_as_gnu_mkdir_v_quotes_them() {
    let comps = generated_components(300);
    // Nested two deep, so ancestors are announced too.
    let paths: Vec<OsString> = comps
        .chunks(2)
        .map(|pair| {
            let mut p = pair[0].clone();
            if let Some(second) = pair.get(1) {
                p.push(b'/');
                p.extend_from_slice(second);
            }
            os(&p)
        })
        .collect();
    // GNU mkdir makes its directories in a tree of its own.
    let gnu_dir = TestEnv::new();
    let gnu = Command::new("mkdir")
        .env("LC_ALL", "C")
        .current_dir(gnu_dir.root())
        .args(["-p", "-v", "--"])
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        gnu.status.success(),
        "{}",
        String::from_utf8_lossy(&gnu.stderr)
    );
    let ours_dir = TestEnv::new();
    let ours = ours_dir
        .racefree(["makedirs", "-v", "--"])
        .args(&paths)
        .output()
        .unwrap();
    assert_eq!(ours.status.code(), Some(0));
    let gnu_out = String::from_utf8(gnu.stdout).unwrap();
    let ours_out = String::from_utf8(ours.stdout).expect("quoted output is ASCII");
    // One line per directory made: nothing in a name could start another.
    let made: Vec<OsString> = paths
        .iter()
        .flat_map(|p| {
            let b = p.as_bytes();
            match b.iter().position(|&c| c == b'/') {
                Some(i) => vec![os(&b[..i]), p.clone()],
                None => vec![p.clone()],
            }
        })
        .collect();
    assert_eq!(ours_out.lines().count(), made.len());
    assert_eq!(gnu_out.lines().count(), made.len());
    let mut compared = 0;
    for ((ours, gnu), name) in ours_out.lines().zip(gnu_out.lines()).zip(&made) {
        if gnu_91_misquotes(name.as_bytes()) {
            continue;
        }
        assert_eq!(ours, gnu.replace("mkdir: created", "racefree: created"));
        compared += 1;
    }
    assert!(
        compared > made.len() * 9 / 10,
        "{compared} of {}",
        made.len()
    );
    // Every quoted name is a shell word that gives the name back, byte for byte.
    let words: Vec<String> = made.iter().map(quote).collect();
    let script = format!("printf '%s\\0' {}", words.join(" "));
    let sh = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(sh.status.success());
    let back: Vec<&[u8]> = sh
        .stdout
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .collect();
    let want: Vec<&[u8]> = made.iter().map(|n| n.as_bytes()).collect();
    assert_eq!(back, want);

    // ls shell-escape-always and shell-escape agree with quote and quote_if_needed.
    for style in ["shell-escape-always", "shell-escape"] {
        let f = |n: &OsString| {
            if style == "shell-escape" {
                quote_if_needed(n)
            } else {
                quote(n)
            }
        };
        let firsts: Vec<OsString> = comps
            .iter()
            .step_by(2)
            .filter(|c| !gnu_91_misquotes(c))
            .map(|c| os(c))
            .collect();
        let ls = Command::new("ls")
            .env("LC_ALL", "C")
            .current_dir(gnu_dir.root())
            .args(["-1", "-U", "-d", &format!("--quoting-style={style}"), "--"])
            .args(&firsts)
            .output()
            .unwrap();
        assert!(ls.status.success());
        let want: String = firsts.iter().map(|n| f(n) + "\n").collect();
        assert_eq!(String::from_utf8(ls.stdout).unwrap(), want, "{style}");
    }
}

#[test]
fn a_newline_cannot_forge_a_second_line() {
    let env = TestEnv::new();
    env.assert_run(
        ["makedirs", "-v", "x\nracefree: created directory 'y'"],
        &Expected::success(
            "racefree: created directory 'x'$'\\n''racefree: created directory '\\''y'\\'''\n",
        ),
    );
}

#[test]
fn escape_sequences_and_broken_utf8_are_quoted_in_errors() {
    let env = TestEnv::new();
    fs::write(env.root().join(OsStr::from_bytes(b"\x1b[2Jf\xff")), "").unwrap();
    env.assert_run(
        [
            OsStr::new("makedirs"),
            OsStr::from_bytes(b"\x1b[2Jf\xff/sub"),
        ],
        &Expected::failure(
            1,
            "racefree: error: cannot create directory ''$'\\033''[2Jf'$'\\377''/sub': \
             ''$'\\033''[2Jf'$'\\377' exists and is not a directory (it is a regular file)\n",
        ),
    );
}

#[test]
fn json_is_lossless_for_paths_that_are_not_utf8() {
    let env = TestEnv::new();
    // Two paths a lossy conversion would print alike (U+FFFD).
    let a = os(b"p\xff/q");
    let b = os(b"p\xef\xbf\xbd/q");
    let run = env.assert_run(
        [OsStr::new("makedirs"), OsStr::new("--json"), &a, &b],
        &Expected::success(
            "{\"created\":[{\"bytes_hex\":\"70ff\"},{\"bytes_hex\":\"70ff2f71\"}],\"directory\":true,\"error\":null,\"path\":{\"bytes_hex\":\"70ff2f71\"},\"retries\":0}\n\
             {\"created\":[\"p\u{fffd}\",\"p\u{fffd}/q\"],\"directory\":true,\"error\":null,\"path\":\"p\u{fffd}/q\",\"retries\":0}\n",
        ),
    );
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&run.get_output().stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (line, want) in lines.iter().zip([&a, &b]) {
        assert_eq!(&path_from_json(&line["path"]).unwrap(), want);
        assert_eq!(
            &path_from_json(line["created"].as_array().unwrap().last().unwrap()).unwrap(),
            want
        );
    }
}
