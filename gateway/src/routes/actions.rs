//! `/api/internal/action/<plugin>.<action>` (driver) and `/api/action/<plugin>.<action>`
//! (public actions only).

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use agora_actors::Principal;

use crate::auth::Acting;
use crate::error::ErrorBody;
use crate::extract::{object, CommunityHeader, JsonBody, PathParams};
use crate::{ApiError, AppState};

fn parameters(body: &Value) -> Result<Value, ApiError> {
    let obj = object(body, "")?;
    match obj.get("parameters") {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(p @ Value::Object(_)) => Ok(p.clone()),
        Some(_) => Err(ApiError::invalid(
            "parameters",
            "'parameters' must be a JSON object",
        )),
    }
}

async fn run(
    s: AppState,
    by: Principal,
    community: String,
    name: String,
    body: Value,
    public_only: bool,
) -> Result<Json<Value>, ApiError> {
    let params = parameters(&body)?;
    let out = s
        .agora
        .actions
        .run(&community, &name, params, public_only, &by)
        .await
        .map_err(ApiError::for_header_community)?;
    Ok(Json(out))
}

#[utoipa::path(post, path = "/api/internal/action/{name}", tag = "actions",
    params(("name" = String, Path, description = "<plugin>.<action>"), ("X-Metagov-Community" = String, Header)),
    request_body(content = Object, description = "{\"parameters\": {...}}"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn internal(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(name): PathParams<String>,
    CommunityHeader(community): CommunityHeader,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    run(s, by, community, name, body, false).await
}

#[utoipa::path(post, path = "/api/action/{name}", tag = "actions",
    params(("name" = String, Path, description = "<plugin>.<action>, public actions only"), ("X-Metagov-Community" = String, Header)),
    request_body(content = Object, description = "{\"parameters\": {...}}"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn public(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(name): PathParams<String>,
    CommunityHeader(community): CommunityHeader,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    run(s, by, community, name, body, true).await
}
