//! `/api/hooks/...`: webhooks from platforms, public by nature (plugins verify signatures).

use agora_actors::plugins::WebhookRequest;
use agora_actors::ActorError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use crate::error::ErrorBody;
use crate::extract::{PathParams, RawBody};
use crate::{ApiError, AppState};

fn request(headers: &HeaderMap, body: Vec<u8>) -> WebhookRequest {
    WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        query: None,
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
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    s.agora
        .webhook(&community, &plugin, request(&headers, body.to_vec()))
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
    responses((status = 404, body = ErrorBody, description = "no installed plugin routes platform-wide webhooks yet")))]
pub(crate) async fn platform(
    State(s): State<AppState>,
    PathParams(plugin): PathParams<String>,
) -> ApiError {
    if s.agora.registry().get(&plugin).is_none() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_plugin",
            format!("plugin '{plugin}' is not installed"),
        );
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "webhook_not_routable",
        format!("plugin '{plugin}' does not take platform-wide webhooks; use /api/hooks/<community>/{plugin}"),
    )
}
