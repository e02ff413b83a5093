//! Modes, as coreutils' mkdir computes them, without ever touching the process umask.
//!
//! The umask is process-wide and makedirs is multi-threaded, so it is read (from
//! /proc/self/status) and never set: directories are created with the requested
//! bits and `chmod`ed afterwards only when the umask would have removed some of them.

use std::sync::OnceLock;

use nix::sys::stat::{Mode, umask as umask_set};

/// The process umask, read once.
pub fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| read_umask_from_proc().unwrap_or_else(read_umask_by_setting))
}

fn read_umask_from_proc() -> Option<u32> {
    procfs::process::Process::myself()
        .ok()?
        .status()
        .ok()?
        .umask
}

/// Kernels before 4.7 lack the Umask line. Setting and restoring it is the only other
/// way to read it; racy only against other threads creating files at this instant,
/// and `main` reads it before any thread starts.
fn read_umask_by_setting() -> u32 {
    let old = umask_set(Mode::from_bits_truncate(0o022));
    umask_set(old);
    old.bits()
}

/// Mode bits for a new ancestor: `(0777 & ~umask) | u+wx`, so the walk can always
/// create the next level inside it.
pub fn ancestor_mode(umask: u32) -> u32 {
    (0o777 & !umask) | 0o300
}

/// Mode bits for a new leaf without `-m`: `0777 & ~umask`.
pub fn default_leaf_mode(umask: u32) -> u32 {
    0o777 & !umask
}

/// What `-m MODE` asks of a new leaf: the mode GNU's `mode_adjust` computes from
/// the base 0777, and the bits MODE says anything about (`mode_bits`). Both matter:
/// coreutils changes after `mkdir` only the bits MODE mentions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafMode {
    pub mode: u32,
    pub mentioned: u32,
}

const SUID_SGID: u32 = 0o6000;
/// Every bit chmod(1) can set.
const ALL: u32 = 0o7777;

impl LeafMode {
    /// What `mkdir(2)` is asked for. As in coreutils (lib/mkdir-p.c): while special
    /// bits are still to be set, the directory starts without group and other write,
    /// so nobody can slip a file in before it is ready.
    pub fn mkdir_mode(self) -> u32 {
        let keeps_special = (self.mentioned & SUID_SGID) | (self.mode & 0o1000) == 0;
        let m = if keeps_special {
            self.mode
        } else {
            self.mode & !0o022
        };
        // mkdir(2) applies the permission bits and the sticky bit only.
        m & 0o1777
    }

    /// The mode the leaf must end with, given the mode `mkdir` left it with when the
    /// umask took nothing (`created`, which may carry a setgid bit inherited from the
    /// parent): the bits MODE mentions come from MODE, the others stay as created.
    /// This is coreutils' dirchownmod, so the result is GNU `mkdir -m`'s, bit for bit.
    pub fn final_mode(self, created: u32) -> u32 {
        if (created ^ self.mode) & self.mentioned != 0 {
            self.mode | (created & ALL & !self.mentioned)
        } else {
            created & ALL
        }
    }

    /// Whether `mkdir(mkdir_mode())` under `umask` can leave anything but
    /// [`final_mode`]: then the leaf needs a look (fstat) and perhaps a chmod.
    pub fn needs_fixing(self, umask: u32) -> bool {
        let asked = self.mkdir_mode();
        asked & umask != 0
            || self.final_mode(asked) != asked
            // A setgid bit inherited from the parent must go if MODE clears it.
            || self.mentioned & 0o2000 != 0
    }
}

/// One clause of a symbolic mode after parsing: `[ugoa]*` then an operator and what
/// it applies, as gnulib's modechange.c models it.
#[derive(Clone, Copy, Debug)]
struct Change {
    op: u8,
    /// The who bits (`u`: setuid and rwx of the user, ...); 0 when no who was given,
    /// which makes the clause respect the umask.
    who: u32,
    value: u32,
    kind: Kind,
    /// The bits the clause names; 0 means "derive from who and value".
    mentioned: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `r`, `w`, `x`, `s`, `t` or an octal number.
    Ordinary,
    /// `X`: execute, since the file is a directory.
    ExecuteIfDirectory,
    /// `u`, `g` or `o`: copy that class's current bits.
    Copy,
}

