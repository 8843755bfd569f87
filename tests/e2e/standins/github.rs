//! A local stand-in for the GitHub API (being written).
