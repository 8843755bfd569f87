//! Who a request acts as. Every route passes [`admit`] first: a driver route needs
//! `Authorization: Bearer <token>` (unless the node runs `--dev`), and `X-Agora-Actor: <agent>`
//! names the person the caller acts for. Both are read here, once, into the [`Principal`] the
//! handler receives as [`Acting`] and passes with every command.

use std::sync::Arc;

use agora_actors::{AgentId, Caller, Principal};
use agora_plugins::ErrorCode;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// Names the agent the caller acts for.
pub const ACTOR_HEADER: &str = "x-agora-actor";

/// Who may call driver routes.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `--dev`: no token (the binary allows it only on loopback).
    Open,
    /// A driver token is required.
    Token(Arc<str>),
}

/// What a route asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// The driver token (Metagov's internal routes and `/api/v1`).
    Driver,
    /// Nothing: public actions, webhooks (plugins check signatures), operations.
    Public,
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    let mut resp = ApiError::new(
        ErrorCode::Unauthorized,
        "internal routes need 'Authorization: Bearer <driver token>'",
    )
    .with_field("Authorization")
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// The caller of a route with `access`; `None`: the driver token is missing or wrong.
fn caller(auth: &Auth, access: Access, headers: &HeaderMap) -> Option<Caller> {
    match (access, auth) {
        (Access::Public, _) => Some(Caller::Public),
        (Access::Driver, Auth::Open) => Some(Caller::Dev),
        (Access::Driver, Auth::Token(expected)) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))?;
            same(given.trim().as_bytes(), expected.as_bytes()).then_some(Caller::Driver)
        }
    }
}

/// The agent named by `X-Agora-Actor`, if any. One value, 1 to 200 bytes of UTF-8.
pub(crate) fn agent(headers: &HeaderMap) -> Result<Option<AgentId>, ApiError> {
    let mut values = headers.get_all(ACTOR_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: String| {
        ApiError::new(ErrorCode::InvalidHeader, format!("X-Agora-Actor: {why}"))
            .with_field("X-Agora-Actor")
    };
    if values.next().is_some() {
        return Err(bad("name one agent, in one header".into()));
    }
    AgentId::parse(value.as_bytes())
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// The admission layer of every route: authenticates the caller as the route asks, reads
/// the agent, and leaves the [`Principal`] for the handler.
pub(crate) async fn admit(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(caller) = caller(&state.auth, access, req.headers()) else {
        return unauthorized();
    };
    let agent = match agent(req.headers()) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(Principal::new(caller, agent));
    next.run(req).await
}

/// The principal [`admit`] found for this request.
pub struct Acting(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Acting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Acting)
            .ok_or_else(|| {
                // Every route is built with `admit`; a handler without it is a bug.
                tracing::error!(path = %parts.uri.path(), "a route without the admission layer");
                ApiError::new(ErrorCode::Internal, "internal error; see the node's log")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"abc", b"abd"));
    }

    #[test]
    fn the_actor_header_names_one_agent_of_at_most_200_bytes() {
        let mut h = HeaderMap::new();
        assert_eq!(agent(&h).unwrap(), None);
        h.insert(ACTOR_HEADER, HeaderValue::from_static("ana"));
        assert_eq!(agent(&h).unwrap().unwrap().as_str(), "ana");
        h.insert(
            ACTOR_HEADER,
            HeaderValue::from_str(&"a".repeat(200)).unwrap(),
        );
        assert!(agent(&h).is_ok());
        h.insert(
            ACTOR_HEADER,
            HeaderValue::from_str(&"a".repeat(201)).unwrap(),
        );
        assert_eq!(agent(&h).unwrap_err().code, ErrorCode::InvalidHeader);
        h.insert(ACTOR_HEADER, HeaderValue::from_bytes(b"\xffana").unwrap());
        assert_eq!(agent(&h).unwrap_err().code, ErrorCode::InvalidHeader);
        h.insert(ACTOR_HEADER, HeaderValue::from_static("ana"));
        h.append(ACTOR_HEADER, HeaderValue::from_static("ben"));
        assert_eq!(agent(&h).unwrap_err().code, ErrorCode::InvalidHeader);
    }
}
