//! `/api/internal/process/<plugin>.<process>`: start (202 + Location), read, close.

use agora_actors::services::{BallotCast, ProcessStart};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Acting;
use crate::error::ErrorBody;
use crate::extract::{object, opt_str, opt_url, CommunityHeader, JsonBody, PathParams};
use crate::metagov::ProcessOut;
use crate::{ApiError, AppState};

#[utoipa::path(post, path = "/api/internal/process/{name}", tag = "processes",
    params(("name" = String, Path, description = "<plugin>.<process>"), ("X-Metagov-Community" = String, Header)),
    request_body(content = Object, description = "the process inputs, plus an optional callback_url"),
    responses((status = 202, description = "started; Location names it"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn start(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(name): PathParams<String>,
    CommunityHeader(community): CommunityHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let obj = object(&body, "")?;
    let callback_url = opt_url(obj, "callback_url")?;
    let mut params = obj.clone();
    params.remove("callback_url");
    let start = ProcessStart {
        community,
        name: name.clone(),
        params: Value::Object(params),
        callback_url,
    };
    let id = s
        .agora
        .processes
        .start(start, &by)
        .await
        .map_err(ApiError::for_header_community)?;
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
    let view = s.agora.processes.get(&name, &id).await?;
    Ok(Json(ProcessOut::from(&view)))
}

#[utoipa::path(delete, path = "/api/internal/process/{name}/{id}", tag = "processes",
    params(("name" = String, Path), ("id" = u64, Path)),
    responses((status = 200, body = ProcessOut, description = "closed; the same JSON goes to callback_url"),
        (status = 400, body = ErrorBody, description = "already completed"), (status = 404, body = ErrorBody)))]
pub(crate) async fn close(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((name, id)): PathParams<(String, String)>,
) -> Result<Json<ProcessOut>, ApiError> {
    let view = s.agora.processes.close(&name, &id, &by).await?;
    Ok(Json(ProcessOut::from(&view)))
}

/// Body of a ballot.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BallotIn {
    /// The voter's id (eligibility and weights are by this id).
    voter: String,
    /// Method-specific: a string (proposal, consent, count), a list of options (choice,
    /// approval, ranked in order of preference) or an object option → number (score, dot,
    /// quadratic).
    #[schema(value_type = Object)]
    choice: Value,
}

#[utoipa::path(post, path = "/api/internal/process/{name}/{id}/ballots", tag = "votes",
    params(("name" = String, Path, description = "vote.<method>"), ("id" = u64, Path)),
    request_body = BallotIn,
    responses((status = 200, body = Object, description = "the ballot receipt"),
        (status = 400, body = ErrorBody, description = "malformed choice, unknown option, over budget, too many or too few selections"),
        (status = 403, body = ErrorBody, description = "ineligible voter"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "vote closed, ballot after closing_at, already voted")))]
pub(crate) async fn cast_ballot(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((name, id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let obj = object(&body, "")?;
    let voter = opt_str(obj, "voter")?
        .ok_or_else(|| ApiError::invalid("voter", "'voter' is a required property"))?;
    let choice = obj
        .get("choice")
        .cloned()
        .ok_or_else(|| ApiError::invalid("choice", "'choice' is a required property"))?;
    let cast = BallotCast {
        name,
        id,
        voter,
        choice,
    };
    let receipt = s.agora.votes.cast(cast, &by).await?;
    Ok(Json(receipt))
}

#[utoipa::path(get, path = "/api/internal/process/{name}/{id}/ballots", tag = "votes",
    params(("name" = String, Path, description = "vote.<method>"), ("id" = u64, Path)),
    responses((status = 200, body = Object, description = "the canonical ballot list and its commitment"),
        (status = 403, body = ErrorBody, description = "results hidden until the vote closes"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn list_ballots(
    State(s): State<AppState>,
    PathParams((name, id)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(s.agora.votes.ballots(&name, &id).await?))
}
