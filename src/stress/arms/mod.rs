//! The registry of stress arms: one line per arm. The command line (`stress NAME`,
//! the hidden `stress worker NAME`), the main job (`racefree stress`), `stress
//! report` and the exit-status docs all iterate [`ARMS`]; nothing else names an arm.
//!
//! A new arm is one file here, `NAME.rs`, whose type implements
//! [`Race`](crate::stress::race::Race) and [`Subject`](crate::stress::race::Subject),
//! and one line below, `NAME::Type,`. What arms share lives in [`kit`], below them.

pub mod kit;

use super::entry::{Entry, Registered};
use super::race::Race;

/// Declares each arm's module and lists it, in the order `stress --help` shows the
/// arms and `racefree stress` runs them.
macro_rules! arms {
    ($($module:ident :: $subject:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Every arm.
        pub static ARMS: &[&dyn Entry] = &[$(Registered::<$module::$subject>::ENTRY),*];

        /// Every arm's name, in the same order.
        pub const NAMES: &[&str] = &[$(<$module::$subject as Race>::NAME),*];
    };
}

arms! {
    makedirs::Makedirs,
    ident::Ident,
    counter::Counter,
    write::WriteArm,
    crash::Crash,
    lock::Lock,
    exec::Exec,
}

/// The arm called `name`.
pub fn find(name: &str) -> Option<&'static dyn Entry> {
    ARMS.iter().copied().find(|a| a.name() == name)
}
