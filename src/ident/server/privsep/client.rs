//! The network side's client of the privileged helper: forks it, then asks it
//! about each connection. Many serving threads may ask at once; one reader thread
//! hands each reply to its asker. When the helper is gone every asker is told (a
//! failed lookup, UNKNOWN-ERROR: never a name), and so is the server, which stops:
//! nothing can be looked up any more, and a supervisor can only restart a server
//! that exits.

use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::socket::{self as sock, ControlMessage, MsgFlags};
use nix::sys::wait::{WaitStatus, waitpid};
use procfs::process::Process;

use super::super::config::ServerConfig;
use super::super::log::Logger;
use super::super::policy::Findings;
use super::helper;
use super::record::{Ask, REPLY_LEN, REQUEST_LEN, channel, decode_reply, encode_request};

/// How long the network side waits for a reply. The helper answers every request,
/// and makes no network query of its own (`--forward`'s is made by the asker), so
/// this only guards against a bug.
const REPLY_BOUND: Duration = Duration::from_secs(120);

/// How long to wait for a helper whose channel closed to be reaped, to say how it
/// ended: it closes its channel only as it exits, so this is microseconds unless the
/// host is stalled.
const REAP_BOUND: Duration = Duration::from_secs(2);

/// What is told when the helper is gone: why, in words.
pub type WhenGone = Box<dyn FnOnce(&str) + Send>;

/// The network side's handle on the helper. Many threads may ask at once.
pub struct Helper {
    channel: Arc<OwnedFd>,
    waiting: Arc<Mutex<HashMap<u64, SyncSender<Findings>>>>,
    next_id: AtomicU64,
    life: Arc<Life>,
    /// How long an asker waits for its reply.
    reply_bound: Duration,
}

impl Helper {
    /// Forks the helper. Call while this process has one thread and still has its
    /// privileges, then drop them; the helper keeps them.
    pub fn start(config: &ServerConfig, log: &Logger) -> anyhow::Result<Helper> {
        let (ours, theirs) = channel().context("creating the privileged helper's socketpair")?;
        // fork copies only the calling thread: with others running, a lock one of
        // them held would stay locked forever in the child.
        let threads = Process::myself()
            .and_then(|me| me.stat())
            .context("counting this process's threads")?
            .num_threads;
        anyhow::ensure!(
            threads == 1,
            "the privileged helper must be forked while the server has one thread, not {threads}"
        );
        let parent = nix::unistd::getpid();
        // SAFETY: this process has one thread (checked above), so the child may do anything.
        match unsafe { nix::unistd::fork() }.context("forking the privileged helper")? {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                let code = helper::main(theirs, parent, config.clone(), log.target());
                // Never return into the network side's code.
                std::process::exit(code);
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(theirs);
                Helper::over(ours, child, log)
            }
        }
    }

    /// The network side's handle on a helper at the other end of `channel`.
    fn over(channel: OwnedFd, pid: nix::unistd::Pid, log: &Logger) -> anyhow::Result<Helper> {
        let helper = Helper {
            channel: Arc::new(channel),
            waiting: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
            life: Arc::new(Life {
                pid,
                state: Mutex::new(State::Alive(None)),
                log: log.clone_target(),
            }),
            reply_bound: REPLY_BOUND,
        };
        helper.start_reader(log)?;
        Ok(helper)
    }

    /// A helper as [`Helper::start`] makes one, but in `workers` threads of this
    /// process (no fork, no privilege), answering with `find`: the seam through
    /// which a test makes the helper say anything it can say.
    #[cfg(test)]
    pub(in crate::ident::server) fn in_threads(
        workers: usize,
        find: impl Fn(&crate::ident::lookup::Tuple) -> Findings + Send + Sync + 'static,
    ) -> Helper {
        use super::super::log::LogTarget;
        let (ours, theirs) = channel().unwrap();
        let (theirs, find) = (Arc::new(theirs), Arc::new(find));
        for _ in 0..workers {
            let (theirs, find) = (Arc::clone(&theirs), Arc::clone(&find));
            thread::spawn(move || {
                helper::serve_requests(&theirs, &Logger::new(LogTarget::None), &*find, &|| {})
            });
        }
        Helper::over(ours, nix::unistd::getpid(), &Logger::new(LogTarget::None)).unwrap()
    }

    /// The helper's process id.
    pub fn pid(&self) -> u32 {
        self.life.pid.as_raw() as u32
    }

    /// Has `tell` called, once, with the reason, when the helper is found gone; at
    /// once if it is gone already.
    pub fn when_gone(&self, tell: WhenGone) {
        let mut state = lock(&self.life.state);
        match &mut *state {
            State::Alive(slot) => *slot = Some(tell),
            State::Gone(reason) => {
                let reason = reason.clone();
                drop(state);
                tell(&reason);
            }
        }
    }

    /// Asks about the connection between `connection`'s ends, on the ports asked.
    /// Any failure to get an answer is a failed lookup (UNKNOWN-ERROR), never a name.
    pub fn ask(&self, connection: BorrowedFd<'_>, server_port: u16, client_port: u16) -> Findings {
        if self.life.is_gone() {
            return Findings::LookupFailed;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.waiting).insert(id, tx);
        let request = encode_request(
            id,
            Ask::Lookup {
                server_port,
                client_port,
            },
        );
        let fds = [connection.as_raw_fd()];
        let sent = sock::sendmsg::<()>(
            self.channel.as_raw_fd(),
            &[IoSlice::new(&request)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        if sent != Ok(REQUEST_LEN) {
            lock(&self.waiting).remove(&id);
            // The helper's end is closed: it is gone, and the server must know, even
            // if the reader has not seen the end yet.
            if let Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) = sent {
                self.life.gone();
            }
            return Findings::LookupFailed;
        }
        // The helper answers every request; the bound only guards against a bug.
        rx.recv_timeout(self.reply_bound)
            .unwrap_or(Findings::LookupFailed)
    }

    /// Asks the helper to read `--config`'s system file again (this process got
    /// SIGHUP). The helper logs how it went; nothing comes back.
    pub fn reload(&self) -> anyhow::Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = encode_request(id, Ask::Reload);
        let sent = sock::send(self.channel.as_raw_fd(), &request, MsgFlags::MSG_NOSIGNAL)
            .context("asking the privileged helper to reload")?;
        anyhow::ensure!(sent == REQUEST_LEN, "a reload request sent in part");
        Ok(())
    }

    /// One thread reads the helper's replies and hands each to its asker. When the
    /// helper is gone, the server is told, then every asker (their senders are
    /// dropped), so that an asker told "failed" finds the server already told.
    fn start_reader(&self, log: &Logger) -> anyhow::Result<()> {
        let (channel, waiting, life) = (
            Arc::clone(&self.channel),
            Arc::clone(&self.waiting),
            Arc::clone(&self.life),
        );
        let log_odd = log.clone_target();
        thread::Builder::new()
            .name("identd-privsep".into())
            .spawn(move || {
                let mut buf = [0u8; REPLY_LEN];
                loop {
                    match sock::recv(channel.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                        Ok(REPLY_LEN) => {
                            let (id, findings) = decode_reply(&buf);
                            if let Some(tx) = lock(&waiting).remove(&id) {
                                let _ = tx.send(findings);
                            }
                        }
                        Err(Errno::EINTR) => {}
                        Ok(0) => break,
                        Ok(n) => {
                            log_odd.error(&format!(
                                "the privileged helper sent a reply of {n} bytes, not {REPLY_LEN}"
                            ));
                            break;
                        }
                        Err(e) => {
                            log_odd.error(&format!("reading the privileged helper's replies: {e}"));
                            break;
                        }
                    }
                }
                life.gone();
                lock(&waiting).clear();
            })
            .context("starting the privileged helper's reader")?;
        Ok(())
    }
}

