//! Privilege separation, after OpenBSD's identd: under `--user`, the process that
//! parses network input runs with no privilege, and a small privileged helper
//! answers one question: who owns this tuple, and may they be named? With `--nat`
//! and `--proxy` the same question reaches further, through conntrack, into this
//! host's containers, or to a trusted NAT host's forwarded query ([`super::owner::find`]
//! is the one lookup, here and in-process alike). With `--forward`, its answer may
//! be "ask that host": see below.
//!
//! Why a helper stays privileged: whether a user may be named depends on
//! `~/.noident`, and a home is often 0700: only its owner, or root, can look in it.
//! A server that dropped to `nobody` and looked itself would hide root and every
//! user with a private home (it cannot tell "no .noident" from "cannot look").
//! With `--config` the same holds for users' oidentd.conf: the helper reads each
//! as its user ([`super::userfile`]) and sends the answer the files decide, or a
//! `forward` for the network side to ask; on SIGHUP the network side asks it to
//! read the system file again.
//!
//! Three files, each to be read in one sitting:
//!
//! - `client`: the network side's handle ([`Helper`]): forks the helper before the
//!   drop, then asks it, from any serving thread, about each connection;
//! - `helper`: the forked process that keeps root: what it holds (nothing but its
//!   channel), what it trusts (nothing but the two ports), how it answers;
//! - `record`: the channel and its fixed-size binary records, decoded strictly (a
//!   reply is accepted only in the exact form the encoder gives its value).
//!
//! **Forwards are made by the network side, unprivileged.** With `--forward`, only
//! the privileged part stays in the helper: reading conntrack (root's) to find the
//! original tuple, and deciding that it came from a host behind this one. The query
//! to that host's identd (an outgoing connection and one reply line of network input,
//! parsed by the strict client, bounded by `--timeout`) is made by the network
//! side, which holds no privilege, and which relays the answer with the ports
//! translated back. A host that never answers thus holds one of the network side's
//! connections, as a slow querier would, and no helper worker: local lookups do
//! not wait behind it.

mod client;
mod helper;
mod record;

pub use client::Helper;
