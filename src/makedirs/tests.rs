//! Deterministic races: the hook runs between the walk's probe and its mkdir, so each
//! test forces one interleaving at one level instead of hoping the scheduler finds it.

use std::cell::Cell;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;
use crate::exit::Exit;

const LEVELS: usize = 5;

fn chain(base: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut p = base.to_path_buf();
    for name in ["a", "b", "c", "d", "e"] {
        p.push(name);
        v.push(p.clone());
    }
    v
}

/// Both walks: by path (the default) and by descriptor (`--no-symlinks`).
fn walks() -> [(&'static str, Options); 2] {
    [
        ("by path", Options::default()),
        (
            "by descriptor",
            Options {
                follow_symlinks: false,
                ..Options::default()
            },
        ),
    ]
}

fn assert_tree(levels: &[PathBuf]) {
    for p in levels {
        assert!(p.is_dir(), "{} should be a directory", p.display());
    }
}

/// Runs `act` once, the first time the walk is about to mkdir `target` while its
/// parent exists (the moment a concurrent process could slip in).
struct AtLevel<F: Fn(&Path)> {
    target: PathBuf,
    fired: Cell<bool>,
    act: F,
}

impl<F: Fn(&Path)> Hook for AtLevel<F> {
    fn before_mkdir(&self, step: &Step<'_>) {
        if step.path == self.target && !self.fired.get() && step.path.parent().unwrap().is_dir() {
            self.fired.set(true);
            (self.act)(step.path);
        }
    }
}

fn at_level<F: Fn(&Path)>(target: &Path, act: F) -> AtLevel<F> {
    AtLevel {
        target: target.to_path_buf(),
        fired: Cell::new(false),
        act,
    }
}

#[test]
fn creates_every_missing_level_top_down() {
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let levels = chain(tmp.path());
        let made = make_dirs(&levels[LEVELS - 1], &opts).unwrap();
        assert_eq!(made.created, levels, "{walk}");
        assert_eq!(made.retries, 0, "{walk}");
        assert_tree(&levels);
        // Idempotent: the second call creates nothing and succeeds.
        let again = make_dirs(&levels[LEVELS - 1], &opts).unwrap();
        assert!(again.created.is_empty(), "{walk}");
    }
}

#[test]
fn a_concurrent_creator_at_any_level_is_tolerated() {
    for (walk, opts) in walks() {
        for level in 0..LEVELS {
            let tmp = tempfile::tempdir().unwrap();
            let levels = chain(tmp.path());
            let hook = at_level(&levels[level], |p| std::fs::create_dir(p).unwrap());
            let made = make_dirs_with_hook(&levels[LEVELS - 1], &opts, &hook)
                .unwrap_or_else(|e| panic!("{walk}, other creator at level {level}: {e}"));
            assert!(
                hook.fired.get(),
                "{walk}: the hook never ran at level {level}"
            );
            let mut expected = levels.clone();
            expected.remove(level);
            assert_eq!(
                made.created, expected,
                "{walk}: level {level} was made by the other creator"
            );
            assert_eq!(made.retries, 0);
            assert_tree(&levels);
        }
    }
}

#[test]
fn a_concurrent_creator_of_the_leaf_is_an_error_only_under_exclusive() {
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let levels = chain(tmp.path());
        let opts = Options {
            exclusive: true,
            ..opts
        };
        let hook = at_level(&levels[LEVELS - 1], |p| std::fs::create_dir(p).unwrap());
        let err = make_dirs_with_hook(&levels[LEVELS - 1], &opts, &hook).unwrap_err();
        assert_eq!(
            err,
            Error::AlreadyExists {
                path: levels[LEVELS - 1].clone()
            },
            "{walk}"
        );
        assert_eq!(err.exit(), Exit::Exists);
        // A creator at an ancestor level is still fine under --exclusive.
        let tmp = tempfile::tempdir().unwrap();
        let levels = chain(tmp.path());
        let hook = at_level(&levels[2], |p| std::fs::create_dir(p).unwrap());
        let made = make_dirs_with_hook(&levels[LEVELS - 1], &opts, &hook).unwrap();
        assert_eq!(made.created.last(), Some(&levels[LEVELS - 1]), "{walk}");
    }
}

