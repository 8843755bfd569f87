//! A driver stand-in for benchmarks: answers 200 to every POST and prints how many it got
//! every 10 seconds, so deliveries cost the benchmark as little as a real, fast driver would.
//!
//! `cargo run --release --example sink -- 127.0.0.1:9999`
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9999".into());
    assert!(addr.starts_with("127.0.0.1:"), "local only");
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::Relaxed);
            ""
        }
    });
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            println!("sink: {} requests", count.load(Ordering::Relaxed));
        }
    });
    axum::serve(listener, app).await.expect("serve");
}
