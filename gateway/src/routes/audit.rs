//! `GET /api/v1/plugin-audit-log`: the append-only record of plugin changes, filtered and
//! paged with an opaque cursor.

use agora_actors::audit::AuditFilter;
use agora_actors::events::{parse_instant_ms, timestamp};
use agora_plugins::ErrorCode;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    plugin: Option<String>,
    community: Option<String>,
    action: Option<String>,
    /// RFC 3339, or epoch seconds.
    since: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/plugin-audit-log", tag = "plugin registry",
    params(
        ("plugin" = Option<String>, Query), ("community" = Option<String>, Query),
        ("action" = Option<String>, Query, description = "enable, disable, settings_change"),
        ("since" = Option<String>, Query, description = "RFC 3339 or epoch seconds"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = Object, description = "{\"entries\": [...], \"next_cursor\": string or null}"),
        (status = 400, body = ErrorBody)))]
pub(crate) async fn log(
    State(s): State<AppState>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(ErrorCode::InvalidQuery, r.body_text()))?;
    let since_ms = match &q.since {
        Some(t) => Some(parse_instant_ms(t).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "'since' is neither RFC 3339 nor epoch seconds",
            )
            .with_field("since")
        })?),
        None => None,
    };
    let cursor = match &q.cursor {
        Some(c) => Some(c.parse::<u64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "'cursor' is not a cursor this API gave out",
            )
            .with_field("cursor")
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::new(ErrorCode::InvalidQuery, "'limit' is between 1 and 1000")
                .with_field("limit"),
        );
    }
    let filter = AuditFilter {
        plugin: q.plugin,
        community: q.community,
        action: q.action,
        since_ms,
    };
    let (entries, next) = s.agora.audit.page(&filter, cursor, limit).await?;
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null)
    };
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(seq, e)| {
            json!({
                "id": seq,
                "at": timestamp(e.at_ms),
                "who": e.who,
                "agent": e.agent,
                "community": e.community,
                "plugin": e.plugin,
                "action": e.action,
                "outcome": e.outcome,
                "message": e.message,
                "before": parse(&e.before),
                "after": parse(&e.after),
            })
        })
        .collect();
    Ok(Json(json!({
        "entries": entries,
        "next_cursor": next.map(|n| n.to_string()),
    })))
}