#[test]
fn an_ancestor_removed_before_the_next_mkdir_restarts_the_walk() {
    for (walk, opts) in walks() {
        for level in 1..LEVELS {
            let tmp = tempfile::tempdir().unwrap();
            let levels = chain(tmp.path());
            // Remove the parent we just made (it is empty), right before we mkdir in it.
            let hook = at_level(&levels[level], |p| {
                std::fs::remove_dir(p.parent().unwrap()).unwrap()
            });
            let made = make_dirs_with_hook(&levels[LEVELS - 1], &opts, &hook)
                .unwrap_or_else(|e| panic!("{walk}, parent of level {level} removed: {e}"));
            assert!(hook.fired.get());
            assert_eq!(
                made.retries, 1,
                "{walk}: exactly one retry for one removal at level {level}"
            );
            assert_tree(&levels);
            // The removed parent was created twice, both times by us.
            let parent = &levels[level - 1];
            assert_eq!(
                made.created.iter().filter(|p| *p == parent).count(),
                2,
                "{walk}"
            );
        }
    }
}

#[test]
fn a_remover_that_never_stops_gives_a_clear_bounded_failure() {
    struct AlwaysRemoveParent;
    impl Hook for AlwaysRemoveParent {
        fn before_mkdir(&self, step: &Step<'_>) {
            if step.path.ends_with("a/b/c/d") {
                let _ = std::fs::remove_dir(step.path.parent().unwrap());
            }
        }
    }
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let levels = chain(tmp.path());
        let err = make_dirs_with_hook(&levels[LEVELS - 1], &opts, &AlwaysRemoveParent).unwrap_err();
        assert_eq!(
            err,
            Error::KeptChanging {
                attempts: DEFAULT_ATTEMPTS
            },
            "{walk}"
        );
        assert!(err.to_string().contains("kept changing"), "{walk}: {err}");
    }
}

#[test]
fn a_file_in_the_path_is_named_and_nothing_is_created_below_it() {
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a");
        std::fs::write(&file, b"").unwrap();
        let err = make_dirs(&tmp.path().join("a/b/c"), &opts).unwrap_err();
        assert_eq!(
            err,
            Error::NotADirectory {
                component: file.clone(),
                kind: Kind::RegularFile
            },
            "{walk}"
        );
        assert!(
            err.to_string()
                .contains("is not a directory (it is a regular file)")
        );
        assert!(file.is_file());
    }
}

#[test]
fn a_file_as_the_leaf_is_an_error() {
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf = tmp.path().join("f");
        std::fs::write(&leaf, b"keep").unwrap();
        let err = make_dirs(&leaf, &opts).unwrap_err();
        assert_eq!(
            err,
            Error::NotADirectory {
                component: leaf.clone(),
                kind: Kind::RegularFile
            },
            "{walk}"
        );
        assert_eq!(std::fs::read(&leaf).unwrap(), b"keep");
    }
}

#[test]
fn a_dangling_symlink_is_named_as_such() {
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("dangling");
        symlink(tmp.path().join("nowhere"), &link).unwrap();
        let err = make_dirs(&link, &opts).unwrap_err();
        let expected = if opts.follow_symlinks {
            Error::DanglingSymlink {
                component: link.clone(),
            }
        } else {
            Error::SymlinkRefused {
                component: link.clone(),
            }
        };
        assert_eq!(err, expected, "{walk}: as the leaf");
        let err = make_dirs(&link.join("below"), &opts).unwrap_err();
        assert_eq!(err, expected, "{walk}: in the middle");
        assert!(
            !tmp.path().join("nowhere").exists(),
            "{walk}: nothing created through the link"
        );
    }
}

#[test]
fn symlinks_to_directories_are_followed_by_default_and_refused_by_no_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("real")).unwrap();
    symlink("real", tmp.path().join("link")).unwrap();
    let made = make_dirs(&tmp.path().join("link/x/y"), &Options::default()).unwrap();
    assert_eq!(made.created.len(), 2);
    assert!(tmp.path().join("real/x/y").is_dir());

    let opts = Options {
        follow_symlinks: false,
        ..Options::default()
    };
    let err = make_dirs(&tmp.path().join("link/z"), &opts).unwrap_err();
    assert_eq!(
        err,
        Error::SymlinkRefused {
            component: tmp.path().join("link")
        }
    );
    assert!(!tmp.path().join("real/z").exists());
}

