//! The HTTP gateway: the Metagov-compatible API and Agora's own routes, on axum.
//!
//! Only this crate knows HTTP and the request and response shapes (Metagov's among them,
//! which it also hands the actors for callbacks and driver events: [`MetagovJson`]). Every
//! route is declared once, in the route table (`routes::ROUTES`), from which the router, the
//! cluster routing and the OpenAPI document are built. Handlers are thin: extract (with
//! extractors that turn every rejection into the JSON error shape), call one service
//! operation with the [`agora_actors::Principal`] acting, map the result. [`router`] builds
//! the whole API; serving it is the binary's job.

mod auth;
mod cluster;
mod error;
mod extract;
mod json;
mod metagov;
mod metrics;
mod openapi;
mod openapi_bodies;
mod openapi_rules;
mod routes;
mod serve;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use agora_actors::Agora;
use agora_runtime::Tasks;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::middleware::from_fn_with_state;
use axum::Router;

pub use auth::{Access, Auth, CommunityOf, Scope, ACTOR_HEADER};
pub use error::ApiError;
pub use metagov::MetagovJson;
pub use metrics::HttpMetrics;
pub use routes::{route_table, RouteInfo};
pub use serve::{serve, Drained, ServeLimits};

/// Bodies larger than this get 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// What every handler can reach. Cloned for every request by axum, hence one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub agora: Agora,
    pub auth: Auth,
    pub metrics: Arc<HttpMetrics>,
    /// False until the runtime is up, and again once shutdown starts.
    pub ready: Arc<AtomicBool>,
    /// The node's background tasks, whose status `/readyz` reports.
    pub tasks: Tasks,
}

impl AppState {
    pub fn new(inner: AppInner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The complete API, from the route table: each route is admitted first (its caller
/// authenticated as the route asks, the principal read), then run where its partition is
/// served.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new();
    let clustered = state.agora.runtime().is_cluster();
    for r in routes::ROUTES {
        let Some(method_router) = r.method_router() else {
            tracing::error!(method = %r.method, path = r.path, "a route with a method axum cannot route");
            continue;
        };
        // A single node serves every partition, so nothing routes between admission and the
        // community check: one layer does both, and the metrics (each layer costs every
        // request 0.6-1.9 µs).
        let method_router = if clustered {
            method_router
                .route_layer(from_fn_with_state(
                    (state.clone(), r.access),
                    auth::authorize,
                ))
                .route_layer(from_fn_with_state(
                    (state.clone(), r.partition),
                    cluster::route,
                ))
                .route_layer(from_fn_with_state((state.clone(), r.access), auth::admit))
        } else {
            method_router.route_layer(from_fn_with_state((state.clone(), r.access), auth::gate))
        };
        app = app.route(r.path, method_router);
    }
    // Metrics and the request span: in `auth::gate` for a single node's routes; as a layer
    // around everything else (a cluster node's routes, and every node's 404 and 405 answers).
    let track = from_fn_with_state(state.clone(), metrics::track);
    let app = if clustered {
        app.fallback(routes::not_found)
            .method_not_allowed_fallback(routes::method_not_allowed)
            .layer(track)
    } else {
        app.fallback(routes::not_found.layer(track.clone()))
            .method_not_allowed_fallback(routes::method_not_allowed.layer(track))
    };
    let app = app
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state.clone());
    cluster::install_handler(&state, app.clone());
    app
}
