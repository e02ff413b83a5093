//! The two files read and applied end to end.

mod syntax;
