//! `/api/v1/communities/{slug}/...`: the governance engine (`../shared/governance-api.md`,
//! sections 2–5, 7, 8): the constitution, actions and their dry runs, items with versions and
//! notices, subscriptions, and the hash-chained log. Acting routes need `X-Agora-Actor`
//! (400 `missing_header` without it); reads without it are the driver's own and see everything.

use agora_actors::governance::ItemsPage;
use agora_actors::services::{ActionQuery, ItemQuery, Page};
use agora_plugins::ErrorCode;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Acting, Auth};
use crate::error::ErrorBody;
use crate::extract::{JsonBody, PathParams};
use crate::{ApiError, AppState};

/// A page's size when none is asked for, and the largest one may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|r| ApiError::new(ErrorCode::InvalidQuery, r.body_text()))
}

fn limit(l: Option<usize>) -> Result<usize, ApiError> {
    match l {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => {
            Err(ApiError::new(ErrorCode::InvalidQuery, "'limit' is 1 to 1000").with_field("limit"))
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

impl PageQuery {
    fn page(self) -> Result<Page, ApiError> {
        Ok(Page {
            limit: limit(self.limit)?,
            cursor: self.cursor,
        })
    }
}

#[utoipa::path(post, path = "/api/v1/communities/{slug}/governance", tag = "governance",
    params(("slug" = String, Path), ("X-Agora-Actor" = String, Header, description = "the founder")),
    request_body(content = Object, description = "{\"template\"?, \"members\"?, ..template parameters}; all optional"),
    responses((status = 201, body = Object, description = "the constitution, as GET answers it"),
        (status = 400, body = ErrorBody, description = "missing_header, invalid_params, invalid_id"),
        (status = 404, body = ErrorBody, description = "community_not_found"),
        (status = 409, body = ErrorBody, description = "governance_exists")))]
pub(crate) async fn found(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let out = s.agora.governance.found(&slug, &by, body).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/governance", tag = "governance",
    params(("slug" = String, Path)),
    responses((status = 200, body = Object, description = "{\"owners\",\"governors\",\"proposals\",\"members\",\"roles\",\"log_head\"}"),
        (status = 404, body = ErrorBody, description = "governance_not_found")))]
pub(crate) async fn constitution(
    State(s): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(s.agora.governance.constitution(&slug).await?))
}

#[derive(Deserialize, Default)]
pub(crate) struct ActQuery {
    dry_run: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/communities/{slug}/actions", tag = "governance",
    params(("slug" = String, Path), ("X-Agora-Actor" = String, Header),
        ("dry_run" = Option<bool>, Query, description = "true: answer what would happen, with an explain trace, and store nothing")),
    request_body(content = Object, description = "{\"change\",\"target\",\"params\",\"note\"} or {\"batch\": [..], \"note\"}"),
    responses((status = 201, body = Object, description = "the action: implemented, waiting or rejected"),
        (status = 200, body = Object, description = "a dry run"),
        (status = 400, body = ErrorBody, description = "missing_header, unknown_change, invalid_params, invalid_target, an invariant (last_owner, role_in_use, ...)"),
        (status = 404, body = ErrorBody, description = "unknown_target, governance_not_found"),
        (status = 409, body = ErrorBody, description = "too_early, not_waiting, inactive, destroyed, ...")))]
