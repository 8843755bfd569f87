//! Durability: a 2xx promises the write is on disk, so a SIGKILL right after the answers loses
//! none of them; and a deadline that passes while the node is down is honoured after restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

use crate::harness::{
    eventually, http_client, randomness_config, Node, NodeConfig, Sink, COMMUNITY_HEADER, WAIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    const COMMUNITIES: usize = 200;
    let mut node = Node::start("durability-writes", NodeConfig::dev()).await;

    // 200 drivers' worth of writes at concurrency 16: create, enable, set a lucky number.
    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..COMMUNITIES {
        let limit = limit.clone();
        let client = http_client();
        let base = node.url("");
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let slug = format!("durable-{i}");
            let created = client
                .post(format!("{base}/api/internal/community"))
                .json(&json!({"slug": slug, "readable_name": format!("Durable {i}")}))
                .send()
                .await
                .expect("create");
            assert_eq!(created.status().as_u16(), 201, "create {slug}");
            let enabled = client
                .post(format!("{base}/api/internal/plugin/randomness"))
                .header(COMMUNITY_HEADER, &slug)
                .json(&randomness_config())
                .send()
                .await
                .expect("enable");
            assert_eq!(enabled.status().as_u16(), 201, "enable on {slug}");
            let lucky = client
                .post(format!(
                    "{base}/api/internal/action/randomness.set-lucky-number"
                ))
                .header(COMMUNITY_HEADER, &slug)
                .json(&json!({"parameters": {"lucky_number": i}}))
                .send()
                .await
                .expect("set lucky number");
            assert_eq!(lucky.status().as_u16(), 200, "lucky number on {slug}");
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("a write task failed");
    }

    // Right after the last acknowledgement: no drain, no flush, no goodbye.
    node.kill9().await;
    node.restart().await;

    for i in 0..COMMUNITIES {
        let slug = format!("durable-{i}");
        let community = node.community(&slug).await;
        assert_eq!(community["readable_name"], json!(format!("Durable {i}")));
        let plugins = community["plugins"].as_array().expect("plugins list");
        assert_eq!(plugins.len(), 1, "plugin lost on {slug}: {community}");
        assert_eq!(plugins[0]["config"], randomness_config(), "{community}");
    }
    // The plugin state came back usable.
    for i in [0, COMMUNITIES / 2, COMMUNITIES - 1] {
        node.post_in(
            &format!("durable-{i}"),
            "/api/internal/action/randomness.set-lucky-number",
            &json!({"parameters": {"lucky_number": 1}}),
        )
        .await
        .expect_status(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_whose_deadline_passes_while_the_node_is_down_completes_after_restart() {
    let sink = Sink::start().await;
    let mut node = Node::start("durability-deadline", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;

    // 0.05 minutes = 3 s; the node dies right after acknowledging the start.
    let started = Instant::now();
    let location = node.start_vote("bench", 0.05, Some(&sink.url("/cb"))).await;
    node.kill9().await;

    // Stay down past the deadline. Nothing can be polled while the node is down: the point is
    // that wall-clock time passes.
    let past_deadline = Duration::from_secs(4);
    if let Some(rest) = past_deadline.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    node.restart().await;

    let completed = eventually(WAIT, "the overdue vote to complete", || {
        let node = &node;
        let location = location.clone();
        async move {
            let process = node.get(&location).await.expect_status(200).json();
            if process["status"] == "completed" {
                Ok(process)
            } else {
                Err(process.to_string())
            }
        }
    })
    .await;
    let winner = &completed["outcome"]["winner"];
    assert!(winner == "yes" || winner == "no", "{completed}");

    let id = completed["id"].clone();
    let callback = sink
        .wait_for_one(WAIT, "the overdue vote's callback", |r| {
            r.is_callback(&id, "completed")
        })
        .await;
    assert_eq!(callback.json.as_ref(), Some(&completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_vote_survives_sigkill_and_can_be_closed_after_restart() {
    let sink = Sink::start().await;
    let mut node = Node::start("durability-pending", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, Some(&sink.url("/cb"))).await;
    let before = node.get(&location).await.expect_status(200).json();

    node.kill9().await;
    node.restart().await;

    let after = node.get(&location).await.expect_status(200).json();
    assert_eq!(after, before, "the pending vote changed across the crash");
    let closed = node.close(&location).await;
    assert_eq!(closed["status"], json!("completed"));
    let id = closed["id"].clone();
    sink.wait_for(WAIT, "the callback after restart", |reqs| {
        reqs.iter().any(|r| r.is_callback(&id, "completed"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_before_a_sigkill_under_load_survive() {
    let mut node = Node::start("durability-midload", NodeConfig::dev()).await;

    // Eight writers create communities back to back; the node is killed while they run.
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let client = http_client();
        let url = node.url("/api/internal/community");
        let acks = acks.clone();
        writers.spawn(async move {
            for i in 0..10_000 {
                let slug = format!("load-{writer}-{i}");
                let answer = client
                    .post(&url)
                    .json(&json!({"slug": slug, "readable_name": "under load"}))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = acks.send(slug);
                    }
                    _ => break,
                }
            }
        });
    }
    drop(acks);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 100 {
        let slug = tokio::time::timeout(WAIT, acked.recv())
            .await
            .expect("writes are acknowledged")
            .expect("the writers are running");
        acknowledged.push(slug);
    }
    node.kill9().await;
    while writers.join_next().await.is_some() {}
    while let Ok(slug) = acked.try_recv() {
        acknowledged.push(slug);
    }

    node.restart().await;
    for slug in &acknowledged {
        node.community(slug).await;
    }
    eprintln!(
        "{} writes acknowledged before the SIGKILL, all present",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_not_reused_after_a_crash() {
    let mut node = Node::start("durability-ids", NodeConfig::dev()).await;
    let first_instance = node.community_with_randomness("bench").await;
    let first = node.start_vote("bench", 10.0, None).await;
    let first_process = node.get(&first).await.expect_status(200).json();

    node.kill9().await;
    node.restart().await;

    let second = node.start_vote("bench", 10.0, None).await;
    assert_ne!(second, first, "a process id was handed out twice");
    assert_eq!(node.get(&first).await.json(), first_process);
    let second_process = node.get(&second).await.expect_status(200).json();
    assert_ne!(second_process["id"], first_process["id"]);

    node.create_community("other").await;
    let other_instance = node.enable_randomness("other").await;
    assert_ne!(
        other_instance["id"], first_instance["id"],
        "a plugin instance id was handed out twice"
    );
    // Deleting the new instance leaves the old one alone.
    node.delete(&format!(
        "/api/internal/plugin/randomness/{}",
        other_instance["id"]
    ))
    .await
    .expect_status(204);
    assert_eq!(
        node.community("bench").await["plugins"][0]["id"],
        first_instance["id"]
    );
}
