//! The one integration-test binary (ripgrep's layout): each module tests one
//! subcommand through the built binary, in its own temporary directory.

mod docs;
mod ident;
mod launchers;
mod makedirs;
mod needs;
mod package;
mod stress;
mod util;
