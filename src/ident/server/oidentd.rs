//! `--config`: oidentd's files, applied by the server. The reading and the rules
//! are [`crate::ident::config`]'s; this holds the system file (read again on
//! SIGHUP), asks it about each owner, reads the user's file only when the rule
//! lets it matter ([`userfile`]), and turns the answer into
//! [`Findings`] the network side can send.
//!
//! Under `--user` this runs in the privileged helper, which alone may read a file
//! in a 0700 home; a `forward` is asked by the network side ([`forwarded`]), as
//! `--forward`'s queries are.
//!
//! How it combines with racefree's own rules:
//!
//! - `--hide-all` and `--hide USER` hide whatever the files say (the files are not
//!   read for a hidden user).
//! - `~/.noident` asks to be hidden, as a user file's `hide` would: it hides where
//!   the system file grants `hide` and does not force the answer. A home that
//!   cannot be checked hides, as without `--config`.
//! - `--numeric` answers the uid wherever the real name would be answered.
//! - A reply racefree cannot put on the wire (empty, or with a blank, a colon, a
//!   control or non-ASCII character: [`proto::is_wire_safe`]) is logged, and the
//!   real name answered; oidentd sends it as it is.
//! - `numeric` answers `USERID : UNIX : <uid>`, as oidentd does (racefree's own
//!   `--numeric` says `OTHER`).
//! - A uid with no password entry is answered as without `--config` (by number);
//!   oidentd answers NO-USER.
//! - SIGHUP reads the file the server started with (oidentd reads its default path
//!   whatever `-C` said); one that no longer parses is logged and the rules read
//!   before stay (oidentd exits).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::User;

use super::log::Logger;
use super::policy::{self, Findings, HomeCheck, Passwd, Rules};
use super::userfile;
use crate::ident::config::ast::Grant;
use crate::ident::config::{
    self, Cap, ConfigError, Connection, Decision, Forwarding, Lookups, Names, Note, Owner, Reply,
    Step, SystemNames, SystemPolicy, UserPrefs,
};
use crate::ident::nat::Forward;
use crate::ident::proto::{self, Answer, ErrorToken, ReplyKind};

/// How long a `forward` waits for the other identd, as oidentd waits (it assumes a
/// host on the local network).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// The system file, as last read. Clones share it: a reload is seen by every
/// serving thread (in the privileged helper, by every worker).
#[derive(Clone, Debug)]
pub struct SystemConfig {
    path: PathBuf,
    /// Named on the command line (`--config=FILE`): then a missing file is an
    /// error, where oidentd's default path missing means its defaults.
    named: bool,
    current: Arc<RwLock<Arc<SystemPolicy>>>,
}

impl SystemConfig {
    /// Reads `path`. `named`: given as `--config=FILE` (it must exist) rather than
    /// by bare `--config` (oidentd's default path, where no file means oidentd's
    /// defaults: every user answered by real name).
    pub fn load(path: &Path, named: bool) -> Result<SystemConfig, ConfigError> {
        let policy = read(path, named)?;
        Ok(SystemConfig {
            path: path.to_path_buf(),
            named,
            current: Arc::new(RwLock::new(Arc::new(policy))),
        })
    }

