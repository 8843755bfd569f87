//! `/api/hooks/...`: webhooks from platforms, public by nature (plugins verify signatures).

use agora_plugins::{ErrorCode, WebhookRequest};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Acting;
use crate::error::ErrorBody;
use crate::extract::{PathParams, RawBody};
use crate::{ApiError, AppState};

fn request(headers: &HeaderMap, query: Option<&str>, body: Vec<u8>) -> WebhookRequest {
    WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        query: query.map(str::to_owned),
        body,
    }
}

#[utoipa::path(post, path = "/api/hooks/{community}/{plugin}", tag = "webhooks",
    params(("community" = String, Path), ("plugin" = String, Path)),
    request_body(content = Object, description = "the platform's payload"),
    responses((status = 200), (status = 404, body = ErrorBody)))]
pub(crate) async fn community(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((community, plugin)): PathParams<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let request = request(&headers, uri.query(), body.to_vec());
    s.agora
        .webhooks
        .community(&community, &plugin, request, &by)
        .await
        .map_err(|e| {
            let err = ApiError::from(e);
            // Metagov answers 404 for an unknown community or a plugin it does not run there.
            match err.code {
                ErrorCode::CommunityNotFound
                | ErrorCode::PluginNotEnabled
                | ErrorCode::UnknownPlugin
                | ErrorCode::InvalidSlug => err.with_status(StatusCode::NOT_FOUND),
                _ => err,
            }
        })?;
    Ok(StatusCode::OK)
}

#[utoipa::path(post, path = "/api/hooks/{plugin}", tag = "webhooks",
    params(("plugin" = String, Path)),
    request_body(content = Object, description = "the platform's payload"),
    responses((status = 200, body = Object, description = "{\"delivered\": <communities that took it>}; 0 for an authentic delivery that routes nowhere (plugins that verify first: github)"),
        (status = 401, body = ErrorBody, description = "invalid_signature: bad or missing signature (github: checked first, with the node-wide secret)"),
        (status = 404, body = ErrorBody, description = "unknown_plugin; webhook_not_routable: no community follows what the webhook is about (plugins that verify per community only)")))]
pub(crate) async fn platform(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(plugin): PathParams<String>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let request = request(&headers, uri.query(), body.to_vec());
    let delivered = s
        .agora
        .webhooks
        .platform(&plugin, request, &by)
        .await
        .map_err(|e| {
            let err = ApiError::from(e);
            // The plugin is the resource in the path: an unknown one is not found.
            match err.code {
                ErrorCode::UnknownPlugin => err.with_status(StatusCode::NOT_FOUND),
                _ => err,
            }
        })?;
    Ok(Json(json!({ "delivered": delivered })))
}
