//! Slow and stalled clients (issue 13 §1): half-sent heads and bodies, idle keep-alive
//! connections and trickled bodies are closed within the node's timeouts; connections over
//! `--max-connections` are answered 503; and SIGTERM with stalled clients still exits 0 within
//! `--shutdown-grace`. Real sockets against a real node; the timeouts are shortened by flags so
//! the tests take seconds.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Node, NodeConfig};

/// Reads until the server closes the connection (or `limit` passes: then panics), and answers
/// what it sent and how long the close took.
async fn read_until_closed(
    stream: &mut TcpStream,
    limit: Duration,
    what: &str,
) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => panic!(
                "{what}: the connection is still open after {limit:?} (got {:?})",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, start.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn connect(node: &Node) -> TcpStream {
    TcpStream::connect(("127.0.0.1", node.port()))
        .await
        .expect("connect to the node")
}

/// The status and JSON body of the one answer in `raw` (an answer with a `Content-Length`).
fn parse_answer(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer in {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body:?}: {e}"));
    (status, body)
}

#[tokio::test]
async fn stalled_heads_bodies_and_idle_connections_are_closed_within_the_timeouts() {
    let node = Node::start(
        "slow-timeouts",
        NodeConfig::dev()
            .arg("--header-timeout-ms")
            .arg("600")
            .arg("--body-timeout-ms")
            .arg("600"),
    )
    .await;
    let limit = Duration::from_secs(5);

    // The request: a head that never ends.
    let mut half_head = connect(&node).await;
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A connection that never sends a byte.
    let mut silent = connect(&node).await;
    // A keep-alive connection left idle after one answer.
    let mut idle = connect(&node).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The other request: `Content-Length: 1000` with 8 bytes sent.
    let mut half_body = connect(&node).await;
    half_body
        .write_all(
            b"POST /api/internal/community HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"slug\":",
        )
        .await
        .unwrap();

    let (_, took) = read_until_closed(&mut half_head, limit, "half-sent head").await;
    assert!(
        took < Duration::from_secs(3),
        "half head closed after {took:?}"
    );
    let (got, took) = read_until_closed(&mut silent, limit, "silent connection").await;
    assert!(
        took < Duration::from_secs(3),
        "silent closed after {took:?}"
    );
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{got:?}"
    );
    let (got, took) = read_until_closed(&mut idle, limit, "idle keep-alive").await;
    assert!(took < Duration::from_secs(3), "idle closed after {took:?}");
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "the first request was answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    let (got, took) = read_until_closed(&mut half_body, limit, "half-sent body").await;
    assert!(
        took < Duration::from_secs(3),
        "half body closed after {took:?}"
    );
    let (status, body) = parse_answer(&got);
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");

    // A body trickled in a byte at a time never resets the deadline: it is whole-body, not
    // per-read.
    let mut trickle = connect(&node).await;
    trickle
        .write_all(
            b"POST /api/internal/community HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    let start = Instant::now();
    let (mut read_half, mut write_half) = trickle.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write_half.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, read_half.read(&mut chunk)).await {
            Err(_) => panic!("trickled body: still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
    writer.abort();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "a trickled body held the connection for {took:?}"
    );
    let (status, body) = parse_answer(&got);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (408, Some("request_timeout"))
    );

    // The node still serves.
    assert_eq!(node.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_503() {
    let node = Node::start(
        "slow-cap",
        NodeConfig::dev()
            .arg("--max-connections")
            .arg("3")
            .arg("--header-timeout-ms")
            .arg("20000"),
    )
    .await;
    // The readiness probe's connection may still be open; fill the cap with idle ones.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&node).await);
    }
    let mut over = connect(&node).await;
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_until_closed(&mut over, Duration::from_secs(5), "over the cap").await;
    let (status, body) = parse_answer(&got);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    assert!(
        String::from_utf8_lossy(&got)
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // Closing the held connections frees their slots.
    drop(held);
    crate::harness::eventually(Duration::from_secs(10), "a slot is free again", || async {
        let mut c = connect(&node).await;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let (got, _) = read_until_closed(&mut c, Duration::from_secs(5), "after release").await;
        if got.starts_with(b"HTTP/1.1 200") {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&got).into_owned())
        }
    })
    .await;
}

#[tokio::test]
async fn sigterm_with_50_stalled_clients_exits_0_within_the_grace() {
    // Long header and body timeouts: only the shutdown grace can end these connections.
    let mut node = Node::start(
        "slow-term",
        NodeConfig::dev()
            .arg("--header-timeout-ms")
            .arg("60000")
            .arg("--body-timeout-ms")
            .arg("60000")
            .arg("--shutdown-grace")
            .arg("1"),
    )
    .await;
    let mut stalled = Vec::new();
    for i in 0..50 {
        let mut s = connect(&node).await;
        let bytes: &[u8] = if i % 2 == 0 {
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        } else {
            b"POST /api/internal/community HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"slug\":"
        };
        s.write_all(bytes).await.unwrap();
        stalled.push(s);
    }
    // Let the node read what was sent, so the body requests are inside their handlers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let status = node.term().await;
    let took = start.elapsed();
    assert!(status.success(), "exit status {status}");
    // One second of grace, then the rest of the shutdown (tasks, flush) is quick.
    assert!(
        took < Duration::from_secs(6),
        "SIGTERM took {took:?} with stalled clients"
    );
    assert!(
        took >= Duration::from_millis(900),
        "the node did not wait for its grace ({took:?})"
    );
    let log = node.log();
    assert!(
        log.contains("shutdown grace over"),
        "the log does not say the grace ran out"
    );
    // Each stalled client is closed, none was answered 2xx.
    for (i, s) in stalled.iter_mut().enumerate() {
        let (got, _) = read_until_closed(s, Duration::from_secs(2), "stalled at shutdown").await;
        assert!(
            !String::from_utf8_lossy(&got).starts_with("HTTP/1.1 2"),
            "stalled client {i} was answered {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}
