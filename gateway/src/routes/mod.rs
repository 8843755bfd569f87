//! Routes, one module per resource. `internal()` (the Metagov internal routes and `/api/v1`)
//! needs the driver token; `public()` does not.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod cluster_info;
pub(crate) mod communities;
pub(crate) mod dev_clock;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod hooks;
pub(crate) mod ops;
pub(crate) mod plugin_registry;
pub(crate) mod plugins;
pub(crate) mod processes;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::{ApiError, AppState};

pub(crate) fn internal() -> Router<AppState> {
    Router::new()
        .route("/api/internal/community", post(communities::create))
        .route(
            "/api/internal/community/{slug}",
            get(communities::get)
                .put(communities::update)
                .delete(communities::delete),
        )
        .route("/api/internal/plugin/{name}", post(plugins::enable))
        .route(
            "/api/internal/plugin/{name}/{id}",
            axum::routing::delete(plugins::disable),
        )
        .route(
            "/api/internal/plugin/{name}/metadata",
            get(plugins::metadata),
        )
        .route("/api/internal/plugin-schemas", get(plugins::schemas))
        .route("/api/v1/plugins", get(plugin_registry::list))
        .route("/api/v1/plugins/{name}", get(plugin_registry::get))
        .route(
            "/api/v1/plugins/{name}/enable",
            post(plugin_registry::enable),
        )
        .route(
            "/api/v1/plugins/{name}/disable",
            post(plugin_registry::disable),
        )
        .route(
            "/api/v1/plugins/{name}/settings",
            axum::routing::put(plugin_registry::settings),
        )
        .route("/api/v1/plugins/{name}/health", get(health::plugin))
        .route(
            "/api/v1/communities/{slug}/plugins/{name}/health",
            get(health::community),
        )
        .route(
            "/api/v1/communities/{slug}/plugins",
            get(plugin_registry::community_list),
        )
        .route(
            "/api/v1/communities/{slug}/plugins/{name}",
            get(plugin_registry::community_get),
        )
        .route(
            "/api/v1/communities/{slug}/plugins/{name}/enable",
            post(plugin_registry::community_enable),
        )
        .route(
            "/api/v1/communities/{slug}/plugins/{name}/disable",
            post(plugin_registry::community_disable),
        )
        .route(
            "/api/v1/communities/{slug}/plugins/{name}/settings",
            axum::routing::put(plugin_registry::community_settings),
        )
        .route("/api/v1/plugin-audit-log", get(audit::log))
        .route("/api/internal/events", get(events::stream))
        .route("/api/v1/cluster", get(cluster_info::get))
        // Test aid: 404 unless the node runs with --dev --manual-clock.
        .route(
            "/api/internal/dev/clock",
            get(dev_clock::get).post(dev_clock::set),
        )
        .route("/api/internal/action/{name}", post(actions::internal))
        .route("/api/internal/process/{name}", post(processes::start))
        .route(
            "/api/internal/process/{name}/{id}",
            get(processes::get).delete(processes::close),
        )
        .route(
            "/api/internal/process/{name}/{id}/ballots",
            post(processes::cast_ballot).get(processes::list_ballots),
        )
}

pub(crate) fn public() -> Router<AppState> {
    Router::new()
        .route("/api/action/{name}", post(actions::public))
        .route("/api/hooks/{community}/{plugin}", post(hooks::community))
        .route("/api/hooks/{plugin}", post(hooks::platform))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/openapi.json", get(ops::openapi))
        .route("/api/docs", get(ops::docs))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}
