//! `racefree stress`: parallel racers that hammer racefree's commands and verify
//! every answer, each beside a known-bad control arm that proves the harness can see
//! a race.
//!
//! From the top down: [`cmd`] is the command line; [`report`] is `stress report`;
//! [`arms`] is the registry of arms (one file and one line each), and the arms
//! themselves; [`entry`] is what the registry holds for each arm. Below them, the
//! machinery every arm shares: [`engine`] runs an arm's rounds, releasing the racers
//! together ([`gate`]) in a directory it makes ([`workdir`]), and stops on a full
//! filesystem ([`no_room`]); [`verdict`] decides what a run proved from an arm's
//! tallies; [`table`] prints a run's report; [`load`] reads back one instance's
//! report of a multi-host run and [`merge`] judges them together; [`race`] is the
//! contract an arm implements; [`args`] holds the options every arm takes and the
//! exit statuses; [`progress`], [`tree`] and [`cleanup`] serve them all. Racers
//! that are programs of their own (stress exec's) are held and released by
//! [`program`], their race windows widened by [`widen`]; [`snapshot`] compares the
//! trees they leave.

pub mod args;
pub mod arms;
pub mod cleanup;
pub mod cmd;
pub mod engine;
pub mod entry;
pub mod gate;
pub mod load;
pub mod merge;
pub mod no_room;
pub mod program;
pub mod progress;
pub mod race;
pub mod racers;
pub mod report;
pub mod snapshot;
pub mod table;
pub mod tree;
pub mod verdict;
pub mod widen;
pub mod workdir;
