//! A local stand-in for the Loomio API (being written).
