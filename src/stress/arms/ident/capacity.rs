//! How many racers a run can release within its duration: measured, since a lookup
//! cannot be cut short at the deadline.

use std::net::SocketAddr;
use std::time::Instant;

use super::answer::{Method, Target};
use super::cells::Stats;
use super::racer::{Round, look_up};
use crate::stress::args::RaceArgs;
use crate::stress::race::Arm;

/// Racers released together each start a lookup at once, and a lookup cannot be cut
/// short at the deadline: a thousand racers on two cores would stretch a two-second
/// run to a minute (the server's answers timing out meanwhile). So, measured here:
/// what one lookup by each method costs this machine; if one lookup each for every
/// racer needs more than twice the run's time (at least 2 s: the lookups in flight
/// at the deadline may overrun it that much), the count is refused, with the number
/// that fits.
pub fn check_racers_fit(
    targets: &[Target],
    methods: &[Method],
    server: Option<SocketAddr>,
    race: &RaceArgs,
) -> anyhow::Result<()> {
    let Some(t) = targets.iter().find(|t| t.owner.is_some()) else {
        return Ok(());
    };
    let round = Round {
        arm: Arm::Racefree,
        targets: Vec::new(),
        methods: methods.to_vec(),
        server,
        hidden_uids: Vec::new(),
        seed: 0,
        deadline_ns: None,
        uid: 0,
    };
    let mut stats = Stats::new();
    let begin = Instant::now();
    const SAMPLES: u32 = 5;
    for _ in 0..SAMPLES {
        for &m in methods {
            look_up(&round, &mut stats, m, t);
        }
    }
    // One lookup by each method, and the work a racer adds beside it (a thread or
    // process, the /proc table growing by its connection): counted twice.
    let per_racer = 2.0 * begin.elapsed().as_secs_f64() / f64::from(SAMPLES);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let racers = race.racers();
    if let Some((needed, fits)) = racers_that_fit(racers, per_racer, cores, race.duration) {
        return Err(crate::exit::usage(format!(
            "--racers {racers} cannot be released together within --duration {}: one lookup by each method costs {:.1} ms here, so {racers} racers released together need about {needed:.1} s on {cores} cores to finish one lookup each; use at most --racers {fits}, a longer --duration, or --rounds",
            race.duration,
            per_racer * 1e3 / 2.0,
        )));
    }
    Ok(())
}

/// Whether `racers`, each costing `per_racer` seconds of CPU before its first
/// answer, can all be released within `duration` on `cores`: None when they can,
/// else the seconds they would need and the most that fit. Pure, so the rule is
/// tested on fixed numbers whatever this machine's lookups cost.
fn racers_that_fit(racers: u32, per_racer: f64, cores: f64, duration: f64) -> Option<(f64, u32)> {
    let needed = f64::from(racers) * per_racer / cores;
    let allowed = 2.0 * duration.max(1.0);
    (needed > allowed).then(|| (needed, ((allowed * cores / per_racer) as u32).max(1)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn racers_that_cannot_be_released_in_time_are_refused_with_the_count_that_fits() {
        // 20 ms a racer on 2 cores: 1024 racers need 10.24 s; 0.5 s allows 2 s (the
        // floor is 1 s, doubled), where 200 fit.
        let (needed, fits) = super::racers_that_fit(1024, 0.020, 2.0, 0.5).unwrap();
        assert!((needed - 10.24).abs() < 1e-9, "{needed}");
        assert_eq!(fits, 200);
        assert_eq!(super::racers_that_fit(200, 0.020, 2.0, 0.5), None);
        assert_eq!(super::racers_that_fit(8, 0.020, 2.0, 60.0), None);
        // However slow a lookup, one racer is always offered.
        assert_eq!(
            super::racers_that_fit(2, 100.0, 1.0, 1.0).map(|f| f.1),
            Some(1)
        );
    }
}
