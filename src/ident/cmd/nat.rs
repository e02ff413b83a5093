//! `--nat` and `--forward`, as `ident lookup` and `ident serve` both take them.

use std::time::Duration;

use clap::Args as ClapArgs;

use crate::ident::lookup::Source;
use crate::ident::nat::NatConfig;

/// `--nat` and `--forward`, shared by `lookup` and `serve`.
#[derive(Debug, ClapArgs)]
pub(super) struct NatArgs {
    /// Answer for connections this host translated (masquerade, SNAT): look the
    /// conntrack entry up, then the container holding the original connection
    /// (needs root)
    #[arg(long)]
    pub(super) nat: bool,
    /// With --nat: ask the identd of a host behind this one (not a container here)
    /// on PORT, and relay its answer (ident serve --user makes that query as the
    /// user; only reading conntrack, to know whom to ask, stays privileged)
    #[arg(long, value_name = "PORT", num_args = 0..=1, require_equals = true,
          default_missing_value = "113", requires = "nat",
          value_parser = clap::value_parser!(u16).range(1..))]
    forward: Option<u16>,
}

impl NatArgs {
    pub(super) fn config(&self, source: Source, timeout: Duration) -> NatConfig {
        NatConfig {
            translate: self.nat,
            forward: self.forward,
            proxies: Vec::new(),
            source,
            timeout,
        }
    }
}
