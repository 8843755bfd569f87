//! Local HTTP servers that speak the documented REST APIs of the platforms Agora's plugins
//! reach, started by tests in place of the real platforms.

pub mod discourse;
pub mod github;
pub mod loomio;
pub mod opencollective;

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;

/// One request a stand-in received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The body as JSON, when it is JSON (or a form the stand-in converted).
    pub json: Option<Value>,
    /// The status the stand-in answered.
    pub answered: u16,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}
