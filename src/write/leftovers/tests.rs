use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::*;

fn here() -> Here {
    Here {
        host: "0000000a".into(),
        boot: "0000000b".into(),
        start: 1,
    }
}

fn stamp(host: &str, boot: &str, pid: i32, start: u64) -> Kind {
    Kind::Stamped(Stamp {
        host: host.into(),
        boot: boot.into(),
        pid,
        start,
    })
}

#[test]
fn names_parse_back_into_their_writer_and_nothing_else_parses() {
    let name = stamped_name(c"f");
    let me = this_process().unwrap();
    let rest = name.to_bytes().strip_prefix(b".f.rf-".as_slice()).unwrap();
    assert_eq!(
        parse(rest),
        stamp(&me.host, &me.boot, std::process::id() as i32, me.start)
    );
    assert_eq!(
        parse(b"0123abcd-89abcdef-42-1000-00ff00ff"),
        stamp("0123abcd", "89abcdef", 42, 1000)
    );
    assert_eq!(parse(b"0123456789abcdef"), Kind::Unstamped);
    for other in [
        &b"counter"[..],
        b"0123abcd-89abcdef-42-1000-00ff00ff-x",
        b"0123abcd-89abcdef-0-1000-00ff00ff",
        b"0123abcd-89abcdef--1000-00ff00ff",
        b"0123abc-89abcdef-42-1000-00ff00ff",
        b"0123abcd-89abcdef-42-1000-00ff00f",
        b"0123abcd-89abcdef-4x-1000-00ff00ff",
        b"0123456789abcdeg",
        b"\xff",
        b"",
    ] {
        assert_eq!(parse(other), Kind::Other, "{}", other.escape_ascii());
    }
    assert_eq!(locked_name(c"n").as_bytes(), b".n.rf-counter");
}

#[test]
fn a_long_file_name_keeps_its_temporary_names_within_name_max() {
    let long = CString::new(vec![b'x'; 255]).unwrap();
    let name = stamped_name(&long);
    assert!(name.as_bytes().len() <= 255, "{}", name.as_bytes().len());
    assert!(name.as_bytes().starts_with(&prefix(&long)));
}

#[test]
fn the_host_tag_is_the_same_from_every_build() {
    // FNV-1a of "host\0pid:[4026531836]", computed independently: the tag must not
    // change with the compiler, or hosts sharing a directory would disagree.
    assert_eq!(host_tag(b"host", b"pid:[4026531836]"), "a197159c");
    assert_ne!(host_tag(b"host", b"pid:[1]"), host_tag(b"host", b"pid:[2]"));
}

#[test]
fn only_provably_dead_writers_and_old_foreign_files_are_removed() {
    let young = Duration::from_secs(1);
    let old = FOREIGN_AGE;
    let alive = |_| {
        Some(Process {
            start: 100,
            zombie: false,
        })
    };
    let gone = |_| None;
    let h = here();
    let mine = stamp("0000000a", "0000000b", 7, 100);
    assert!(
        !decide(&mine, old, &h, alive),
        "a live writer's, however old"
    );
    assert!(decide(&mine, young, &h, gone), "its writer is gone");
    let reused = |_| {
        Some(Process {
            start: 101,
            zombie: false,
        })
    };
    assert!(
        decide(&mine, young, &h, reused),
        "its pid is another process's"
    );
    let zombie = |_| {
        Some(Process {
            start: 100,
            zombie: true,
        })
    };
    assert!(decide(&mine, young, &h, zombie), "its writer has exited");
    let rebooted = stamp("0000000a", "000000ff", 7, 100);
    assert!(
        decide(&rebooted, young, &h, alive),
        "written before a reboot"
    );
    let remote = stamp("000000ff", "0000000b", 7, 100);
    assert!(!decide(&remote, young, &h, gone), "another host's, young");
    assert!(decide(&remote, old, &h, alive), "another host's, old");
    assert!(!decide(&Kind::Unstamped, old - young, &h, gone));
    assert!(decide(&Kind::Unstamped, old, &h, gone));
    assert!(!decide(&Kind::Other, old * 100, &h, gone));
}

fn set_age(p: &Path, age: Duration) {
    let t = SystemTime::now() - age;
    let f = fs::File::options().write(true).open(p).unwrap();
    f.set_modified(t).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn remove_dead_removes_exactly_what_the_rule_says_in_a_real_directory() {
    let t = tempfile::tempdir().unwrap();
    let me = this_process().unwrap();
    let pid = std::process::id();
    let named = |host: &str, boot: &str, pid: u32, start: u64, rand: &str| {
        format!(".f.rf-{host}-{boot}-{pid}-{start}-{rand}")
    };
    let live = named(&me.host, &me.boot, pid, me.start, "00000001");
    // Our own pid with another start time: its writer is provably gone.
    let dead = named(&me.host, &me.boot, pid, me.start + 1, "00000002");
    let foreign = if me.host == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    let remote_young = named(foreign, &me.boot, 1, 1, "00000003");
    let remote_old = named(foreign, &me.boot, 1, 1, "00000004");
    let unstamped_old = ".f.rf-0123456789abcdef".to_string();
    let counter_old = ".f.rf-counter".to_string();
    let other_file = ".g.rf-0123456789abcdef".to_string();
    let dead_linked = named(&me.host, &me.boot, pid, me.start + 1, "00000005");
    let dead_dir = named(&me.host, &me.boot, pid, me.start + 1, "00000006");
    for n in [
        &live,
        &dead,
        &remote_young,
        &remote_old,
        &unstamped_old,
        &counter_old,
        &other_file,
        &dead_linked,
    ] {
        fs::write(t.path().join(n), "content").unwrap();
    }
    fs::hard_link(t.path().join(&dead_linked), t.path().join("second-name")).unwrap();
    fs::create_dir(t.path().join(&dead_dir)).unwrap();
    for n in [&remote_old, &unstamped_old, &counter_old, &other_file] {
        set_age(&t.path().join(n), FOREIGN_AGE + Duration::from_secs(60));
    }
    assert_eq!(
        fs::metadata(t.path().join(&dead_linked)).unwrap().nlink(),
        2
    );
    let dir: OwnedFd = fs::File::open(t.path()).unwrap().into();
    remove_dead(&dir, c"f");
    let mut want = vec![
        live,
        remote_young,
        counter_old,
        other_file,
        dead_linked,
        dead_dir,
        "second-name".to_string(),
    ];
    want.sort();
    assert_eq!(names(t.path()), want);
}

#[test]
fn a_small_directory_is_always_listed_and_a_big_one_in_proportion() {
    for draw in [0, 1, u64::MAX] {
        assert!(worth_listing(4096, draw));
        assert!(worth_listing(LIST_ALWAYS_UP_TO, draw));
    }
    let size = 4 * LIST_ALWAYS_UP_TO;
    let listed = (0..size).filter(|&d| worth_listing(size, d)).count() as u64;
    assert_eq!(listed, LIST_ALWAYS_UP_TO, "one draw in four lists");
}
