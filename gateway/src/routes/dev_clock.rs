//! `GET` and `POST /api/internal/dev/clock`: reads and moves the node's manual clock, so
//! end-to-end tests run deadlines (votes closing, reminders, delivery backoff) without waiting.
//!
//! Only a node started with `agora serve --dev --manual-clock <start ms>` has one; on every
//! other node the route answers 404 `route_not_found`, as if it did not exist. The clock only
//! moves forward: the runtime's timers and receipts assume time does not run backwards. In a
//! cluster each node has its own clock; a test moves each.

use agora_plugins::ErrorCode;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::error::ErrorBody;
use crate::extract::{object, JsonBody};
use crate::{ApiError, AppState};

/// The node's manual clock, or the 404 of a route that is not there.
fn manual(s: &AppState) -> Result<&agora_runtime::ManualClock, ApiError> {
    s.agora
        .runtime()
        .clock()
        .as_manual()
        .ok_or_else(|| ApiError::new(ErrorCode::RouteNotFound, "no such route"))
}

/// `{"now_ms": <the clock's time, epoch milliseconds>}`.
#[utoipa::path(get, path = "/api/internal/dev/clock", tag = "dev",
    responses((status = 200, body = Object, description = "{\"now_ms\": <the manual clock's time>}"),
        (status = 404, body = ErrorBody, description = "the node has no manual clock (route_not_found)")))]
pub(crate) async fn get(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let clock = manual(&s)?;
    Ok(Json(
        json!({ "now_ms": agora_runtime::Clock::now_ms(clock) }),
    ))
}

/// A non-negative integer field, if present.
fn opt_ms(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::invalid(
                key,
                format!("'{key}' must be a non-negative integer of milliseconds"),
            )
        }),
    }
}

/// Body: `{"advance_ms": n}` (move forward by n) or `{"set_ms": t}` (move to t, not before
/// now). Answers the new time as `GET` does.
#[utoipa::path(post, path = "/api/internal/dev/clock", tag = "dev",
    request_body = Object,
    responses((status = 200, body = Object, description = "{\"now_ms\": <the new time>}"),
        (status = 400, body = ErrorBody, description = "invalid_request, or clock_backwards"),
        (status = 404, body = ErrorBody, description = "the node has no manual clock (route_not_found)")))]
pub(crate) async fn set(
    State(s): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let clock = manual(&s)?;
    let obj = object(&body, "")?;
    if let Some(unknown) = obj.keys().find(|k| *k != "advance_ms" && *k != "set_ms") {
        return Err(ApiError::invalid(
            unknown.as_str(),
            format!("unknown field '{unknown}': send advance_ms or set_ms"),
        ));
    }
    let now = match (opt_ms(obj, "advance_ms")?, opt_ms(obj, "set_ms")?) {
        (Some(ms), None) => clock.advance(ms),
        (None, Some(at)) => clock.advance_to(at).map_err(|now| {
            ApiError::new(
                ErrorCode::ClockBackwards,
                format!(
                    "the clock is at {now} ms and only moves forward; set_ms {at} is before it"
                ),
            )
            .with_field("set_ms")
        })?,
        _ => {
            return Err(ApiError::invalid(
                "body",
                "send exactly one of advance_ms and set_ms",
            ))
        }
    };
    Ok(Json(json!({ "now_ms": now })))
}
