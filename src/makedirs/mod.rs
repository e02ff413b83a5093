//! `racefree makedirs`. (Being built.)
pub mod cmd;