/// Whether the helper is still there, and whom to tell when it is not.
struct Life {
    pid: nix::unistd::Pid,
    state: Mutex<State>,
    log: Logger,
}

enum State {
    Alive(Option<WhenGone>),
    /// Why, in words.
    Gone(String),
}

impl Life {
    fn is_gone(&self) -> bool {
        matches!(*lock(&self.state), State::Gone(_))
    }

    /// Records that the helper is gone, saying how it ended, and tells whoever
    /// asked to be told. Only the first call does anything.
    fn gone(&self) {
        let mut state = lock(&self.state);
        let State::Alive(tell) = &mut *state else {
            return;
        };
        let tell = tell.take();
        let reason = format!(
            "the privileged helper (pid {}) {}; no owner can be looked up",
            self.pid,
            how_it_ended(self.pid)
        );
        *state = State::Gone(reason.clone());
        drop(state);
        match tell {
            Some(tell) => tell(&reason),
            None => self.log.error(&reason),
        }
    }
}

/// How the helper, whose channel has closed, ended: reaped here (it is our child)
/// by a thread of its own, waited for within [`REAP_BOUND`], so that a helper
/// stuck on its way out cannot keep the server from stopping.
fn how_it_ended(pid: nix::unistd::Pid) -> String {
    let (tx, rx) = mpsc::channel();
    let reaper = thread::Builder::new()
        .name("identd-reaper".into())
        .spawn(move || {
            let status = loop {
                match waitpid(pid, None) {
                    Err(Errno::EINTR) => {}
                    other => break other,
                }
            };
            let _ = tx.send(status);
        });
    if reaper.is_err() {
        return "closed its channel".into();
    }
    match rx.recv_timeout(REAP_BOUND) {
        Ok(Ok(WaitStatus::Exited(_, code))) => format!("exited with status {code}"),
        Ok(Ok(WaitStatus::Signaled(_, signal, _))) => {
            format!("was killed by {}", signal.as_str())
        }
        // Not our child (a helper in threads), or already reaped.
        Ok(_) => "closed its channel".into(),
        Err(_) => "closed its channel and has not exited".into(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
