//! The timer benchmarks of issues 10 and 11 (BENCHMARKS.md, "Issue 10: 100,000 condition
//! timeouts within one minute" and "Issue 11: 10,000 modules' phase boundaries within one
//! minute"), on the real clock. Starts its own release `agora` node (so nothing else shares its
//! data directory), sets the world up through the public HTTP API with batched actions, waits
//! for the minute to pass, then reads back when each timer fired and checks that each fired
//! exactly once.
//!
//! - `timeouts`: `--actions` (100,000) `comment` actions that each wait on an approval
//!   condition nobody answers, whose `timeout_hours` make their due times uniform over one
//!   minute. Timeouts count from the moment an action starts waiting, so the bench sets up
//!   `--steps` documents, each with an `anyone` permission to comment whose condition times out
//!   `--min-ms + k * --step-ms` after the action starts waiting (alternately `on_timeout`
//!   approve and reject), and sends action *i* (targeted at `minute start + i * 60 s / n`) to
//!   the document whose timeout lands closest to that target. Lateness is `resolved_at` of the
//!   action record minus its exact due time (`created_at` + the condition's timeout, both from
//!   the record): the actor's clock when it resolved the condition, whose effects are committed
//!   with the reminder's removal. Exactly once: every action is resolved with the status its
//!   `on_timeout` gives, none still waits, and the hash-chained log holds exactly one
//!   `resolution` entry per action. The minute starts `--lead-ms` (25 s) after the sending
//!   starts, so the actions are all waiting before the first comes due (the line after the
//!   sending says by how much; a negative margin means the two overlapped).
//! - `phases`: `--modules` (10,000) published modules in 100 public projects, module *i* with
//!   two phases back to back (`ideas:collect` then `ideas:rate`, `--phase-ms` each), the first
//!   starting at `minute start + i * (60 s - 2 * phase) / n`: three boundaries per module (the
//!   middle one ends one phase and starts the next), all within one minute, which starts
//!   `--lead-ms` + 1 ms per module after the modules are sent. The node's driver
//!   URL is a sink inside this process that timestamps what it receives. Per boundary: firing
//!   lateness is the driver event's `timestamp` (the actor's clock when it handled the
//!   reminder, committed with the notice) minus the boundary's `at`; delivery lateness is the
//!   sink's receive time minus `at` (the outbox's ordered delivery included). Exactly once:
//!   one `phase_started` and one `phase_ended` event per phase, and one notice of each kind per
//!   phase on every module (`GET /items/{module}/notices`).
//!
//! `cargo build --release --example timeouts_bench --bin agora`
//! `target/release/examples/timeouts_bench timeouts --bin target/release/agora`
//! `target/release/examples/timeouts_bench phases --bin target/release/agora`
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

#[path = "support/bench_node.rs"]
mod bench_node;
use bench_node::{change, loadavg, post, Node};

