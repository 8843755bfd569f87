//! The outbox: messages for drivers and callback URLs, committed with the change that caused
//! them, then delivered at least once.
//!
//! Each entry keeps its idempotency key for life, so every retry carries the same
//! `Idempotency-Key`. Entries that share an ordering key (one process, one community's events)
//! are delivered strictly one after another; different keys go out in parallel, bounded by a
//! semaphore. A delivered entry is deleted; a node restart reloads whatever is left.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_storage::{
    decode_record, encode_record, Committer, Engine, RecordError, StorageError, WriteBatch,
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::keys;
use crate::PARTITIONS;

/// How deliveries are made and retried.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// HMAC-SHA256 key for `X-Agora-Signature`; no header without it.
    pub signing_secret: Option<Vec<u8>>,
    pub timeout: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Entries older than this are dropped (and logged) instead of retried again.
    pub max_age: Duration,
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            signing_secret: None,
            timeout: Duration::from_secs(10),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            max_age: Duration::from_secs(7 * 24 * 3600),
            concurrency: 64,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct OutboxRecord {
    pub id: String,
    pub url: String,
    pub body: String,
    pub ordering_key: String,
    pub created_ms: u64,
}

const KIND: &str = "outbox";
const VERSION: u16 = 1;

impl OutboxRecord {
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        encode_record(KIND, VERSION, self)
    }
}

pub(crate) struct OutboxStats {
    pub depth: i64,
    pub delivered: u64,
    pub failed_attempts: u64,
}

/// One ordering key's undelivered entries, with their storage keys, in commit order.
type Queue = VecDeque<(Vec<u8>, OutboxRecord)>;

pub(crate) struct Outbox {
    config: DeliveryConfig,
    committer: Committer,
    client: reqwest::Client,
    queues: Mutex<HashMap<String, Queue>>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    semaphore: Arc<Semaphore>,
    depth: AtomicI64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    stopped: AtomicBool,
}

