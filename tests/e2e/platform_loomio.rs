//! End-to-end tests of the `loomio` plugin against its local stand-in (being written).
