use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_new_file_gets_its_content_and_nothing_else_is_left() {
    for kind in [TempKind::Auto, TempKind::Named] {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        replace_with(&f, &mut &b"hello\n"[..], &Options::default(), kind).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"hello\n");
        assert_eq!(names(t.path()), ["f"], "{kind:?}");
        let umask = crate::makedirs::mode::umask();
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o666 & !umask);
    }
}

#[test]
fn an_existing_file_keeps_its_mode_unless_one_is_given() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("f");
    fs::write(&f, "old").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    let before = fs::metadata(&f).unwrap().ino();
    replace(&f, &mut &b"new"[..], &Options::default()).unwrap();
    let m = fs::metadata(&f).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_ne!(
        m.ino(),
        before,
        "replaced by rename, not rewritten in place"
    );
    let opts = Options {
        mode: Some(0o600),
        ..Options::default()
    };
    replace(&f, &mut &b"newer"[..], &opts).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(fs::read(&f).unwrap(), b"newer");
}

#[test]
fn a_symlink_is_followed_by_default_and_replaced_with_no_follow() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("real")).unwrap();
    fs::write(t.path().join("real/target"), "old").unwrap();
    symlink("real/target", t.path().join("link")).unwrap();
    replace(
        &t.path().join("link"),
        &mut &b"via link"[..],
        &Options::default(),
    )
    .unwrap();
    assert!(
        fs::symlink_metadata(t.path().join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(t.path().join("real/target")).unwrap(), b"via link");
    assert_eq!(names(&t.path().join("real")), ["target"]);

    let opts = Options {
        follow: false,
        ..Options::default()
    };
    replace(&t.path().join("link"), &mut &b"own"[..], &opts).unwrap();
    assert!(
        fs::symlink_metadata(t.path().join("link"))
            .unwrap()
            .is_file()
    );
    assert_eq!(fs::read(t.path().join("real/target")).unwrap(), b"via link");
}

#[test]
fn a_failing_reader_leaves_the_file_and_no_temporary() {
    struct Fails;
    impl Read for Fails {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("input broke"))
        }
    }
    for kind in [TempKind::Auto, TempKind::Named] {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, "old").unwrap();
        let err = replace_with(&f, &mut Fails, &Options::default(), kind).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cannot replace '{}': reading the new content: input broke",
                f.display()
            )
        );
        assert_eq!(fs::read(&f).unwrap(), b"old");
        assert_eq!(names(t.path()), ["f"], "{kind:?}");
    }
}

#[test]
fn a_directory_at_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let err = replace(t.path(), &mut &b"x"[..], &Options::default()).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!("cannot replace '{}': it is a directory", t.path().display())
    );
}

#[test]
fn resolve_follows_relative_links_hop_by_hop() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("d")).unwrap();
    symlink("../b", t.path().join("d/a")).unwrap();
    symlink("c", t.path().join("b")).unwrap();
    assert_eq!(
        resolve(&t.path().join("d/a")).unwrap(),
        t.path().join("d/../c")
    );
    symlink("loop", t.path().join("loop")).unwrap();
    let err = resolve(&t.path().join("loop")).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("too many levels of symbolic links")
    );
}

#[test]
fn link_new_places_a_whole_file_once_and_leaves_no_aside() {
    let t = tempfile::tempdir().unwrap();
    let name = t.path().join("n");
    let st = link_new(&t.path().join("n.a"), &name, b"first\n")
        .unwrap()
        .expect("the name was free");
    assert_eq!(fs::read(&name).unwrap(), b"first\n");
    let m = fs::metadata(&name).unwrap();
    assert_eq!((m.dev(), m.ino()), (st.st_dev, st.st_ino));
    let umask = crate::makedirs::mode::umask();
    assert_eq!(m.mode() & 0o7777, 0o644 & !umask);
    assert!(
        link_new(&t.path().join("n.b"), &name, b"second\n")
            .unwrap()
            .is_none(),
        "a taken name is not replaced"
    );
    assert_eq!(fs::read(&name).unwrap(), b"first\n");
    assert_eq!(names(t.path()), ["n"]);
    fs::write(t.path().join("n.c"), b"").unwrap();
    assert!(matches!(
        link_new(&t.path().join("n.c"), &t.path().join("m"), b""),
        Err(LinkNewError::Create(Errno::EEXIST))
    ));
}

