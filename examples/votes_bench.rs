//! Load generator for the vote benchmarks in BENCHMARKS.md. Runs against a node started
//! separately (so its memory and CPU can be measured on their own):
//!
//! - `hot`: ballots into one open vote from `-c` connections for `-s` seconds;
//! - `spread`: the same, spread round-robin over `--votes` open votes;
//! - `idle`: opens `--votes` votes that nobody touches (for the passivated-memory figure);
//! - `deadlines`: opens `--votes` votes whose `closing_at` are spread over one minute, waits
//!   for them to close, and reports the lateness (`closed_at - closing_at`) percentiles.
//!
//! `cargo run --release --example votes_bench -- hot --base http://127.0.0.1:8080 -c 64 -s 10`
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

struct Args {
    mode: String,
    base: String,
    c: usize,
    secs: u64,
    votes: usize,
    /// `idle`: where to write the opened votes' Locations, one per line.
    out: Option<String>,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: it.next().expect("mode: hot | spread | idle | deadlines"),
        base: "http://127.0.0.1:8080".into(),
        c: 64,
        secs: 10,
        votes: 10_000,
        out: None,
    };
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--base" => a.base = v,
            "-c" => a.c = v.parse().expect("number"),
            "-s" => a.secs = v.parse().expect("number"),
            "--votes" => a.votes = v.parse().expect("number"),
            "--out" => a.out = Some(v),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.base.starts_with("http://127.0.0.1"), "local only");
    a
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC from epoch milliseconds (civil-from-days, no date crate needed).
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

async fn open_votes(
    client: &reqwest::Client,
    a: &Args,
    n: usize,
    closing: impl Fn(usize) -> u64 + Send + Sync + 'static,
) -> Vec<String> {
    let _ = client
        .post(format!("{}/api/internal/community", a.base))
        .body(json!({"slug": "votes", "readable_name": "Votes"}).to_string())
        .send()
        .await;
    let closing = Arc::new(closing);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.c {
        let (client, base, closing, next) = (
            client.clone(),
            a.base.clone(),
            closing.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                let body =
                    json!({"options": ["a", "b", "c", "d"], "closing_at": rfc3339(closing(i))});
                let resp = client
                    .post(format!("{base}/api/internal/process/vote.choice"))
                    .header("X-Metagov-Community", "votes")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("open a vote");
                assert_eq!(resp.status().as_u16(), 202, "open a vote");
                let loc = resp.headers()["location"]
                    .to_str()
                    .expect("location")
                    .to_string();
                out.push((i, loc));
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("opener"));
    }
    all.sort();
    all.into_iter().map(|(_, l)| l).collect()
}

async fn cast(client: reqwest::Client, a: &Args, targets: Arc<Vec<String>>) {
    let deadline = Instant::now() + Duration::from_secs(a.secs);
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..a.c {
        let (client, base, targets, next, ok) = (
            client.clone(),
            a.base.clone(),
            targets.clone(),
            next.clone(),
            ok.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let loc = &targets[i as usize % targets.len()];
                let choice = ["a", "b", "c", "d"][(i % 4) as usize];
                let t0 = Instant::now();
                let resp = client
                    .post(format!("{base}{loc}/ballots"))
                    .body(format!("{{\"voter\":\"v{i}\",\"choice\":[\"{choice}\"]}}"))
                    .send()
                    .await;
                if let Ok(r) = resp {
                    if r.status().as_u16() == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = r.bytes().await;
                }
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("caster"));
    }
    let wall = start.elapsed().as_secs_f64();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let n = ok.load(Ordering::Relaxed);
    println!(
        "{} ballots acknowledged (200) in {wall:.1} s over {} vote(s): {:.0} ballots/s  p50={:.2}ms p99={:.2}ms  (sent {})",
        n,
        targets.len(),
        n as f64 / wall,
        p(0.5),
        p(0.99),
        lat.len()
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.c)
        .build()
        .expect("client");
    let far = now_ms() + 24 * 3600 * 1000;
    match a.mode.as_str() {
        "hot" => {
            let votes = open_votes(&client, &a, 1, move |_| far).await;
            cast(client, &a, Arc::new(votes)).await;
        }
        "spread" | "idle" => {
            let t = Instant::now();
            let votes = open_votes(&client, &a, a.votes, move |_| far).await;
            println!(
                "opened {} votes in {:.1} s",
                votes.len(),
                t.elapsed().as_secs_f64()
            );
            if let Some(out) = &a.out {
                std::fs::write(out, votes.join("\n")).expect("write --out");
            }
            if a.mode == "spread" {
                cast(client, &a, Arc::new(votes)).await;
            }
        }
        "deadlines" => {
            // Every deadline falls within one minute that starts once all votes are open.
            let n = a.votes;
            let open_budget_ms = 90_000u64;
            let first = now_ms() + open_budget_ms;
            let t = Instant::now();
            let votes = open_votes(&client, &a, n, move |i| {
                first + (i as u64 * 60_000) / n as u64
            })
            .await;
            println!("opened {n} votes in {:.1} s", t.elapsed().as_secs_f64());
            assert!(
                now_ms() < first,
                "opening took longer than the budget; use fewer votes"
            );
            let wait = first + 60_000 + 3_000 - now_ms();
            println!(
                "waiting {:.0} s for the minute of deadlines to pass",
                wait as f64 / 1000.0
            );
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let votes = Arc::new(votes);
            let next = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..a.c {
                let (client, base, votes, next) =
                    (client.clone(), a.base.clone(), votes.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    let mut late = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= votes.len() {
                            return late;
                        }
                        let v: Value = client
                            .get(format!("{base}{}", votes[i]))
                            .send()
                            .await
                            .expect("get")
                            .json()
                            .await
                            .expect("json");
                        let closing = first + (i as u64 * 60_000) / n as u64;
                        let closed: f64 = v["outcome"]["closed_at"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(f64::NAN);
                        late.push(closed * 1000.0 - closing as f64);
                    }
                }));
            }
            let mut late = Vec::new();
            for t in tasks {
                late.extend(t.await.expect("reader"));
            }
            let open = late.iter().filter(|l| l.is_nan()).count();
            late.retain(|l| !l.is_nan());
            late.sort_by(|x, y| x.total_cmp(y));
            let p = |q: f64| late[((late.len() as f64 * q) as usize).min(late.len() - 1)];
            println!(
                "{} votes closed ({} not closed): lateness p50={:.0}ms p99={:.0}ms max={:.0}ms (includes the 50 ms grace)",
                late.len(),
                open,
                p(0.5),
                p(0.99),
                late.last().copied().unwrap_or(f64::NAN)
            );
        }
        other => panic!("unknown mode {other}"),
    }
}
