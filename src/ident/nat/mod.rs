//! `--nat`: answer for connections that leave this host through NAT.
//!
//! When the asked-about tuple is no socket of this host, it may be the outside face
//! of a translated connection. Then, in order:
//!
//! 1. **Translate** ([`conntrack`]): the conntrack entry whose *reply* direction is
//!    the asked tuple gives the *original* one, as the connection's real client
//!    sent it. The addr-pair rule holds by construction: the reply direction's
//!    source is the querier's own address, so a third party's question matches no
//!    entry.
//! 2. **Containers on this host** ([`netns`]): a socket with the original 4-tuple
//!    in one of this host's network namespaces is the connection; its owner is
//!    named from that container's own password database.
//! 3. **Other hosts** ([`forward`]): with `--forward`, the original source host's
//!    identd is to be asked about the original ports and its answer relayed;
//!    without it, NO-USER. Resolving stops at saying whom to ask
//!    ([`Resolution::Elsewhere`]): the query is network input, so the caller makes
//!    it ([`forwarded`]), which under `ident serve --user` is the unprivileged side.
//!
//! - `resolve`: those steps, for `lookup` and the server alike ([`resolve()`]).
//! - `answer`: what the server says about what they found ([`unowned`]).
//! - [`passwd`]: the strict parsers for a container's `/etc/passwd` and `uid_map`.
//! - `report`: `ident lookup --nat`'s output.

mod answer;
pub mod conntrack;
pub mod forward;
pub mod netns;
pub mod passwd;
mod report;
mod resolve;

pub use answer::{Unowned, container_answer, forwarded, relayed_answer, unowned};
pub use forward::Forward;
pub use report::{Format, print_lookup};
pub use resolve::{IDENT_PORT, NatConfig, Resolution, Why, resolve};
