//! `racefree ident` through the built binary.
