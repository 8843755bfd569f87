//! `/api/internal/identity/...`: Metagov's identity routes, with Metagov's shapes (see
//! `metagov-api.md`), and a JSON 4xx wherever Metagov answers 500. They name the community in
//! the body or the query (or not at all: an identity id finds its community); in a cluster they
//! run on the node serving that community (`Partition::Identity`, see `cluster.rs`).

use agora_actors::services::{LinkRequest, UserFilter};
use agora_plugins::ErrorCode;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ErrorBody;
use crate::extract::{object, opt_str, JsonBody};
use crate::{ApiError, AppState};

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|r| ApiError::new(ErrorCode::InvalidQuery, r.body_text()))
}

/// An identity id: an integer, or its decimal text.
fn id_value(v: Option<&Value>, field: &str) -> Result<u64, ApiError> {
    match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| ApiError::invalid(field, format!("'{field}' is an identity id (an integer)")))
}

fn id_text(v: Option<&str>, field: &str) -> Result<u64, ApiError> {
    id_value(v.map(|s| json!(s)).as_ref(), field).map_err(|e| ApiError {
        code: ErrorCode::InvalidQuery,
        ..e
    })
}

fn required(obj: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    opt_str(obj, key)?.ok_or_else(|| ApiError::invalid(key, format!("'{key}' is required")))
}

#[utoipa::path(post, path = "/api/internal/identity/create_id", tag = "identity",
    request_body(content = Object, description = "{\"community_slug\", \"count\"?}"),
    responses((status = 201, body = Object, description = "[external_id, ..]"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "community_not_found")))]
pub(crate) async fn create_id(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let obj = object(&body, "")?;
    let community = required(obj, "community_slug")?;
    let count = match obj.get("count") {
        None | Some(Value::Null) => 1,
        v => id_value(v, "count")?,
    };
    let ids = s.agora.identity.create(&community, count).await?;
    Ok((StatusCode::CREATED, Json(json!(ids))).into_response())
}

#[utoipa::path(post, path = "/api/internal/identity/merge_ids", tag = "identity",
    request_body(content = Object, description = "{\"primary_instance_id\", \"secondary_instance_id\"}"),
    responses((status = 200, body = Object, description = "the secondary identity, merged (Metagov answers 500)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "identity_not_found")))]
pub(crate) async fn merge_ids(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let obj = object(&body, "")?;
    let primary = id_value(obj.get("primary_instance_id"), "primary_instance_id")?;
    let secondary = id_value(obj.get("secondary_instance_id"), "secondary_instance_id")?;
    Ok(Json(s.agora.identity.merge_ids(primary, secondary).await?))
}

#[utoipa::path(post, path = "/api/internal/identity/link_account", tag = "identity",
    request_body(content = Object, description = "{\"community_slug\",\"external_id\",\"platform_type\",\"platform_identifier\",\"community_platform_id\"?,\"custom_data\"?,\"link_type\"?,\"link_quality\"?}"),
    responses((status = 200, body = Object, description = "the LinkedAccount"),
        (status = 400, body = ErrorBody, description = "invalid_request, plugin_not_enabled"),
        (status = 404, body = ErrorBody, description = "community_not_found, identity_not_found"),
        (status = 409, body = ErrorBody, description = "account_linked")))]
pub(crate) async fn link_account(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let obj = object(&body, "")?;
    let custom_data = match obj.get("custom_data") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "custom_data",
                "'custom_data' is an object",
            ))
        }
    };
    let r = LinkRequest {
        community: required(obj, "community_slug")?,
        external_id: id_value(obj.get("external_id"), "external_id")?,
        platform_type: required(obj, "platform_type")?,
        platform_identifier: required(obj, "platform_identifier")?,
        community_platform_id: opt_str(obj, "community_platform_id")?,
        custom_data,
        link_type: opt_str(obj, "link_type")?,
        link_quality: opt_str(obj, "link_quality")?,
    };
    Ok(Json(s.agora.identity.link(r).await?))
}

