//! A full `--dir` (no space, no inodes, over quota) is a setup problem: the run
//! stops and says where it ran out of room, with the usage status, instead of
//! judging racefree by calls the filesystem refused.

use std::fmt;

use nix::errno::Errno;

use super::args::WorkArgs;

/// A racer's failure that said the filesystem was full, in its words.
#[derive(Debug)]
pub struct NoRoom(pub String);

impl fmt::Display for NoRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoRoom {}

/// The errno whose words a message carries, if they say the filesystem is full.
/// Racers' failures reach the engine as words, from threads and racer processes
/// alike, so the system's own words are what is matched: the C library's (as
/// `std::io::Error` says them) and nix's, which differ for EDQUOT.
pub fn said(message: &str) -> Option<Errno> {
    [Errno::ENOSPC, Errno::EDQUOT].into_iter().find(|&n| {
        let libc = std::io::Error::from_raw_os_error(n as i32).to_string();
        let libc = libc.split(" (os error").next().unwrap_or_default();
        message.contains(libc) || message.contains(n.desc())
    })
}

/// `e` as it stands, or, if anything in it says the filesystem was full, as a
/// usage error naming the directory the run worked in.
pub fn explain(e: anyhow::Error, work: &WorkArgs) -> anyhow::Error {
    let message = format!("{e:#}");
    let Some(errno) = said(&message) else {
        return e;
    };
    let place = match &work.dir {
        Some(d) => format!("--dir '{}'", d.display()),
        None => format!("$TMPDIR ('{}')", std::env::temp_dir().display()),
    };
    crate::exit::usage(no_room_message(&place, errno, &message))
}

fn no_room_message(place: &str, errno: Errno, said: &str) -> String {
    let words = std::io::Error::from_raw_os_error(errno as i32).to_string();
    let words = words.split(" (os error").next().unwrap_or_default();
    format!(
        "{place} has no room left ({words}): {said}; free space or inodes there, or give another --dir"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_filesystem_anywhere_in_the_error_is_a_usage_error_naming_the_dir() {
        let work = WorkArgs {
            dir: Some("/mnt/small".into()),
            keep: false,
        };
        let e = anyhow::Error::new(NoRoom("round 0: mkdir 'x': No space left on device".into()));
        let e = explain(e, &work);
        assert_eq!(crate::exit::status_of(&e), crate::exit::Exit::Usage);
        assert_eq!(
            format!("{e:#}"),
            "--dir '/mnt/small' has no room left (No space left on device): round 0: mkdir 'x': No space left on device; free space or inodes there, or give another --dir"
        );
        let quota = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EDQUOT))
            .context("creating 'round-3'");
        assert!(format!("{:#}", explain(quota, &work)).contains("(Disk quota exceeded)"));
        // nix words EDQUOT its own way.
        let quota = anyhow::anyhow!("mkdir 'x': {}", Errno::EDQUOT);
        assert_eq!(said(&format!("{quota:#}")), Some(Errno::EDQUOT));
        let other = explain(anyhow::anyhow!("Permission denied"), &work);
        assert_eq!(crate::exit::status_of(&other), crate::exit::Exit::Failure);
    }
}
