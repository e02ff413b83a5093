//! `racefree makedirs`: an idempotent `mkdir -p` that stays correct while other
//! processes create, or remove, the same directories at the same moment.
//!
//! The rule every step follows: success is decided by what is there afterwards
//! (a directory), never by which errno came back. `mkdir` can report EEXIST, EACCES,
//! EROFS or EISDIR for a directory that exists; a concurrent creator winning the race
//! is not a failure. Only a non-directory, or a tree that keeps vanishing under us
//! past a bounded number of attempts, is.
//!
//! Two walks share that rule:
//! - **by path** (the default, when the path fits in PATH_MAX and symlinks may be
//!   followed): probe the leaf with one `stat`; if it is missing, `mkdir` upwards
//!   until one succeeds or finds its parent, then `mkdir` down. An existing path costs
//!   one system call, each missing level about two.
//! - **by descriptor** (`--no-symlinks`, `--beneath`, or a path longer than PATH_MAX):
//!   every call names one component relative to a directory descriptor already held,
//!   so depth has no limit and a component swapped for a symlink mid-walk cannot
//!   redirect us (the CVE-2024-45310 class).

pub mod cmd;
mod error;
pub mod mode;
mod sys;

use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

pub use error::Error;
pub use sys::Kind;
use sys::{At, kind_at, mkdirat, open_dir, open_dir_beneath};

/// How many times a walk may start over (or retry one level) because the tree changed
/// under it, before it gives up and says so.
pub const DEFAULT_ATTEMPTS: u32 = 8;

/// Paths at least this long cannot be handed to the kernel whole.
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// What to create and how. Shareable across threads: `make_dirs` takes `&Options`.
#[derive(Debug)]
pub struct Options {
    /// Follow existing symlinks to directories, as `mkdir -p` does. `false` is
    /// `--no-symlinks`: any symlink in the path is refused.
    pub follow_symlinks: bool,
    /// `--beneath DIR`: resolve the path relative to this directory and never leave it.
    pub beneath: Option<OwnedFd>,
    /// `-m MODE`: the mode of a leaf this call creates, as GNU `mkdir -m` gives it.
    /// `None`: `0777 & ~umask`.
    pub leaf_mode: Option<mode::LeafMode>,
    /// `--exclusive`: the leaf must be created by this call.
    pub exclusive: bool,
    /// Bound on restarts and per-level retries when the tree changes under the walk.
    pub attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            follow_symlinks: true,
            beneath: None,
            leaf_mode: None,
            exclusive: false,
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

/// What one call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Made {
    /// The directories this call itself created, top-down, each spelled as the
    /// prefix of the path it was given. Across concurrent callers each directory
    /// appears in exactly one caller's list.
    pub created: Vec<PathBuf>,
    /// How many times the tree changed under the walk and it had to try again.
    pub retries: u32,
}

/// The seam for tests: code that runs between two steps of the walk, so an
/// interleaving can be forced instead of hoped for.
pub trait Hook {
    /// Called right before each `mkdir`, after the walk has decided the level is
    /// missing (its probe said ENOENT). Creating or removing things here is exactly
    /// what a concurrent process could do at that instant.
    fn before_mkdir(&self, _step: &Step<'_>) {}

    /// Called when the descriptor walk failed to open a level (a symlink under
    /// `--no-symlinks`, a file, ...), before it looks at what is there to say why.
    fn after_open_failed(&self, _step: &Step<'_>) {}
}

/// Where the walk is when [`Hook::before_mkdir`] runs.
#[derive(Debug)]
pub struct Step<'a> {
    /// 0 for the first component.
    pub level: usize,
    pub levels: usize,
    /// The path up to and including this level, as given (relative to `--beneath`).
    pub path: &'a Path,
    /// Retries spent so far in this call.
    pub retries: u32,
}

/// The hook production code uses.
pub struct NoHook;
impl Hook for NoHook {}

/// Makes `path` a directory, creating missing ancestors. Safe to call from many
/// threads and processes at once on overlapping trees.
pub fn make_dirs(path: &Path, opts: &Options) -> Result<Made, Error> {
    make_dirs_with_hook(path, opts, &NoHook)
}

/// Checks a path without touching anything: what makes it a usage error.
pub fn validate(path: &Path) -> Result<(), Error> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        Err(Error::EmptyPath)
    } else if bytes.contains(&0) {
        Err(Error::NulInPath)
    } else {
        Ok(())
    }
}

