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
mod tests;
