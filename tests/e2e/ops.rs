//! Operations: health, readiness, metrics, the OpenAPI document and docs page, configuration by
//! environment, log format, and a clean exit on SIGTERM.

use serde_json::{json, Value};

use crate::harness::{eventually, http_client, Node, NodeConfig, Sink, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served() {
    let node = Node::start("ops-metrics", NodeConfig::dev()).await;
    node.get("/healthz").await.expect_status(200);
    node.get("/readyz").await.expect_status(200);
    node.community_with_randomness("bench").await;
    node.start_vote("bench", 10.0, None).await;

    let metrics = node.get("/metrics").await.expect_status(200);
    let text = metrics.text();
    for name in [
        "agora_http_requests_total",
        "agora_active_actors",
        "agora_reminders_pending",
        "agora_outbox_depth",
        "agora_commit_apply_seconds_total",
        "agora_commit_flush_seconds_total",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    // The community and the vote were committed: the committer spent time on both halves.
    for name in [
        "agora_commit_apply_seconds_total",
        "agora_commit_flush_seconds_total",
    ] {
        let spent = crate::harness::metric_value(&text, name)
            .unwrap_or_else(|| panic!("no sample of {name}:\n{text}"));
        assert!(spent > 0.0, "{name} = {spent}");
    }
    let requests = crate::harness::metric_value(&text, "agora_http_requests_total")
        .unwrap_or_else(|| panic!("no sample of agora_http_requests_total:\n{text}"));
    assert!(
        requests >= 4.0,
        "at least our requests were counted: {requests}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_background_tasks_and_their_status() {
    let node = Node::start("ops-readyz-tasks", NodeConfig::dev()).await;
    let ready = node.get("/readyz").await.expect_status(200).json();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        ready["tasks"],
        json!({"refreshes": "running", "global-sync": "running", "token-sync": "running", "health": "running"}),
        "{ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_docs_page_are_served() {
    let node = Node::start("ops-openapi", NodeConfig::dev()).await;

    let doc = node
        .get("/api/openapi.json")
        .await
        .expect_status(200)
        .json();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi version {version:?}");
    assert!(
        doc["paths"].get("/api/internal/community").is_some(),
        "paths lack /api/internal/community: {}",
        doc["paths"]
    );

    let docs = node.get("/api/docs").await.expect_status(200);
    let content_type = docs.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type:?}");
    assert!(
        docs.text().to_ascii_lowercase().contains("<html"),
        "not an HTML page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_writes_and_exits_zero() {
    let mut node = Node::start("ops-sigterm", NodeConfig::dev()).await;
    node.community_with_randomness("before").await;

    // Four writers create communities back to back, so writes are in flight when the signal
    // arrives. Each write either completes (and must then be durable) or is refused.
    let (acks, mut first_ack) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let client = http_client();
        let url = node.url("/api/internal/community");
        let acks = acks.clone();
        writers.spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..500 {
                let slug = format!("w{writer}-{i}");
                let answer = client
                    .post(&url)
                    .json(&json!({"slug": slug, "readable_name": "in flight"}))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = acks.send(slug.clone());
                        acknowledged.push(slug);
                    }
                    _ => break,
                }
            }
            acknowledged
        });
    }
    drop(acks);
    tokio::time::timeout(WAIT, first_ack.recv())
        .await
        .expect("a first write lands")
        .expect("a writer acknowledged a write");

    let status = node.term().await;
    assert!(status.success(), "SIGTERM must exit 0, got {status}");

    let mut acknowledged = Vec::new();
    while let Some(result) = writers.join_next().await {
        acknowledged.extend(result.expect("writer task"));
    }

    node.restart().await;
    node.community("before").await;
    for slug in &acknowledged {
        node.community(slug).await;
    }
    eprintln!(
        "{} writes were acknowledged around the drain, all durable",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_configured_only_by_environment_serves() {
    let driver = Sink::start().await;
    let node = Node::start(
        "ops-env",
        NodeConfig::dev()
            .driver(driver.url("/events"))
            .configured_by_env(),
    )
    .await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, None).await;
    let closed = node.close(&location).await;
    let id = closed["id"].clone();
    driver
        .wait_for(WAIT, "the event at AGORA_DRIVER_URL", |reqs| {
            reqs.iter().any(|r| r.is_process_event(&id, "completed"))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_writes_json_lines() {
    let node = Node::start(
        "ops-json-logs",
        NodeConfig::dev()
            .arg("--log-format")
            .arg("json")
            .arg("--idle-timeout")
            .arg("30"),
    )
    .await;
    node.create_community("bench").await;
    let json_lines = eventually(WAIT, "a JSON log line", || {
        let log = node.log();
        async move {
            let count = log
                .lines()
                .filter(|line| serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()))
                .count();
            if count > 0 {
                Ok(count)
            } else {
                Err(format!("log so far:\n{log}"))
            }
        }
    })
    .await;
    assert!(json_lines > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_configured_by_a_toml_file_serves() {
    let driver = Sink::start().await;
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config_path = config_dir.path().join("agora.toml");
    std::fs::write(
        &config_path,
        format!(
            "dev = true\ndriver_url = \"{}\"\nlog_format = \"json\"\n",
            driver.url("/from-file")
        ),
    )
    .expect("write the config file");
    let node = Node::start(
        "ops-config-file",
        NodeConfig::default()
            .arg("--config")
            .arg(config_path.to_str().expect("utf-8 path")),
    )
    .await;

    // `dev = true` from the file: internal routes need no token.
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, None).await;
    let id = node.close(&location).await["id"].clone();
    let received = driver
        .wait_for(WAIT, "the event at the file's driver_url", |reqs| {
            reqs.iter().any(|r| r.is_process_event(&id, "completed"))
        })
        .await;
    assert!(received.iter().all(|r| r.path == "/from-file"));
}

/// A node turns transparent huge pages off for itself: first-touch faults of 2 MiB pages
/// doubled the write phases' p99 (BENCHMARKS.md, issue 14). Kernels that do not report the
/// flag in `/proc/<pid>/status` (before 6.x) have nothing to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_without_transparent_huge_pages() {
    let node = Node::start("ops-thp", NodeConfig::dev()).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid()))
        .expect("the node's /proc status");
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
}
