//! The state a round leaves on disk, as compared across runs: a snapshot of a tree
//! (names, types, modes, sizes, content hashes), the differences between two in a
//! few words each ("a/b: missing in the racy run", "count: 7 vs 8"), the names
//! allowed to differ, and the copy of a template a round starts from.
//!
//! A snapshot reads the tree as [`super::tree`] does: one component at a time
//! below the base, never following a symbolic link (a link is an entry, with its
//! target), and bounded in entries.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::hash::Hasher;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstatat};

use super::tree;
use crate::quote::quote_if_needed;

/// Entries a snapshot holds at most: past them the tree is too big to compare.
pub const MAX_ENTRIES: usize = 100_000;

/// Files at most this long are held whole, so a difference can show them.
const HELD: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

impl Kind {
    fn words(self) -> &'static str {
        match self {
            Kind::Dir => "a directory",
            Kind::File => "a file",
            Kind::Symlink => "a symbolic link",
            Kind::Other => "a special file",
        }
    }
}

/// What a file holds, as compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Directories and special files: nothing to compare.
    None,
    /// A short file, whole.
    Bytes(Vec<u8>),
    /// A longer file's hash.
    Hash(u64),
    /// A symbolic link's target.
    Target(Vec<u8>),
    /// A file this process may not read.
    Unreadable,
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (setuid, setgid and sticky included).
    pub mode: u32,
    /// A file's size; 0 for the rest (a directory's size is the filesystem's).
    pub size: u64,
    pub content: Content,
}

/// A tree's entries by path below its root (the root itself excluded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: BTreeMap<PathBuf, Entry>,
    /// The files' sizes, added up.
    pub bytes: u64,
}

/// The tree at `base/rel`; `rel` must be a directory, reached without following a
/// symbolic link below `base`.
pub fn take(base: &Path, rel: &Path) -> anyhow::Result<Snapshot> {
    let root = base.join(rel);
    let mut snap = Snapshot::default();
    let mut stack = vec![(PathBuf::new(), tree::open_dir(base, rel)?)];
    while let Some((path, fd)) = stack.pop() {
        let shown = root.join(&path);
        // Listing the directory holds it mutably: entries are examined through a
        // second descriptor of it.
        let at = fd
            .try_clone()
            .with_context(|| format!("opening '{}'", shown.display()))?;
        let mut dir = Dir::from_fd(fd).with_context(|| format!("reading '{}'", shown.display()))?;
        let mut subdirs = Vec::new();
        for entry in dir.iter() {
            let entry = entry.with_context(|| format!("reading '{}'", shown.display()))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            if snap.entries.len() >= MAX_ENTRIES {
                bail!(
                    "'{}' holds more than {MAX_ENTRIES} entries: too many to compare",
                    root.display()
                );
            }
            let e = entry_of(&at, name)
                .with_context(|| format!("examining '{}'", shown.join(name).display()))?;
            snap.bytes += e.size;
            if e.kind == Kind::Dir {
                subdirs.push(name.to_os_string());
            }
            snap.entries.insert(path.join(name), e);
        }
        for name in subdirs {
            let fd = openat(
                &at,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("opening '{}'", shown.join(&name).display()))?;
            stack.push((path.join(&name), fd));
        }
    }
    Ok(snap)
}

/// One entry of the directory `dir`, not followed.
fn entry_of(dir: &OwnedFd, name: &OsStr) -> anyhow::Result<Entry> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    };
    let mode = st.st_mode & 0o7777;
    let (size, content) = match kind {
        Kind::File => (st.st_size as u64, file_content(dir, name)?),
        Kind::Symlink => (
            0,
            Content::Target(readlinkat(dir, name)?.as_bytes().to_vec()),
        ),
        Kind::Dir | Kind::Other => (0, Content::None),
    };
    Ok(Entry {
        kind,
        mode,
        size,
        content,
    })
}