#[test]
fn a_component_swapped_for_a_symlink_mid_walk_cannot_redirect_no_symlinks() {
    // The CVE-2024-45310 shape: an attacker who can write the parent replaces the
    // next component with a symlink to somewhere else, between our probe and mkdir.
    for level in 0..LEVELS {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let levels = chain(tmp.path());
        let target = elsewhere.path().to_path_buf();
        let hook = at_level(&levels[level], move |p| symlink(&target, p).unwrap());
        let opts = Options {
            follow_symlinks: false,
            ..Options::default()
        };
        let err = make_dirs_with_hook(&levels[LEVELS - 1], &opts, &hook).unwrap_err();
        assert_eq!(
            err,
            Error::SymlinkRefused {
                component: levels[level].clone()
            },
            "level {level}"
        );
        assert_eq!(
            std::fs::read_dir(elsewhere.path()).unwrap().count(),
            0,
            "nothing created elsewhere"
        );
    }
}

#[test]
fn beneath_stays_inside_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let inside = tmp.path().join("inside");
    std::fs::create_dir(&inside).unwrap();
    let root = || Some(sys::open_dir(At::CWD, &c(inside.as_os_str().as_bytes()), true).unwrap());

    let opts = Options {
        beneath: root(),
        ..Options::default()
    };
    let made = make_dirs(Path::new("a/b/../c"), &opts).unwrap();
    assert_eq!(
        made.created,
        vec![
            PathBuf::from("a"),
            PathBuf::from("a/b"),
            PathBuf::from("a/b/../c")
        ]
    );
    assert!(inside.join("a/c").is_dir());

    let err = make_dirs(Path::new("a/../../escaped"), &opts).unwrap_err();
    assert_eq!(
        err,
        Error::Escapes {
            component: PathBuf::from("a/../..")
        }
    );
    assert!(!tmp.path().join("escaped").exists());

    symlink(tmp.path(), inside.join("out")).unwrap();
    let err = make_dirs(Path::new("out/escaped"), &opts).unwrap_err();
    assert_eq!(
        err,
        Error::Escapes {
            component: PathBuf::from("out")
        }
    );
    assert!(!tmp.path().join("escaped").exists());

    // A symlink that stays inside is followed, unless --no-symlinks.
    symlink("a", inside.join("alias")).unwrap();
    make_dirs(Path::new("alias/d"), &opts).unwrap();
    assert!(inside.join("a/d").is_dir());
    let strict = Options {
        beneath: root(),
        follow_symlinks: false,
        ..Options::default()
    };
    assert_eq!(
        make_dirs(Path::new("alias/e"), &strict).unwrap_err(),
        Error::SymlinkRefused {
            component: PathBuf::from("alias")
        }
    );

    assert_eq!(
        make_dirs(Path::new("/abs"), &opts).unwrap_err(),
        Error::AbsoluteBeneath
    );
}

#[test]
fn dot_and_dotdot_components_and_trailing_slashes() {
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        make_dirs(&t.join("x/y/"), &opts).unwrap();
        make_dirs(&t.join("p/./q/."), &opts).unwrap();
        let made = make_dirs(&t.join("m/n/../o"), &opts).unwrap();
        assert_eq!(made.created.len(), 3, "{walk}");
        for d in ["x/y", "p/q", "m/n", "m/o"] {
            assert!(t.join(d).is_dir(), "{walk}: {d}");
        }
        assert!(make_dirs(t, &opts).unwrap().created.is_empty());
    }
}

#[test]
fn a_path_far_beyond_path_max_works() {
    // 2,000 levels, 10,000 bytes: Rust's create_dir_all and Python's os.makedirs
    // fail here with ENAMETOOLONG; the descriptor walk has no limit.
    let tmp = tempfile::tempdir().unwrap();
    let rel = "dddd/".repeat(2000);
    let path = tmp.path().join(&rel);
    assert!(path.as_os_str().len() > 10_000);
    let made = make_dirs(&path, &Options::default()).unwrap();
    assert_eq!(made.created.len(), 2000);
    let again = make_dirs(&path, &Options::default()).unwrap();
    assert!(again.created.is_empty());
}

