//! Races a driver can cause: the same write sent many times at once must take effect once
//! (one activation per community and per process, one commit at a time).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::harness::{
    eventually, http_client, randomness_config, Node, NodeConfig, Sink, COMMUNITY_HEADER, WAIT,
};

/// Sends the same request `n` times at once; answers each status and body.
async fn all_at_once<F>(n: usize, build: F) -> Vec<(u16, Value)>
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
{
    let client = http_client();
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = build(&client).build().expect("a well-formed request");
        let client = client.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let response = client.execute(request).await.expect("an answer");
            let status = response.status().as_u16();
            let body = response.bytes().await.expect("a body");
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (status, body)
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("request task"));
    }
    answers
}

fn count(answers: &[(u16, Value)], status: u16) -> usize {
    answers.iter().filter(|(s, _)| *s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_slug_create_it_once() {
    let node = Node::start("concurrency-create", NodeConfig::dev()).await;
    let url = node.url("/api/internal/community");
    let answers = all_at_once(12, |client| {
        client
            .post(&url)
            .json(&json!({"slug": "contested", "readable_name": "Contested"}))
    })
    .await;
    assert_eq!(count(&answers, 201), 1, "{answers:?}");
    assert_eq!(count(&answers, 400), 11, "{answers:?}");
    for (status, body) in &answers {
        if *status == 400 {
            assert_eq!(body["error"]["code"], json!("community_exists"), "{body}");
        }
    }
    assert_eq!(
        node.community("contested").await["readable_name"],
        json!("Contested")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enables_of_one_plugin_make_one_instance() {
    let node = Node::start("concurrency-enable", NodeConfig::dev()).await;
    node.create_community("bench").await;
    let url = node.url("/api/internal/plugin/randomness");
    let answers = all_at_once(12, |client| {
        client
            .post(&url)
            .header(COMMUNITY_HEADER, "bench")
            .json(&randomness_config())
    })
    .await;
    assert_eq!(
        count(&answers, 201),
        1,
        "one enable, then unchanged: {answers:?}"
    );
    assert_eq!(count(&answers, 200), 11, "{answers:?}");
    let ids: Vec<&Value> = answers.iter().map(|(_, body)| &body["id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "several instances: {ids:?}"
    );

    let plugins = node.community("bench").await["plugins"].clone();
    assert_eq!(plugins.as_array().map(Vec::len), Some(1), "{plugins}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_closes_of_one_vote_close_it_once() {
    let sink = Sink::start().await;
    let node = Node::start("concurrency-close", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, Some(&sink.url("/cb"))).await;
    let url = node.url(&location);

    let answers = all_at_once(10, |client| client.delete(&url)).await;
    assert_eq!(count(&answers, 200), 1, "{answers:?}");
    assert_eq!(count(&answers, 400), 9, "{answers:?}");
    let closed = answers
        .iter()
        .find(|(status, _)| *status == 200)
        .map(|(_, body)| body.clone())
        .unwrap();
    for (status, body) in &answers {
        if *status == 400 {
            assert_eq!(body["error"]["code"], json!("process_completed"), "{body}");
        }
    }
    assert_eq!(node.get(&location).await.json(), closed);

    // One completion, so one completion callback (retries of it share its key).
    let id = closed["id"].clone();
    sink.wait_for(WAIT, "the completion callback", |reqs| {
        reqs.iter().any(|r| r.is_callback(&id, "completed"))
    })
    .await;
    eventually(WAIT, "the outbox to drain", || {
        let node = &node;
        async move {
            match node.metric("agora_outbox_depth").await {
                Some(depth) if depth <= 0.0 => Ok(()),
                other => Err(format!("agora_outbox_depth = {other:?}")),
            }
        }
    })
    .await;
    let mut keys: Vec<String> = sink
        .requests()
        .iter()
        .filter(|r| r.is_callback(&id, "completed"))
        .map(|r| {
            assert_eq!(r.json.as_ref(), Some(&closed), "a second outcome was sent");
            r.idempotency_key().unwrap_or_default().to_string()
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 1, "several completion deliveries: {keys:?}");
}
