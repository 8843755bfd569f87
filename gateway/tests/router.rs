//! Router tests without sockets: the real router over a real runtime on the in-memory engine,
//! driven with `tower::ServiceExt::oneshot`. The end-to-end suite covers the real process.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use agora_actors::outbound::OutboundPolicy;
use agora_actors::{ActorsEnv, Agora};
use agora_gateway::{router, AppInner, AppState, Auth, HttpMetrics, MetagovJson};
use agora_runtime::{Runtime, RuntimeConfig, SystemClock, Tasks};
use agora_storage::{Engine, MemEngine};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn app(auth: Auth) -> Router {
    let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
    let rt = Runtime::start(RuntimeConfig::default(), engine, Arc::new(SystemClock)).unwrap();
    let agora = Agora::new(
        rt,
        ActorsEnv {
            registry: Arc::new(agora_plugins::builtin::all().unwrap()),
            driver_url: None,
            globals: Default::default(),
            refresh: Default::default(),
            json: Arc::new(MetagovJson),
            resolved: Default::default(),
        },
        OutboundPolicy::default(),
    );
    router(AppState::new(AppInner {
        agora,
        auth,
        metrics: Arc::new(HttpMetrics::new()),
        ready: Arc::new(AtomicBool::new(true)),
        tasks: Tasks::new(),
    }))
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, value)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn community_lifecycle_follows_metagov() {
    let app = app(Auth::Open);
    let (s, v) = call(
        &app,
        "POST",
        "/api/internal/community",
        &[],
        r#"{"slug":"c1","readable_name":"One"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v, json!({"slug":"c1","readable_name":"One","plugins":[]}));
    let (s, v) = call(
        &app,
        "POST",
        "/api/internal/community",
        &[],
        r#"{"slug":"c1"}"#,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "community_exists"));
    let (s, v) = call(&app, "POST", "/api/internal/community", &[], "{}").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["slug"].as_str().unwrap().len(), 36);
    let (s, v) = call(&app, "PUT", "/api/internal/community/c1", &[], r#"{"slug":"c1","readable_name":"One","plugins":[{"name":"randomness","config":{"default_low":1,"default_high":5}}]}"#).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["plugins"][0]["name"], "randomness");
    assert_eq!(v["plugins"][0]["auth_type"], "none");
    let (s, _) = call(&app, "DELETE", "/api/internal/community/c1", &[], "").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(&app, "GET", "/api/internal/community/c1", &[], "").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::NOT_FOUND, "community_not_found")
    );
}

/// `(method, uri, headers, body, status, code)`.
type BadCase<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn bad_input_gets_json_errors_and_changes_nothing() {
    let app = app(Auth::Open);
    call(
        &app,
        "POST",
        "/api/internal/community",
        &[],
        r#"{"slug":"c"}"#,
    )
    .await;
    let cases: &[BadCase] = &[
        (
            "POST",
            "/api/internal/community",
            &[],
            "{nope",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "POST",
            "/api/internal/community",
            &[],
            r#"{"slug":5}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/api/internal/community",
            &[],
            r#"{"slug":"../x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_slug",
        ),
        (
            "POST",
            "/api/internal/community",
            &[],
            "[1]",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "PUT",
            "/api/internal/community/c",
            &[],
            r#"{"plugins":[{"name":"nope"}]}"#,
            StatusCode::BAD_REQUEST,
            "unknown_plugin",
        ),
        (
            "PUT",
            "/api/internal/community/c",
            &[],
            r#"{"plugins":[{"name":"randomness","config":{"default_low":"x"}}]}"#,
            StatusCode::BAD_REQUEST,
            "schema_violation",
        ),
        (
            "POST",
            "/api/internal/plugin/randomness",
            &[],
            "{}",
            StatusCode::BAD_REQUEST,
            "missing_header",
        ),
        (
            "POST",
            "/api/internal/action/randomness.random-int",
            &[("x-metagov-community", "c")],
            "{}",
            StatusCode::BAD_REQUEST,
            "plugin_not_enabled",
        ),
        (
            "POST",
            "/api/internal/action/randomness.nope",
            &[("x-metagov-community", "c")],
            "{}",
            StatusCode::NOT_FOUND,
            "unknown_action",
        ),
        (
            "POST",
            "/api/internal/action/randomness.random-int",
            &[("x-metagov-community", "zz")],
            "{}",
            StatusCode::BAD_REQUEST,
            "community_not_found",
        ),
        (
            "GET",
            "/api/internal/process/randomness.delayed-stochastic-vote/abc",
            &[],
            "",
            StatusCode::NOT_FOUND,
            "process_not_found",
        ),
        (
            "GET",
            "/api/internal/plugin/nope/metadata",
            &[],
            "",
            StatusCode::BAD_REQUEST,
            "unknown_plugin",
        ),
        (
            "GET",
            "/nowhere",
            &[],
            "",
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            "PATCH",
            "/api/internal/community/c",
            &[],
            "",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, uri, headers, body, status, expected) in cases {
        let (s, v) = call(&app, method, uri, headers, body).await;
        assert_eq!((s, code(&v)), (*status, *expected), "{method} {uri} {body}");
        assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    let (_, v) = call(&app, "GET", "/api/internal/community/c", &[], "").await;
    assert_eq!(v, json!({"slug":"c","readable_name":"","plugins":[]}));
    let big = format!("{{\"slug\":\"{}\"}}", "a".repeat(1024 * 1024 + 10));
    let (s, v) = call(&app, "POST", "/api/internal/community", &[], &big).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
}

#[tokio::test]
async fn a_token_guards_internal_routes_only() {
    let app = app(Auth::Token("s3cret".into()));
    let (s, v) = call(&app, "GET", "/api/internal/plugin-schemas", &[], "").await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, _) = call(
        &app,
        "GET",
        "/api/internal/plugin-schemas",
        &[("authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = call(
        &app,
        "GET",
        "/api/internal/plugin-schemas",
        &[("authorization", "Bearer s3cret")],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["randomness"].is_object());
    for open in ["/healthz", "/readyz", "/api/openapi.json"] {
        let (s, _) = call(&app, "GET", open, &[], "").await;
        assert_eq!(s, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_metagov_route() {
    let app = app(Auth::Open);
    let (s, v) = call(&app, "GET", "/api/openapi.json", &[], "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/internal/community",
        "/api/internal/community/{slug}",
        "/api/internal/plugin/{name}",
        "/api/internal/plugin/{name}/{id}",
        "/api/internal/plugin/{name}/metadata",
        "/api/internal/plugin-schemas",
        "/api/internal/action/{name}",
        "/api/action/{name}",
        "/api/internal/process/{name}",
        "/api/internal/process/{name}/{id}",
        "/api/hooks/{community}/{plugin}",
    ] {
        assert!(v["paths"][path].is_object(), "{path} missing");
    }
}

#[tokio::test]
async fn metrics_label_unknown_methods_as_other() {
    let app = app(Auth::Open);
    for m in ["FOO", "BAR", "BAZ"] {
        let (s, _) = call(&app, m, "/healthz", &[], "").await;
        assert!(s.is_client_error(), "{m} answered {s}");
    }
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(!text.contains("FOO") && !text.contains("BAZ"));
}
