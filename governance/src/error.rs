//! The one error type of the governance core: a refused request, with a stable code, a human
//! message, the field path it is about and the HTTP status class the gateway should answer.
//!
//! Every refusal leaves the state untouched: validation works on a scratch overlay (see
//! `scratch.rs`) and only a decided, valid change is ever committed.

use std::fmt;

/// The status class of a refusal; the gateway maps it to 400, 404 or 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    BadRequest,
    NotFound,
    Conflict,
}

impl Status {
    pub fn http(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::Conflict => 409,
        }
    }
}

/// A refused request. `code` is stable (tests and drivers match on it); `field` is a JSON path
/// into the request body (`params.agents[2]`, `batch[1].target`) when one field is to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct GovError {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub status: Status,
}

impl fmt::Display for GovError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) if !field.is_empty() => write!(f, "{} ({field})", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl GovError {
    pub fn new(
        status: Status,
        code: &'static str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        GovError {
            code,
            message: message.into(),
            field: field.map(str::to_string),
            status,
        }
    }

    /// 400 `invalid_params`: a parameter is missing, of the wrong type or out of range.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, "invalid_params", Some(field), message)
    }

    /// 400 with a specific invariant or validation code (`last_owner`, `role_in_use`, ...).
    pub fn bad(code: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, code, field, message)
    }

    /// 404 `unknown_target` (or another not-found code).
    pub fn not_found(code: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Status::NotFound, code, field, message)
    }

    /// 409: the request is well formed but does not fit the current state (`too_early`, ...).
    pub fn conflict(code: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Status::Conflict, code, field, message)
    }

    /// The same error with its field path put under `prefix` (`batch[2]` + `params.name`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) if !f.is_empty() => {
                if f.starts_with('[') {
                    format!("{prefix}{f}")
                } else {
                    format!("{prefix}.{f}")
                }
            }
            _ => prefix.to_string(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_nest() {
        let e = GovError::invalid("params.name", "x").under("batch[1]");
        assert_eq!(e.field.as_deref(), Some("batch[1].params.name"));
        let e = GovError::bad("last_owner", None, "x").under("batch[0]");
        assert_eq!(e.field.as_deref(), Some("batch[0]"));
        assert_eq!(e.status.http(), 400);
    }
}
