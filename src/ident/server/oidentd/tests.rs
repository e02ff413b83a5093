use super::*;
use crate::ident::server::policy::Rules;
use nix::unistd::{Gid, Uid};
use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;

/// A user with a 0700 home (uid 4242 as root, else ourselves) and a system file.
struct Host {
    dir: tempfile::TempDir,
    user: User,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        fs::create_dir(&home).unwrap();
        let (uid, gid) = if Uid::effective().is_root() {
            (Uid::from_raw(4242), Gid::from_raw(4242))
        } else {
            (Uid::effective(), Gid::effective())
        };
        nix::unistd::chown(&home, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
        let user = User {
            name: "homer".into(),
            passwd: CString::default(),
            uid,
            gid,
            gecos: CString::default(),
            dir: home,
            shell: "/bin/sh".into(),
        };
        Host { dir, user }
    }

    fn system(&self, text: &str) -> SystemConfig {
        let path = self.dir.path().join("oidentd.conf");
        fs::write(&path, text).unwrap();
        SystemConfig::load(&path, true).unwrap()
    }

    fn user_file(&self, text: &str) {
        let path = self.user.dir.join(".oidentd.conf");
        fs::write(&path, text).unwrap();
        nix::unistd::chown(&path, Some(self.user.uid), Some(self.user.gid)).unwrap();
    }

    fn noident(&self) {
        fs::write(self.user.dir.join(".noident"), "").unwrap();
    }

    /// What the files give for the user's connection to port 6667, and the log.
    fn findings(&self, system: &SystemConfig, home: HomeCheck) -> (Findings, Vec<String>) {
        let log = Logger::kept();
        let conn = Connection {
            local: "127.0.0.1:40000".parse().unwrap(),
            foreign: "127.0.0.1:6667".parse().unwrap(),
        };
        let found = findings(system, &conn, &self.user, home, &log);
        (found, log.lines())
    }

    fn real(&self) -> Findings {
        Findings::Owner {
            uid: self.user.uid.as_raw(),
            passwd: Passwd::Entry {
                name: "homer".into(),
                may_be_named: true,
            },
        }
    }
}

const SPOOF_HIDE: &str = "default { default { allow spoof allow hide allow numeric } }";

fn decided(answer: Answer) -> Findings {
    Findings::Decided(answer)
}

#[test]
fn the_users_file_answers_where_granted_and_each_answer_is_logged_with_the_real_user() {
    let host = Host::new();
    let system = host.system(SPOOF_HIDE);
    let uid = host.user.uid;
    let no_file = host.findings(&system, HomeCheck::NoNoident);
    assert_eq!(no_file, (host.real(), Vec::new()));
    host.user_file("global { reply \"zncuser\" }");
    assert_eq!(
        host.findings(&system, HomeCheck::NoNoident),
        (
            decided(Answer::User("zncuser".into())),
            vec!["answered \"zncuser\" for homer (reply, from the user's file)".to_string()]
        )
    );
    host.user_file("global { numeric }");
    assert_eq!(
        host.findings(&system, HomeCheck::NoNoident).0,
        decided(Answer::User(uid.to_string())),
        "oidentd's numeric: the uid where the name goes"
    );
    host.user_file("global { hide }");
    assert_eq!(
        host.findings(&system, HomeCheck::NoHome).0,
        decided(Answer::Error(ErrorToken::HiddenUser))
    );
    // Not granted: the real name, and a line that says so.
    let none = host.system("default { default { deny spoof } }");
    assert_eq!(
        host.findings(&none, HomeCheck::NoNoident),
        (
            host.real(),
            vec![
                "error: homer's file asks for hide, which the system file does not grant here: answered the real name"
                    .to_string()
            ]
        )
    );
    // A file that does not parse: the real name, and the error with its place.
    host.user_file("global { reply }");
    let (found, log) = host.findings(&system, HomeCheck::NoNoident);
    assert_eq!(found, host.real());
    let file = host.user.dir.join(".oidentd.conf");
    assert!(
        log.len() == 1
            && log[0].starts_with(&format!(
                "error: homer's file is not used, answered the real name: {}:1:",
                file.display()
            )),
        "{log:?}"
    );
}

#[test]
fn a_reply_the_wire_cannot_carry_answers_the_real_name() {
    let host = Host::new();
    let system = host.system(SPOOF_HIDE);
    for reply in ["", "two words", "a:b", "caf\u{e9}"] {
        host.user_file(&format!("global {{ reply \"{reply}\" }}"));
        let (found, log) = host.findings(&system, HomeCheck::NoNoident);
        assert_eq!(found, host.real(), "{reply:?}");
        assert_eq!(
            log.last().unwrap(),
            &format!(
                "error: answered the real name for homer: the reply {} cannot go on the wire \
                 (empty, or a blank, colon, control or non-ASCII character)",
                reply.escape_debug()
            )
        );
    }
}

#[test]
fn noident_hides_where_hide_is_granted_and_a_forced_answer_wins() {
    let host = Host::new();
    host.noident();
    host.user_file("global { reply \"zncuser\" }");
    let granted = host.system(SPOOF_HIDE);
    assert_eq!(
        host.findings(&granted, HomeCheck::Noident),
        (
            decided(Answer::Error(ErrorToken::HiddenUser)),
            vec![
                "answered HIDDEN-USER for homer (~/.noident, where the system file grants hide)"
                    .to_string()
            ]
        )
    );
    // Where hide is not granted, .noident asks for nothing the user may have:
    // the user's file answers.
    let spoof = host.system("default { default { allow spoof } }");
    assert_eq!(
        host.findings(&spoof, HomeCheck::Noident).0,
        decided(Answer::User("zncuser".into()))
    );
    let forced = host.system(
        "default { default { allow hide } }\nuser homer { default { force reply \"UNKNOWN\" } }"
            .replace("homer", &host.user.uid.to_string())
            .as_str(),
    );
    assert_eq!(
        host.findings(&forced, HomeCheck::Noident).0,
        decided(Answer::User("UNKNOWN".into()))
    );
}

