//! End-to-end tests of the `github` plugin against its local stand-in (being written).