/// Parses `-m MODE` into the mode of a new leaf, as GNU `mkdir -m` does: octal (`755`,
/// `00755`, at most 07777) or chmod(1)'s symbolic grammar (`u=rwx,g=rx,o=`, `a+X`,
/// `go-w`, `+t`, `g=u`, `=755`, `-w`), applied to 0777. A clause with no who (`+x`,
/// `=rx`, `-w`) is limited by the umask, as in chmod(1); `=` clears every bit it covers
/// first, so the result never holds a permission MODE did not grant.
pub fn parse_mode(spec: &str, umask: u32) -> Result<LeafMode, String> {
    let invalid = |why: String| format!("invalid mode {}: {why}", crate::quote::quote(spec));
    let b = spec.as_bytes();
    if b.is_empty() {
        return Err(invalid("empty mode".into()));
    }
    if b[0].is_ascii_digit() && b[0] < b'8' {
        let value = octal(b)
            .ok_or_else(|| invalid("an octal mode is digits 0-7 and at most 07777".into()))?;
        // Fewer than five digits leave a directory's setuid and setgid bits alone
        // unless they are set (`2755`); `00755` names them all.
        let mentioned = if b.len() < 5 {
            (value & SUID_SGID) | 0o1777
        } else {
            ALL
        };
        return Ok(adjust(
            &[Change {
                op: b'=',
                who: ALL,
                value,
                kind: Kind::Ordinary,
                mentioned,
            }],
            umask,
        ));
    }
    let changes = compile(b).map_err(invalid)?;
    Ok(adjust(&changes, umask))
}

/// `digits` as octal, if all are 0-7 and the value fits in 07777.
fn octal(digits: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        v = v * 8 + u32::from(d - b'0');
        if v > ALL {
            return None;
        }
    }
    Some(v)
}

fn compile(b: &[u8]) -> Result<Vec<Change>, String> {
    let mut changes = Vec::new();
    let mut i = 0;
    loop {
        // who*
        let mut who = 0u32;
        loop {
            match b.get(i) {
                Some(b'u') => who |= 0o4700,
                Some(b'g') => who |= 0o2070,
                Some(b'o') => who |= 0o1007,
                Some(b'a') => who |= ALL,
                Some(b'=' | b'+' | b'-') => break,
                Some(&c) => {
                    return Err(format!(
                        "'{}' at byte {} is not u, g, o, a, +, - or =",
                        c as char,
                        i + 1
                    ));
                }
                None => return Err("a clause ends without +, - or =".into()),
            }
            i += 1;
        }
        // (op perms)+
        while let Some(&op @ (b'=' | b'+' | b'-')) = b.get(i) {
            i += 1;
            let mut change = Change {
                op,
                who,
                value: 0,
                kind: Kind::Ordinary,
                mentioned: 0,
            };
            match b.get(i) {
                Some(b'0'..=b'7') => {
                    let start = i;
                    while matches!(b.get(i), Some(b'0'..=b'7')) {
                        i += 1;
                    }
                    if who != 0 {
                        return Err(
                            "an octal number after an operator cannot follow u, g, o or a".into(),
                        );
                    }
                    if !matches!(b.get(i), None | Some(b',')) {
                        return Err("an octal number after an operator must end its clause".into());
                    }
                    change.value = octal(&b[start..i]).ok_or("an octal number above 07777")?;
                    change.who = ALL;
                    change.mentioned = ALL;
                }
                Some(&c @ (b'u' | b'g' | b'o')) => {
                    change.kind = Kind::Copy;
                    change.value = match c {
                        b'u' => 0o700,
                        b'g' => 0o070,
                        _ => 0o007,
                    };
                    i += 1;
                }
                _ => {
                    while let Some(&c) = b.get(i) {
                        match c {
                            b'r' => change.value |= 0o444,
                            b'w' => change.value |= 0o222,
                            b'x' => change.value |= 0o111,
                            b'X' => change.kind = Kind::ExecuteIfDirectory,
                            b's' => change.value |= SUID_SGID,
                            b't' => change.value |= 0o1000,
                            _ => break,
                        }
                        i += 1;
                    }
                }
            }
            changes.push(change);
        }
        match b.get(i) {
            None => return Ok(changes),
            Some(b',') => i += 1,
            Some(&c) => {
                return Err(format!("unexpected '{}' at byte {}", c as char, i + 1));
            }
        }
    }
}

