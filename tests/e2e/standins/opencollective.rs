//! A local stand-in for the Open Collective API (being written).
