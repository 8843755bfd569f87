//! `/api/hooks/...`: webhooks from platforms, public by nature (plugins verify signatures).

use agora_actors::plugins::WebhookRequest;
use agora_actors::ActorError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use serde_json::{json, Value};

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
    PathParams((community, plugin)): PathParams<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    s.agora
        .webhook(
            &community,
            &plugin,
            request(&headers, uri.query(), body.to_vec()),
        )
        .await
        .map_err(|e| {
            let mut err = ApiError::from(e.clone());
            // Metagov answers 404 for an unknown community or a plugin it does not run there.
            if matches!(
                e,
                ActorError::CommunityNotFound(_)
                    | ActorError::PluginNotEnabled { .. }
                    | ActorError::UnknownPlugin(_)
                    | ActorError::InvalidSlug(_)
            ) {
                err.status = StatusCode::NOT_FOUND;
            }
            err
        })?;
    Ok(StatusCode::OK)
}

#[utoipa::path(post, path = "/api/hooks/{plugin}", tag = "webhooks",
    params(("plugin" = String, Path)),
    request_body(content = Object, description = "the platform's payload"),
    responses((status = 200, body = Object, description = "{\"delivered\": <communities that took it>}"),
        (status = 401, body = ErrorBody, description = "bad or missing signature"),
        (status = 404, body = ErrorBody, description = "unknown plugin, or no community follows what the webhook is about")))]
pub(crate) async fn platform(
    State(s): State<AppState>,
    PathParams(plugin): PathParams<String>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let delivered = s
        .agora
        .platform_webhook(&plugin, request(&headers, uri.query(), body.to_vec()))
        .await
        .map_err(|e| {
            let unknown = matches!(e, ActorError::UnknownPlugin(_));
            let err = ApiError::from(e);
            if unknown {
                err.not_found()
            } else {
                err
            }
        })?;
    Ok(Json(json!({ "delivered": delivered })))
}