/// gnulib's mode_adjust for a new directory made from 0777.
fn adjust(changes: &[Change], umask: u32) -> LeafMode {
    let mut mode = 0o777u32;
    let mut mentioned_all = 0u32;
    for ch in changes {
        let mentioned = if ch.mentioned != 0 {
            ch.mentioned
        } else if ch.who != 0 {
            ch.who & ch.value
        } else {
            ch.value
        };
        // A directory keeps its setuid and setgid bits unless the clause names them.
        let omit = SUID_SGID & !mentioned;
        let mut value = ch.value;
        match ch.kind {
            Kind::Ordinary => {}
            Kind::Copy => {
                value &= mode;
                let spread = |bits: u32| if value & bits != 0 { bits } else { 0 };
                value |= spread(0o444) | spread(0o222) | spread(0o111);
            }
            Kind::ExecuteIfDirectory => value |= 0o111,
        }
        value &= if ch.who != 0 { ch.who } else { !umask } & !omit;
        match ch.op {
            b'=' => {
                let preserved = if ch.who != 0 { !ch.who } else { 0 } | omit;
                mentioned_all |= ALL & !preserved;
                mode = (mode & preserved) | value;
            }
            b'+' => {
                mentioned_all |= value;
                mode |= value;
            }
            _ => {
                mentioned_all |= value;
                mode &= !value;
            }
        }
    }
    LeafMode {
        mode: mode & ALL,
        mentioned: mentioned_all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode a new leaf ends with under `umask`, parent without setgid.
    fn leaf(spec: &str, umask: u32) -> Result<u32, String> {
        parse_mode(spec, umask).map(|m| m.final_mode(m.mkdir_mode()))
    }

    /// (MODE, umask, what GNU mkdir 9.1 `-m MODE` leaves), measured on coreutils 9.1;
    /// tests/makedirs.rs compares many more against the installed GNU mkdir.
    const GNU: &[(&str, u32, u32)] = &[
        ("755", 0o022, 0o755),
        ("0700", 0o022, 0o700),
        ("1777", 0o022, 0o1777),
        ("00755", 0o022, 0o755),
        ("7777", 0o022, 0o7777),
        ("u=rwx,g=rx,o=", 0o022, 0o750),
        ("a=rx", 0o022, 0o555),
        ("=rx", 0o022, 0o555),
        ("=rx", 0o027, 0o550),
        ("=", 0o022, 0o000),
        ("=w", 0o022, 0o200),
        ("=s", 0o022, 0o6000),
        ("o=t", 0o022, 0o1750),
        ("+t", 0o027, 0o1755),
        ("g-s", 0o277, 0o755),
        ("-w", 0o022, 0o577),
        ("-w", 0o000, 0o555),
        ("-w", 0o277, 0o777),
        ("=755", 0o022, 0o755),
        ("+0755", 0o022, 0o777),
        ("-7", 0o277, 0o770),
        ("=u", 0o022, 0o755),
        ("a=u+t", 0o022, 0o1777),
        ("o=u-g", 0o022, 0o770),
        ("-X", 0o022, 0o666),
        ("=X", 0o022, 0o111),
        ("g=X", 0o022, 0o717),
        ("ug+s", 0o022, 0o6777),
        ("o+s", 0o022, 0o777),
        ("u+t", 0o022, 0o777),
        ("u=rw,g=u", 0o027, 0o667),
        ("u+-x", 0o000, 0o677),
        ("=+", 0o022, 0o000),
        ("uu+x", 0o022, 0o777),
    ];

    #[test]
    fn modes_are_gnu_mkdirs_bit_for_bit() {
        for &(spec, umask, want) in GNU {
            assert_eq!(
                leaf(spec, umask),
                Ok(want),
                "-m {spec} under umask {umask:03o}"
            );
        }
    }

    #[test]
    fn equals_never_keeps_a_bit_it_did_not_grant() {
        for umask in [0o000, 0o022, 0o027, 0o077, 0o777] {
            for spec in ["=", "=r", "=w", "=x", "=rx", "=s", "=t", "=rwx"] {
                let m = leaf(spec, umask).unwrap();
                let granted = parse_mode(&spec.replace('=', "a="), 0).unwrap().mode;
                assert_eq!(m & !granted, 0, "-m {spec} under {umask:03o} gave {m:04o}");
            }
        }
    }

    #[test]
    fn invalid_modes_are_refused_as_gnu_refuses_them() {
        for bad in [
            "",
            "u",
            "u=q",
            "z+x",
            "u+x;",
            "rwx",
            "8",
            "77777",
            "17777",
            "u=755",
            "u+7",
            "u+x,",
            ",u+x",
            ",,",
            "u=rw,,g=r",
            " u+x",
            "u+x ",
            "0o7",
            "=17777",
            "=7x",
        ] {
            assert!(parse_mode(bad, 0o022).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            parse_mode("u+q", 0o022),
            Err("invalid mode 'u+q': unexpected 'q' at byte 3".into())
        );
    }

    #[test]
    fn the_umask_read_from_proc_is_the_one_a_child_inherits() {
        let out = std::process::Command::new("sh")
            .args(["-c", "umask"])
            .output()
            .unwrap();
        let shown = String::from_utf8(out.stdout).unwrap();
        let inherited = u32::from_str_radix(shown.trim(), 8).unwrap();
        assert_eq!(read_umask_from_proc(), Some(inherited));
    }

    #[test]
    fn ancestors_are_always_writable_and_searchable_by_us() {
        assert_eq!(ancestor_mode(0o022), 0o755);
        assert_eq!(ancestor_mode(0o777), 0o300);
        assert_eq!(default_leaf_mode(0o077), 0o700);
    }

    #[test]
    fn a_fix_is_needed_only_when_the_umask_or_special_bits_interfere() {
        let m = |s| parse_mode(s, 0o022).unwrap();
        assert!(!m("755").needs_fixing(0o022));
        assert!(m("777").needs_fixing(0o022));
        assert!(m("2755").needs_fixing(0o000));
        assert!(m("g-s").needs_fixing(0o000));
        assert!(!m("u=rwx,go=rx").needs_fixing(0o022));
    }
}