    /// Reads the file again. On an error the rules read before stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let policy = read(&self.path, self.named)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
        Ok(())
    }

    /// [`SystemConfig::reload`], logged: what a SIGHUP does.
    pub fn reload_and_log(&self, log: &Logger) {
        match self.reload() {
            Ok(()) => log.info(&format!("reloaded {}", self.path.display())),
            Err(e) => log.error(&format!(
                "reloading the configuration, the rules read before stay: {e}"
            )),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rules now: one reading, whole, for the whole of a query.
    pub fn policy(&self) -> Arc<SystemPolicy> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

fn read(path: &Path, named: bool) -> Result<SystemPolicy, ConfigError> {
    match config::load_system(path, &SystemNames)? {
        Some(policy) => Ok(policy),
        None if named => Err(ConfigError {
            file: path.display().to_string(),
            at: None,
            what: "no such file".into(),
        }),
        None => Ok(SystemPolicy::default()),
    }
}

/// The findings for `user`'s connection `conn` under the files, `home` being what
/// the `.noident` check found there (anything but
/// [`HomeCheck::CouldNotCheck`], which hides before the files are asked).
pub fn findings(
    system: &SystemConfig,
    conn: &Connection,
    user: &User,
    home: HomeCheck,
    log: &Logger,
) -> Findings {
    let policy = system.policy();
    let uid = user.uid.as_raw();
    if home == HomeCheck::Noident && noident_hides(&policy, uid, conn) {
        log.info(&format!(
            "answered HIDDEN-USER for {} (~/.noident, where the system file grants hide)",
            user.name
        ));
        return Findings::Decided(Answer::Error(ErrorToken::HiddenUser));
    }
    let owner = Owner {
        uid,
        name: &user.name,
    };
    let mut env = HostLookups { user, log };
    match config::decide(&policy, conn, owner, &mut env) {
        Step::Done(decision) => as_findings(decision, uid, &user.name, log),
        Step::Forward(f) if forward_of(&f, conn.local.port()).is_sound() => {
            Findings::ConfigForward(f)
        }
        Step::Forward(f) => {
            log.error(&format!(
                "{}'s forward to {} is not asked: no address one host answers on",
                user.name, f.to
            ));
            as_findings(f.finish(None, &env), uid, &user.name, log)
        }
    }
}

/// Whether `~/.noident` hides: where the user's file could ask for `hide` and have it.
pub fn noident_hides(policy: &SystemPolicy, uid: u32, conn: &Connection) -> bool {
    policy
        .rule_for(uid, conn)
        .is_some_and(|rule| rule.forced.is_none() && rule.caps.has(Grant::Cap(Cap::Hide)))
}

/// The query a `forward` makes: the same two ports, to the other identd.
fn forward_of(f: &Forwarding, local_port: u16) -> Forward {
    Forward {
        identd: f.to,
        server_port: local_port,
        client_port: f.foreign_port(),
    }
}

/// A decision as what the network side answers from, its notes logged. The real
/// name goes as the owner's entry, so that `--numeric` and the wire check apply
/// to it as to any.
pub fn as_findings(decision: Decision, uid: u32, name: &str, log: &Logger) -> Findings {
    for note in &decision.notes {
        match note {
            Note::Answered { .. } => log.info(&note.to_string()),
            _ => log.error(&note.to_string()),
        }
    }
    let real = || Findings::Owner {
        uid,
        passwd: Passwd::Entry {
            name: name.to_string(),
            may_be_named: true,
        },
    };
    match decision.reply {
        Reply::RealName => real(),
        Reply::Name(reply) if reply == name => real(),
        Reply::Name(reply) if proto::is_wire_safe(&reply) => Findings::Decided(Answer::User(reply)),
        Reply::Name(reply) => {
            log.error(&format!(
                "answered the real name for {name}: the reply {} cannot go on the wire \
                 (empty, or a blank, colon, control or non-ASCII character)",
                reply.escape_debug()
            ));
            real()
        }
        // oidentd's form: the number in place of the name, under the usual OS.
        Reply::Uid(uid) => Findings::Decided(Answer::User(uid.to_string())),
        Reply::Hidden => Findings::Decided(Answer::Error(ErrorToken::HiddenUser)),
    }
}

/// A `forward` the files decided: asks the other identd about the query's own two
/// ports (`server_port` and the forward's foreign port) within [`FORWARD_TIMEOUT`]
/// and the server's `--timeout`, then answers as oidentd does with what it said.
/// Made by the side that reads the network, holding no privilege under `--user`.
pub fn forwarded(
    f: Forwarding,
    server_port: u16,
    timeout: Duration,
    rules: Rules<'_>,
    log: &Logger,
) -> Answer {
    let query = forward_of(&f, server_port);
    let said = match query.ask(FORWARD_TIMEOUT.min(timeout)) {
        Ok(ReplyKind::UserId { user, .. }) => Some(user),
        Ok(ReplyKind::Error(token)) => {
            log.info(&format!("forwarded to {}: ERROR : {token}", query.identd));
            None
        }
        Err(e) => {
            log.error(&format!("forwarding to {}: {e:#}", query.identd));
            None
        }
    };
    let (uid, name) = (f.owner().uid, f.owner().name.to_string());
    let decision = f.finish(said.as_deref(), &PasswdOnly);
    policy::decide(rules, &as_findings(decision, uid, &name, log))
}

/// What deciding needs, on the side that may read the user's file.
struct HostLookups<'a> {
    user: &'a User,
    log: &'a Logger,
}

impl Lookups for HostLookups<'_> {
    fn uid_of(&self, user: &str) -> Option<u32> {
        SystemNames.uid_of(user)
    }

    fn random_below(&mut self, n: u32) -> u32 {
        random_below(n)
    }

    fn user_file(&mut self) -> Option<Result<UserPrefs, ConfigError>> {
        userfile::read(self.user, &SystemNames, self.log)
    }
}

/// What finishing a `forward` needs: getpwnam, for the check of the name it got.
struct PasswdOnly;

impl Lookups for PasswdOnly {
    fn uid_of(&self, user: &str) -> Option<u32> {
        SystemNames.uid_of(user)
    }

    fn random_below(&mut self, n: u32) -> u32 {
        random_below(n)
    }

    /// Finishing never reads the user's file; it was read, if at all, in deciding.
    fn user_file(&mut self) -> Option<Result<UserPrefs, ConfigError>> {
        None
    }
}

/// A number in `0..n`, uniformly, from getrandom(2) (n >= 1).
fn random_below(n: u32) -> u32 {
    // Draws at or past the last whole multiple of n would favour the low remainders.
    let limit = (1u64 << 32) - (1u64 << 32) % u64::from(n);
    loop {
        let draw = u64::from(random_u32());
        if draw < limit {
            return (draw % u64::from(n)) as u32;
        }
    }
}

fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    loop {
        // libc's getrandom: nix does not wrap it.
        // SAFETY: buf is valid for writing buf.len() bytes.
        let got = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
        if got == buf.len() as isize {
            return u32::from_ne_bytes(buf);
        }
        if Errno::last() != Errno::EINTR {
            break;
        }
    }
    // No getrandom (Linux before 3.17): the device it reads.
    use std::io::Read;
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)) {
        Ok(()) => u32::from_ne_bytes(buf),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
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
}