#[test]
fn empty_and_nul_paths_are_usage_errors() {
    assert_eq!(validate(Path::new("")), Err(Error::EmptyPath));
    let nul = Path::new(OsStr::from_bytes(b"a\0b"));
    assert_eq!(
        make_dirs(nul, &Options::default()).unwrap_err(),
        Error::NulInPath
    );
    assert_eq!(Error::EmptyPath.exit(), Exit::Usage);
}

#[test]
fn plan_keeps_prefixes_as_given() {
    let plan = Plan::parse(b"//a/./b//c/");
    assert_eq!(plan.levels(), 3);
    assert_eq!(plan.prefix(0), b"//a");
    assert_eq!(plan.prefix(1), b"//a/./b");
    assert_eq!(plan.prefix(2), b"//a/./b//c");
    assert_eq!(plan.name(2), b"c");
    assert!(plan.absolute);
    assert_eq!(Plan::parse(b".").levels(), 0);
}

/// Runs `act` once, the first time an open of `target` fails, before the walk looks at
/// what is there: the moment a symlink could be swapped for a directory.
struct AfterRefusedOpen<F: Fn(&Path)> {
    target: PathBuf,
    fired: Cell<bool>,
    act: F,
}

impl<F: Fn(&Path)> Hook for AfterRefusedOpen<F> {
    fn after_open_failed(&self, step: &Step<'_>) {
        if step.path == self.target && !self.fired.get() {
            self.fired.set(true);
            (self.act)(step.path);
        }
    }
}

#[test]
fn a_symlink_swapped_for_a_directory_after_the_open_is_looked_at_again() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir(t.join("elsewhere")).unwrap();
    let s = t.join("s");
    symlink(t.join("elsewhere"), &s).unwrap();
    let opts = Options {
        follow_symlinks: false,
        ..Options::default()
    };
    let hook = AfterRefusedOpen {
        target: s.clone(),
        fired: Cell::new(false),
        act: |p: &Path| {
            std::fs::remove_file(p).unwrap();
            std::fs::create_dir(p).unwrap();
        },
    };
    // It was a symlink when opened (refused), and is a directory now: the walk does
    // not say "Not a directory" about a directory; it opens it again.
    let made = make_dirs_with_hook(&s.join("leaf"), &opts, &hook).unwrap();
    assert!(hook.fired.get());
    assert_eq!(made.created, vec![s.join("leaf")]);
    assert_eq!(made.retries, 1);
    assert!(!t.join("elsewhere/leaf").exists());
}

#[test]
fn a_symlink_loop_is_reported_as_one() {
    for (walk, opts) in walks() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        symlink("loop", t.join("loop")).unwrap();
        let err = make_dirs(&t.join("loop"), &opts).unwrap_err();
        let want = if opts.follow_symlinks {
            format!(
                "stat {}: too many levels of symbolic links",
                crate::quote::quote(t.join("loop"))
            )
        } else {
            format!(
                "{} is a symbolic link, refused by --no-symlinks",
                crate::quote::quote(t.join("loop"))
            )
        };
        assert_eq!(err.to_string(), want, "{walk}");
    }
}

#[test]
fn workers_are_bounded_by_the_paths_and_the_cores() {
    use super::cmd::worker_count;
    assert_eq!(worker_count(Some(20_000), 3, 2), 3);
    assert_eq!(worker_count(Some(20_000), 100_000, 2), 64);
    assert_eq!(worker_count(Some(20_000), 100_000, 32), 128);
    assert_eq!(worker_count(None, 10_000, 2), 2);
    assert_eq!(worker_count(None, 1, 16), 1);
    assert_eq!(worker_count(Some(4), 0, 2), 1);
}