struct Args {
    mode: String,
    bin: String,
    dir: String,
    port: u16,
    sink_port: u16,
    c: usize,
    actions: usize,
    steps: usize,
    step_ms: u64,
    min_ms: u64,
    lead_ms: u64,
    modules: usize,
    phase_ms: u64,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: it.next().expect("mode: timeouts | phases"),
        bin: "target/release/agora".into(),
        dir: "/tmp/agora-timeouts-bench".into(),
        port: 18_490,
        sink_port: 18_491,
        c: 32,
        actions: 100_000,
        steps: 1_800,
        step_ms: 50,
        min_ms: 3_000,
        lead_ms: 25_000,
        modules: 10_000,
        phase_ms: 10_000,
    };
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        let n = || v.parse::<u64>().expect("a number");
        match k.as_str() {
            "--bin" => a.bin = v.clone(),
            "--dir" => a.dir = v.clone(),
            "--port" => a.port = n() as u16,
            "--sink-port" => a.sink_port = n() as u16,
            "-c" => a.c = n() as usize,
            "--actions" => a.actions = n() as usize,
            "--steps" => a.steps = n() as usize,
            "--step-ms" => a.step_ms = n(),
            "--min-ms" => a.min_ms = n(),
            "--lead-ms" => a.lead_ms = n(),
            "--modules" => a.modules = n() as usize,
            "--phase-ms" => a.phase_ms = n(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 in UTC with milliseconds from epoch milliseconds.
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Epoch milliseconds of the engine's UTC timestamps (`2026-12-06T22:32:01.123Z`, the
/// fraction optional).
fn parse_ms(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let frac = format!("{frac:0<3}");
    let ms: i64 = frac.get(..3)?.parse().ok()?;
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Percentiles of a sorted list.
fn pct(v: &[i64], q: f64) -> i64 {
    v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(i64::MIN)
}

fn summary(label: &str, mut late: Vec<i64>) {
    late.sort_unstable();
    println!(
        "{label}: n = {}, lateness p50 {} ms, p99 {} ms, max {} ms, min {} ms (load {})",
        late.len(),
        pct(&late, 0.50),
        pct(&late, 0.99),
        late.last().copied().unwrap_or(i64::MIN),
        late.first().copied().unwrap_or(i64::MIN),
        loadavg()
    );
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.expect("request");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

/// Runs `changes` as batched actions of 100 by the founder; answers each change's result.
async fn batches(
    client: &reqwest::Client,
    base: &str,
    slug: &str,
    changes: Vec<Value>,
) -> Vec<Value> {
    let url = format!("{base}/api/v1/communities/{slug}/actions");
    let mut out = Vec::with_capacity(changes.len());
    for chunk in changes.chunks(100) {
        let a = post(client, &url, "m0", &json!({"batch": chunk})).await;
        assert_eq!(a["status"], "implemented", "{a}");
        out.extend(a["result"]["batch"].as_array().cloned().unwrap_or_default());
    }
    out
}

async fn found(client: &reqwest::Client, base: &str, slug: &str, members: usize) {
    post(
        client,
        &format!("{base}/api/internal/community"),
        "m0",
        &json!({"slug": slug, "readable_name": slug}),
    )
    .await;
    let members: Vec<String> = (1..members).map(|i| format!("m{i}")).collect();
    post(
        client,
        &format!("{base}/api/v1/communities/{slug}/governance"),
        "m0",
        &json!({"members": members}),
    )
    .await;
}

/// Every page of a list route (`key`: the list's name in the answer).
async fn all_pages(client: &reqwest::Client, url: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_url = match &cursor {
            Some(c) => format!("{url}&cursor={c}"),
            None => url.to_string(),
        };
        let page = get(client, &page_url).await;
        out.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

async fn timeouts(a: &Args, client: &reqwest::Client) {
    let node = Node::start(&a.bin, a.port, &a.dir, None, &[], client).await;
    let base = node.base.clone();
    let t = Instant::now();
    found(client, &base, "tb", 100).await;
    // One document per timeout step, each with its own conditioned permission to comment.
    let docs: Vec<Value> = (0..a.steps)
        .map(|k| {
            change(
                "create_item",
                "community",
                json!({"type": "document", "fields": {"name": format!("d{k}")}}),
            )
        })
        .collect();
    let docs: Vec<String> = batches(client, &base, "tb", docs)
        .await
        .iter()
        .map(|r| r["item"].as_str().expect("an id").to_string())
        .collect();
    let timeout_ms = |k: usize| a.min_ms + k as u64 * a.step_ms;
    let perms: Vec<Value> = (0..a.steps)
        .map(|k| {
            let on = if k % 2 == 0 { "approve" } else { "reject" };
            change(
                "add_permission",
                &format!("item:{}", docs[k]),
                json!({"ability": "comment", "allow": true, "anyone": true,
                       "condition": {"type": "approval",
                                     "timeout_hours": timeout_ms(k) as f64 / 3_600_000.0,
                                     "on_timeout": on}}),
            )
        })
        .collect();
    batches(client, &base, "tb", perms).await;
    println!(
        "set up {} documents with conditioned permissions in {:.1} s (load {})",
        a.steps,
        t.elapsed().as_secs_f64(),
        loadavg()
    );

    // The minute of due times starts once the longest wait we can express minus the minute
    // has passed, so every target is reachable while the actions are sent.
    let n = a.actions;
    let first = now_ms() + a.min_ms + a.lead_ms + 1_000;
    let target = move |i: usize| first + (i as u64 * 60_000) / n as u64;
    let item_of: HashMap<String, usize> = docs
        .iter()
        .enumerate()
        .map(|(k, d)| (d.clone(), k))
        .collect();
    let docs = Arc::new(docs);
    let next = Arc::new(AtomicUsize::new(0));
    let clamped = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}/api/v1/communities/tb/actions");
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.c {
        let (client, docs, next, clamped, url) = (
            client.clone(),
            docs.clone(),
            next.clone(),
            clamped.clone(),
            url.clone(),
        );
        let (min_ms, step_ms, steps) = (a.min_ms, a.step_ms, a.steps);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let wait = target(i) as i64 - now_ms() as i64 - min_ms as i64;
                let k = (wait + step_ms as i64 / 2).div_euclid(step_ms as i64);
                if k < 0 || k >= steps as i64 {
                    clamped.fetch_add(1, Ordering::Relaxed);
                }
                let k = k.clamp(0, steps as i64 - 1) as usize;
                let body = change(
                    "comment",
                    &format!("item:{}", docs[k]),
                    json!({"body": format!("c{i}")}),
                );
                let v = post(&client, &url, &format!("m{}", 1 + i % 99), &body).await;
                assert_eq!(v["status"], "waiting", "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    println!(
        "sent {n} waiting actions in {:.1} s ({:.0}/s), {} outside the timeout steps \
         (clamped); the minute of dues starts {} ms after the last was sent (negative: \
         sending overlapped the first dues) (load {})",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64(),
        clamped.load(Ordering::Relaxed),
        first as i64 - now_ms() as i64,
        loadavg()
    );
    let wait = (first + 60_000 + 5_000).saturating_sub(now_ms());
    println!(
        "waiting {:.0} s for the minute to pass",
        wait as f64 / 1000.0
    );
    tokio::time::sleep(Duration::from_millis(wait)).await;
    println!("load right after the minute: {}", loadavg());

    let t = Instant::now();
    let actions = all_pages(
        client,
        &format!("{base}/api/v1/communities/tb/actions?limit=1000"),
        "actions",
    )
    .await;
    let mut late = Vec::new();
    let (mut dues, mut waiting, mut wrong) = (Vec::new(), 0usize, 0usize);
    let mut ids = Vec::new();
    for act in &actions {
        if act["change"] != "comment" {
            continue;
        }
        let target = act["target"].as_str().unwrap_or("");
        let Some(&k) = target.strip_prefix("item:").and_then(|d| item_of.get(d)) else {
            continue;
        };
        ids.push(act["id"].as_str().unwrap_or("").to_string());
        let created = act["created_at"].as_str().and_then(parse_ms);
        let resolved = act["resolved_at"].as_str().and_then(parse_ms);
        let expect = if k % 2 == 0 {
            "implemented"
        } else {
            "rejected"
        };
        match (created, resolved) {
            (Some(c), Some(r)) => {
                let due = c + timeout_ms(k);
                dues.push(due);
                late.push(r as i64 - due as i64);
                if act["status"] != expect
                    || act["resolution"]["by"] != "timeout"
                    || (expect == "rejected" && act["reason_code"] != "timed_out")
                {
                    wrong += 1;
                }
            }
            _ => waiting += 1,
        }
    }
    dues.sort_unstable();
    let span = dues.last().copied().unwrap_or(0) - dues.first().copied().unwrap_or(0);
    let mut per_second: HashMap<u64, usize> = HashMap::new();
    for d in &dues {
        *per_second.entry(d / 1000).or_default() += 1;
    }
    println!(
        "read {} action records in {:.1} s: {} comment actions, {} resolved, {} still waiting, \
         {} with the wrong status or resolution; due times span {span} ms, busiest second {} \
         dues",
        actions.len(),
        t.elapsed().as_secs_f64(),
        ids.len(),
        late.len(),
        waiting,
        wrong,
        per_second.values().max().copied().unwrap_or(0)
    );
    summary("timeout lateness (resolved_at - due)", late);

    let t = Instant::now();
    let entries = all_pages(
        client,
        &format!("{base}/api/v1/communities/tb/governance/log?limit=1000"),
        "entries",
    )
    .await;
    let mut resolutions: HashMap<&str, usize> = HashMap::new();
    for e in &entries {
        if e["kind"] == "resolution" {
            *resolutions
                .entry(e["action"].as_str().unwrap_or(""))
                .or_default() += 1;
        }
    }
    let once = ids
        .iter()
        .filter(|id| resolutions.get(id.as_str()) == Some(&1))
        .count();
    let twice = resolutions.values().filter(|c| **c > 1).count();
    println!(
        "log: {} entries read in {:.1} s; {once} of {} actions have exactly one resolution \
         entry, {twice} actions have more than one",
        entries.len(),
        t.elapsed().as_secs_f64(),
        ids.len()
    );
    node.stop();
}

/// What the sink heard: (receive time, the event envelope).
type Heard = Arc<Mutex<Vec<(u64, Value)>>>;

async fn sink(port: u16) -> Heard {
    let heard: Heard = Arc::default();
    let h = heard.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let h = h.clone();
        async move {
            let at = now_ms();
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                h.lock().unwrap_or_else(|p| p.into_inner()).push((at, v));
            }
            ""
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the sink");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    heard
}

async fn phases(a: &Args, client: &reqwest::Client) {
    let heard = sink(a.sink_port).await;
    let driver = format!("http://127.0.0.1:{}/events", a.sink_port);
    let node = Node::start(&a.bin, a.port, &a.dir, Some(&driver), &[], client).await;
    let base = node.base.clone();
    let t = Instant::now();
    found(client, &base, "pb", 100).await;
    let projects: Vec<Value> = (0..100)
        .map(|p| {
            change(
                "create_item",
                "community",
                json!({"type": "project",
                       "fields": {"name": format!("p{p}"), "access": "public", "draft": false}}),
            )
        })
        .collect();
    let projects: Vec<String> = batches(client, &base, "pb", projects)
        .await
        .iter()
        .map(|r| r["item"].as_str().expect("an id").to_string())
        .collect();
    let n = a.modules;
    let spread = 60_000 - 2 * a.phase_ms;
    let first = now_ms() + a.lead_ms + n as u64;
    let start = move |i: usize| first + (i as u64 * spread) / n as u64;
    let modules: Vec<Value> = (0..n)
        .map(|i| {
            let (s, p) = (start(i), a.phase_ms);
            change(
                "create_item",
                &format!("item:{}", projects[i % projects.len()]),
                json!({"type": "module", "fields": {"name": format!("mod{i}"), "draft": false,
                    "phases": [
                        {"name": "collect", "type": "ideas:collect",
                         "start": rfc3339(s), "end": rfc3339(s + p)},
                        {"name": "rate", "type": "ideas:rate",
                         "start": rfc3339(s + p), "end": rfc3339(s + 2 * p)}]}}),
            )
        })
        .collect();
    let modules: Vec<String> = batches(client, &base, "pb", modules)
        .await
        .iter()
        .map(|r| r["item"].as_str().expect("an id").to_string())
        .collect();
    println!(
        "set up 100 projects and {n} modules ({} boundaries) in {:.1} s; the first boundary \
         {} ms after (load {})",
        3 * n,
        t.elapsed().as_secs_f64(),
        first as i64 - now_ms() as i64,
        loadavg()
    );
    let index: HashMap<&str, usize> = modules
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let expected = 4 * n;
    let deadline = first + 60_000 + 60_000;
    let wait = (first + 60_000 + 3_000).saturating_sub(now_ms());
    println!(
        "waiting {:.0} s for the minute to pass",
        wait as f64 / 1000.0
    );
    tokio::time::sleep(Duration::from_millis(wait)).await;
    println!("load right after the minute: {}", loadavg());
    loop {
        let got = heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, e)| e["event_type"].as_str().unwrap_or("").starts_with("phase_"))
            .count();
        if got >= expected || now_ms() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let duplicates, if any, arrive too.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let heard = std::mem::take(&mut *heard.lock().unwrap_or_else(|p| p.into_inner()));
    let (mut fire, mut deliver) = (Vec::new(), Vec::new());
    let mut seen: HashMap<(usize, String, String), usize> = HashMap::new();
    // Per boundary (a module's `at`): the events of one boundary share one commit, so its
    // firing is their timestamp and its delivery the last of them to arrive.
    let mut boundaries: HashMap<(usize, u64), (i64, i64)> = HashMap::new();
    let mut foreign = 0usize;
    for (recv, e) in &heard {
        let kind = e["event_type"].as_str().unwrap_or("");
        if !kind.starts_with("phase_") {
            continue;
        }
        let d = &e["data"];
        let Some(&i) = d["module"].as_str().and_then(|m| index.get(m)) else {
            foreign += 1;
            continue;
        };
        let phase = d["phase"].as_str().unwrap_or("").to_string();
        let at = d["at"].as_str().and_then(parse_ms).unwrap_or(0);
        let (s, p) = (start(i), a.phase_ms);
        let want = match (kind, phase.as_str()) {
            ("phase_started", "collect") => s,
            ("phase_ended", "collect") | ("phase_started", "rate") => s + p,
            _ => s + 2 * p,
        };
        if at != want {
            foreign += 1;
        }
        *seen.entry((i, kind.to_string(), phase)).or_default() += 1;
        let stamp = e["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .map_or(0, |s| (s * 1000.0).round() as u64);
        fire.push(stamp as i64 - at as i64);
        deliver.push(*recv as i64 - at as i64);
        let b = boundaries.entry((i, at)).or_insert((i64::MIN, i64::MIN));
        b.0 = b.0.max(stamp as i64 - at as i64);
        b.1 = b.1.max(*recv as i64 - at as i64);
    }
    let once = seen.values().filter(|c| **c == 1).count();
    let more = seen.values().filter(|c| **c > 1).count();
    println!(
        "driver events: {} phase events heard ({expected} expected), {once} (module, kind, \
         phase) heard exactly once, {more} more than once, {} missing, {foreign} with an \
         unknown module or a wrong `at`",
        fire.len(),
        expected.saturating_sub(seen.len()),
    );
    summary(
        "per event, firing lateness (event timestamp - boundary)",
        fire,
    );
    summary(
        "per event, delivery lateness (sink receive - boundary)",
        deliver,
    );
    println!(
        "{} distinct boundaries heard ({} expected)",
        boundaries.len(),
        3 * n
    );
    summary(
        "per boundary, firing lateness",
        boundaries.values().map(|b| b.0).collect(),
    );
    summary(
        "per boundary, delivery lateness (its last event)",
        boundaries.values().map(|b| b.1).collect(),
    );

    // Notices: one of each kind per phase on every module.
    let t = Instant::now();
    let modules = Arc::new(modules);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.c {
        let (client, base, modules, next) =
            (client.clone(), base.clone(), modules.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut bad = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= modules.len() {
                    return bad;
                }
                let url = format!(
                    "{base}/api/v1/communities/pb/items/{}/notices?limit=1000",
                    modules[i]
                );
                let v = get(&client, &url).await;
                let notices = v["notices"].as_array().cloned().unwrap_or_default();
                let count = |kind: &str| notices.iter().filter(|n| n["kind"] == kind).count();
                if count("phase_started") != 2 || count("phase_ended") != 2 {
                    bad += 1;
                }
            }
        }));
    }
    let mut bad = 0;
    for t in tasks {
        bad += t.await.expect("reader");
    }
    println!(
        "notices: {} of {n} modules have exactly two phase_started and two phase_ended notices \
         (read in {:.1} s)",
        n - bad,
        t.elapsed().as_secs_f64()
    );
    node.stop();
}

#[tokio::main]
async fn main() {
    let a = args();
    let _ = std::fs::remove_dir_all(&a.dir);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.c * 2)
        .build()
        .expect("client");
    println!(
        "nproc {:?}, load {}",
        std::thread::available_parallelism(),
        loadavg()
    );
    match a.mode.as_str() {
        "timeouts" => timeouts(&a, &client).await,
        "phases" => phases(&a, &client).await,
        other => panic!("unknown mode {other}"),
    }
    let _ = std::fs::remove_dir_all(&a.dir);
}
