//! The HTTP gateway: the Metagov-compatible API and Agora's own routes, on axum.
//!
//! Only this crate knows HTTP and the request and response shapes. Handlers are thin: extract
//! (with extractors that turn every rejection into the JSON error shape), call one [`Agora`]
//! operation, map the result. [`router`] builds the whole API; serving it is the binary's job.

mod auth;
mod cluster;
mod error;
mod extract;
mod metrics;
mod openapi;
mod routes;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use agora_actors::Agora;
use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use auth::Auth;
pub use error::ApiError;
pub use metrics::HttpMetrics;

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

/// The complete API.
pub fn router(state: AppState) -> Router {
    let internal = routes::internal().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_driver,
    ));
    let app = Router::new()
        .merge(internal)
        .merge(routes::public())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Cluster mode: a partition's requests run on the node serving it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cluster::route,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state.clone());
    cluster::install_handler(&state, app.clone());
    app
}