/// [`make_dirs`] with a seam: `hook` runs before every `mkdir`.
pub fn make_dirs_with_hook<H: Hook + ?Sized>(
    path: &Path,
    opts: &Options,
    hook: &H,
) -> Result<Made, Error> {
    validate(path)?;
    let plan = Plan::parse(path.as_os_str().as_bytes());
    if opts.beneath.is_some() && plan.absolute {
        return Err(Error::AbsoluteBeneath);
    }
    let umask = mode::umask();
    let mut walk = Walk {
        plan: &plan,
        opts,
        hook,
        umask,
        leaf_mode: opts
            .leaf_mode
            .map_or(mode::default_leaf_mode(umask), mode::LeafMode::mkdir_mode),
        ancestor_mode: mode::ancestor_mode(umask),
        made: Made::default(),
    };
    let by_path = opts.follow_symlinks && opts.beneath.is_none() && plan.bytes.len() < PATH_MAX;
    loop {
        let flow = if plan.levels() == 0 {
            walk.nothing_to_create()?
        } else if by_path {
            walk.by_path()?
        } else {
            walk.by_descriptor()?
        };
        match flow {
            Flow::Done => return Ok(walk.made),
            Flow::Restart => walk.spend_retry()?,
        }
    }
}

/// The path split into components, each remembered by where it ends in the
/// original bytes, so the prefix up to any level is a slice of what was given.
struct Plan<'p> {
    bytes: &'p [u8],
    /// `(start, end)` of each component other than `.`.
    comps: Vec<(usize, usize)>,
    absolute: bool,
}

impl<'p> Plan<'p> {
    fn parse(bytes: &'p [u8]) -> Plan<'p> {
        let mut comps = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            while i < bytes.len() && bytes[i] == b'/' {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i] != b'/' {
                i += 1;
            }
            if i > start && &bytes[start..i] != b"." {
                comps.push((start, i));
            }
        }
        Plan {
            bytes,
            comps,
            absolute: bytes.first() == Some(&b'/'),
        }
    }

    fn levels(&self) -> usize {
        self.comps.len()
    }

    /// The path up to and including level `i`, as given.
    fn prefix(&self, i: usize) -> &'p [u8] {
        &self.bytes[..self.comps[i].1]
    }

    /// The name of level `i` alone.
    fn name(&self, i: usize) -> &'p [u8] {
        let (s, e) = self.comps[i];
        &self.bytes[s..e]
    }

    fn display(&self, i: usize) -> PathBuf {
        as_path(self.prefix(i))
    }
}

fn as_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

fn c(bytes: &[u8]) -> CString {
    CString::new(bytes).expect("validated: no NUL in path")
}

enum Flow {
    Done,
    /// An ancestor we had seen vanished: start the walk over.
    Restart,
}

/// The outcome of making one level.
enum Level {
    Created,
    Existed,
    /// The level's parent is not there (ENOENT) or not a directory (ENOTDIR).
    ParentMissing,
}

struct Walk<'a, H: ?Sized> {
    plan: &'a Plan<'a>,
    opts: &'a Options,
    hook: &'a H,
    umask: u32,
    leaf_mode: u32,
    ancestor_mode: u32,
    made: Made,
}