/// A file's content: whole when short, else its hash, read as a stream.
fn file_content(dir: &OwnedFd, name: &OsStr) -> anyhow::Result<Content> {
    let fd: OwnedFd = match openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::EACCES) => return Ok(Content::Unreadable),
        Err(e) => return Err(e.into()),
    };
    let mut file = File::from(fd);
    let mut held = Vec::new();
    (&mut file).take(HELD + 1).read_to_end(&mut held)?;
    if held.len() as u64 <= HELD {
        return Ok(Content::Bytes(held));
    }
    // Equal trees in one run compare equal; this is no defence against a file
    // crafted to collide, which a run's own racers have no reason to write.
    let mut h = std::hash::DefaultHasher::new();
    h.write(&held);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
    }
    Ok(Content::Hash(h.finish()))
}

/// Names allowed to differ (`--ignore GLOB`): a pattern without a slash matches a
/// name at any depth, one with a slash the path from the root; what lies below a
/// match is ignored with it. Patterns are fnmatch(3)'s, as a shell's.
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<(CString, bool)>,
}

impl Ignore {
    pub fn new(globs: &[String]) -> anyhow::Result<Ignore> {
        let patterns = globs
            .iter()
            .map(|g| {
                let c = CString::new(g.as_str())
                    .with_context(|| format!("--ignore {g:?} holds a NUL byte"))?;
                Ok((c, g.contains('/')))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Ignore { patterns })
    }

    /// Whether `rel` (a path below the root) or a directory above it matches.
    pub fn matches(&self, rel: &Path) -> bool {
        let mut prefix = PathBuf::new();
        for name in rel.iter() {
            prefix.push(name);
            for (pattern, whole_path) in &self.patterns {
                let subject = if *whole_path {
                    prefix.as_os_str()
                } else {
                    name
                };
                if fnmatch(pattern, subject) {
                    return true;
                }
            }
        }
        false
    }
}

fn fnmatch(pattern: &CString, name: &OsStr) -> bool {
    let Ok(name) = CString::new(name.as_bytes()) else {
        return false;
    };
    // SAFETY: both are NUL-terminated strings that outlive the call.
    unsafe { libc::fnmatch(pattern.as_ptr(), name.as_ptr(), libc::FNM_PATHNAME) == 0 }
}

/// How the tree of a racy run differs from the sequential run's, one short line
/// per difference ("a/b: missing in the racy run", "count: 7 vs 8"), in path
/// order; below a directory one run lacks, only the directory is named.
pub fn differences(racy: &Snapshot, sequential: &Snapshot, ignore: &Ignore) -> Vec<String> {
    let mut out = Vec::new();
    let mut gone: Option<&Path> = None;
    let paths: std::collections::BTreeSet<&PathBuf> = racy
        .entries
        .keys()
        .chain(sequential.entries.keys())
        .collect();
    for path in paths {
        if gone.is_some_and(|g| path.starts_with(g)) || ignore.matches(path) {
            continue;
        }
        let name = quote_if_needed(path);
        match (racy.entries.get(path), sequential.entries.get(path)) {
            (None, Some(_)) => {
                out.push(format!("{name}: missing in the racy run"));
                gone = Some(path);
            }
            (Some(_), None) => {
                out.push(format!("{name}: only in the racy run"));
                gone = Some(path);
            }
            (Some(r), Some(s)) => {
                if let Some(d) = difference(r, s) {
                    out.push(format!("{name}: {d}"));
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// How one entry differs between the runs (racy first), if it does.
fn difference(r: &Entry, s: &Entry) -> Option<String> {
    if r.kind != s.kind {
        return Some(format!("{} vs {}", r.kind.words(), s.kind.words()));
    }
    if r.content != s.content || r.size != s.size {
        return Some(match (&r.content, &s.content) {
            (Content::Target(a), Content::Target(b)) => format!(
                "-> {} vs -> {}",
                quote_if_needed(OsStr::from_bytes(a)),
                quote_if_needed(OsStr::from_bytes(b))
            ),
            (Content::Bytes(a), Content::Bytes(b)) if shown(a) && shown(b) => {
                format!("{} vs {}", text(a), text(b))
            }
            _ if r.size != s.size => format!("{} bytes vs {} bytes", r.size, s.size),
            _ => format!("content differs ({} bytes)", r.size),
        });
    }
    (r.mode != s.mode).then(|| format!("mode {:04o} vs {:04o}", r.mode, s.mode))
}

/// Whether a short file's content can be shown as it is: one line of printable text.
fn shown(bytes: &[u8]) -> bool {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.len() <= 40 && body.iter().all(|b| (0x20..0x7f).contains(b))
}

fn text(bytes: &[u8]) -> String {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        "(empty)".into()
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// Copies the tree `src` into the directory `dst`, which exists: directories,
/// files and symbolic links (as links), with their permission bits. A round's
/// template is the user's own tree, copied as given.
pub fn copy_tree(src: &Path, dst: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(src).with_context(|| format!("reading '{}'", src.display()))? {
        let entry = entry.with_context(|| format!("reading '{}'", src.display()))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&from)
            .with_context(|| format!("examining '{}'", from.display()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to).with_context(|| format!("creating '{}'", to.display()))?;
            copy_tree(&from, &to)?;
            // After its content: a read-only directory still takes its copies.
            std::fs::set_permissions(&to, meta.permissions())
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map(drop)
        } else if ft.is_symlink() {
            std::fs::read_link(&from).and_then(|target| std::os::unix::fs::symlink(target, &to))
        } else {
            bail!(
                "'{}' is a special file: a template holds directories, files and links",
                from.display()
            );
        }
        .with_context(|| format!("copying '{}' to '{}'", from.display(), to.display()))?;
    }
    Ok(())
}

/// Whether a tree is small enough to keep for inspection: at most `entries`
/// entries and `bytes` bytes of files.
pub fn within(snap: &Snapshot, entries: usize, bytes: u64) -> bool {
    snap.entries.len() <= entries && snap.bytes <= bytes
}

/// A tree kept for inspection after its run holds at most this many entries...
pub const KEEP_ENTRIES: usize = 10_000;
/// ...and this many bytes of files.
pub const KEEP_BYTES: u64 = 64 << 20;

/// Keeps trees of the work directory `work` for inspection after the run has
/// removed the rest: moves each `(tree, name)` into a new `racefree-kept-*`
/// directory beside `work` as `name`, and returns where each went; or, when the
/// first is larger than [`KEEP_ENTRIES`] or [`KEEP_BYTES`] (or cannot be read),
/// leaves them and says why.
pub fn keep_aside(
    work: &Path,
    trees: &[(PathBuf, &str)],
) -> anyhow::Result<Result<Vec<PathBuf>, String>> {
    let Some((first, _)) = trees.first() else {
        return Ok(Ok(Vec::new()));
    };
    let rel = first.strip_prefix(work).unwrap_or(first);
    let why_not = match take(work, rel) {
        Ok(s) if within(&s, KEEP_ENTRIES, KEEP_BYTES) => None,
        Ok(s) => Some(format!("{} entries, {} bytes", s.entries.len(), s.bytes)),
        Err(e) => Some(format!("{e:#}")),
    };
    if let Some(why) = why_not {
        return Ok(Err(format!(
            "not kept: {why}; at most {KEEP_ENTRIES} entries and {} MiB are",
            KEEP_BYTES >> 20
        )));
    }
    let base = work.parent().unwrap_or(Path::new("/"));
    let kept = tempfile::Builder::new()
        .prefix("racefree-kept-")
        .tempdir_in(base)
        .with_context(|| {
            format!(
                "making a directory in '{}' to keep a tree in",
                base.display()
            )
        })?
        .keep();
    let mut went = Vec::new();
    for (tree, name) in trees {
        let to = kept.join(name);
        std::fs::rename(tree, &to).with_context(|| format!("keeping '{}'", tree.display()))?;
        went.push(to);
    }
    Ok(Ok(went))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn equal_trees_have_no_differences_and_unequal_ones_are_named_briefly() {
        let t = tempfile::tempdir().unwrap();
        for run in ["racy", "seq"] {
            std::fs::create_dir(t.path().join(run)).unwrap();
            write(&t.path().join(run), "same/file", &"x".repeat(1000));
            write(&t.path().join(run), "log", run);
        }
        write(&t.path().join("seq"), "a/b/c", "");
        std::fs::write(t.path().join("racy/count"), "7\n").unwrap();
        std::fs::write(t.path().join("seq/count"), "8\n").unwrap();
        write(&t.path().join("racy"), "big", &"y".repeat(1000));
        write(&t.path().join("seq"), "big", &"z".repeat(1000));
        std::os::unix::fs::symlink("p", t.path().join("racy/l")).unwrap();
        std::fs::create_dir(t.path().join("seq/l")).unwrap();
        let racy = take(t.path(), Path::new("racy")).unwrap();
        let seq = take(t.path(), Path::new("seq")).unwrap();
        let ignore = Ignore::new(&["log".into()]).unwrap();
        assert_eq!(
            differences(&racy, &seq, &ignore),
            vec![
                "a: missing in the racy run",
                "big: content differs (1000 bytes)",
                "count: 7 vs 8",
                "l: a symbolic link vs a directory",
            ]
        );
        assert!(differences(&seq, &seq, &Ignore::default()).is_empty());
        assert_eq!(
            differences(&racy, &seq, &Ignore::default()).len(),
            5,
            "the log differs too when not ignored"
        );
    }

    #[test]
    fn ignore_matches_a_name_at_any_depth_or_a_path_from_the_root() {
        let ig = Ignore::new(&["*.log".into(), "cache/*".into()]).unwrap();
        assert!(ig.matches(Path::new("x.log")));
        assert!(ig.matches(Path::new("a/b/x.log")));
        assert!(ig.matches(Path::new("x.log/inside")));
        assert!(ig.matches(Path::new("cache/a")));
        assert!(ig.matches(Path::new("cache/a/b")));
        assert!(!ig.matches(Path::new("a/cache/b")));
        assert!(!ig.matches(Path::new("x.txt")));
    }

    #[test]
    fn a_template_is_copied_with_its_links_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        write(&src, "d/f", "hello");
        std::fs::set_permissions(src.join("d/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("d/f", src.join("link")).unwrap();
        std::fs::set_permissions(src.join("d"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::create_dir(t.path().join("dst")).unwrap();
        copy_tree(&src, &t.path().join("dst")).unwrap();
        let a = take(t.path(), Path::new("src")).unwrap();
        let b = take(t.path(), Path::new("dst")).unwrap();
        assert_eq!(a, b);
        let mode = std::fs::metadata(t.path().join("dst/d"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
        assert_eq!(b.entries.len(), 3);
    }

    #[test]
    fn a_snapshot_never_follows_a_link_and_stops_at_its_bound() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("r")).unwrap();
        std::os::unix::fs::symlink("/usr", t.path().join("r/evil")).unwrap();
        let s = take(t.path(), Path::new("r")).unwrap();
        assert_eq!(s.entries.len(), 1);
        assert_eq!(
            s.entries[Path::new("evil")].content,
            Content::Target(b"/usr".to_vec())
        );
        assert!(within(&s, 1, 0));
        assert!(!within(&s, 0, 0));
    }

    #[test]
    fn a_tree_kept_aside_outlives_its_work_directory_and_a_big_one_is_not_kept() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        write(&work, "round-3/a/b", "x");
        write(&work, "twin-3/a/b", "y");
        let went = keep_aside(
            &work,
            &[
                (work.join("round-3"), "racy"),
                (work.join("twin-3"), "sequential"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(std::fs::read_to_string(went[0].join("a/b")).unwrap(), "x");
        assert_eq!(went[1].file_name().unwrap(), "sequential");
        assert_eq!(went[0].parent(), went[1].parent());
        assert!(went[0].starts_with(t.path()) && !went[0].starts_with(&work));
        assert!(!work.join("round-3").exists());
        for i in 0..=KEEP_ENTRIES {
            std::fs::create_dir_all(work.join(format!("round-4/{i}"))).unwrap();
        }
        let why = keep_aside(&work, &[(work.join("round-4"), "racy")])
            .unwrap()
            .unwrap_err();
        assert!(why.starts_with("not kept: 10001 entries"), "{why}");
        assert!(work.join("round-4").exists());
    }
}