pub(crate) async fn act(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
    q: Result<Query<ActQuery>, QueryRejection>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    if q.dry_run.unwrap_or(false) {
        let out = s.agora.governance.dry_run(&slug, &by, body).await?;
        return Ok(Json(out).into_response());
    }
    let out = s.agora.governance.act(&slug, &by, body).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct ActionsQuery {
    status: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/actions", tag = "governance",
    params(("slug" = String, Path), ("X-Agora-Actor" = Option<String>, Header, description = "only actions on targets this agent may view"),
        ("status" = Option<String>, Query), ("actor" = Option<String>, Query), ("target" = Option<String>, Query),
        ("cursor" = Option<String>, Query), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = Object, description = "{\"actions\": [..], \"next_cursor\"}"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn actions(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
    q: Result<Query<ActionsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let aq = ActionQuery {
        status: q.status,
        actor: q.actor,
        target: q.target,
        cursor: q.cursor,
        limit: limit(q.limit)?,
    };
    Ok(Json(s.agora.governance.actions(&slug, &by, aq).await?))
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/actions/{action}", tag = "governance",
    params(("slug" = String, Path), ("action" = String, Path), ("X-Agora-Actor" = Option<String>, Header)),
    responses((status = 200, body = Object, description = "the action"),
        (status = 404, body = ErrorBody, description = "action_not_found (also for an action the agent may not view)")))]
pub(crate) async fn action(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(s.agora.governance.action(&slug, &by, id).await?))
}

#[derive(Deserialize, Default)]
pub(crate) struct ItemsQuery {
    #[serde(rename = "type")]
    typ: Option<String>,
    #[serde(rename = "in")]
    within: Option<String>,
    include_inactive: Option<bool>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/items", tag = "governance",
    params(("slug" = String, Path), ("X-Agora-Actor" = Option<String>, Header, description = "only items this agent may view"),
        ("type" = Option<String>, Query), ("in" = Option<String>, Query, description = "a collection or container id"),
        ("include_inactive" = Option<bool>, Query), ("cursor" = Option<String>, Query),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100; a page may hold fewer once 10,000 candidates were scanned")),
    responses((status = 200, body = Object, description = "{\"items\": [..], \"next_cursor\"}"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn items(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
    q: Result<Query<ItemsQuery>, QueryRejection>,
) -> Result<Json<ItemsPage>, ApiError> {
    let q = query(q)?;
    let iq = ItemQuery {
        typ: q.typ,
        within: q.within,
        include_inactive: q.include_inactive.unwrap_or(false),
        cursor: q.cursor,
        limit: limit(q.limit)?,
    };
    Ok(Json(s.agora.governance.items(&slug, &by, iq).await?))
}

#[derive(Deserialize, Default)]
pub(crate) struct ItemQueryParams {
    version: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/items/{item}", tag = "governance",
    params(("slug" = String, Path), ("item" = String, Path), ("X-Agora-Actor" = Option<String>, Header),
        ("version" = Option<u32>, Query)),
    responses((status = 200, body = Object, description = "{\"id\",\"type\",\"version\",\"fields\",\"creator\",\"created_at\",\"active\",\"destroyed\",\"collections\"}, with only the fields the agent may view"),
        (status = 404, body = ErrorBody, description = "item_not_found (also for an item the agent may not view), version_not_found")))]
pub(crate) async fn item(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, id)): PathParams<(String, String)>,
    q: Result<Query<ItemQueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    Ok(Json(
        s.agora.governance.item(&slug, &by, id, q.version).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/items/{item}/versions", tag = "governance",
    params(("slug" = String, Path), ("item" = String, Path), ("X-Agora-Actor" = Option<String>, Header),
        ("cursor" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = Object, description = "{\"versions\": [..], \"next_cursor\"}"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn versions(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, id)): PathParams<(String, String)>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(q)?.page()?;
    Ok(Json(
        s.agora.governance.versions(&slug, &by, id, page).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/items/{item}/notices", tag = "governance",
    params(("slug" = String, Path), ("item" = String, Path), ("X-Agora-Actor" = Option<String>, Header),
        ("cursor" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = Object, description = "{\"notices\": [..], \"next_cursor\"}"),
        (status = 403, body = ErrorBody, description = "not_permitted: no 'view action_notices'"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn notices(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, id)): PathParams<(String, String)>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(q)?.page()?;
    Ok(Json(
        s.agora.governance.notices(&slug, &by, id, page).await?,
    ))
}

/// Whether `url` may receive deliveries: https, or http on a loopback host on a `--dev` node.
pub(crate) fn deliverable(url: &str, dev: bool) -> bool {
    let host_of = |rest: &str| -> String {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or("");
        if let Some(v6) = host.strip_prefix('[') {
            v6.split(']').next().unwrap_or("").to_string()
        } else {
            host.split(':').next().unwrap_or("").to_string()
        }
    };
    if let Some(rest) = url.strip_prefix("https://") {
        return !host_of(rest).is_empty();
    }
    match url.strip_prefix("http://") {
        Some(rest) if dev => {
            let host = host_of(rest);
            host == "localhost" || host == "::1" || host.starts_with("127.")
        }
        _ => false,
    }
}

#[utoipa::path(post, path = "/api/v1/communities/{slug}/subscriptions", tag = "governance",
    params(("slug" = String, Path), ("X-Agora-Actor" = String, Header)),
    request_body(content = Object, description = "{\"item\",\"deep\",\"edit\",\"delete\",\"comments\",\"relations\",\"members\",\"deliver_to\"}: one per agent and item (a second replaces the first)"),
    responses((status = 201, body = Object, description = "the subscription"),
        (status = 400, body = ErrorBody, description = "missing_header, invalid_params (deliver_to: https, or http on loopback with --dev)"),
        (status = 404, body = ErrorBody, description = "unknown_target: no item the agent may view")))]
pub(crate) async fn subscribe(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if let Some(url) = body.get("deliver_to").and_then(Value::as_str) {
        if !deliverable(url, matches!(s.auth, Auth::Open)) {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "'deliver_to' is an https URL (http only on a loopback host, with --dev)",
            )
            .with_field("deliver_to"));
        }
    }
    let out = s.agora.governance.subscribe(&slug, &by, body).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/subscriptions", tag = "governance",
    params(("slug" = String, Path), ("X-Agora-Actor" = String, Header)),
    responses((status = 200, body = Object, description = "{\"subscriptions\": [..]}: the agent's own"),
        (status = 400, body = ErrorBody, description = "missing_header")))]
pub(crate) async fn subscriptions(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(s.agora.governance.subscriptions(&slug, &by).await?))
}

#[utoipa::path(delete, path = "/api/v1/communities/{slug}/subscriptions/{item}", tag = "governance",
    params(("slug" = String, Path), ("item" = String, Path), ("X-Agora-Actor" = String, Header)),
    responses((status = 204, description = "removed"),
        (status = 404, body = ErrorBody, description = "subscription_not_found")))]
pub(crate) async fn unsubscribe(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, item)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.agora.governance.unsubscribe(&slug, &by, item).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/governance/log", tag = "governance",
    params(("slug" = String, Path), ("X-Agora-Actor" = Option<String>, Header, description = "bodies only of entries on targets this agent may view"),
        ("cursor" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = Object, description = "{\"entries\": [{\"seq\",\"at\",\"kind\",\"action\",\"body_hash\",\"prev\",\"hash\",\"body\"}], \"next_cursor\"}"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn log(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(q)?.page()?;
    Ok(Json(s.agora.governance.log(&slug, &by, page).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_go_to_https_or_to_loopback_http_in_dev() {
        assert!(deliverable("https://example.org/hook", false));
        assert!(!deliverable("http://example.org/hook", true));
        assert!(!deliverable("http://127.0.0.1:9/hook", false));
        assert!(deliverable("http://127.0.0.1:9/hook", true));
        assert!(deliverable("http://[::1]:9/hook", true));
        assert!(deliverable("http://localhost/hook", true));
        assert!(!deliverable("http://localhost.evil.org/hook", true));
        assert!(!deliverable("ftp://example.org", true));
        assert!(!deliverable("https://", false));
    }
}
