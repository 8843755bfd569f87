//! `/api/internal/process/<plugin>.<process>`: start (202 + Location), read, close.

use agora_actors::{ProcessStart, ProcessView};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::extract::{object, opt_url, CommunityHeader, JsonBody, PathParams};
use crate::{ApiError, AppState};

/// A governance process, as Metagov shows it.
#[derive(Serialize, ToSchema)]
pub struct ProcessOut {
    id: u64,
    /// `<plugin>.<process>`
    name: String,
    community: String,
    /// `created`, `pending` or `completed`.
    status: &'static str,
    url: Option<String>,
    #[schema(value_type = Object)]
    errors: Value,
    #[schema(value_type = Object)]
    outcome: Value,
}

impl From<ProcessView> for ProcessOut {
    fn from(v: ProcessView) -> Self {
        ProcessOut {
            id: v.id,
            name: v.name,
            community: v.community,
            status: v.status,
            url: None,
            errors: v.errors,
            outcome: v.outcome,
        }
    }
}

#[utoipa::path(post, path = "/api/internal/process/{name}", tag = "processes",
    params(("name" = String, Path, description = "<plugin>.<process>"), ("X-Metagov-Community" = String, Header)),
    request_body(content = Object, description = "the process inputs, plus an optional callback_url"),
    responses((status = 202, description = "started; Location names it"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn start(
    State(s): State<AppState>,
    PathParams(name): PathParams<String>,
    CommunityHeader(community): CommunityHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let obj = object(&body, "")?;
    let callback_url = opt_url(obj, "callback_url")?;
    let mut params = obj.clone();
    params.remove("callback_url");
    let id = s
        .agora
        .start_process(ProcessStart {
            community,
            name: name.clone(),
            params: Value::Object(params),
            callback_url,
        })
        .await
        .map_err(|e| ApiError::from_actor(e, true))?;
    let location = format!("/api/internal/process/{name}/{id}");
    let mut resp = StatusCode::ACCEPTED.into_response();
    let value = HeaderValue::from_str(&location)
        .map_err(|_| ApiError::invalid("name", "the process name cannot appear in a URL"))?;
    resp.headers_mut().insert(header::LOCATION, value);
    Ok(resp)
}

#[utoipa::path(get, path = "/api/internal/process/{name}/{id}", tag = "processes",
    params(("name" = String, Path), ("id" = u64, Path)),
    responses((status = 200, body = ProcessOut), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(s): State<AppState>,
    PathParams((name, id)): PathParams<(String, String)>,
) -> Result<Json<ProcessOut>, ApiError> {
    Ok(Json(s.agora.get_process(&name, &id).await?.into()))
}

#[utoipa::path(delete, path = "/api/internal/process/{name}/{id}", tag = "processes",
    params(("name" = String, Path), ("id" = u64, Path)),
    responses((status = 200, body = ProcessOut, description = "closed; the same JSON goes to callback_url"),
        (status = 400, body = ErrorBody, description = "already completed"), (status = 404, body = ErrorBody)))]
pub(crate) async fn close(
    State(s): State<AppState>,
    PathParams((name, id)): PathParams<(String, String)>,
) -> Result<Json<ProcessOut>, ApiError> {
    Ok(Json(s.agora.close_process(&name, &id).await?.into()))
}
