//! Who a request acts as, and whether it may. Every route passes [`admit`] first: a
//! non-public route needs `Authorization: Bearer <token>` (unless the node runs `--dev`),
//! either the driver token (an admin) or a scoped API token (a viewer, operator or admin,
//! perhaps limited to some communities); `X-Agora-Actor: <agent>` names the person the caller
//! acts for. Both are read here, once, into the [`Principal`] the handler receives as
//! [`Acting`]. What a route needs is its [`Access`] in the route table: [`admit`] checks the
//! role, [`authorize`] (on the node that runs the request, after cluster routing) checks the
//! community, so scope checks come from the table and nowhere else.

use std::sync::Arc;

use agora_actors::api_tokens::{ApiToken, Role};
use agora_actors::{AgentId, Caller, Principal};
use agora_plugins::ErrorCode;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::RequestExt;

use crate::extract::COMMUNITY_HEADER;
use crate::metrics;
use crate::{ApiError, AppState};

/// Names the agent the caller acts for.
pub const ACTOR_HEADER: &str = "x-agora-actor";

/// Who may call driver routes.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `--dev`: no token (the binary allows it only on loopback).
    Open,
    /// A driver token is required (scoped API tokens work too).
    Token(Arc<str>),
}

/// What a route asks of its caller: declared once per route in the route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: public actions, webhooks (plugins check signatures), operations.
    Public,
    /// Reading what `Scope` names: any token.
    Read(Scope),
    /// Changing what `Scope` names: an operator or an admin.
    Change(Scope),
    /// Node-wide changes and node-wide secrets (tokens, backups): an admin.
    Admin,
}

/// What a route reads or changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The node itself, no community's data (plugin metadata, the cluster map): any token,
    /// whatever communities it is limited to.
    Node,
    /// Every community's data at once (the event stream): only tokens limited to no
    /// community.
    Every,
    /// A list across communities: any token, and one limited to communities sees only those
    /// (the handler filters by the [`Grant`]).
    Listed,
    /// One community's data; the token must cover that community.
    Community(CommunityOf),
}

