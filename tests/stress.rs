//! `racefree stress` through the built binary.
