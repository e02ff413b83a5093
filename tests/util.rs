//! Helpers shared by the integration tests: kept under their old names for the
//! modules that call them; they live in the test support module, `testenv`.

#[allow(unused_imports)] // each name is used by some module, on some branch
pub use crate::testenv::{NOBODY, is_root, racefree, racefree_as_nobody, racefree_path};
