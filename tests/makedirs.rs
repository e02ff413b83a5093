//! `racefree makedirs` through the built binary.
