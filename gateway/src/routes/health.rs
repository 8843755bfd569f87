//! `GET /api/v1/plugins/{name}/health` and `GET /api/v1/communities/{slug}/plugins/{name}/health`:
//! each plugin instance's health (`ok`, `degraded`, `failing`, with the reason, the last probe
//! and the circuit breaker), as the background prober and recent calls left it.

use agora_actors::health::HealthStatus;
use agora_plugins::ErrorCode;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ErrorBody;
use crate::extract::PathParams;
use crate::{ApiError, AppState};

/// The plugin is the resource in the path: an unknown one is not found.
fn not_found(e: agora_actors::ActorError) -> ApiError {
    let err = ApiError::from(e);
    match err.code {
        ErrorCode::UnknownPlugin => err.with_status(StatusCode::NOT_FOUND),
        _ => err,
    }
}

#[utoipa::path(get, path = "/api/v1/plugins/{name}/health", tag = "plugin registry",
    params(("name" = String, Path)),
    responses((status = 200, body = Object, description = "{\"plugin\", \"status\" (the worst instance), \"instances\": [per-community health]}"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn plugin(
    State(s): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let reports = s.agora.health.plugin(&name).await.map_err(not_found)?;
    let worst = reports
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(HealthStatus::Ok);
    let counts = |st: HealthStatus| reports.iter().filter(|r| r.status == st).count();
    Ok(Json(json!({
        "plugin": name,
        "status": worst.as_str(),
        "counts": {
            "ok": counts(HealthStatus::Ok),
            "degraded": counts(HealthStatus::Degraded),
            "failing": counts(HealthStatus::Failing),
        },
        "instances": reports.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/plugins/{name}/health", tag = "plugin registry",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Object, description = "{\"status\": \"ok|degraded|failing\", \"reason\", \"checked_at\", \"probe\", \"breaker\": {\"state\": \"closed|open|half_open\", ...}}"),
        (status = 400, body = ErrorBody, description = "the plugin is disabled on the node or not enabled for the community"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn community(
    State(s): State<AppState>,
    PathParams((slug, name)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let report = s
        .agora
        .health
        .community(&slug, &name)
        .await
        .map_err(not_found)?;
    Ok(Json(report.to_json()))
}
