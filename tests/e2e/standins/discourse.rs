//! A local stand-in for the Discourse API (being written).
