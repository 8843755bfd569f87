//! Local HTTP servers that speak the documented REST APIs of the platforms Agora's plugins
//! reach, started by tests in place of the real platforms.

pub mod discourse;
pub mod github;
pub mod loomio;
pub mod opencollective;
