//! The network side's client of the privileged helper: forks it, then asks it
//! about each connection. Many serving threads may ask at once; one reader thread
//! hands each reply to its asker, and when the helper is gone every asker is told
//! (a failed lookup, UNKNOWN-ERROR: never a name).

use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use nix::sys::socket::{self as sock, ControlMessage, MsgFlags};
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

/// The network side's handle on the helper. Many threads may ask at once.
pub struct Helper {
    channel: Arc<OwnedFd>,
    waiting: Arc<Mutex<HashMap<u64, SyncSender<Findings>>>>,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    pid: nix::unistd::Pid,
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
            alive: Arc::new(AtomicBool::new(true)),
            pid,
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
        self.pid.as_raw() as u32
    }

    /// Asks about the connection between `connection`'s ends, on the ports asked.
    /// Any failure to get an answer is a failed lookup (UNKNOWN-ERROR), never a name.
    pub fn ask(&self, connection: BorrowedFd<'_>, server_port: u16, client_port: u16) -> Findings {
        if !self.alive.load(Ordering::SeqCst) {
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
    /// helper is gone, every asker is told so (their senders are dropped).
    fn start_reader(&self, log: &Logger) -> anyhow::Result<()> {
        let (channel, waiting, alive) = (
            Arc::clone(&self.channel),
            Arc::clone(&self.waiting),
            Arc::clone(&self.alive),
        );
        let log_gone = log.clone_target();
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
                        Err(nix::errno::Errno::EINTR) => {}
                        other => {
                            alive.store(false, Ordering::SeqCst);
                            lock(&waiting).clear();
                            log_gone.error(&format!(
                                "the privileged helper is gone ({other:?}); answering UNKNOWN-ERROR"
                            ));
                            return;
                        }
                    }
                }
            })
            .context("starting the privileged helper's reader")?;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
