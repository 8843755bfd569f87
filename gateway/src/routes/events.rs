//! `GET /api/internal/events`: every driver event of the node as Server-Sent Events, live from
//! the moment of subscribing, optionally for one community (`?community=<slug>`). An event is
//! sent only once the change that caused it is durable. A subscriber too slow to keep up gets
//! a `lagged` event saying how many it missed, rather than a silently cut stream.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often an idle stream checks whether the node is shutting down.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(250);

use agora_runtime::Published;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
pub(crate) struct Filter {
    community: Option<String>,
}

fn sse_event(p: &Published) -> Event {
    Event::default()
        .event(p.event_type.as_str())
        .data(p.body.as_str())
}

#[utoipa::path(get, path = "/api/internal/events", tag = "events",
    params(("community" = Option<String>, Query, description = "only this community's events")),
    responses((status = 200, content_type = "text/event-stream",
        description = "`event: <event_type>`, `data: <the driver event envelope>`; `event: lagged` with the number of events missed"),
        (status = 400, body = ErrorBody)))]
pub(crate) async fn stream(
    State(s): State<AppState>,
    query: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(filter) = query.map_err(|e| ApiError::invalid("community", e.body_text()))?;
    if let Some(c) = &filter.community {
        agora_actors::validate_slug(c).map_err(|e| ApiError::from(e).with_field("community"))?;
    }
    let rx = s.agora.runtime().subscribe_events();
    let community: Option<Arc<str>> = filter.community.map(Arc::from);
    let ready = s.ready.clone();
    let events = stream::unfold((rx, community), move |(mut rx, community)| {
        let ready = ready.clone();
        async move {
            loop {
                let next = tokio::select! {
                    r = rx.recv() => r,
                    // Streams end when the node drains, or graceful shutdown would wait on them.
                    _ = tokio::time::sleep(SHUTDOWN_CHECK) => {
                        if ready.load(Ordering::Relaxed) {
                            continue;
                        }
                        return None;
                    }
                };
                match next {
                    Ok(p) => {
                        if community.as_deref().is_some_and(|c| c != p.community) {
                            continue;
                        }
                        return Some((Ok(sse_event(&p)), (rx, community)));
                    }
                    Err(RecvError::Lagged(n)) => {
                        let ev = Event::default().event("lagged").data(n.to_string());
                        return Some((Ok(ev), (rx, community)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