/// Where a request names the community it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommunityOf {
    /// A path parameter holding the slug.
    Path(&'static str),
    /// `X-Metagov-Community`.
    Header,
    /// The process at `{name}/{id}`: its community.
    Process,
    /// The plugin instance `{id}`: its community.
    Instance,
    /// A query parameter; a token limited to communities must name one of them.
    Query(&'static str),
}

/// What the caller may do: everything (the driver token, `--dev`) or what a token grants.
#[derive(Clone, Debug)]
pub(crate) enum Grant {
    Full,
    Token(Arc<ApiToken>),
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized(why: &str) -> Response {
    let mut resp = ApiError::new(ErrorCode::Unauthorized, why)
        .with_field("Authorization")
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn forbidden(why: String) -> Response {
    ApiError::new(ErrorCode::Forbidden, why).into_response()
}

/// The caller of a route with `access`, and what it may do; `Err`: the 401 to answer.
async fn caller(
    state: &AppState,
    access: Access,
    headers: &HeaderMap,
) -> Result<(Caller, Grant), Response> {
    let expected = match (access, &state.auth) {
        (Access::Public, _) => return Ok((Caller::Public, Grant::Full)),
        (_, Auth::Open) => return Ok((Caller::Dev, Grant::Full)),
        (_, Auth::Token(expected)) => expected,
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Err(unauthorized(
            "this route needs 'Authorization: Bearer <token>' (the driver token or an API token)",
        ));
    };
    if same(given.as_bytes(), expected.as_bytes()) {
        return Ok((Caller::Driver, Grant::Full));
    }
    match state.agora.tokens.authenticate(given).await {
        Some(t) => Ok((Caller::Token(t.id.as_str().into()), Grant::Token(Arc::new(t)))),
        None => Err(unauthorized(
            "the bearer token is neither the driver token nor an active API token (unknown or revoked)",
        )),
    }
}

/// Whether `grant`'s role allows `access` (communities are [`authorize`]'s); `Err`: why not.
pub(crate) fn role_allows(grant: &Grant, access: Access) -> Result<(), String> {
    let Grant::Token(t) = grant else {
        return Ok(());
    };
    let role = t.role.as_str();
    match access {
        Access::Public | Access::Read(_) => {}
        Access::Change(_) if t.role >= Role::Operator => {}
        Access::Change(_) => {
            return Err(format!(
                "token {} is a {role}: it reads, and this request changes something",
                t.id
            ))
        }
        Access::Admin if t.role == Role::Admin => {}
        Access::Admin => {
            return Err(format!(
                "this route is node-wide and needs an admin token; token {} is a {role}",
                t.id
            ))
        }
    }
    if let Access::Read(Scope::Every) | Access::Change(Scope::Every) = access {
        if !t.communities.is_empty() {
            return Err(format!(
                "this route covers every community; token {} is limited to {}",
                t.id,
                t.communities.join(", ")
            ));
        }
    }
    Ok(())
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

/// The admission layer of every route: authenticates the caller as the route asks, checks
/// its role against the route's [`Access`], reads the agent, and leaves the [`Principal`]
/// (and the [`Grant`], for [`authorize`]) for what follows.
pub(crate) async fn admit(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    match admitted(&state, access, req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// What a single node runs around each route, as one layer: the request's span and metrics
/// sample ([`metrics::track`]), [`admit`], then [`authorize`]. Nothing routes between them on
/// one node, and each axum layer costs every request 0.6-1.9 µs (a boxed future, the request
/// moved through it). With wrk on a community GET, node CPU per request went from 18.5-19.1 µs
/// (four layers) to 14.5-15.0 µs (this one).
pub(crate) async fn gate(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let handling = async {
        let req = match admitted(&state, access, req).await {
            Ok(req) => req,
            Err(refused) => return refused,
        };
        match authorized(&state, access, req).await {
            Ok(req) => next.run(req).await,
            Err(refused) => refused,
        }
    };
    metrics::tracked(&state, &method, route.as_ref(), handling).await
}

async fn admitted(state: &AppState, access: Access, mut req: Request) -> Result<Request, Response> {
    let (caller, grant) = caller(state, access, req.headers()).await?;
    if let Err(why) = role_allows(&grant, access) {
        return Err(forbidden(why));
    }
    let agent = agent(req.headers()).map_err(IntoResponse::into_response)?;
    req.extensions_mut().insert(Principal::new(caller, agent));
    req.extensions_mut().insert(grant);
    Ok(req)
}

/// The community check of a route about one community, on the node that runs the request
/// (so a process or plugin instance is looked up where it lives). A request whose community
/// cannot be read (no header, no such process) goes on, and its handler refuses it.
pub(crate) async fn authorize(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    match authorized(&state, access, req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}

async fn authorized(
    state: &AppState,
    access: Access,
    mut req: Request,
) -> Result<Request, Response> {
    let (Access::Read(Scope::Community(of)) | Access::Change(Scope::Community(of))) = access else {
        return Ok(req);
    };
    let token = match req.extensions().get::<Grant>() {
        Some(Grant::Token(t)) if !t.communities.is_empty() => t.clone(),
        _ => return Ok(req),
    };
    let about: Vec<String> = match of {
        CommunityOf::Path(name) => path_param(&mut req, name).await.into_iter().collect(),
        CommunityOf::Header => req
            .headers()
            .get_all(COMMUNITY_HEADER)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect(),
        CommunityOf::Process => {
            let (name, id) = (
                path_param(&mut req, "name").await,
                path_param(&mut req, "id").await,
            );
            match (name, id) {
                (Some(name), Some(id)) => match state.agora.processes.get(&name, &id).await {
                    Ok(p) => vec![p.community],
                    Err(_) => Vec::new(),
                },
                _ => Vec::new(),
            }
        }
        CommunityOf::Instance => path_param(&mut req, "id")
            .await
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| state.agora.plugins.instance_community(id).ok())
            .into_iter()
            .collect(),
        CommunityOf::Query(name) => {
            let named = query_values(req.uri().query().unwrap_or(""), name);
            if named.is_empty() {
                return Err(forbidden(format!(
                    "token {} is limited to {}: name one of them with ?{name}=",
                    token.id,
                    token.communities.join(", ")
                )));
            }
            named
        }
    };
    if let Some(other) = about.iter().find(|c| !token.covers(c)) {
        return Err(forbidden(format!(
            "token {} is limited to {}; this request is about '{other}'",
            token.id,
            token.communities.join(", ")
        )));
    }
    Ok(req)
}

/// The path parameter `name` of the route the request matched.
async fn path_param(req: &mut Request, name: &str) -> Option<String> {
    let params = req.extract_parts::<RawPathParams>().await.ok()?;
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Every value of query parameter `name`, as sent (a slug needs no decoding; an encoded one
/// is then compared encoded, and so refused rather than let through).
fn query_values(query: &str, name: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .collect()
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
    fn every_value_of_a_query_parameter_is_read() {
        assert_eq!(
            query_values("community=a&plugin=x&community=b", "community"),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(query_values("community", "community"), vec![String::new()]);
        assert!(query_values("", "community").is_empty());
    }

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"abc", b"abd"));
    }

    #[test]
    fn the_actor_header_names_one_agent_of_at_most_200_bytes() {
        let mut h = HeaderMap::new();
        assert_eq!(agent(&h).expect("test fixture"), None);
        h.insert(ACTOR_HEADER, HeaderValue::from_static("ana"));
        assert_eq!(
            agent(&h)
                .expect("test fixture")
                .expect("test fixture")
                .as_str(),
            "ana"
        );
        h.insert(
            ACTOR_HEADER,
            HeaderValue::from_str(&"a".repeat(200)).expect("test fixture"),
        );
        assert!(agent(&h).is_ok());
        h.insert(
            ACTOR_HEADER,
            HeaderValue::from_str(&"a".repeat(201)).expect("test fixture"),
        );
        assert_eq!(agent(&h).unwrap_err().code, ErrorCode::InvalidHeader);
        h.insert(
            ACTOR_HEADER,
            HeaderValue::from_bytes(b"\xffana").expect("test fixture"),
        );
        assert_eq!(agent(&h).unwrap_err().code, ErrorCode::InvalidHeader);
        h.insert(ACTOR_HEADER, HeaderValue::from_static("ana"));
        h.append(ACTOR_HEADER, HeaderValue::from_static("ben"));
        assert_eq!(agent(&h).unwrap_err().code, ErrorCode::InvalidHeader);
    }
}
