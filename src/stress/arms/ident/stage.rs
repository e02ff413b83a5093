//! The stage: loopback connections held in every TCP state for the whole run, each
//! with its one right owner, and the kernel's word that each is where it was put.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::socket::{setsockopt, sockopt};

use super::answer::Target;
use crate::ident::TcpState;

/// The held connections, and the targets they give.
pub struct Stage {
    _held: Vec<TcpStream>,
    pub targets: Vec<Target>,
    /// What the kernel did not show as asked: the run cannot vouch for it.
    pub problems: Vec<String>,
}

/// The uid stage sockets are made as when we are root, so a lookup that answered
/// with the caller's uid instead of the socket's would be caught ("never a wrong
/// user"): nobody.
const OTHER_UID: u32 = 65534;

impl Stage {
    /// `n` connections of each kind, made as `uid` (and, as root, `n` more made as
    /// nobody), then a bounded wait for the kernel to show each in its state.
    pub fn build(n: usize, uid: u32) -> anyhow::Result<Stage> {
        let mut b = Builder::new()?;
        for _ in 0..n {
            b.established(uid)?;
            b.half_closed(uid)?;
            b.fin_wait1(uid)?;
            b.last_ack(uid)?;
            b.last_ack_closed()?;
            b.time_wait()?;
            if uid == 0 {
                b.established_as(OTHER_UID)?;
            }
        }
        let problems = wait_for_kernel(&b.want)?;
        Ok(Stage {
            _held: b.held,
            targets: b.want.into_iter().map(Want::target).collect(),
            problems,
        })
    }

    /// After the run: every held socket must still be in the state it was tested
    /// as. A socket with no owner may be gone: the kernel ends TIME_WAIT after 60 s
    /// and an orphan in LAST_ACK when its probes run out; it was tested as it was.
    pub fn recheck(&mut self) {
        let Ok(states) = read_states() else { return };
        for t in &self.targets {
            let now = states.get(&(t.local, t.remote)).map(|s| s.name());
            match now {
                Some(now) if now == t.state => {}
                None if t.owner.is_none() => {}
                now => self.problems.push(format!(
                    "{} to {}: held as {}, ended as {}",
                    t.local,
                    t.remote,
                    t.state,
                    now.unwrap_or_else(|| "nothing".into())
                )),
            }
        }
    }
}

/// What the stage asks of one socket.
struct Want {
    local: SocketAddr,
    remote: SocketAddr,
    state: TcpState,
    label: String,
    owner: Option<u32>,
}

impl Want {
    fn of(s: &TcpStream, state: TcpState, owner: Option<u32>) -> anyhow::Result<Want> {
        Ok(Want {
            local: s.local_addr()?,
            remote: s.peer_addr()?,
            state,
            label: state.name(),
            owner,
        })
    }

    fn labelled(mut self, label: &str) -> Want {
        self.label = label.into();
        self
    }

    fn target(self) -> Target {
        Target {
            local: self.local,
            remote: self.remote,
            state: self.state.name(),
            label: self.label,
            owner: self.owner,
        }
    }
}

/// Puts connections into states, one way per state, and keeps what must stay open.
struct Builder {
    listener: TcpListener,
    addr: SocketAddr,
    held: Vec<TcpStream>,
    want: Vec<Want>,
}