/// `--beneath`: the walk holds a directory, the directory is renamed out of DIR, and
/// the next mkdir lands outside. The hook does the rename at the worst moment.
fn renamed_out_before(
    target: &str,
    exclusive: bool,
    path: &str,
    moved: &str,
) -> (tempfile::TempDir, Result<Made, Error>) {
    let tmp = tempfile::tempdir().unwrap();
    let inside = tmp.path().join("inside");
    std::fs::create_dir(&inside).unwrap();
    let opts = Options {
        beneath: Some(sys::open_dir(At::CWD, &c(inside.as_os_str().as_bytes()), true).unwrap()),
        exclusive,
        ..Options::default()
    };
    let (from, to) = (inside.join(moved), tmp.path().join("outside"));
    // at_level checks the parent by path from the cwd; these paths are relative to
    // DIR, so fire on the path alone.
    struct Once<F: Fn()>(PathBuf, Cell<bool>, F);
    impl<F: Fn()> Hook for Once<F> {
        fn before_mkdir(&self, step: &Step<'_>) {
            if step.path == self.0 && !self.1.replace(true) {
                (self.2)();
            }
        }
    }
    let hook = Once(PathBuf::from(target), Cell::new(false), move || {
        std::fs::rename(&from, &to).unwrap()
    });
    let result = make_dirs_with_hook(Path::new(path), &opts, &hook);
    assert!(hook.1.get(), "the rename never happened");
    (tmp, result)
}

#[test]
fn beneath_removes_a_directory_made_in_a_parent_renamed_out_mid_walk() {
    for exclusive in [false, true] {
        for (target, moved) in [("a/b", "a"), ("a/b/c", "a"), ("a/b/c", "a/b")] {
            let (tmp, result) = renamed_out_before(target, exclusive, "a/b/c", moved);
            assert_eq!(
                result.unwrap_err(),
                Error::MovedOut {
                    component: PathBuf::from(target),
                    removed: true,
                },
                "{target} after {moved} moved, exclusive {exclusive}"
            );
            // What was made outside is gone again; what was moved stays where it was put.
            let outside = tmp.path().join("outside");
            assert!(outside.is_dir());
            let leftover: Vec<_> = walk_all(&outside);
            assert!(
                leftover
                    .iter()
                    .all(|p| !p.ends_with(Path::new(target).file_name().unwrap())),
                "{target}: {leftover:?}"
            );
        }
    }
}

#[test]
fn a_directory_made_outside_beneath_is_reported_in_one_line() {
    let (_tmp, result) = renamed_out_before("a/b", false, "a/b", "a");
    assert_eq!(
        result.unwrap_err().to_string(),
        "'a/b' was made outside the --beneath directory (a directory the walk held was \
         moved out of it); it was removed again"
    );
}

#[test]
fn beneath_checks_paths_beyond_path_max_component_by_component() {
    let deep = format!("{}leaf", "dddd/".repeat(1000));
    let parent = deep.strip_suffix("/leaf").unwrap().to_owned();
    let (tmp, result) = renamed_out_before(&deep, false, &deep, "dddd");
    assert_eq!(
        result.unwrap_err(),
        Error::MovedOut {
            component: PathBuf::from(&deep),
            removed: true,
        }
    );
    // Too long for a path from the cwd: walk there one component at a time.
    let mut fd = sys::open_dir(
        At::CWD,
        &c(tmp.path().join("outside").as_os_str().as_bytes()),
        true,
    )
    .unwrap();
    for name in parent.split('/').skip(1) {
        fd = sys::open_dir(At::of(&fd), &c(name.as_bytes()), false).unwrap();
    }
    assert_eq!(kind_at(At::of(&fd), c"leaf", false), Err(Errno::ENOENT));
}

#[test]
fn beneath_without_a_rename_creates_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let inside = tmp.path().join("inside");
    std::fs::create_dir(&inside).unwrap();
    let opts = Options {
        beneath: Some(sys::open_dir(At::CWD, &c(inside.as_os_str().as_bytes()), true).unwrap()),
        ..Options::default()
    };
    let deep = format!("{}leaf", "dddd/".repeat(1000));
    let made = make_dirs(Path::new(&deep), &opts).unwrap();
    assert_eq!(made.created.len(), 1001);
    assert_eq!(made.retries, 0);
}

fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            out.extend(walk_all(&p));
        }
    }
    out
}
