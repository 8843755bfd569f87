//! Prometheus metrics: HTTP requests and latencies per route, plus the runtime's gauges.
//!
//! A handful of fixed series does not justify a metrics framework: counters are atomics in a
//! map keyed by (method, route, status), rendered in the text exposition format.

use std::collections::HashMap;
use std::fmt::Write;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use agora_runtime::RuntimeStats;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

type Labels = (String, String, u16);

#[derive(Default)]
pub struct HttpMetrics {
    /// Keyed by a hash of the labels so the hot path allocates nothing; the labels are kept
    /// beside the series and compared on every hit, so a collision cannot merge two series.
    series: RwLock<HashMap<u64, Vec<(Labels, Series)>>>,
}

fn label_hash(method: &str, route: &str, status: u16) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A fixed-key hasher: the map is internal and never sees untrusted keys (routes are the
    // router's own templates, methods are bounded by the router).
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write(method.as_bytes());
    h.write_u8(0);
    h.write(route.as_bytes());
    h.write_u16(status);
    h.finish()
}

impl HttpMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let update = |s: &Series| {
            s.count.fetch_add(1, Ordering::Relaxed);
            s.sum_us
                .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
            if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
                s.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        };
        let h = label_hash(method, route, status);
        let matches = |l: &Labels| l.0 == method && l.1 == route && l.2 == status;
        if let Some(list) = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h)
        {
            if let Some((_, s)) = list.iter().find(|(l, _)| matches(l)) {
                update(s);
                return;
            }
        }
        let mut map = self.series.write().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(h).or_default();
        match list.iter().position(|(l, _)| matches(l)) {
            Some(i) => update(&list[i].1),
            None => {
                let s = Series::default();
                update(&s);
                list.push(((method.to_string(), route.to_string(), status), s));
            }
        }
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self, rt: &RuntimeStats) -> String {
        let mut out = String::with_capacity(4096);
        let map = self.series.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(&Labels, &Series)> = map
            .values()
            .flat_map(|list| list.iter().map(|(l, s)| (l, s)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        out.push_str("# HELP agora_http_requests_total HTTP requests by method, route and status.\n# TYPE agora_http_requests_total counter\n");
        for (k, s) in &all {
            let _ = writeln!(
                out,
                "agora_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}",
                k.0,
                k.1,
                k.2,
                s.count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP agora_http_request_duration_seconds Request latency.\n# TYPE agora_http_request_duration_seconds histogram\n");
        for (k, s) in &all {
            let labels = format!("method=\"{}\",route=\"{}\",status=\"{}\"", k.0, k.1, k.2);
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "agora_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "agora_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "agora_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "agora_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        let gauges: [(&str, &str, &str, f64); 19] = [
            (
                "agora_active_actors",
                "gauge",
                "Actors activated on this node.",
                rt.active_actors as f64,
            ),
            (
                "agora_mailbox_depth",
                "gauge",
                "Messages queued in actor mailboxes.",
                rt.mailbox_depth as f64,
            ),
            (
                "agora_reminders_pending",
                "gauge",
                "Durable reminders not yet fired.",
                rt.reminders_pending as f64,
            ),
            (
                "agora_outbox_depth",
                "gauge",
                "Driver deliveries not yet acknowledged.",
                rt.outbox_depth as f64,
            ),
            (
                "agora_outbox_delivered_total",
                "counter",
                "Deliveries acknowledged by their receiver.",
                rt.outbox_delivered as f64,
            ),
            (
                "agora_outbox_failed_attempts_total",
                "counter",
                "Delivery attempts that failed and will be retried.",
                rt.outbox_failed_attempts as f64,
            ),
            (
                "agora_actor_messages_pending",
                "gauge",
                "Durable actor messages this node has yet to deliver.",
                rt.messages_pending as f64,
            ),
            (
                "agora_actor_messages_delivered_total",
                "counter",
                "Durable actor messages handled by their receiver.",
                rt.messages_delivered as f64,
            ),
            (
                "agora_actor_messages_duplicates_total",
                "counter",
                "Redeliveries of actor messages their receiver had already handled.",
                rt.messages_duplicates as f64,
            ),
            (
                "agora_actor_messages_expired_total",
                "counter",
                "Actor messages dropped undelivered after the delivery window.",
                rt.messages_expired as f64,
            ),
            (
                "agora_actor_messages_failed_attempts_total",
                "counter",
                "Actor message delivery attempts that failed and will be retried.",
                rt.messages_failed_attempts as f64,
            ),
            (
                "agora_commits_total",
                "counter",
                "Change records committed.",
                rt.commits as f64,
            ),
            (
                "agora_storage_writes_total",
                "counter",
                "Keys written or removed by committed change records.",
                rt.storage_writes as f64,
            ),
            (
                "agora_flushes_total",
                "counter",
                "Storage flushes (each serves a group of commits).",
                rt.flushes as f64,
            ),
            (
                "agora_commit_queue",
                "gauge",
                "Change records waiting for the committer.",
                rt.commit_queue as f64,
            ),
            (
                "agora_last_flush_seconds",
                "gauge",
                "Duration of the latest group commit.",
                rt.last_flush_us as f64 / 1e6,
            ),
            (
                "agora_commit_apply_seconds_total",
                "counter",
                "Time the committer spent applying groups of change records.",
                rt.commit_apply_ns as f64 / 1e9,
            ),
            (
                "agora_commit_flush_seconds_total",
                "counter",
                "Time the committer spent waiting for flushes to reach the disk.",
                rt.commit_flush_ns as f64 / 1e9,
            ),
            (
                "agora_storage_failed",
                "gauge",
                "1 when storage refused a write; the node then refuses writes.",
                if rt.storage_failed { 1.0 } else { 0.0 },
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

/// Middleware: one span per request, and one sample per response.
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    tracked(&state, &method, route.as_ref(), next.run(req)).await
}

/// Runs `handling` (the request's `method` on `route`) in its span and records its response.
pub(crate) async fn tracked(
    state: &AppState,
    method: &Method,
    route: Option<&MatchedPath>,
    handling: impl Future<Output = Response>,
) -> Response {
    let route = route.map(|r| r.as_str()).unwrap_or("unmatched");
    // Debug level for the same reason as the actor span: formatting span fields on every
    // request is a measurable share of a small request's cost.
    let span = tracing::debug_span!("request", %method, route);
    let started = Instant::now();
    let resp = tracing::Instrument::instrument(handling, span).await;
    // Unauthenticated clients choose the method: only the standard ones get their own series,
    // so nobody can grow the metrics without bound.
    let method_label = match method.as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    };
    state.metrics.record(
        method_label,
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}