impl Builder {
    fn new() -> anyhow::Result<Builder> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
        // Small receive buffers on accepted sockets, so a writer can fill the window.
        setsockopt(&listener, sockopt::RcvBuf, &4096).context("setting SO_RCVBUF")?;
        let addr = listener.local_addr()?;
        Ok(Builder {
            listener,
            addr,
            held: Vec::new(),
            want: Vec::new(),
        })
    }

    /// A connected pair: the client's end, then the server's.
    fn pair(&self) -> anyhow::Result<(TcpStream, TcpStream)> {
        let c = TcpStream::connect(self.addr).context("connecting on loopback")?;
        let (s, _) = self.listener.accept().context("accepting on loopback")?;
        Ok((c, s))
    }

    /// ESTABLISHED, both ends.
    fn established(&mut self, uid: u32) -> anyhow::Result<()> {
        let (c, s) = self.pair()?;
        self.want.push(Want::of(&c, TcpState::Established, Some(uid))?);
        self.want.push(Want::of(&s, TcpState::Established, Some(uid))?);
        self.held.extend([c, s]);
        Ok(())
    }

    /// Half-closed: the client in FIN_WAIT2, the server in CLOSE_WAIT.
    fn half_closed(&mut self, uid: u32) -> anyhow::Result<()> {
        let (c, s) = self.pair()?;
        c.shutdown(Shutdown::Write)?;
        self.want.push(Want::of(&c, TcpState::FinWait2, Some(uid))?);
        self.want.push(Want::of(&s, TcpState::CloseWait, Some(uid))?);
        self.held.extend([c, s]);
        Ok(())
    }

    /// FIN_WAIT1: the FIN waits behind data the peer's full window won't take.
    fn fin_wait1(&mut self, uid: u32) -> anyhow::Result<()> {
        let (c, s) = self.pair()?;
        fill(&c)?;
        c.shutdown(Shutdown::Write)?;
        self.want.push(Want::of(&c, TcpState::FinWait1, Some(uid))?);
        self.held.extend([c, s]);
        Ok(())
    }

    /// The server's end after the client's FIN, its own FIN stuck behind data the
    /// client never reads: LAST_ACK once it shuts down its side.
    fn closing_server(&self) -> anyhow::Result<(TcpStream, TcpStream)> {
        let client = small_rcvbuf_client(self.addr)?;
        let (s, _) = self.listener.accept()?;
        client.shutdown(Shutdown::Write)?;
        wait_eof(&s)?;
        fill(&s)?;
        Ok((client, s))
    }

    /// LAST_ACK, still ours.
    fn last_ack(&mut self, uid: u32) -> anyhow::Result<()> {
        let (client, s) = self.closing_server()?;
        s.shutdown(Shutdown::Write)?;
        self.want.push(Want::of(&s, TcpState::LastAck, Some(uid))?);
        self.held.extend([client, s]);
        Ok(())
    }

    /// LAST_ACK after close(): the kernel alone holds it, so it has no owner.
    fn last_ack_closed(&mut self) -> anyhow::Result<()> {
        let (client, s) = self.closing_server()?;
        self.want
            .push(Want::of(&s, TcpState::LastAck, None)?.labelled("LAST_ACK (closed)"));
        drop(s);
        self.held.push(client);
        Ok(())
    }

    /// TIME_WAIT: the client closes first, the server second: the client's end
    /// waits in TIME_WAIT, owned by nobody.
    fn time_wait(&mut self) -> anyhow::Result<()> {
        let (mut c, s) = self.pair()?;
        self.want.push(Want::of(&c, TcpState::TimeWait, None)?);
        c.shutdown(Shutdown::Write)?;
        wait_eof(&s)?;
        drop(s);
        let _ = c.read(&mut [0u8; 1]);
        Ok(())
    }

    /// As root: a connection whose sockets belong to another user.
    fn established_as(&mut self, uid: u32) -> anyhow::Result<()> {
        let (c, s) = as_fsuid(uid, || self.pair())?;
        for end in [&c, &s] {
            self.want.push(
                Want::of(end, TcpState::Established, Some(uid))?.labelled("ESTABLISHED (nobody)"),
            );
        }
        self.held.extend([c, s]);
        Ok(())
    }
}

/// Waits (bounded) for the kernel to put each socket where it was asked; returns
/// those it did not. This waits for the kernel, it races nothing: it yields
/// between reads.
fn wait_for_kernel(want: &[Want]) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let states = read_states()?;
        let pending: Vec<&Want> = want
            .iter()
            .filter(|w| states.get(&(w.local, w.remote)) != Some(&w.state))
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return Ok(pending
                .into_iter()
                .map(|w| {
                    format!(
                        "{} to {}: wanted {}, kernel shows {}",
                        w.local,
                        w.remote,
                        w.state,
                        states
                            .get(&(w.local, w.remote))
                            .map_or("nothing".into(), |s| s.name())
                    )
                })
                .collect());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` with this thread's file-system uid set to `uid`: sockets created or
/// accepted meanwhile belong to `uid`. (fsuid is per thread; the old one is restored.)
fn as_fsuid<T>(uid: u32, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    // SAFETY: setfsuid only changes this thread's credentials; it returns the old fsuid.
    let old = unsafe { libc::setfsuid(uid) };
    let out = f();
    // SAFETY: as above, restoring the fsuid this thread had.
    unsafe { libc::setfsuid(old as libc::uid_t) };
    out
}

/// A client socket with a small receive buffer, set before connect so the window
/// it advertises is small from the start.
fn small_rcvbuf_client(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, connect, socket};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::RcvBuf, &4096)?;
    let SocketAddr::V4(v4) = addr else {
        bail!("loopback listener is IPv4")
    };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(v4))
        .context("connecting on loopback")?;
    Ok(TcpStream::from(fd))
}

/// Writes until the peer's window and our send buffer are full.
fn fill(s: &TcpStream) -> anyhow::Result<()> {
    setsockopt(s, sockopt::SndBuf, &4096)?;
    s.set_nonblocking(true)?;
    let chunk = [0u8; 4096];
    let mut w = s;
    loop {
        match w.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e).context("filling the peer's window"),
        }
    }
    s.set_nonblocking(false)?;
    Ok(())
}

/// Blocks until the peer's FIN has arrived (read returns 0), bounded.
fn wait_eof(s: &TcpStream) -> anyhow::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 64];
    let mut r = s;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e).context("waiting for the peer's FIN"),
        }
    }
}

/// Every IPv4 TCP socket's state, by (local, remote), owned or not. The stage
/// needs rows the lookup rightly refuses (inode 0: TIME_WAIT, an orphan in
/// LAST_ACK), and a reader independent of the lookup under test, so it reads the
/// table with procfs, as the tests do; it runs only at setup and at the end, never
/// on the lookup path.
fn read_states() -> anyhow::Result<BTreeMap<(SocketAddr, SocketAddr), TcpState>> {
    let rows = procfs::net::tcp().context("reading /proc/net/tcp")?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                (r.local_address, r.remote_address),
                TcpState::from_kernel(r.state.to_u8()),
            )
        })
        .collect())
}
