//! One round's racers, released together: threads waiting at a start line,
//! processes of this binary blocked on their stdin, or an arm's own programs held
//! right before their execve ([`super::program`]); churners beside them; and the
//! body of a racer process.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::gate::{self, StartLine};
use super::program;
use super::race::Race;

/// A racer's outcome with the instant it was released.
#[derive(Serialize, Deserialize)]
pub struct Raced<O> {
    pub started_ns: u64,
    pub outcome: O,
}

/// What a round's racers (each with its release instant) and churners did.
pub type RoundResult<A> = (Vec<Raced<<A as Race>::Outcome>>, Vec<<A as Race>::Churn>);

/// Runs one round: racers released together (threads, processes of this binary,
/// or the arm's own programs), churners started with them and stopped when they
/// are done.
pub fn run_round<A: Race>(
    subject: &A,
    round: &A::Round,
    racers: u32,
    processes: bool,
) -> anyhow::Result<RoundResult<A>> {
    if let Some(p) = subject.programs(round) {
        let raced = program::race(&p.list, p.timeout, p.release_ns, p.widen)?
            .into_iter()
            .map(|e| Raced {
                started_ns: e.started_ns,
                outcome: (p.outcome)(e),
            })
            .collect();
        return Ok((raced, Vec::new()));
    }
    let start = StartLine::default();
    let done = AtomicBool::new(false);
    let churners = subject.churners(round);
    std::thread::scope(|s| {
        let mut churn_handles = Vec::new();
        let mut threads = Vec::new();
        let mut procs = None;
        // Start everything; if anything cannot start, those already waiting give up.
        let started = start_churners::<A>(s, round, churners, (&start, &done), &mut churn_handles)
            .and_then(|()| {
                if processes {
                    procs = Some(spawn_racers::<A>(round, racers)?);
                    Ok(())
                } else {
                    start_racers::<A>(s, round, racers, &start, &mut threads)
                }
            });
        start.open(started.is_ok());
        let raced = started.and_then(|()| match procs {
            Some(p) => outcomes_of::<A>(p),
            None => Ok(threads
                .into_iter()
                .filter_map(|h| h.join().expect("a racer thread panicked"))
                .collect()),
        });
        done.store(true, Ordering::Relaxed);
        let churn: Vec<A::Churn> = churn_handles
            .into_iter()
            .filter_map(|h| h.join().expect("a churner panicked"))
            .collect();
        Ok((raced?, churn))
    })
}

/// Churner threads, each waiting at the start line, then churning until `done`.
/// Each one started is in `handles`, even when a later one cannot start.
fn start_churners<'scope, 'env, A: Race>(
    s: &'scope Scope<'scope, 'env>,
    round: &'env A::Round,
    churners: usize,
    (start, done): (&'env StartLine, &'env AtomicBool),
    handles: &mut Vec<ScopedJoinHandle<'scope, Option<A::Churn>>>,
) -> anyhow::Result<()>
where
    A::Churn: 'scope,
{
    for i in 0..churners {
        handles.push(
            std::thread::Builder::new()
                .name("churner".into())
                .spawn_scoped(s, move || {
                    if start.wait() {
                        A::churn(round, i, done)
                    } else {
                        None
                    }
                })
                .context("starting a churner thread")?,
        );
    }
    Ok(())
}

/// Racer threads, each waiting at the start line. Each one started is in
/// `handles`, even when a later one cannot start.
fn start_racers<'scope, 'env, A: Race>(
    s: &'scope Scope<'scope, 'env>,
    round: &'env A::Round,
    racers: u32,
    start: &'env StartLine,
    handles: &mut Vec<ScopedJoinHandle<'scope, Option<Raced<A::Outcome>>>>,
) -> anyhow::Result<()>
where
    A::Outcome: 'scope,
{
    for i in 0..racers {
        handles.push(
            std::thread::Builder::new()
                .name("racer".into())
                .spawn_scoped(s, move || {
                    start.wait().then(|| {
                        let started_ns = gate::now_ns();
                        Raced {
                            started_ns,
                            outcome: A::race(round, i),
                        }
                    })
                })
                .with_context(|| format!("starting racer thread {} of {racers}", i + 1))?,
        );
    }
    Ok(())
}

/// Racer processes, `racefree stress worker NAME --racer N`, each blocked reading
/// the round on its stdin.
fn spawn_racers<A: Race>(round: &A::Round, racers: u32) -> anyhow::Result<gate::Racers> {
    let bytes = serde_json::to_vec(round)?;
    gate::Racers::spawn(
        (0..racers).map(|i| {
            vec![
                "stress".into(),
                "worker".into(),
                A::NAME.into(),
                "--racer".into(),
                i.to_string().into(),
            ]
        }),
        &bytes,
    )
}

/// Releases the racer processes and reads what each printed.
fn outcomes_of<A: Race>(mut procs: gate::Racers) -> anyhow::Result<Vec<Raced<A::Outcome>>> {
    procs.release();
    procs
        .wait_all()?
        .into_iter()
        .map(|out| {
            serde_json::from_slice::<Raced<A::Outcome>>(&out.stdout)
                .context("reading a racer process's result")
        })
        .collect()
}

/// The body of a racer process (`racefree stress worker SUBJECT --racer N`): read
/// the round from stdin, wait for the release, race, print the outcome as JSON.
pub fn worker<A: Race>(racer: u32) -> anyhow::Result<()> {
    let (bytes, started_ns) =
        gate::read_round_and_wait().context("waiting for the start signal")?;
    let round: A::Round = serde_json::from_slice(&bytes).context("reading the round")?;
    let outcome = A::race(&round, racer);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(
        &mut out,
        &Raced {
            started_ns,
            outcome,
        },
    )?;
    out.flush()?;
    Ok(())
}
