//! The one integration-test binary (ripgrep's layout): each module tests one
//! subcommand through the built binary, in its own temporary directory.

mod counter;
mod docs;
mod ident;
mod ident_hardening;
mod ident_nat;
mod ident_oidentd;
mod ident_privsep;
mod launchers;
mod lock;
mod makedirs;
mod makedirs_modes;
mod makedirs_output;
mod makedirs_streams;
mod package;
mod props;
mod stress;
mod stress_arms;
mod stress_exec;
mod stress_report;
mod stress_verdict;
mod testenv;
mod write;
