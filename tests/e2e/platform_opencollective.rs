//! End-to-end tests of the `opencollective` plugin against its local stand-in (being written).
