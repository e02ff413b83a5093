//! Single-flight coalescing: many callers, one scan at a time, each caller answered
//! by a scan that *started after it arrived*.
//!
//! Reading `/proc/net/tcp` costs the same for one wanted tuple as for thirty-two,
//! because the kernel formats the whole table either way. So lookups that arrive
//! together share one read. The freshness rule keeps each answer exactly as good as
//! a read of its own: a caller that arrives while a scan runs is not served by that
//! scan (it may have started before the caller's connection existed); it waits, and
//! the next scan, which starts once the running one ends, serves every caller that
//! waited, in one pass.
//!
//! - A lone caller finds no scan running and scans at once, for itself alone.
//! - A scan that fails hands its error to every caller it was serving.
//! - A scan that panics hands them an error too, and the panic goes on in the
//!   caller that ran the scan. Nobody waits for a scan that will never end well.
//! - The scan runs outside the lock; waiting is on a condition variable, and every
//!   change that a waiter could be waiting for is made under the lock and followed by
//!   a wake-up of all waiters, so no wake-up is lost.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard};

/// The error a caller gets when the scan serving it panicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanPanicked;

/// Coalesces callers of `scan`: it receives the queries of every caller that arrived
/// since the previous scan started and returns one answer per query, in order.
pub struct SingleFlight<Q, A, E, F> {
    scan: F,
    state: Mutex<State<Q, A, E>>,
    changed: Condvar,
}

struct State<Q, A, E> {
    /// Callers that arrived and are not yet in a scan, by ticket.
    waiting: Vec<(u64, Q)>,
    /// True while a scan runs (outside the lock).
    scanning: bool,
    next_ticket: u64,
    /// Answers of finished scans, until their caller takes them.
    done: HashMap<u64, Result<A, E>>,
}

impl<Q, A, E, F> SingleFlight<Q, A, E, F>
where
    Q: Clone,
    E: Clone + From<ScanPanicked>,
    F: Fn(&[Q]) -> Result<Vec<A>, E>,
{
    pub fn new(scan: F) -> Self {
        SingleFlight {
            scan,
            state: Mutex::new(State {
                waiting: Vec::new(),
                scanning: false,
                next_ticket: 0,
                done: HashMap::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// The answer to `query` from a scan that started after this call began.
    pub fn call(&self, query: Q) -> Result<A, E> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push((ticket, query));
        loop {
            if let Some(answer) = state.done.remove(&ticket) {
                return answer;
            }
            if state.scanning {
                state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // No scan runs, and ours is not done: ours is waiting, so it can be
            // served only by a scan that starts now. Run it, for everyone waiting.
            state = self.lead(state);
        }
    }

    /// Callers that have arrived and wait for a scan to start (for tests and seams).
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Runs one scan for every waiting caller, with the lock released meanwhile,
    /// and publishes its answers.
    fn lead<'a>(
        &'a self,
        mut state: MutexGuard<'a, State<Q, A, E>>,
    ) -> MutexGuard<'a, State<Q, A, E>> {
        let batch = std::mem::take(&mut state.waiting);
        state.scanning = true;
        drop(state);
        let queries: Vec<Q> = batch.iter().map(|(_, q)| q.clone()).collect();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let answers = (self.scan)(&queries);
            if let Ok(a) = &answers {
                assert_eq!(a.len(), queries.len(), "a scan must answer every query");
            }
            answers
        }));
        let mut state = self.lock();
        state.scanning = false;
        let panicked = match outcome {
            Ok(Ok(answers)) => {
                for ((ticket, _), answer) in batch.iter().zip(answers) {
                    state.done.insert(*ticket, Ok(answer));
                }
                None
            }
            Ok(Err(e)) => {
                for (ticket, _) in &batch {
                    state.done.insert(*ticket, Err(e.clone()));
                }
                None
            }
            Err(payload) => {
                for (ticket, _) in &batch {
                    state.done.insert(*ticket, Err(E::from(ScanPanicked)));
                }
                Some(payload)
            }
        };
        self.changed.notify_all();
        if let Some(payload) = panicked {
            drop(state);
            panic::resume_unwind(payload);
        }
        state
    }

    fn lock(&self) -> MutexGuard<'_, State<Q, A, E>> {
        // The state is consistent whenever the lock is released, even by a panic
        // (none happens while it is held), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
