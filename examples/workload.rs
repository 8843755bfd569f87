//! A fast replay of `../shared/metagov-workload.py`: the same phases and requests, driven by
//! many keep-alive connections from tokio tasks, so the server (not the client) is measured.
//!
//! `cargo run --release --example workload -- --base http://127.0.0.1:8080 -n 20000 -c 64`
//! Prints one line per phase: requests, req/s, p50, p99, max and unexpected statuses.
//!
//! Profiling aids (issue 14): `--node-pid PID` adds the node's and this client's CPU per request
//! to each line (from `/proc/<pid>/stat`, so the load generator's own share is visible);
//! `--perf-pid PID` sends SIGUSR2 to a `perf record --switch-output=signal` before and after each
//! phase, so each phase's samples land in their own `perf.data.<time>` file (phase order is
//! printed to stderr).
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use serde_json::{json, Value};

#[path = "support/raw_http.rs"]
mod raw_http;
use raw_http::{connect, cpu_ticks, disk_write_bytes, TICKS_PER_SEC};

struct Args {
    base: String,
    sink: String,
    n: usize,
    c: usize,
    node_pid: Option<u32>,
    perf_pid: Option<u32>,
}

/// The node's commit counters from `/metrics`: change records, keys written, flushes, and the
/// committer's seconds applying and flushing.
async fn commit_counters(client: &reqwest::Client, base: &str) -> Option<[f64; 5]> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let read = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    Some([
        read("agora_commits_total")?,
        read("agora_storage_writes_total")?,
        read("agora_flushes_total")?,
        read("agora_commit_apply_seconds_total")?,
        read("agora_commit_flush_seconds_total")?,
    ])
}