impl<H: Hook + ?Sized> Walk<'_, H> {
    fn spend_retry(&mut self) -> Result<(), Error> {
        self.made.retries += 1;
        if self.made.retries >= self.opts.attempts.max(1) {
            return Err(Error::KeptChanging {
                attempts: self.made.retries,
            });
        }
        Ok(())
    }

    fn is_leaf(&self, level: usize) -> bool {
        level + 1 == self.plan.levels()
    }

    /// `.`, `/`, `./.`: there is no component to create; the path must be a directory.
    fn nothing_to_create(&mut self) -> Result<Flow, Error> {
        let path = as_path(self.plan.bytes);
        let at = self.opts.beneath.as_ref().map_or(At::CWD, At::of);
        let name = if self.opts.beneath.is_some() {
            c(b".")
        } else {
            c(self.plan.bytes)
        };
        match kind_at(at, &name, true) {
            Ok(Kind::Directory) if self.opts.exclusive => Err(Error::AlreadyExists { path }),
            Ok(Kind::Directory) => Ok(Flow::Done),
            Ok(kind) => Err(Error::NotADirectory {
                component: path,
                kind,
            }),
            Err(errno) => Err(Error::Io {
                op: "stat",
                component: path,
                errno,
            }),
        }
    }

    /// The fast walk: whole paths from the current directory.
    fn by_path(&mut self) -> Result<Flow, Error> {
        let n = self.plan.levels();
        if !self.opts.exclusive {
            // One stat settles the common case: the directory is already there.
            match kind_at(At::CWD, &c(self.plan.prefix(n - 1)), true) {
                Ok(Kind::Directory) => return Ok(Flow::Done),
                Ok(kind) => {
                    return Err(Error::NotADirectory {
                        component: self.plan.display(n - 1),
                        kind,
                    });
                }
                // Missing, or unreadable: the mkdirs below find out which level.
                Err(_) => {}
            }
        }
        // Up: mkdir from the leaf towards the root until a level's parent exists.
        let mut top = n - 1;
        loop {
            match self.make_level(At::CWD, &c(self.plan.prefix(top)), top)? {
                Level::Created | Level::Existed => break,
                Level::ParentMissing if top == 0 => {
                    return Err(Error::Io {
                        op: "mkdir",
                        component: self.plan.display(0),
                        errno: Errno::ENOENT,
                    });
                }
                Level::ParentMissing => top -= 1,
            }
        }
        // Down: each level's parent now exists, unless someone removed it since.
        for level in top + 1..n {
            match self.make_level(At::CWD, &c(self.plan.prefix(level)), level)? {
                Level::Created | Level::Existed => {}
                Level::ParentMissing => return Ok(Flow::Restart),
            }
        }
        Ok(Flow::Done)
    }

    /// The safe walk: one component at a time, relative to a held descriptor.
    fn by_descriptor(&mut self) -> Result<Flow, Error> {
        let n = self.plan.levels();
        let root: Option<OwnedFd> = if self.plan.absolute {
            Some(open_dir(At::CWD, c"/", true).map_err(|errno| Error::Io {
                op: "open",
                component: "/".into(),
                errno,
            })?)
        } else {
            None
        };
        let start = match (&self.opts.beneath, &root) {
            (Some(fd), _) | (None, Some(fd)) => At::of(fd),
            (None, None) => At::CWD,
        };
        let mut held: Option<OwnedFd> = None;
        for level in 0..n {
            let at = held.as_ref().map_or(start, At::of);
            let name = c(self.plan.name(level));
            if self.opts.exclusive && self.is_leaf(level) {
                return match self.make_level(at, &name, level)? {
                    Level::Created => Ok(Flow::Done),
                    Level::Existed => {
                        unreachable!("make_level refuses an existing leaf under --exclusive")
                    }
                    Level::ParentMissing => Ok(Flow::Restart),
                };
            }
            let mut ensured = false;
            let fd = loop {
                match self.open_level(at, &name, level) {
                    Ok(fd) => break fd,
                    Err(Errno::ENOENT) => {
                        if ensured {
                            // We saw it (or made it) a moment ago and it is gone again.
                            self.spend_retry()?;
                        }
                        match self.make_level(at, &name, level)? {
                            Level::Created | Level::Existed => ensured = true,
                            // Our parent, which we hold open, was removed.
                            Level::ParentMissing => return Ok(Flow::Restart),
                        }
                    }
                    // openat2 asks for a retry when a rename raced its ".." checks.
                    Err(Errno::EAGAIN) => self.spend_retry()?,
                    Err(errno) => {
                        let path = self.plan.display(level);
                        self.hook.after_open_failed(&Step {
                            level,
                            levels: n,
                            path: &path,
                            retries: self.made.retries,
                        });
                        // Refused as a symlink or non-directory a moment ago, a
                        // directory now: it changed under us. Open it again rather
                        // than call a directory "not a directory".
                        if matches!(errno, Errno::ENOTDIR | Errno::ELOOP)
                            && kind_at(at, &name, self.opts.follow_symlinks) == Ok(Kind::Directory)
                        {
                            self.spend_retry()?;
                            continue;
                        }
                        return Err(self.open_error(at, &name, level, errno));
                    }
                }
            };
            held = Some(fd);
        }
        Ok(Flow::Done)
    }

    fn open_level(&self, at: At, name: &CString, level: usize) -> Result<OwnedFd, Errno> {
        let follow = self.opts.follow_symlinks;
        match &self.opts.beneath {
            None => open_dir(at, name, follow),
            Some(root) => {
                // Resolve the whole prefix from DIR, so `..` and symlinks are judged
                // against DIR itself. Past PATH_MAX, one component from its parent:
                // stricter (a symlink must stay below its own parent), never looser.
                let prefix = self.plan.prefix(level);
                let result = if prefix.len() < PATH_MAX {
                    open_dir_beneath(At::of(root), &c(prefix), follow)
                } else {
                    open_dir_beneath(at, name, follow)
                };
                match result {
                    Err(Errno::ENOSYS) => Err(Errno::ENOSYS),
                    other => other,
                }
            }
        }
    }

    fn open_error(&self, at: At, name: &CString, level: usize, errno: Errno) -> Error {
        let component = self.plan.display(level);
        match errno {
            Errno::ENOSYS if self.opts.beneath.is_some() => Error::BeneathUnsupported,
            Errno::EXDEV => Error::Escapes { component },
            Errno::ENOTDIR | Errno::ELOOP => match kind_at(at, name, false) {
                Ok(Kind::Symlink) if !self.opts.follow_symlinks => {
                    Error::SymlinkRefused { component }
                }
                Ok(Kind::Symlink) => match kind_at(at, name, true) {
                    Ok(kind) => Error::NotADirectory { component, kind },
                    Err(Errno::ENOENT) => Error::DanglingSymlink { component },
                    Err(errno) => Error::Io {
                        op: "open",
                        component,
                        errno,
                    },
                },
                Ok(Kind::Directory) => Error::Io {
                    op: "open",
                    component,
                    errno,
                },
                Ok(kind) => Error::NotADirectory { component, kind },
                Err(_) => Error::Io {
                    op: "open",
                    component,
                    errno,
                },
            },
            _ => Error::Io {
                op: "open",
                component,
                errno,
            },
        }
    }

    /// mkdir one level (`name` relative to `at`) and settle the outcome by looking.
    fn make_level(&mut self, at: At, name: &CString, level: usize) -> Result<Level, Error> {
        let leaf = self.is_leaf(level);
        let mode = if leaf {
            self.leaf_mode
        } else {
            self.ancestor_mode
        };
        loop {
            let path = self.plan.display(level);
            self.hook.before_mkdir(&Step {
                level,
                levels: self.plan.levels(),
                path: &path,
                retries: self.made.retries,
            });
            let errno = match mkdirat(at, name, mode) {
                Ok(()) => {
                    self.check_still_beneath(at, name, level)?;
                    self.fix_mode(at, name, leaf, &path)?;
                    self.made.created.push(path);
                    return Ok(Level::Created);
                }
                Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(Level::ParentMissing),
                Err(errno) => errno,
            };
            // EEXIST, but also EACCES, EROFS, EISDIR...: any of them may hide a
            // directory that exists. Look at what is there and decide by that.
            match kind_at(at, name, self.opts.follow_symlinks) {
                Ok(Kind::Directory) if leaf && self.opts.exclusive => {
                    return Err(Error::AlreadyExists { path });
                }
                Ok(Kind::Directory) => return Ok(Level::Existed),
                Ok(Kind::Symlink) => return Err(Error::SymlinkRefused { component: path }),
                Ok(kind) => {
                    return Err(Error::NotADirectory {
                        component: path,
                        kind,
                    });
                }
                Err(Errno::ENOENT) => match kind_at(at, name, false) {
                    Ok(Kind::Symlink) => return Err(Error::DanglingSymlink { component: path }),
                    // Something is there now that stat did not see a moment ago (a
                    // concurrent creator, whatever mkdir said): look again.
                    Ok(_) => self.spend_retry()?,
                    // mkdir said it was there and now it is gone: a concurrent
                    // remover. Try this level again.
                    Err(Errno::ENOENT) if errno == Errno::EEXIST => self.spend_retry()?,
                    // Not there, and mkdir failed for its own reason (EACCES under a
                    // read-only parent, say): that reason is the answer.
                    _ => {
                        return Err(Error::Io {
                            op: "mkdir",
                            component: path,
                            errno,
                        });
                    }
                },
                // A symlink loop: mkdir said EEXIST, but it is no directory.
                Err(Errno::ELOOP) => {
                    return Err(Error::Io {
                        op: "stat",
                        component: path,
                        errno: Errno::ELOOP,
                    });
                }
                // We can neither create nor see it: mkdir's own errno is the story.
                Err(_) => {
                    return Err(Error::Io {
                        op: "mkdir",
                        component: path,
                        errno,
                    });
                }
            }
        }
    }

    /// `--beneath`: `mkdirat` named the new directory relative to a parent the walk
    /// holds, and that parent may have been renamed out of DIR since it was opened.
    /// So resolve the new directory again from DIR itself (openat2 RESOLVE_BENEATH,
    /// never through a magic link) and check it is the very directory just made. If
    /// not, it was made outside: remove it (rmdir relative to the held parent, only
    /// while it is still the one we made and empty) and fail.
    fn check_still_beneath(&self, at: At, name: &CString, level: usize) -> Result<(), Error> {
        let Some(root) = &self.opts.beneath else {
            return Ok(());
        };
        let made = match sys::identity_at(at, name) {
            Ok(id) => id,
            // Already gone (a concurrent remover): nothing of ours is left anywhere.
            Err(_) => return Ok(()),
        };
        let mut tries = 0;
        let found = loop {
            match self.resolve_beneath(root, level) {
                // A rename raced the resolution itself: ask again, a bounded number of times.
                Err(Errno::EAGAIN) if tries < self.opts.attempts => tries += 1,
                Ok(fd) => break sys::identity(&fd).ok(),
                Err(_) => break None,
            }
        };
        if found == Some(made) {
            return Ok(());
        }
        let removed = sys::identity_at(at, name) == Ok(made) && sys::rmdir_at(at, name).is_ok();
        Err(Error::MovedOut {
            component: self.plan.display(level),
            removed,
        })
    }

    /// Opens level `level` from DIR, never leaving it: the whole prefix in one
    /// openat2, or past PATH_MAX one component at a time from DIR, each step beneath
    /// the one before (stricter, never looser).
    fn resolve_beneath(&self, root: &OwnedFd, level: usize) -> Result<OwnedFd, Errno> {
        let follow = self.opts.follow_symlinks;
        let prefix = self.plan.prefix(level);
        if prefix.len() < PATH_MAX {
            return open_dir_beneath(At::of(root), &c(prefix), follow);
        }
        let mut fd = open_dir_beneath(At::of(root), c".", follow)?;
        for i in 0..=level {
            fd = open_dir_beneath(At::of(&fd), &c(self.plan.name(i)), follow)?;
        }
        Ok(fd)
    }

    /// mkdir applies the umask and cannot set setuid/setgid; where `-m` (or an
    /// ancestor's u+wx) asks for what mkdir did not give, put it right on the directory we just made (never by
    /// changing the process umask). Only the bits MODE mentions are changed, so a
    /// setgid bit inherited from the parent stays unless MODE clears it, as in GNU.
    fn fix_mode(&self, at: At, name: &CString, leaf: bool, path: &Path) -> Result<(), Error> {
        let want = match self.opts.leaf_mode {
            Some(want) if leaf => want,
            // No -m: the umask decides, as for mkdir.
            None if leaf => return Ok(()),
            // An ancestor must stay u+wx, or the walk could not go on below it.
            _ => mode::LeafMode {
                mode: self.ancestor_mode,
                mentioned: 0o777,
            },
        };
        if !want.needs_fixing(self.umask) {
            return Ok(());
        }
        let io = |op, errno| Error::Io {
            op,
            component: path.to_path_buf(),
            errno,
        };
        let fd = match open_dir(at, name, false) {
            Ok(fd) => fd,
            // Removed already by someone else: nothing left to fix.
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(io("open", e)),
        };
        let now = sys::mode_of(&fd).map_err(|e| io("stat", e))?;
        // What GNU's mkdir would have left: the asked bits, whatever our umask took,
        // plus a setgid bit the kernel copied from the parent.
        let created = want.mkdir_mode() | (now & 0o2000);
        let target = want.final_mode(created);
        if now & 0o7777 == target {
            return Ok(());
        }
        sys::chmod_dir(&fd, at, name, target).map_err(|e| io("chmod", e))
    }
}

#[cfg(test)]
mod tests;
