//! A container's own password database and uid mapping, parsed strictly.
//!
//! The container's `/etc/passwd` is written by whoever controls the container, so
//! it is input, not configuration: a line that is not exactly seven fields with a
//! decimal uid is skipped, never half-read, and a name goes on the wire only if
//! `proto::is_wire_safe` allows it (the caller checks).

/// The name of `uid` in passwd(5) text: the first well-formed line with that uid.
/// NIS compat lines (`+`, `-`) and comments name nobody.
pub fn name_of(text: &[u8], uid: u32) -> Option<String> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        let (name, line_uid) = parse_line(line)?;
        (line_uid == uid).then(|| name.to_string())
    })
}

/// `name:password:uid:gid:gecos:home:shell`, exactly seven fields, a non-empty name
/// and decimal uid and gid, no control character anywhere. Returns the name and uid.
fn parse_line(line: &str) -> Option<(&str, u32)> {
    if line.starts_with(['#', '+', '-']) || line.chars().any(char::is_control) {
        return None;
    }
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() != 7 {
        return None;
    }
    let name = fields[0];
    let decimal = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let uid = decimal(fields[2])?;
    decimal(fields[3])?;
    if name.is_empty() {
        return None;
    }
    Some((name, uid))
}

/// Maps a uid of our user namespace (what `/proc/PID/net/tcp` prints to us) to the
/// uid the processes of PID's user namespace see, by `/proc/PID/uid_map`
/// (`inside outside count` per line). `None` when it has no mapping there: such a
/// socket's owner has no name in that namespace.
pub fn map_to_inside(uid_map: &str, outside_uid: u32) -> Option<u32> {
    for line in uid_map.lines() {
        let mut f = line.split_ascii_whitespace().map(|s| s.parse::<u64>().ok());
        let (Some(Some(inside)), Some(Some(outside)), Some(Some(count)), None) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let uid = u64::from(outside_uid);
        if uid >= outside && uid - outside < count {
            return u32::try_from(inside + (uid - outside)).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment:x:1:1:::
+nisuser::::::
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken:x:1000:1000:too:few
bad uid:x:10O0:1000::/home/x:/bin/sh
ircuser:x:1000:1000:IRC User,,,:/home/ircuser:/bin/sh
shadowed:x:1000:1000::/home/s:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
:x:4242:4242::/:/bin/sh
";

    #[test]
    fn the_first_well_formed_line_for_the_uid_names_it() {
        assert_eq!(name_of(PASSWD.as_bytes(), 0).as_deref(), Some("root"));
        assert_eq!(name_of(PASSWD.as_bytes(), 1000).as_deref(), Some("ircuser"));
        assert_eq!(name_of(PASSWD.as_bytes(), 65534).as_deref(), Some("nobody"));
    }

    #[test]
    fn malformed_lines_name_nobody() {
        assert_eq!(name_of(PASSWD.as_bytes(), 4242), None);
        assert_eq!(name_of(PASSWD.as_bytes(), 7), None);
        assert_eq!(name_of(b"x:x:5:5:::\x00", 5), None);
        assert_eq!(name_of(b"shadow:$6$abc:19000:0:99999:7:::", 19000), None);
        assert_eq!(name_of(b"\xff:x:5:5:::", 5), None);
        assert_eq!(name_of(b"", 0), None);
    }

    #[test]
    fn uids_map_through_the_namespace_ranges() {
        let identity = "         0          0 4294967295\n";
        assert_eq!(map_to_inside(identity, 1000), Some(1000));
        // Rootless podman: container 0 is host 1000, 1..65536 are 100000..
        let rootless = "0 1000 1\n1 100000 65536\n";
        assert_eq!(map_to_inside(rootless, 1000), Some(0));
        assert_eq!(map_to_inside(rootless, 100000), Some(1));
        assert_eq!(map_to_inside(rootless, 100999), Some(1000));
        assert_eq!(map_to_inside(rootless, 0), None);
        assert_eq!(map_to_inside(rootless, 165536), None);
        assert_eq!(map_to_inside("garbage\n0 0\n", 0), None);
    }
}