fn signal_perf(a: &Args, what: &str) {
    if let Some(pid) = a.perf_pid {
        eprintln!("perf switch: {what}");
        let _ = std::process::Command::new("kill")
            .args(["-USR2", &pid.to_string()])
            .status();
        // perf writes the finished file asynchronously; give it a moment so samples do not
        // straddle two phases.
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn args() -> Args {
    let mut a = Args {
        base: "http://127.0.0.1:8080".into(),
        sink: "http://127.0.0.1:9999/callback".into(),
        n: 10_000,
        c: 64,
        node_pid: None,
        perf_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--base" => a.base = v,
            "--sink" => a.sink = v,
            "-n" => a.n = v.parse().expect("-n takes a number"),
            "-c" => a.c = v.parse().expect("-c takes a number"),
            "--node-pid" => a.node_pid = Some(v.parse().expect("--node-pid takes a pid")),
            "--perf-pid" => a.perf_pid = Some(v.parse().expect("--perf-pid takes a pid")),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.base.starts_with("http://127.0.0.1") || a.base.starts_with("http://localhost"),
        "local only"
    );
    a
}

#[derive(Clone)]
struct Req {
    method: Method,
    path: String,
    body: Option<Value>,
    community: bool,
}

fn req(method: &str, path: impl Into<String>, body: Option<Value>, community: bool) -> Req {
    Req {
        method: method.parse().expect("method"),
        path: path.into(),
        body,
        community,
    }
}

/// Sends `r`; answers (status, Location) or status 0 when the connection failed.
async fn send(sender: &mut SendRequest<Full<Bytes>>, host: &str, r: Req) -> (u16, Option<String>) {
    let mut b = Request::builder()
        .method(r.method)
        .uri(r.path)
        .header("host", host);
    if r.community {
        b = b.header("x-metagov-community", "bench");
    }
    let body = match r.body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Full::new(Bytes::from(v.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let Ok(request) = b.body(body) else {
        return (0, None);
    };
    if sender.ready().await.is_err() {
        return (0, None);
    }
    match sender.send_request(request).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let loc = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let _ = resp.into_body().collect().await;
            (status, loc)
        }
        Err(_) => (0, None),
    }
}

struct PhaseResult {
    statuses: Vec<u16>,
    locations: Vec<Option<String>>,
}

async fn phase(
    name: &str,
    client: &reqwest::Client,
    a: &Args,
    n: usize,
    expect: u16,
    make: impl Fn(usize) -> Req + Send + Sync + 'static,
) -> PhaseResult {
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    signal_perf(a, &format!("before {name}"));
    let commits0 = match a.node_pid {
        Some(_) => commit_counters(client, &a.base).await,
        None => None,
    };
    let node0 = a.node_pid.and_then(|p| cpu_ticks(&p.to_string()));
    let disk0 = a.node_pid.and_then(|p| disk_write_bytes(&p.to_string()));
    let self0 = cpu_ticks("self");
    let start = Instant::now();
    let host = a
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    for _ in 0..a.c {
        let make = make.clone();
        let next = next.clone();
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut sender = connect(&host).await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = make(i);
                let t0 = Instant::now();
                let (status, loc) = send(&mut sender, &host, r).await;
                if status == 0 {
                    // The node closed the connection: open another for the next request.
                    sender = connect(&host).await;
                }
                out.push((i, t0.elapsed(), status, loc));
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let wall = start.elapsed();
    let node1 = a.node_pid.and_then(|p| cpu_ticks(&p.to_string()));
    let disk1 = a.node_pid.and_then(|p| disk_write_bytes(&p.to_string()));
    let self1 = cpu_ticks("self");
    let commits1 = match a.node_pid {
        Some(_) => commit_counters(client, &a.base).await,
        None => None,
    };
    signal_perf(a, &format!("end of {name}"));
    let per_req = |t0: Option<u64>, t1: Option<u64>| match (t0, t1) {
        (Some(t0), Some(t1)) => format!(
            "{:5.1}",
            (t1 - t0) as f64 / TICKS_PER_SEC * 1e6 / all.len().max(1) as f64
        ),
        _ => "    -".into(),
    };
    let cpu = if a.node_pid.is_some() {
        let per = all.len().max(1) as f64;
        let commits = match (commits0, commits1) {
            // The second scrape's own commits, if any, are noise next to thousands of requests.
            (Some(c0), Some(c1)) => {
                let flushes = (c1[2] - c0[2]).max(1.0);
                format!(
                    "  per req: commits={:.2} keys={:.2} flushes={:.3} disk={:.0}B  per flush: apply={:.0}us flush={:.0}us busy={:.0}%",
                    (c1[0] - c0[0]) / per,
                    (c1[1] - c0[1]) / per,
                    (c1[2] - c0[2]) / per,
                    match (disk0, disk1) {
                        (Some(d0), Some(d1)) => d1.saturating_sub(d0) as f64 / per,
                        _ => f64::NAN,
                    },
                    (c1[3] - c0[3]) * 1e6 / flushes,
                    (c1[4] - c0[4]) * 1e6 / flushes,
                    (c1[3] - c0[3] + c1[4] - c0[4]) / wall.as_secs_f64() * 100.0
                )
            }
            _ => String::new(),
        };
        format!(
            "  cpu/req node={}us client={}us{commits}",
            per_req(node0, node1),
            per_req(self0, self1)
        )
    } else {
        String::new()
    };
    all.sort_by_key(|x| x.0);
    let mut lat: Vec<Duration> = all.iter().map(|x| x.1).collect();
    lat.sort();
    let pct =
        |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let errors = all.iter().filter(|x| x.2 != expect).count();
    println!(
        "{name:22} n={:6} {:9.1} req/s  p50={:6.2}ms  p99={:6.2}ms  max={:6.2}ms  errors={errors}{cpu}",
        all.len(),
        all.len() as f64 / wall.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        lat.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
    );
    PhaseResult {
        statuses: all.iter().map(|x| x.2).collect(),
        locations: all.into_iter().map(|x| x.3).collect(),
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.c)
        .build()
        .expect("client");
    let run = format!(
        "{:08x}",
        std::process::id() ^ (Instant::now().elapsed().as_nanos() as u32)
    );
    let cfg = json!({"default_low": 2, "default_high": 200});
    // Setup, as the Python workload does it.
    let _ = client
        .post(format!("{}/api/internal/community", a.base))
        .body(json!({"slug": "bench", "readable_name": "Bench community"}).to_string())
        .send()
        .await;
    let put = client
        .put(format!("{}/api/internal/community/bench", a.base))
        .body(json!({"slug": "bench", "readable_name": "Bench community", "plugins": [{"name": "randomness", "config": cfg}]}).to_string())
        .send()
        .await
        .expect("setup");
    assert_eq!(put.status().as_u16(), 200, "enable plugin via PUT failed");
    let n = a.n;
    phase("warmup", &client, &a, 2000, 200, |_| {
        req(
            "POST",
            "/api/internal/action/randomness.random-int",
            Some(json!({"parameters": {"low": 0, "high": 100}})),
            true,
        )
    })
    .await;
    let r = run.clone();
    phase("community_create", &client, &a, n, 201, move |i| {
        req(
            "POST",
            "/api/internal/community",
            Some(json!({"slug": format!("b{r}-{i}"), "readable_name": format!("Bench {i}")})),
            false,
        )
    })
    .await;
    let r = run.clone();
    let c2 = cfg.clone();
    phase("community_put_enable", &client, &a, n, 200, move |i| {
        let slug = format!("b{r}-{i}");
        req("PUT", format!("/api/internal/community/{slug}"), Some(json!({"slug": slug, "readable_name": format!("Bench {i}"), "plugins": [{"name": "randomness", "config": c2}]})), false)
    })
    .await;
    phase("community_get", &client, &a, n, 200, |_| {
        req("GET", "/api/internal/community/bench", None, false)
    })
    .await;
    let c3 = cfg.clone();
    phase("plugin_enable_same", &client, &a, n, 200, move |_| {
        req(
            "POST",
            "/api/internal/plugin/randomness",
            Some(c3.clone()),
            true,
        )
    })
    .await;
    phase("action_random_int", &client, &a, n, 200, |_| {
        req(
            "POST",
            "/api/internal/action/randomness.random-int",
            Some(json!({"parameters": {"low": 0, "high": 100}})),
            true,
        )
    })
    .await;
    phase("action_set_lucky", &client, &a, n, 200, |i| {
        req(
            "POST",
            "/api/internal/action/randomness.set-lucky-number",
            Some(json!({"parameters": {"lucky_number": i % 50}})),
            true,
        )
    })
    .await;
    let sink = a.sink.clone();
    let started = phase("process_start", &client, &a, n, 202, move |_| {
        req(
            "POST",
            "/api/internal/process/randomness.delayed-stochastic-vote",
            Some(json!({"callback_url": sink, "options": ["yes", "no", "abstain"], "delay": 60})),
            true,
        )
    })
    .await;
    let ids: Arc<Vec<String>> = Arc::new(
        started
            .statuses
            .iter()
            .zip(started.locations)
            .filter(|(s, _)| **s == 202)
            .filter_map(|(_, l)| l)
            .collect(),
    );
    assert!(!ids.is_empty(), "no process started");
    let g = ids.clone();
    phase("process_get", &client, &a, n, 200, move |i| {
        req("GET", g[i % g.len()].clone(), None, false)
    })
    .await;
    let d = ids.clone();
    phase("process_close", &client, &a, ids.len(), 200, move |i| {
        req("DELETE", d[i].clone(), None, false)
    })
    .await;
    phase("webhook_noop", &client, &a, n, 200, |i| {
        req(
            "POST",
            "/api/hooks/bench/randomness",
            Some(json!({"event": "ping", "i": i})),
            false,
        )
    })
    .await;
}
