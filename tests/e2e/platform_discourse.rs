//! End-to-end tests of the `discourse` plugin against its local stand-in (being written).
