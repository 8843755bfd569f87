//! The governance benchmarks of issue 10 through HTTP (BENCHMARKS.md, "Issue 10: the governance
//! engine through HTTP"). Starts its own `agora` node (so it can restart it and read its memory
//! from /proc), builds one large community through the public API, then measures over
//! keep-alive connections:
//!
//! - implemented, durable actions per second (`edit_item` by an owner; no driver URL, no
//!   subscriptions) with p50/p99;
//! - dry runs per second with p50/p99;
//! - the first 100 items a member and an outsider may view (`GET /items?limit=100`): p50/p99,
//!   and how often a page stopped at the 10,000-candidate scan limit;
//! - after a restart: the community's activation time (the first request that needs it) and
//!   the resident memory it added per item.
//!
//! The world is built with batched actions (100 changes per `POST /actions`, one commit each):
//! `--members` in the founding, `--roles` roles, collections nested 5 deep, `--items` items
//! spread over them, `--permissions` permissions on items.
//!
//! `cargo build --release --example governance_bench --bin agora`
//! `target/release/examples/governance_bench --bin target/release/agora -c 64 -s 10`
//!
//! For the memory figure alone: `--node-env K=V` (repeatable) sets the node's environment
//! (`AGORA_CACHE_MB=16`, `MIMALLOC_PURGE_DELAY=0`), and `--reuse` skips building and the load
//! phases, restarting a node on the world a previous run left in `--dir` (pass the same
//! `--items`).
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

#[path = "support/bench_node.rs"]
mod bench_node;
use bench_node::{change, loadavg, post, Node};
#[path = "support/raw_http.rs"]
mod raw_http;
use raw_http::{connect, cpu_ticks, disk_write_bytes, TICKS_PER_SEC};

