//! The one integration-test binary (ripgrep's layout): each module tests one
//! subcommand through the built binary, in its own temporary directory.

mod docs;
mod ident;
mod ident_nat;
mod makedirs;
mod stress;
mod util;