#[test]
fn a_named_file_must_exist_the_default_one_need_not_and_a_bad_reload_keeps_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oidentd.conf");
    assert_eq!(
        SystemConfig::load(&path, true).unwrap_err().to_string(),
        format!("{}: no such file", path.display())
    );
    let defaults = SystemConfig::load(&path, false).unwrap();
    assert_eq!(*defaults.policy(), SystemPolicy::default());
    fs::write(&path, "default { default { force hide } }").unwrap();
    let system = SystemConfig::load(&path, true).unwrap();
    let before = system.policy();
    assert_ne!(*before, SystemPolicy::default());
    fs::write(&path, "default { default { force hide }").unwrap();
    let log = Logger::kept();
    system.reload_and_log(&log);
    assert_eq!(system.policy(), before, "the rules read before stay");
    assert_eq!(log.lines().len(), 1);
    assert!(
        log.lines()[0].starts_with(&format!(
            "error: reloading the configuration, the rules read before stay: {}:1:",
            path.display()
        )),
        "{:?}",
        log.lines()
    );
    fs::write(&path, "default { default { allow spoof } }").unwrap();
    let clone = system.clone();
    system.reload_and_log(&log);
    assert_eq!(
        log.lines().last().unwrap(),
        &format!("reloaded {}", path.display())
    );
    assert_ne!(clone.policy(), before, "a clone sees the reload");
    // The default path gone at a reload: oidentd's defaults again.
    fs::remove_file(&path).unwrap();
    defaults.reload().unwrap();
    assert_eq!(*defaults.policy(), SystemPolicy::default());
    assert!(system.reload().is_err(), "a named file gone is an error");
}

/// An identd on loopback that answers one query with `reply` (the ports of the
/// query first) and returns the line it was asked.
fn stub_identd(reply: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).unwrap();
        let ports = line.trim_end().to_string();
        (&conn)
            .write_all(format!("{ports} : {reply}\r\n").as_bytes())
            .unwrap();
        line
    });
    (addr, t)
}

#[test]
fn a_forward_asks_the_same_ports_and_is_judged_as_oidentd_judges_it() {
    let host = Host::new();
    let rules = Rules {
        hide_all: false,
        hide_uids: &[],
        numeric: false,
    };
    let (addr, identd) = stub_identd("USERID : UNIX : lanuser");
    let system = host.system("default { default { allow forward allow spoof } }");
    host.user_file(&format!("global {{ forward 127.0.0.1 {} }}", addr.port()));
    let (found, _) = host.findings(&system, HomeCheck::NoNoident);
    let Findings::ConfigForward(f) = found else {
        panic!("{found:?}")
    };
    let log = Logger::kept();
    let answer = forwarded(f, 40000, Duration::from_secs(10), rules, &log);
    assert_eq!(answer, Answer::User("lanuser".into()));
    assert_eq!(identd.join().unwrap(), "40000, 6667\r\n");
    assert_eq!(
        log.lines(),
        ["answered \"lanuser\" for homer (forward, from the user's file)"]
    );
    // Without spoof the name it got is not the user's to send: the real name.
    let (addr, identd) = stub_identd("USERID : UNIX : lanuser");
    let system = host.system("default { default { allow forward } }");
    host.user_file(&format!("global {{ forward 127.0.0.1 {} }}", addr.port()));
    let Findings::ConfigForward(f) = host.findings(&system, HomeCheck::NoNoident).0 else {
        panic!()
    };
    let answer = forwarded(f, 40000, Duration::from_secs(10), rules, &Logger::kept());
    assert_eq!(answer, Answer::User("homer".into()));
    identd.join().unwrap();
    // Forced, to an identd that answers an error: HIDDEN-USER, as oidentd says.
    let (addr, identd) = stub_identd("ERROR : NO-USER");
    let system = host.system(&format!(
        "default {{ default {{ force forward 127.0.0.1 {} }} }}",
        addr.port()
    ));
    let Findings::ConfigForward(f) = host.findings(&system, HomeCheck::NoNoident).0 else {
        panic!()
    };
    let answer = forwarded(f, 40000, Duration::from_secs(10), rules, &Logger::kept());
    assert_eq!(answer, Answer::Error(ErrorToken::HiddenUser));
    identd.join().unwrap();
    // One that no host answers on is not asked.
    let system = host.system("default { default { force forward 0.0.0.0 113 } }");
    let (found, log) = host.findings(&system, HomeCheck::NoNoident);
    assert_eq!(found, decided(Answer::Error(ErrorToken::HiddenUser)));
    assert_eq!(
        log[0],
        "error: homer's forward to 0.0.0.0:113 is not asked: no address one host answers on"
    );
}

#[test]
fn random_draws_are_below_their_bound_and_reach_both_ends() {
    let draws: Vec<u32> = (0..2000).map(|_| random_below(3)).collect();
    assert!(draws.iter().all(|&d| d < 3));
    assert!(draws.contains(&0) && draws.contains(&2));
    assert_eq!(random_below(1), 0);
}
