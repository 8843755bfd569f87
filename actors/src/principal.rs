//! Who is acting: the [`Principal`] every command carries to the actors and every audit entry
//! records. The gateway builds it once per request, from how the request authenticated and
//! from `X-Agora-Actor`; the node builds its own for what it does unasked (start-up, health
//! probes). No operation decides anything by the agent yet; the governance engine will.

use std::fmt;
use std::sync::Arc;

/// The most bytes an agent id may have.
pub const AGENT_ID_MAX: usize = 200;

/// Who authenticated the request, or which part of the node acts on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The driver, authenticated by the driver token.
    Driver,
    /// A node started with `--dev`: the internal routes need no token, so nobody is
    /// authenticated, and the audit log says so.
    Dev,
    /// A public route (public actions, platform webhooks): no credentials at all.
    Public,
    /// The node itself, naming the part that acts (`node` at start-up, `health` for probes).
    Node(&'static str),
    /// A scoped API token, by its id (`tok_…`; never its secret).
    Token(Arc<str>),
}

/// A person or bot a driver acts for, as the driver names them. Opaque to Agora: 1 to
/// [`AGENT_ID_MAX`] bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentId(String);

/// Why a text is not an [`AgentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentIdError {
    #[error("an agent id is not empty")]
    Empty,
    #[error("an agent id is at most {AGENT_ID_MAX} bytes, this one has {0}")]
    TooLong(usize),
    #[error("an agent id is UTF-8 text")]
    NotUtf8,
}

impl AgentId {
    /// Reads an agent id from raw bytes (a header value is bytes, not necessarily text).
    pub fn parse(bytes: &[u8]) -> Result<AgentId, AgentIdError> {
        if bytes.is_empty() {
            return Err(AgentIdError::Empty);
        }
        if bytes.len() > AGENT_ID_MAX {
            return Err(AgentIdError::TooLong(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| AgentIdError::NotUtf8)?;
        Ok(AgentId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is acting: the caller alone, or the caller on behalf of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub caller: Caller,
    pub agent: Option<AgentId>,
}

impl Principal {
    pub fn new(caller: Caller, agent: Option<AgentId>) -> Self {
        Principal { caller, agent }
    }

    /// The node acting on its own (`part`: which part of it, for the audit log).
    pub fn node(part: &'static str) -> Self {
        Principal::new(Caller::Node(part), None)
    }

    /// The caller as the audit log names it: `driver`, `dev`, `public`, the node's part, or
    /// an API token's id.
    pub fn who(&self) -> &str {
        match &self.caller {
            Caller::Driver => "driver",
            Caller::Dev => "dev",
            Caller::Public => "public",
            Caller::Node(part) => part,
            Caller::Token(id) => id,
        }
    }

    /// The agent's id, when the caller acts for one.
    pub fn agent(&self) -> Option<&str> {
        self.agent.as_ref().map(AgentId::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_1_to_200_bytes_of_utf8() {
        assert_eq!(AgentId::parse(b"ana").unwrap().as_str(), "ana");
        let longest = "é".repeat(100);
        assert_eq!(
            AgentId::parse(longest.as_bytes()).unwrap().as_str(),
            longest
        );
        assert_eq!(
            AgentId::parse("x".repeat(201).as_bytes()),
            Err(AgentIdError::TooLong(201))
        );
        assert_eq!(AgentId::parse(b""), Err(AgentIdError::Empty));
        assert_eq!(AgentId::parse(&[0x66, 0xff]), Err(AgentIdError::NotUtf8));
    }

    #[test]
    fn the_audit_log_names_the_caller() {
        let by = Principal::new(Caller::Driver, AgentId::parse(b"ana").ok());
        assert_eq!((by.who(), by.agent()), ("driver", Some("ana")));
        assert_eq!(Principal::node("health").who(), "health");
        let token = Principal::new(Caller::Token("tok_1a2b".into()), None);
        assert_eq!(token.who(), "tok_1a2b");
    }
}
