//! What a node holds, for operators: `GET /api/v1/communities` (the communities of the
//! partitions this node serves, paged by slug; every community on a single node, and the CLI
//! asks every node of a cluster) and `GET /api/v1/communities/{slug}/processes` (a
//! community's processes and votes, open ones or all).

use agora_actors::events::timestamp;
use agora_actors::process::ProcessSummary;
use agora_plugins::ErrorCode;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Grant;
use crate::error::ErrorBody;
use crate::extract::PathParams;
use crate::{ApiError, AppState};

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    /// `next` of the previous page.
    after: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/communities", tag = "communities",
    params(("after" = Option<String>, Query, description = "`next` of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = Object, description = "{\"communities\": [{\"slug\", \"readable_name\", \"plugins\", \"created_at\"}], \"next\": slug or null, \"node_id\": this node in a cluster (it lists the partitions it serves)}"),
        (status = 400, body = ErrorBody)))]
pub(crate) async fn communities(
    State(s): State<AppState>,
    grant: Option<Extension<Grant>>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(ErrorCode::InvalidQuery, r.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::new(ErrorCode::InvalidQuery, "'limit' is between 1 and 1000")
                .with_field("limit"),
        );
    }
    // A token limited to communities lists only those: pages are read until `limit` of them
    // are found or the node has no more (they are few; the scan is over this node's own).
    let only: Option<Vec<String>> = match grant.as_deref() {
        Some(Grant::Token(t)) if !t.communities.is_empty() => Some(t.communities.clone()),
        _ => None,
    };
    let (page, next) = match &only {
        None => s.agora.communities.list(q.after.as_deref(), limit)?,
        Some(mine) => {
            let mut found = Vec::new();
            let mut after = q.after.clone();
            loop {
                let (page, next) = s.agora.communities.list(after.as_deref(), 1000)?;
                found.extend(page.into_iter().filter(|c| mine.contains(&c.slug)));
                if found.len() > limit || next.is_none() {
                    break;
                }
                after = next;
            }
            let more = found.len() > limit;
            found.truncate(limit);
            let next = more.then(|| found.last().map(|c| c.slug.clone())).flatten();
            (found, next)
        }
    };
    let node_id = s.agora.runtime().cluster_view().map(|v| v.node_id);
    Ok(Json(json!({
        "communities": page.iter().map(|c| json!({
            "slug": c.slug,
            "readable_name": c.readable_name,
            "plugins": c.plugins,
            "created_at": timestamp(c.created_ms),
        })).collect::<Vec<_>>(),
        "next": next,
        "node_id": node_id,
    })))
}

#[derive(Deserialize, Default)]
pub(crate) struct ProcessQuery {
    /// `open`: pending ones only; `all` (default).
    status: Option<String>,
}

fn process_json(p: &ProcessSummary) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "status": p.status,
        "location": format!("/api/internal/process/{}/{}", p.name, p.id),
        "created_at": timestamp(p.created_ms),
        "closing_at": p.closing_at_ms.map(timestamp),
    })
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/processes", tag = "processes",
    params(("slug" = String, Path),
        ("status" = Option<String>, Query, description = "`open` (pending only) or `all` (default)")),
    responses((status = 200, body = Object, description = "{\"processes\": [{\"id\", \"name\", \"status\", \"location\", \"created_at\", \"closing_at\"}], newest first}"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn processes(
    State(s): State<AppState>,
    PathParams(slug): PathParams<String>,
    query: Result<Query<ProcessQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(ErrorCode::InvalidQuery, r.body_text()))?;
    let open_only = match q.status.as_deref() {
        None | Some("all") => false,
        Some("open") => true,
        Some(_) => {
            return Err(
                ApiError::new(ErrorCode::InvalidQuery, "'status' is open or all")
                    .with_field("status"),
            )
        }
    };
    let all = s.agora.processes.list(&slug, open_only).await?;
    Ok(Json(json!({
        "processes": all.iter().map(process_json).collect::<Vec<_>>(),
    })))
}
