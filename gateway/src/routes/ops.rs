//! Health, readiness, metrics, the OpenAPI document and its browsable page.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::{ApiError, AppState};

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    if !s.ready.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the node is starting or shutting down",
        ));
    }
    if !s.agora.runtime().is_healthy() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_failed",
            "storage refused a write; the node refuses writes until restarted",
        ));
    }
    Ok(Json(json!({"status": "ready"})))
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.agora.runtime().stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
        .into_response()
}

pub(crate) async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