struct Args {
    bin: String,
    dir: String,
    port: u16,
    c: usize,
    secs: u64,
    members: usize,
    roles: usize,
    items: usize,
    permissions: usize,
    node_env: Vec<(String, String)>,
    reuse: bool,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        bin: "target/release/agora".into(),
        dir: "/tmp/agora-gov-bench".into(),
        port: 18_480,
        c: 64,
        secs: 10,
        members: 10_000,
        roles: 100,
        items: 100_000,
        permissions: 10_000,
        node_env: Vec::new(),
        reuse: false,
    };
    while let Some(k) = it.next() {
        if k == "--reuse" {
            a.reuse = true;
            continue;
        }
        let v = it.next().unwrap_or_default();
        let n = || v.parse::<usize>().expect("a number");
        match k.as_str() {
            "--bin" => a.bin = v.clone(),
            "--dir" => a.dir = v.clone(),
            "--port" => a.port = n() as u16,
            "-c" => a.c = n(),
            "-s" => a.secs = n() as u64,
            "--members" => a.members = n(),
            "--roles" => a.roles = n(),
            "--items" => a.items = n(),
            "--permissions" => a.permissions = n(),
            "--node-env" => {
                let (k, v) = v.split_once('=').expect("--node-env K=V");
                a.node_env.push((k.into(), v.into()));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `RssAnon`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `batch` (changes) as one action by the owner; answers each change's result.
async fn batch(client: &reqwest::Client, base: &str, changes: Vec<Value>) -> Vec<Value> {
    let url = format!("{base}/api/v1/communities/big/actions");
    let a = post(client, &url, "m0", &json!({"batch": changes})).await;
    assert_eq!(a["status"], "implemented", "{a}");
    a["result"]["batch"].as_array().cloned().unwrap_or_default()
}

/// Builds the world; answers the item ids made.
async fn build(a: &Args, client: &reqwest::Client, base: &str) -> Vec<String> {
    let t = Instant::now();
    post(
        client,
        &format!("{base}/api/internal/community"),
        "m0",
        &json!({"slug": "big", "readable_name": "Big"}),
    )
    .await;
    let members: Vec<String> = (1..a.members).map(|i| format!("m{i}")).collect();
    post(
        client,
        &format!("{base}/api/v1/communities/big/governance"),
        "m0",
        &json!({"members": members}),
    )
    .await;
    for chunk in (0..a.roles).collect::<Vec<_>>().chunks(100) {
        let changes = chunk
            .iter()
            .map(|r| {
                let holders: Vec<String> = (0..20)
                    .map(|k| format!("m{}", (r * 97 + k * 13) % a.members.max(1)))
                    .collect();
                change(
                    "add_role",
                    "community",
                    json!({"name": format!("r{r}"), "actors": holders}),
                )
            })
            .collect();
        batch(client, base, changes).await;
    }
    // Collections nested 5 deep, each made in the one above.
    let mut chain = vec!["community".to_string()];
    for d in 0..5 {
        let parent = chain.last().cloned().unwrap_or_default();
        let made = batch(
            client,
            base,
            vec![change(
                "create_item",
                &parent,
                json!({"type": "collection", "fields": {"name": format!("level {d}")}}),
            )],
        )
        .await;
        chain.push(format!("item:{}", made[0]["item"].as_str().expect("an id")));
    }
    let mut items = Vec::with_capacity(a.items);
    while items.len() < a.items {
        let n = (a.items - items.len()).min(100);
        let changes = (0..n)
            .map(|k| {
                let i = items.len() + k;
                let at = &chain[1 + i % 5];
                change(
                    "create_item",
                    at,
                    json!({"type": "document", "fields": {"name": format!("d{i}"), "body": "b"}}),
                )
            })
            .collect();
        for r in batch(client, base, changes).await {
            items.push(r["item"].as_str().expect("an id").to_string());
        }
    }
    println!(
        "built: {} members, {} roles, {} items in 5 nested collections in {:.1} s (load {})",
        a.members,
        a.roles,
        items.len(),
        t.elapsed().as_secs_f64(),
        loadavg()
    );
    let t = Instant::now();
    let mut made = 0;
    while made < a.permissions {
        let n = (a.permissions - made).min(100);
        let changes = (0..n)
            .map(|k| {
                let i = made + k;
                change(
                    "add_permission",
                    &format!("item:{}", items[(i * 7919) % items.len()]),
                    json!({"ability": "edit_item", "allow": true,
                           "roles": [format!("r{}", i % a.roles.max(1))]}),
                )
            })
            .collect();
        batch(client, base, changes).await;
        made += n;
    }
    println!(
        "built: {} permissions in {:.1} s (load {})",
        a.permissions,
        t.elapsed().as_secs_f64(),
        loadavg()
    );
    items
}

/// What the load loop reads of an answer: only a list page's length and cursor, without
/// building a `Value` tree (on these two cores a client that parsed every 15 KB page into one
/// took as much CPU as the node's answer and capped the list figures).
#[derive(Deserialize, Default)]
struct Paged {
    #[serde(default)]
    items: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    next_cursor: Option<IgnoredAny>,
}

#[derive(Default)]
struct Tally {
    lat_us: Vec<u64>,
    errors: u64,
    /// List pages that stopped short at the scan limit (fewer than asked, more to scan).
    stopped: u64,
}

/// One request of a load loop: path, acting agent and, for a POST, its JSON body.
struct Req {
    path: String,
    actor: &'static str,
    body: Option<String>,
}

/// `c` connections, each sending `req(i)` in a loop for `secs`. Prints the node's and this
/// client's CPU per request beside the rate: both share the machine's two cores.
async fn load<F>(a: &Args, host: &str, node_pid: u32, label: &str, req: F)
where
    F: Fn(u64) -> Req + Send + Sync + 'static,
{
    let req = Arc::new(req);
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let all = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for _ in 0..a.c {
        let (req, stop, seq, all) = (req.clone(), stop.clone(), seq.clone(), all.clone());
        let host = host.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&host).await;
            let mut mine = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                let i = seq.fetch_add(1, Ordering::Relaxed);
                let r = req(i);
                let t = Instant::now();
                match send(&mut sender, &host, r).await {
                    Some((200..=299, body)) => {
                        let page: Paged = serde_json::from_slice(&body).unwrap_or_default();
                        if let Some(list) = page.items {
                            if list.len() < 100 && page.next_cursor.is_some() {
                                mine.stopped += 1;
                            }
                        }
                        mine.lat_us.push(t.elapsed().as_micros() as u64);
                    }
                    Some(_) => mine.errors += 1,
                    None => {
                        mine.errors += 1;
                        sender = connect(&host).await;
                    }
                }
            }
            let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
            all.lat_us.extend(mine.lat_us);
            all.errors += mine.errors;
            all.stopped += mine.stopped;
        }));
    }
    let node0 = cpu_ticks(&node_pid.to_string());
    let disk0 = disk_write_bytes(&node_pid.to_string());
    let self0 = cpu_ticks("self");
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let secs = t.elapsed().as_secs_f64();
    let (node1, self1) = (cpu_ticks(&node_pid.to_string()), cpu_ticks("self"));
    let disk1 = disk_write_bytes(&node_pid.to_string());
    let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
    all.lat_us.sort_unstable();
    let n = all.lat_us.len();
    let pct = |p: f64| {
        all.lat_us
            .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    let per_req = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if n > 0 => {
            format!("{:.1}", (b - a) as f64 / TICKS_PER_SEC * 1e6 / n as f64)
        }
        _ => "?".into(),
    };
    println!(
        "{label}: {:.0}/s ({n} ok, {} errors in {secs:.1} s), p50 {:.2} ms, p99 {:.2} ms, \
         stopped at the scan limit {} of {n}; CPU per request: node {} µs, client {} µs; \
         disk per request {} B; c = {}, load {}",
        n as f64 / secs,
        all.errors,
        pct(0.50),
        pct(0.99),
        all.stopped,
        per_req(node0, node1),
        per_req(self0, self1),
        match (disk0, disk1) {
            (Some(d0), Some(d1)) if n > 0 =>
                format!("{:.0}", d1.saturating_sub(d0) as f64 / n as f64),
            _ => "?".into(),
        },
        a.c,
        loadavg()
    );
}

