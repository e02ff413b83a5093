//! Modes, as coreutils' mkdir computes them, without ever touching the process umask.
//!
//! The umask is process-wide and makedirs is multi-threaded, so it is read (from
//! /proc/self/status) and never set: directories are created with the requested
//! bits and `chmod`ed afterwards only when the umask would have removed some of them.

use std::sync::OnceLock;

/// The process umask, read once.
pub fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| read_umask_from_proc().unwrap_or_else(read_umask_by_setting))
}

fn read_umask_from_proc() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

/// Kernels before 4.7 lack the Umask line. Setting and restoring it is the only other
/// way to read it; racy only against other threads creating files at this instant,
/// and `main` reads it before any thread starts.
fn read_umask_by_setting() -> u32 {
    // SAFETY: umask never fails.
    let old = unsafe { libc::umask(0o022) };
    unsafe { libc::umask(old) };
    old as u32
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

/// Whether `mkdir(path, mode)` alone can produce exactly `mode` under `umask`;
/// if not, the directory needs a chmod after it is created. Special bits
/// (setuid, setgid) are never applied by mkdir, so they always need one.
pub fn needs_chmod(mode: u32, umask: u32) -> bool {
    mode & 0o6000 != 0 || mode & umask & 0o1777 != 0
}

/// Parses `-m MODE`: octal (`755`, `0700`, `1777`) or chmod-style symbolic
/// (`u=rwx,g=rx,o=`, `a+x`, `go-w`, `+t`, `g=u`). Symbolic clauses apply to the
/// base `0777`, and a clause with no who (`+x`) respects the umask, as in chmod(1).
pub fn parse_mode(spec: &str, umask: u32) -> Result<u32, String> {
    if spec.is_empty() {
        return Err("empty mode".into());
    }
    if spec.bytes().all(|b| b.is_ascii_digit()) {
        if spec.len() > 4 || spec.bytes().any(|b| b > b'7') {
            return Err(format!(
                "invalid mode '{spec}': octal modes are at most 4 digits 0-7"
            ));
        }
        return Ok(u32::from_str_radix(spec, 8).expect("checked octal"));
    }
    let mut mode = 0o777u32;
    for clause in spec.split(',') {
        mode = apply_clause(clause, mode, umask)
            .map_err(|why| format!("invalid mode '{spec}': {why}"))?;
    }
    Ok(mode)
}

fn apply_clause(clause: &str, mut mode: u32, umask: u32) -> Result<u32, String> {
    let bytes = clause.as_bytes();
    let mut i = 0;
    let mut who = 0u32;
    while i < bytes.len() {
        who |= match bytes[i] {
            b'u' => 0o4700,
            b'g' => 0o2070,
            b'o' => 0o1007,
            b'a' => 0o7777,
            _ => break,
        };
        i += 1;
    }
    let respect_umask = who == 0;
    if who == 0 {
        who = 0o7777;
    }
    if i == bytes.len() {
        return Err(format!("clause '{clause}' has no operator (+, - or =)"));
    }
    while i < bytes.len() {
        let op = bytes[i];
        if !matches!(op, b'+' | b'-' | b'=') {
            return Err(format!("unexpected '{}' in clause '{clause}'", op as char));
        }
        i += 1;
        let mut perm = 0u32;
        // A copy from another class: g=u, o+g, ...
        if i < bytes.len() && matches!(bytes[i], b'u' | b'g' | b'o') {
            let bits = match bytes[i] {
                b'u' => (mode >> 6) & 7,
                b'g' => (mode >> 3) & 7,
                _ => mode & 7,
            };
            perm = bits << 6 | bits << 3 | bits;
            i += 1;
        } else {
            while i < bytes.len() && !matches!(bytes[i], b'+' | b'-' | b'=') {
                perm |= match bytes[i] {
                    b'r' => 0o444,
                    b'w' => 0o222,
                    // X: execute if a directory (we only make directories).
                    b'x' | b'X' => 0o111,
                    b's' => 0o6000,
                    b't' => 0o1000,
                    c => {
                        return Err(format!(
                            "unknown permission '{}' in clause '{clause}'",
                            c as char
                        ));
                    }
                };
                i += 1;
            }
        }
        let mut affected = perm & who;
        if respect_umask {
            affected &= !umask;
        }
        mode = match op {
            b'+' => mode | affected,
            b'-' => mode & !affected,
            _ => {
                // '=' clears everything the who names (the class's special bit
                // included, as chmod does), then sets the new bits.
                let mut clear = who;
                if respect_umask {
                    clear &= !umask;
                }
                (mode & !clear) | affected
            }
        };
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_modes() {
        assert_eq!(parse_mode("755", 0o022), Ok(0o755));
        assert_eq!(parse_mode("0700", 0o022), Ok(0o700));
        assert_eq!(parse_mode("1777", 0o022), Ok(0o1777));
        assert!(parse_mode("8", 0o022).is_err());
        assert!(parse_mode("77777", 0o022).is_err());
    }

    #[test]
    fn symbolic_modes_like_chmod() {
        assert_eq!(parse_mode("u=rwx,g=rx,o=", 0o022), Ok(0o750));
        assert_eq!(parse_mode("a=rx", 0o022), Ok(0o555));
        assert_eq!(parse_mode("go-w", 0o000), Ok(0o755));
        assert_eq!(parse_mode("o-rwx", 0o022), Ok(0o770));
        assert_eq!(parse_mode("u=rwx,g=u,o=", 0o022), Ok(0o770));
        assert_eq!(parse_mode("+t", 0o000), Ok(0o1777));
        assert_eq!(parse_mode("u+s", 0o022), Ok(0o4777));
    }

    #[test]
    fn clauses_without_who_respect_the_umask() {
        // chmod semantics: "-w" with umask 022 removes only the bits the umask allows.
        assert_eq!(parse_mode("-w", 0o022), Ok(0o577));
        assert_eq!(parse_mode("=rx", 0o027), Ok(0o577));
    }

    #[test]
    fn bad_symbolic_modes_are_refused_with_a_reason() {
        for bad in ["", "u", "u=q", "z+x", "u+x;", "rwx"] {
            assert!(parse_mode(bad, 0o022).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn ancestors_are_always_writable_and_searchable_by_us() {
        assert_eq!(ancestor_mode(0o022), 0o755);
        assert_eq!(ancestor_mode(0o777), 0o300);
        assert_eq!(default_leaf_mode(0o077), 0o700);
    }

    #[test]
    fn chmod_is_needed_only_when_the_umask_or_special_bits_interfere() {
        assert!(!needs_chmod(0o755, 0o022));
        assert!(needs_chmod(0o777, 0o022));
        assert!(needs_chmod(0o2755, 0o000));
        assert!(!needs_chmod(0o1755, 0o022));
    }
}
