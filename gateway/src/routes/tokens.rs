//! `/api/v1/tokens`: scoped API tokens (admin only). Creating one answers its secret once;
//! only the secret's SHA-256 is kept, so a lost secret means a new token.

use agora_actors::api_tokens::{ApiToken, Role};
use agora_actors::events::timestamp;
use agora_actors::services::TokenRequest;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Acting;
use crate::error::ErrorBody;
use crate::extract::{object, opt_str, JsonBody, PathParams};
use crate::{ApiError, AppState};

/// A token as the API shows it: never its secret, never its hash.
pub(crate) fn view(t: &ApiToken) -> Value {
    json!({
        "id": t.id,
        "role": t.role.as_str(),
        "communities": t.communities,
        "label": t.label,
        "created_at": timestamp(t.created_ms),
        "created_by": t.created_by,
        "revoked_at": t.revoked_ms.map(timestamp),
    })
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body(content = Object, description = "{\"role\": \"viewer\"|\"operator\"|\"admin\", \"communities\": [slug] (optional; none: every community; not for admins), \"label\": text (optional)}"),
    responses((status = 201, body = Object, description = "the token, with its `secret` (shown this once)"),
        (status = 400, body = ErrorBody)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Acting(by): Acting,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let obj = object(&body, "")?;
    let role =
        opt_str(obj, "role")?.ok_or_else(|| ApiError::invalid("role", "'role' is required"))?;
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::invalid("role", "'role' is one of viewer, operator, admin"))?;
    let communities = match obj.get("communities") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid(format!("communities[{i}]"), "a community is a slug")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(
                "communities",
                "'communities' is a list of slugs",
            ))
        }
    };
    let label = opt_str(obj, "label")?.unwrap_or_default();
    let req = TokenRequest {
        role,
        communities,
        label,
    };
    let (token, secret) = s.agora.tokens.create(req, &by).await?;
    let mut v = view(&token);
    if let Some(o) = v.as_object_mut() {
        o.insert("secret".into(), Value::String(secret));
    }
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Object, description = "{\"tokens\": [every token, revoked ones included, without secrets]}")))]
pub(crate) async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tokens = s.agora.tokens.list().await?;
    Ok(Json(
        json!({"tokens": tokens.iter().map(view).collect::<Vec<_>>()}),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{token}", tag = "tokens",
    params(("token" = String, Path, description = "the token's id (`tok_…`)")),
    responses((status = 200, body = Object, description = "the revoked token"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let token = s.agora.tokens.revoke(&id, &by).await?;
    Ok(Json(view(&token)))
}