impl Outbox {
    pub fn new(config: DeliveryConfig, committer: Committer) -> Self {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("agora/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            semaphore: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            committer,
            client,
            queues: Mutex::new(HashMap::new()),
            runtime: Mutex::new(None),
            depth: AtomicI64::new(0),
            delivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    pub fn stats(&self) -> OutboxStats {
        OutboxStats {
            depth: self.depth.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
        }
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Queues the undelivered entries of partition `p` (just taken over), and moves this
    /// node's sequence past theirs so its own entries sort after them.
    pub fn load_partition(
        self: &Arc<Self>,
        engine: &Arc<dyn Engine>,
        p: u32,
        next_seq: &AtomicU64,
    ) -> Result<usize, StorageError> {
        let mut n = 0;
        for (k, v) in engine.scan_prefix(&keys::section(p, keys::OUTBOX))? {
            let Some(seq) = keys::parse_outbox(&k) else {
                continue;
            };
            next_seq.fetch_max(seq + 1, Ordering::AcqRel);
            match decode_record::<OutboxRecord>(KIND, VERSION, &v) {
                Ok((_, rec)) => {
                    self.enqueue(k, rec);
                    n += 1;
                }
                Err(e) => tracing::error!(seq, error = %e, "unreadable outbox entry left in place"),
            }
        }
        Ok(n)
    }

    /// Starts delivering; with `load_all`, every undelivered entry is reloaded first, in
    /// commit order (a cluster node loads partitions as it takes them over).
    pub fn load_and_start(
        self: &Arc<Self>,
        engine: &Arc<dyn Engine>,
        load_all: bool,
    ) -> Result<(), StorageError> {
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(tokio::runtime::Handle::current());
        let mut entries = Vec::new();
        let partitions = if load_all { 0..PARTITIONS } else { 0..0 };
        for p in partitions {
            for (k, v) in engine.scan_prefix(&keys::section(p, keys::OUTBOX))? {
                let Some(seq) = keys::parse_outbox(&k) else {
                    continue;
                };
                match decode_record::<OutboxRecord>(KIND, VERSION, &v) {
                    Ok((_, rec)) => entries.push((seq, k, rec)),
                    Err(e) => {
                        tracing::error!(seq, error = %e, "unreadable outbox entry left in place")
                    }
                }
            }
        }
        // Commit order across partitions, so every ordering key's queue is in commit order.
        entries.sort_by_key(|(seq, _, _)| *seq);
        let n = entries.len();
        for (_, key, rec) in entries {
            self.enqueue(key, rec);
        }
        tracing::info!(pending = n, "outbox loaded");
        Ok(())
    }

    /// Called once the entry is durable. Safe from any thread.
    pub fn enqueue(self: &Arc<Self>, key: Vec<u8>, rec: OutboxRecord) {
        self.depth.fetch_add(1, Ordering::Relaxed);
        let storage_key = key;
        let key = rec.ordering_key.clone();
        let start_worker = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let q = queues.entry(key.clone()).or_default();
            q.push_back((storage_key, rec));
            q.len() == 1
        };
        if start_worker {
            let handle = self
                .runtime
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            // Before `load_and_start` there is no runtime yet; that load picks the entry up.
            if let Some(h) = handle {
                h.spawn(self.clone().drain(key));
            }
        }
    }

    /// Delivers the queue of one ordering key, front to back, until it is empty.
    async fn drain(self: Arc<Self>, key: String) {
        loop {
            let front = {
                let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                queues.get(&key).and_then(|q| q.front().cloned())
            };
            let Some((storage_key, rec)) = front else {
                return;
            };
            if !self.deliver_until_done(&rec).await {
                return;
            }
            let mut batch = WriteBatch::new();
            batch.delete(storage_key);
            // Losing this delete in a crash only means one more (idempotent) delivery.
            let _ = self.committer.submit(batch);
            self.depth.fetch_sub(1, Ordering::Relaxed);
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(q) = queues.get_mut(&key) {
                q.pop_front();
                if q.is_empty() {
                    queues.remove(&key);
                    return;
                }
            }
        }
    }

    /// Retries with exponential backoff until delivered or expired. False when stopping.
    async fn deliver_until_done(&self, rec: &OutboxRecord) -> bool {
        let mut backoff = self.config.first_backoff;
        let mut attempt = 0u32;
        loop {
            if self.stopped.load(Ordering::Relaxed) {
                return false;
            }
            attempt += 1;
            let outcome = {
                let _permit = self.semaphore.acquire().await;
                self.attempt(rec).await
            };
            let wait = match outcome {
                Attempt::Delivered => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Attempt::Retry(after) => after,
            };
            self.failed_attempts.fetch_add(1, Ordering::Relaxed);
            let age_ms = now_ms().saturating_sub(rec.created_ms);
            if age_ms > self.config.max_age.as_millis() as u64 {
                tracing::error!(id = %rec.id, url = %rec.url, attempt, "delivery expired; dropping it");
                return true;
            }
            let delay = wait.unwrap_or(backoff).min(self.config.max_backoff);
            tracing::debug!(id = %rec.id, url = %rec.url, attempt, ?delay, "delivery failed; retrying");
            tokio::time::sleep(delay).await;
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    async fn attempt(&self, rec: &OutboxRecord) -> Attempt {
        let mut req = self
            .client
            .post(&rec.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &rec.id)
            .body(rec.body.clone());
        if let Some(secret) = &self.config.signing_secret {
            req = req.header("x-agora-signature", signature(secret, rec.body.as_bytes()));
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Attempt::Delivered,
            Ok(resp) => {
                let after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                tracing::debug!(url = %rec.url, status = %resp.status(), "delivery refused");
                Attempt::Retry(after)
            }
            Err(e) => {
                tracing::debug!(url = %rec.url, error = %e, "delivery failed");
                Attempt::Retry(None)
            }
        }
    }
}

enum Attempt {
    Delivered,
    Retry(Option<Duration>),
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, as GitHub signs its webhooks.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
