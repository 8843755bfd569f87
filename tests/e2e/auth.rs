//! Auth: internal routes need the driver's bearer token, public routes stay open, and the node
//! refuses to start in the configurations that would expose it without auth.

use std::time::Duration;

use serde_json::json;

use crate::harness::{free_port, run_to_exit, Node, NodeConfig, COMMUNITY_HEADER};

const TOKEN: &str = "e2e-driver-token-4f1c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_routes_need_the_bearer_token() {
    let node = Node::start("auth-token", NodeConfig::with_token(TOKEN)).await;
    let create = json!({"slug": "ghost", "readable_name": "Ghost"});

    // No credentials, a wrong token, a wrong scheme: 401, and nothing is created.
    let anonymous = node
        .send(
            node.anonymous(reqwest::Method::POST, "/api/internal/community")
                .json(&create),
        )
        .await;
    anonymous.expect_error(401, "unauthorized");
    for authorization in [
        "Bearer wrong-token".to_string(),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_string(),
        "Bearer".to_string(),
    ] {
        node.send(
            node.anonymous(reqwest::Method::POST, "/api/internal/community")
                .header("Authorization", authorization.as_str())
                .json(&create),
        )
        .await
        .expect_error(401, "unauthorized");
    }
    node.get("/api/internal/community/ghost")
        .await
        .expect_error(404, "community_not_found");

    // The right token works.
    node.create_community("bench").await;
    node.enable_randomness("bench").await;

    // Every internal route is guarded, whether or not the thing exists.
    let vote = format!("/api/internal/process/{}", crate::harness::VOTE);
    for (method, path) in [
        (reqwest::Method::GET, "/api/internal/community/bench"),
        (reqwest::Method::GET, "/api/internal/community/ghost"),
        (reqwest::Method::PUT, "/api/internal/community/bench"),
        (reqwest::Method::DELETE, "/api/internal/community/bench"),
        (reqwest::Method::POST, "/api/internal/plugin/randomness"),
        (reqwest::Method::DELETE, "/api/internal/plugin/randomness/1"),
        (
            reqwest::Method::GET,
            "/api/internal/plugin/randomness/metadata",
        ),
        (reqwest::Method::GET, "/api/internal/plugin-schemas"),
        (
            reqwest::Method::POST,
            "/api/internal/action/randomness.random-int",
        ),
        (reqwest::Method::POST, vote.as_str()),
        (
            reqwest::Method::GET,
            "/api/internal/process/randomness.delayed-stochastic-vote/1",
        ),
    ] {
        let resp = node
            .send(
                node.anonymous(method, path)
                    .header(COMMUNITY_HEADER, "bench")
                    .json(&json!({"parameters": {"low": 0, "high": 10}})),
            )
            .await;
        resp.expect_error(401, "unauthorized");
    }

    // The refused calls changed nothing.
    let bench = node.community("bench").await;
    assert_eq!(
        bench["plugins"].as_array().map(Vec::len),
        Some(1),
        "{bench}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_routes_are_open_without_a_token() {
    let node = Node::start("auth-public", NodeConfig::with_token(TOKEN)).await;
    node.community_with_randomness("bench").await;

    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/api/docs",
    ] {
        node.send(node.anonymous(reqwest::Method::GET, path))
            .await
            .expect_status(200);
    }
    node.send(
        node.anonymous(reqwest::Method::POST, "/api/hooks/bench/randomness")
            .json(&json!({"event": "ping"})),
    )
    .await
    .expect_status(200);
    // `random-int` is not public (as in Metagov): the public route answers 404, not 401.
    node.send(
        node.anonymous(reqwest::Method::POST, "/api/action/randomness.random-int")
            .header(COMMUNITY_HEADER, "bench")
            .json(&json!({"parameters": {"low": 0, "high": 10}})),
    )
    .await
    .expect_error(404, "unknown_action");

    // Public routes do not turn the non-public action into a reachable one.
    node.send(
        node.anonymous(
            reqwest::Method::POST,
            "/api/action/randomness.set-lucky-number",
        )
        .header(COMMUNITY_HEADER, "bench")
        .json(&json!({"parameters": {"lucky_number": 7}})),
    )
    .await
    .expect_status(404)
    .expect_client_error();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_token_can_come_from_a_file() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token file");
    let node = Node::start(
        "auth-token-file",
        NodeConfig::default().env(
            "AGORA_DRIVER_TOKEN_FILE",
            token_file.to_str().expect("utf-8 path"),
        ),
    )
    .await;

    node.send(node.anonymous(reqwest::Method::GET, "/api/internal/plugin-schemas"))
        .await
        .expect_error(401, "unauthorized");
    node.send(
        node.anonymous(reqwest::Method::GET, "/api/internal/plugin-schemas")
            .bearer_auth(TOKEN),
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_on_a_non_loopback_address_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let exit = run_to_exit(
        &[
            "serve".to_string(),
            "--dev".to_string(),
            "--listen".to_string(),
            format!("0.0.0.0:{port}"),
            "--data-dir".to_string(),
            data.path().join("data").display().to_string(),
        ],
        &[],
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !exit.status.success(),
        "--dev on 0.0.0.0 must be refused, exited {}",
        exit.status
    );
    assert!(
        !exit.stderr.trim().is_empty(),
        "the refusal must say why on stderr"
    );
    assert!(exit.elapsed < Duration::from_secs(10));

    // The same through the environment.
    let exit = run_to_exit(
        &["serve".to_string()],
        &[
            ("AGORA_DEV", "true"),
            ("AGORA_LISTEN", &format!("0.0.0.0:{port}")),
            (
                "AGORA_DATA_DIR",
                &data.path().join("env").display().to_string(),
            ),
        ],
        Duration::from_secs(10),
    )
    .await;
    assert!(!exit.status.success(), "exited {}", exit.status);
    assert!(!exit.stderr.trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_without_token_or_dev_refuses_to_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let exit = run_to_exit(
        &[
            "serve".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{}", free_port()),
            "--data-dir".to_string(),
            data.path().join("data").display().to_string(),
        ],
        &[],
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !exit.status.success(),
        "a node without auth must not start, exited {}",
        exit.status
    );
    assert!(
        !exit.stderr.trim().is_empty(),
        "the refusal must say why on stderr"
    );
}
