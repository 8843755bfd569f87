//! `GET /dashboard` and its two assets: the operators' web page, compiled into the binary (no
//! build step, no CDN). The page asks for a token once (kept in the tab's session storage)
//! and reads the API with it; a `--dev` node needs none. The assets are public: they hold no
//! data, and a strict Content-Security-Policy keeps the page to its own script.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const APP_CSS: &str = include_str!("../dashboard/app.css");

/// Only this origin's own script, style and API; no inline script, no frames.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/dashboard", tag = "operations",
    responses((status = 200, content_type = "text/html", description = "the dashboard page")))]
pub(crate) async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

#[utoipa::path(get, path = "/dashboard/app.js", tag = "operations",
    responses((status = 200, content_type = "text/javascript", description = "the dashboard's script")))]
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

#[utoipa::path(get, path = "/dashboard/app.css", tag = "operations",
    responses((status = 200, content_type = "text/css", description = "the dashboard's style sheet")))]
pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}