#[utoipa::path(post, path = "/api/internal/identity/unlink_account", tag = "identity",
    request_body(content = Object, description = "{\"community_slug\",\"platform_type\",\"platform_identifier\",\"community_platform_id\"?}"),
    responses((status = 200, body = Object, description = "unlinked (Metagov answers 500)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "account_not_found")))]
pub(crate) async fn unlink_account(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let obj = object(&body, "")?;
    let out = s
        .agora
        .identity
        .unlink(
            &required(obj, "community_slug")?,
            required(obj, "platform_type")?,
            required(obj, "platform_identifier")?,
            opt_str(obj, "community_platform_id")?,
        )
        .await?;
    Ok(Json(out))
}

#[derive(Deserialize, Default)]
pub(crate) struct UserQuery {
    external_id: Option<String>,
}

#[utoipa::path(get, path = "/api/internal/identity/get_user", tag = "identity",
    params(("external_id" = String, Query)),
    responses((status = 200, body = Object, description = "{\"source_ID\",\"primary_ID\",\"linked_accounts\"}"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "identity_not_found (Metagov answers 500)")))]
pub(crate) async fn get_user(
    State(s): State<AppState>,
    q: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let id = id_text(q.external_id.as_deref(), "external_id")?;
    Ok(Json(s.agora.identity.user(id).await?))
}

#[derive(Deserialize, Default)]
pub(crate) struct UsersQuery {
    community: Option<String>,
    platform_type: Option<String>,
    community_platform_id: Option<String>,
    link_type: Option<String>,
    link_quality: Option<String>,
    platform_identifier: Option<String>,
}

fn community(c: Option<String>) -> Result<String, ApiError> {
    c.ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidQuery, "'community' is required").with_field("community")
    })
}

#[utoipa::path(get, path = "/api/internal/identity/get_users", tag = "identity",
    params(("community" = String, Query), ("platform_type" = Option<String>, Query),
        ("community_platform_id" = Option<String>, Query), ("link_type" = Option<String>, Query),
        ("link_quality" = Option<String>, Query), ("platform_identifier" = Option<String>, Query)),
    responses((status = 200, body = Object, description = "[identity, ..]: primary identities only when unfiltered"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_users(
    State(s): State<AppState>,
    q: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let f = UserFilter {
        platform_type: q.platform_type,
        community_platform_id: q.community_platform_id,
        link_type: q.link_type,
        link_quality: q.link_quality,
        platform_identifier: q.platform_identifier,
    };
    Ok(Json(
        s.agora.identity.users(&community(q.community)?, f).await?,
    ))
}

#[derive(Deserialize, Default)]
pub(crate) struct FilterQuery {
    community: Option<String>,
    /// Comma-separated identity ids.
    external_id_list: Option<String>,
}

#[utoipa::path(get, path = "/api/internal/identity/filter_users_by_account", tag = "identity",
    params(("community" = String, Query), ("external_id_list" = String, Query, description = "comma-separated ids")),
    responses((status = 200, body = Object, description = "[identity, ..] (Metagov answers 500)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn filter_users_by_account(
    State(s): State<AppState>,
    q: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let ids = q
        .external_id_list
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| id_text(Some(s), "external_id_list"))
        .collect::<Result<Vec<u64>, ApiError>>()?;
    Ok(Json(
        s.agora
            .identity
            .filter(&community(q.community)?, ids)
            .await?,
    ))
}

#[derive(Deserialize, Default)]
pub(crate) struct LinkedQuery {
    external_id: Option<String>,
    platform_type: Option<String>,
    community_platform_id: Option<String>,
}

#[utoipa::path(get, path = "/api/internal/identity/get_linked_account", tag = "identity",
    params(("external_id" = String, Query), ("platform_type" = String, Query), ("community_platform_id" = Option<String>, Query)),
    responses((status = 200, body = Object, description = "the LinkedAccount, or {}"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_linked_account(
    State(s): State<AppState>,
    q: Result<Query<LinkedQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let id = id_text(q.external_id.as_deref(), "external_id")?;
    let platform_type = q.platform_type.ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidQuery, "'platform_type' is required")
            .with_field("platform_type")
    })?;
    Ok(Json(
        s.agora
            .identity
            .linked_account(id, platform_type, q.community_platform_id)
            .await?,
    ))
}
