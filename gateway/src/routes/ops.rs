//! Health, readiness (with the status of the node's background tasks), metrics, the OpenAPI
//! document and its browsable page.

use std::sync::atomic::Ordering;

use agora_plugins::ErrorCode;
use agora_runtime::TaskStatus;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Object, description = "{\"status\": \"ok\"}: the process runs")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Object, description = "{\"status\": \"ready\", \"tasks\": {<name>: \"running\"}}"),
        (status = 503, body = ErrorBody, description = "starting or shutting down (not_ready), storage failed (storage_failed), or a background task stopped (task_stopped)")))]
pub(crate) async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    if !s.ready.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            ErrorCode::NotReady,
            "the node is starting or shutting down",
        ));
    }
    if !s.agora.runtime().is_healthy() {
        return Err(ApiError::new(
            ErrorCode::StorageFailed,
            "storage refused a write; the node refuses writes until restarted",
        ));
    }
    let statuses = s.tasks.statuses();
    if let Some((name, status)) = statuses.iter().find(|(_, st)| *st != TaskStatus::Running) {
        let why = match status {
            TaskStatus::Failed(why) => why.as_str(),
            _ => "stopped",
        };
        return Err(ApiError::new(
            ErrorCode::TaskStopped,
            format!("background task '{name}' is not running: {why}"),
        ));
    }
    let tasks: Map<String, Value> = statuses
        .iter()
        .map(|(name, st)| (name.to_string(), json!(st.as_str())))
        .collect();
    Ok(Json(json!({"status": "ready", "tasks": tasks})))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", description = "Prometheus text exposition")))]
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.agora.runtime().stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, body = Object, description = "this document")))]
pub(crate) async fn openapi(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(s.agora.registry()),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/docs", tag = "operations",
    responses((status = 200, content_type = "text/html", description = "the browsable API documentation")))]
pub(crate) async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