/// A loop swapping FILE between a symlink and a regular file: a follow-mode write
/// used to fail when the swap came between lstat and readlink ("cannot read symbolic
/// link: Invalid argument"), and to replace the symlink itself when it came after
/// the resolution.
#[test]
fn a_name_swapped_between_a_symlink_and_a_file_never_fails_a_follow_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let t = tempfile::tempdir().unwrap();
    let (l, target) = (t.path().join("L"), t.path().join("T"));
    fs::write(&target, "t").unwrap();
    fs::write(&l, "file").unwrap();
    let stop = AtomicBool::new(false);
    let failures = std::thread::scope(|s| {
        s.spawn(|| {
            let (as_link, as_file) = (t.path().join("L.link"), t.path().join("L.file"));
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::remove_file(&as_link);
                symlink("T", &as_link).unwrap();
                fs::rename(&as_link, &l).unwrap();
                fs::write(&as_file, "file").unwrap();
                fs::rename(&as_file, &l).unwrap();
            }
        });
        let opts = Options {
            sync: false,
            ..Options::default()
        };
        let failures: Vec<String> = (0..600)
            .filter_map(|_| {
                replace(&l, &mut &b"new"[..], &opts)
                    .err()
                    .map(|e| format!("{e:#}"))
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        failures
    });
    assert_eq!(failures, Vec::<String>::new());
}

#[test]
fn a_replacement_dropped_before_commit_leaves_the_file_and_no_temporary() {
    for kind in [TempKind::Auto, TempKind::Named] {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, "old").unwrap();
        let mut new = Replacement::begin(&f, &Options::default(), kind).unwrap();
        new.fill(&mut &b"half"[..], "the test").unwrap();
        drop(new);
        assert_eq!(fs::read(&f).unwrap(), b"old");
        assert_eq!(names(t.path()), ["f"], "{kind:?}");
    }
}

#[test]
fn refuse_empty_keeps_a_non_empty_file_but_allows_a_new_or_empty_one() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("f");
    let opts = Options {
        refuse_empty: true,
        ..Options::default()
    };
    replace(&f, &mut &b""[..], &opts).unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"");
    replace(&f, &mut &b""[..], &opts).unwrap();
    replace(&f, &mut &b"x"[..], &opts).unwrap();
    let err = replace(&f, &mut &b""[..], &opts).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "refusing to replace '{}' (1 bytes) with empty content (--no-empty); it was left as it was",
            f.display()
        )
    );
    assert_eq!(fs::read(&f).unwrap(), b"x");
    assert_eq!(names(t.path()), ["f"]);
}

/// The temporary file of a call killed between link and rename, as it is left:
/// the content, under a name stamped with a writer that no longer exists.
#[test]
fn a_successful_write_removes_a_dead_writers_temporary_file_and_keeps_a_live_ones() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("f");
    let me = leftovers::this_process_tag();
    let dead = format!(
        ".f.rf-{}-{}-{}-{}-0000abcd",
        me.host,
        me.boot,
        std::process::id(),
        me.start + 1
    );
    fs::write(t.path().join(&dead), "a whole new content").unwrap();
    let mut live = Replacement::begin(&f, &Options::default(), TempKind::Named).unwrap();
    live.fill(&mut &b"live"[..], "the test").unwrap();
    assert_eq!(names(t.path()).len(), 2);
    replace(&f, &mut &b"first"[..], &Options::default()).unwrap();
    assert_eq!(
        names(t.path()).len(),
        2,
        "the live writer's stays: {:?}",
        names(t.path())
    );
    assert!(!names(t.path()).contains(&dead));
    live.commit().unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"live");
    assert_eq!(names(t.path()), ["f"]);
}
