//! Requests the HTTP layer (hyper) refuses before any route runs (issue 13 §5). hyper answers
//! these itself with a bare status, no body and no content type, and offers no hook to shape
//! that answer; the README's error section lists exactly these, and this test pins the list,
//! so a change of hyper's behaviour shows up here. Raw sockets, a real node.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Node, NodeConfig};

/// Sends `bytes` on a fresh connection and reads until the server closes it.
async fn exchange(node: &Node, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", node.port()))
        .await
        .expect("connect");
    // The server may answer and close before reading everything (a huge head): ignore a
    // failed write, the answer is what matters.
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Err(_) => panic!(
                "no close within 5 s; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The bare answer: `status`, no body, no content type.
#[track_caller]
fn assert_bare(what: &str, answer: &str, status: u16) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{what}: no complete answer in {answer:?}"));
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "{what}: expected {status}, got {head:?}"
    );
    assert!(body.is_empty(), "{what}: a body {body:?}");
    let head = head.to_ascii_lowercase();
    assert!(
        !head.contains("content-type"),
        "{what}: a content type in {head:?}"
    );
}

#[tokio::test]
async fn framing_errors_get_the_documented_bare_statuses() {
    let node = Node::start("framing", NodeConfig::dev()).await;

    // 431: a 1 MiB header, and more than 100 headers.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    assert_bare("1 MiB header", &exchange(&node, big.as_bytes()).await, 431);
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_bare("101 headers", &exchange(&node, many.as_bytes()).await, 431);

    // 414: a 64 KiB path.
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64 * 1024));
    assert_bare("64 KiB path", &exchange(&node, long.as_bytes()).await, 414);

    // 400: malformed framing.
    let cases: [(&str, &[u8]); 7] = [
        (
            "NUL in a header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        ),
        (
            "bare CR in a header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        ),
        (
            "two Content-Length values",
            b"POST /api/internal/community HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        ),
        (
            "Content-Length: -1",
            b"POST /api/internal/community HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        ),
        (
            "Transfer-Encoding: xchunked",
            b"POST /api/internal/community HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        ),
        ("HTTP/0.9", b"GET /healthz\r\n\r\n"),
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"),
    ];
    for (what, bytes) in cases {
        assert_bare(what, &exchange(&node, bytes).await, 400);
    }

    // The node is unharmed, and what reaches a route gets the JSON error body.
    assert_eq!(node.get("/healthz").await.status, 200);
}
