//! One racer's work and the churner's: lookups of every target by every method,
//! each answer checked against the one right answer.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::answer::{HIDDEN, Method, Target, expected_answer};
use super::cells::{Key, Stats};
use crate::ident::{Matcher, ReplyKind, Source, Tuple, lookup_owner_with, query};
use crate::stress::arms::kit::shuffle;
use crate::stress::cleanup::stopping;
use crate::stress::gate;
use crate::stress::race::Arm;

/// What the racers need for one round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Round {
    pub arm: Arm,
    pub targets: Vec<Target>,
    pub methods: Vec<Method>,
    /// The identd this arm's server lookups go to (racefree's, or the control's).
    pub server: Option<SocketAddr>,
    /// Owners the server must answer HIDDEN-USER for: see [`expected_answer`].
    pub hidden_uids: Vec<u32>,
    pub seed: u64,
    pub deadline_ns: Option<u64>,
    /// The uid churn connections belong to.
    pub uid: u32,
}

/// Whether a racer should stop before its next lookup: the run's deadline passed,
/// or a signal asked.
fn past_deadline(round: &Round) -> bool {
    stopping() || round.deadline_ns.is_some_and(|d| gate::now_ns() >= d)
}

/// One racer: look up every target, in its own order, by every method, once.
pub fn lookup_racer(round: &Round, seed: u64) -> Stats {
    let mut stats = Stats::new();
    for t in &shuffle(&round.targets, seed) {
        for &method in &round.methods {
            if past_deadline(round) {
                return stats;
            }
            look_up(round, &mut stats, method, t);
        }
    }
    stats
}

pub fn look_up(round: &Round, stats: &mut Stats, method: Method, t: &Target) {
    let tuple = Tuple::new(t.local, t.remote);
    let matcher = match round.arm {
        Arm::Racefree => Matcher::FourTuple,
        Arm::Control => Matcher::EstablishedOnly,
    };
    let t0 = Instant::now();
    let got: Result<Option<u32>, String> = match method {
        Method::Proc => lookup_owner_with(&tuple, Source::Proc, matcher)
            .map(|o| o.map(|o| o.uid))
            .map_err(|e| format!("{e:#}")),
        Method::Netlink => lookup_owner_with(&tuple, Source::Netlink, matcher)
            .map(|o| o.map(|o| o.uid))
            .map_err(|e| format!("{e:#}")),
        Method::Server => match round.server {
            Some(addr) => via_server(addr, &tuple),
            None => Err("no server".into()),
        },
    };
    let ns = t0.elapsed().as_nanos() as u64;
    let what = || format!("{} {} ({})", method.name(), tuple, t.label);
    let expected = expected_answer(t.owner, method, &round.hidden_uids);
    stats
        .entry(Key {
            method,
            state: t.label.clone(),
        })
        .or_default()
        .record(expected, got, ns, &what);
}

/// One RFC 1413 exchange; USERID maps back to a uid through the user name.
fn via_server(server: SocketAddr, tuple: &Tuple) -> Result<Option<u32>, String> {
    let reply = query(
        server,
        tuple.local.port(),
        tuple.remote.port(),
        Duration::from_secs(10),
    )
    .map_err(|e| format!("{e:#}"))?;
    match reply.kind {
        ReplyKind::UserId { user, .. } => match nix::unistd::User::from_name(&user) {
            Ok(Some(u)) => Ok(Some(u.uid.as_raw())),
            _ => user
                .parse()
                .map(Some)
                .map_err(|_| format!("unknown user '{user}' in reply")),
        },
        ReplyKind::Error(token) if token == "NO-USER" => Ok(None),
        ReplyKind::Error(token) if token == "HIDDEN-USER" => Ok(Some(HIDDEN)),
        ReplyKind::Error(token) => Err(format!("ERROR : {token}")),
    }
}

/// Opens a connection, half-closes it at once (`shutdown(SHUT_WR)`, as the print
/// quota script in README's "Why" did), looks it up from both ends while the FIN is in flight,
/// then closes it: over and over until told to stop, and at least once.
pub fn churn(round: &Round, stop: &AtomicBool) -> Stats {
    let mut stats = Stats::new();
    let uid = round.uid;
    let fail = |stats: &mut Stats, what: &str, e: std::io::Error| {
        stats
            .entry(Key {
                method: Method::Proc,
                state: "CHURN".into(),
            })
            .or_default()
            .record(Some(uid), Err(e.to_string()), 0, &|| what.to_string());
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            fail(&mut stats, "binding the churn listener", e);
            return stats;
        }
    };
    let addr = listener.local_addr().expect("bound");
    loop {
        let pair = TcpStream::connect(addr).and_then(|c| Ok((c, listener.accept()?.0)));
        match pair {
            Err(e) => fail(&mut stats, "opening a churn connection", e),
            Ok((client, server)) => {
                let _ = client.shutdown(Shutdown::Write);
                let ends = [
                    (client.local_addr(), client.peer_addr()),
                    (server.local_addr(), server.peer_addr()),
                ];
                for (local, remote) in ends {
                    let (Ok(local), Ok(remote)) = (local, remote) else {
                        continue;
                    };
                    let t = Target {
                        local,
                        remote,
                        state: "CHURN".into(),
                        label: "CHURN".into(),
                        owner: Some(uid),
                    };
                    for &method in &round.methods {
                        look_up(round, &mut stats, method, &t);
                    }
                }
            }
        }
        if stop.load(Ordering::Relaxed) || stopping() {
            break;
        }
    }
    stats
}