/// Sends `r` over `sender`; answers the status and body, or `None` when the connection failed.
async fn send(sender: &mut SendRequest<Full<Bytes>>, host: &str, r: Req) -> Option<(u16, Bytes)> {
    let b = Request::builder()
        .method(if r.body.is_some() {
            Method::POST
        } else {
            Method::GET
        })
        .uri(r.path)
        .header("host", host)
        .header("x-agora-actor", r.actor);
    let request = match r.body {
        Some(body) => b
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body))),
        None => b.body(Full::new(Bytes::new())),
    }
    .ok()?;
    sender.ready().await.ok()?;
    let resp = sender.send_request(request).await.ok()?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.c * 2)
        .build()
        .expect("client");
    if a.reuse {
        activation(&a, &client, a.items).await;
        return;
    }
    let _ = std::fs::remove_dir_all(&a.dir);
    let node = Node::start(&a.bin, a.port, &a.dir, None, &a.node_env, &client).await;
    let base = node.base.clone();
    let items = Arc::new(build(&a, &client, &base).await);

    let host = base.trim_start_matches("http://").to_owned();
    let pid = node.child.id();
    // Bodies are written with `format!`: item ids and the counter need no JSON escaping, and a
    // `json!` tree per request would be the client's CPU, not the node's.
    let actions = "/api/v1/communities/big/actions";
    let it = items.clone();
    load(&a, &host, pid, "implemented actions", move |i| {
        let id = &it[(i as usize * 7919) % it.len()];
        Req {
            path: actions.into(),
            actor: "m0",
            body: Some(format!(
                r#"{{"change":"edit_item","target":"item:{id}","params":{{"fields":{{"body":"v{i}"}}}}}}"#
            )),
        }
    })
    .await;
    let it = items.clone();
    load(&a, &host, pid, "dry runs", move |i| {
        let id = &it[(i as usize * 7919) % it.len()];
        Req {
            path: format!("{actions}?dry_run=true"),
            actor: "m1",
            body: Some(format!(
                r#"{{"change":"edit_item","target":"item:{id}","params":{{"fields":{{"body":"x"}}}}}}"#
            )),
        }
    })
    .await;
    for (label, who) in [
        ("list as a member", "m5"),
        ("list as an outsider", "nobody"),
    ] {
        load(&a, &host, pid, label, move |_| Req {
            path: "/api/v1/communities/big/items?limit=100".into(),
            actor: who,
            body: None,
        })
        .await;
    }

    node.stop();
    activation(&a, &client, items.len()).await;
}

/// Restarts the node on the world in `--dir`, times the first request that needs the
/// community and reports the resident memory its activation added, per item.
async fn activation(a: &Args, client: &reqwest::Client, items: usize) {
    let node = Node::start(&a.bin, a.port, &a.dir, None, &a.node_env, client).await;
    let pid = node.child.id();
    // The node is ready before its start-up is quite over (sled's recovery buffers, the
    // first tasks): read the baseline once it has settled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = status_kib(pid, "VmRSS");
    let anon_before = status_kib(pid, "RssAnon");
    let t = Instant::now();
    let r = client
        .get(format!("{}/api/v1/communities/big/governance", node.base))
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success());
    let activation = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = status_kib(pid, "VmRSS");
    let anon_after = status_kib(pid, "RssAnon");
    println!(
        "activation after restart: {:.0} ms; RSS {before} KiB before, {after} KiB after: \
         {:.0} B per item ({items} items, members, roles and permissions included; \
         anonymous {anon_before} → {anon_after} KiB); node env {:?}; load {}",
        activation.as_secs_f64() * 1000.0,
        (after.saturating_sub(before) * 1024) as f64 / items as f64,
        a.node_env,
        loadavg()
    );
    node.stop();
}
