//! The guarded path from plugins to platforms, proven with the `testkit` plugin's `fetch`
//! action against a scripted server: retries on 5xx and 429 honouring `Retry-After`, no blind
//! retry of a POST that may have been applied, the circuit breaker opening, refusing without
//! calling, and closing again after its cooldown; and health as the API reports it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::harness::{eventually, free_port, Node, NodeConfig};

/// Statuses to answer, each with an optional `Retry-After`.
type Script = VecDeque<(u16, Option<&'static str>)>;

/// A server answering a script of (status, Retry-After) one request at a time, then 200.
#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<Script>>,
    /// (method, when) of each request.
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Scripted {
    async fn start() -> (Scripted, String) {
        let s = Scripted::default();
        let port = free_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the scripted server");
        let app = axum::Router::new().fallback(answer).with_state(s.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("scripted server");
        });
        (s, format!("http://127.0.0.1:{port}/thing"))
    }

    fn then(&self, status: u16, retry_after: Option<&'static str>, times: usize) {
        let mut q = self.script.lock().unwrap();
        for _ in 0..times {
            q.push_back((status, retry_after));
        }
    }

    fn seen(&self) -> Vec<(String, Instant)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    axum::extract::State(s): axum::extract::State<Scripted>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    if uri.path() == "/probe" {
        // Health probes see the platform down while failures are scripted, without using
        // the script up.
        let down = s
            .script
            .lock()
            .unwrap()
            .front()
            .is_some_and(|(st, _)| *st >= 500);
        let status = if down {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        return (status, "probe").into_response();
    }
    s.seen
        .lock()
        .unwrap()
        .push((method.to_string(), Instant::now()));
    let next = s.script.lock().unwrap().pop_front();
    match next {
        Some((status, retry_after)) => {
            let mut resp = (
                StatusCode::from_u16(status).unwrap(),
                format!("scripted {status}"),
            )
                .into_response();
            if let Some(ra) = retry_after {
                resp.headers_mut().insert(
                    HeaderName::from_static("retry-after"),
                    HeaderValue::from_static(ra),
                );
            }
            resp
        }
        None => (StatusCode::OK, "fine").into_response(),
    }
}

fn node_config() -> NodeConfig {
    NodeConfig::dev()
        .env("AGORA_PLUGINS", "randomness,vote,testkit")
        .arg("--breaker-threshold")
        .arg("3")
        .arg("--breaker-cooldown-ms")
        .arg("800")
        .arg("--health-interval-ms")
        .arg("300")
}

async fn node_with_fetch(name: &str, url: &str) -> Node {
    let node = Node::start(name, node_config()).await;
    node.create_community("c").await;
    node.post(
        "/api/v1/communities/c/plugins/testkit/enable",
        &json!({"fetch_url": url, "probe_url": url.replace("/thing", "/probe")}),
    )
    .await
    .expect_status(200);
    node
}

async fn fetch(node: &Node, method: &str) -> crate::harness::Resp {
    node.post_in(
        "c",
        "/api/internal/action/testkit.fetch",
        &json!({"parameters": {"method": method}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_waited_out_and_retried() {
    let (server, url) = Scripted::start().await;
    let node = node_with_fetch("calls-429", &url).await;
    server.then(429, Some("1"), 1);
    let started = Instant::now();
    let resp = fetch(&node, "POST").await.expect_status(200).json();
    assert_eq!(resp["status"], 200, "{resp}");
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "one refusal, one retry");
    let gap = seen[1].1 - seen[0].1;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 was honoured ({gap:?})"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_is_retried_on_5xx_but_a_post_that_got_a_500_is_not() {
    let (server, url) = Scripted::start().await;
    let node = node_with_fetch("calls-5xx", &url).await;

    server.then(502, None, 2);
    let ok = fetch(&node, "GET").await.expect_status(200).json();
    assert_eq!(ok["status"], 200);
    assert_eq!(server.seen().len(), 3, "two failures, then success");

    // A 500 to a POST may have created something: answered, not repeated.
    server.then(500, None, 1);
    let e = fetch(&node, "POST").await;
    let err = e.expect_error(503, "platform_unavailable");
    assert!(err["message"].as_str().unwrap().contains("500"), "{err}");
    assert_eq!(server.seen().len(), 4, "the POST went out once");

    // The refusal is in the audit log.
    let log = node
        .get("/api/v1/plugin-audit-log?plugin=testkit&community=c")
        .await
        .expect_status(200)
        .json();
    let entries = log["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("platform_call"))
            && e["outcome"] == "error"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_refuses_without_calling_and_closes_after_its_cooldown() {
    let (server, url) = Scripted::start().await;
    let node = node_with_fetch("calls-breaker", &url).await;
    let health = "/api/v1/communities/c/plugins/testkit/health";
    // Healthy first: the probe reached the server.
    let h = eventually(Duration::from_secs(5), "a first health report", || async {
        let h = node.get(health).await.expect_status(200).json();
        if h["status"] == "ok" {
            Ok(h)
        } else {
            Err(h.to_string())
        }
    })
    .await;
    assert_eq!(h["probe"]["result"], "passed", "{h}");

    // Failed calls (and failed probes) open the breaker: the first calls fail on their own,
    // then the breaker refuses.
    server.then(503, None, 1000);
    let first = fetch(&node, "GET").await;
    assert_eq!(first.status, 503, "{}", first.describe());
    eventually(Duration::from_secs(5), "the breaker to open", || async {
        let r = fetch(&node, "GET").await;
        let code = r.error_object()["code"].clone();
        (code == "circuit_open").then_some(()).ok_or(r.describe())
    })
    .await;
    let before = server.seen().len();
    let refused = fetch(&node, "GET").await;
    refused.expect_error(503, "circuit_open");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(server.seen().len(), before, "an open breaker makes no call");

    let h = node.get(health).await.expect_status(200).json();
    assert_eq!(h["status"], "failing", "{h}");
    assert_eq!(h["breaker"]["state"], "open", "{h}");
    let all = node
        .get("/api/v1/plugins/testkit/health")
        .await
        .expect_status(200)
        .json();
    assert_eq!(all["status"], "failing", "{all}");
    assert_eq!(all["counts"]["failing"], 1, "{all}");

    // The platform recovers; after the cooldown a trial call closes the breaker again, and
    // the background probe reports the instance healthy.
    server.script.lock().unwrap().clear();
    eventually(Duration::from_secs(10), "health back to ok", || async {
        let h = node.get(health).await.expect_status(200).json();
        (h["status"] == "ok" && h["breaker"]["state"] == "closed")
            .then_some(())
            .ok_or(h.to_string())
    })
    .await;
    fetch(&node, "GET").await.expect_status(200);

    // Both transitions were audited.
    let log = node
        .get("/api/v1/plugin-audit-log?plugin=testkit&action=health")
        .await
        .expect_status(200)
        .json();
    let messages: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("-> failing")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("failing -> ok")),
        "{messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_of_plugins_without_a_platform_and_its_refusals() {
    let node = Node::start("calls-health", node_config()).await;
    node.community_with_randomness("c").await;
    let h = node
        .get("/api/v1/communities/c/plugins/randomness/health")
        .await
        .expect_status(200)
        .json();
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["probe"]["result"], "not_applicable", "{h}");
    assert_eq!(h["breaker"]["state"], "closed", "{h}");
    let all: Value = node
        .get("/api/v1/plugins/randomness/health")
        .await
        .expect_status(200)
        .json();
    assert_eq!(all["instances"].as_array().unwrap().len(), 1, "{all}");

    node.get("/api/v1/plugins/nope/health")
        .await
        .expect_error(404, "unknown_plugin");
    node.get("/api/v1/communities/c/plugins/nope/health")
        .await
        .expect_error(404, "unknown_plugin");
    node.get("/api/v1/communities/c/plugins/testkit/health")
        .await
        .expect_error(400, "plugin_not_enabled");
    node.get("/api/v1/communities/ghost/plugins/randomness/health")
        .await
        .expect_error(404, "community_not_found");

    // Platform-wide webhooks need a plugin that can tell which community they are for.
    node.post("/api/hooks/randomness", &json!({"x": 1}))
        .await
        .expect_error(404, "webhook_not_routable");
    node.post("/api/hooks/nope", &json!({"x": 1}))
        .await
        .expect_error(404, "unknown_plugin");
}
