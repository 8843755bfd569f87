//! The outbox: messages for drivers and callback URLs, committed with the change that caused
//! them, then delivered at least once.
//!
//! Each entry keeps its idempotency key for life, so every retry carries the same
//! `Idempotency-Key`. Entries that share an ordering key (one process, one community's events)
//! are delivered strictly one after another; different keys go out in parallel, bounded by a
//! semaphore. A delivered entry is deleted; a node restart reloads whatever is left. Backoff
//! and expiry read the runtime's clock.
//!
//! Also the HTTP helpers every outbound caller needs and should share: the HMAC-SHA256 body
//! signature ([`signature`], [`hmac_sha256_hex`], [`verify_hmac_sha256`]), `Retry-After`
//! ([`retry_after`]: delta-seconds and all three HTTP-date forms, capped) and
//! [`exponential_backoff`] (with optional [`jittered`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_storage::{
    decode_record, encode_record, Committer, Engine, RecordError, StorageError, WriteBatch,
};
use hmac::{Hmac, Mac};
use hyper::body::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::keys;
use crate::transport::{Proxies, Transport};
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
    clock: Arc<dyn Clock>,
    transport: Transport,
    queues: Mutex<HashMap<String, Queue>>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    semaphore: Arc<Semaphore>,
    depth: AtomicI64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    stopped: AtomicBool,
}

impl Outbox {
    pub fn new(config: DeliveryConfig, committer: Committer, clock: Arc<dyn Clock>) -> Self {
        Self {
            transport: Transport::new(config.timeout, Proxies::FromEnv),
            semaphore: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            committer,
            clock,
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
        let body = Bytes::from(rec.body.clone());
        let mut attempt = 0u32;
        loop {
            if self.stopped.load(Ordering::Relaxed) {
                return false;
            }
            attempt += 1;
            let outcome = {
                let _permit = self.semaphore.acquire().await;
                self.attempt(rec, &body).await
            };
            let wait = match outcome {
                Attempt::Delivered => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Attempt::Retry(after) => after,
            };
            self.failed_attempts.fetch_add(1, Ordering::Relaxed);
            let age_ms = self.clock.now_ms().saturating_sub(rec.created_ms);
            if age_ms > self.config.max_age.as_millis() as u64 {
                tracing::error!(id = %rec.id, url = %rec.url, attempt, "delivery expired; dropping it");
                return true;
            }
            let backoff = exponential_backoff(
                self.config.first_backoff,
                self.config.max_backoff,
                attempt - 1,
            );
            let delay = wait.unwrap_or(backoff).min(self.config.max_backoff);
            tracing::debug!(id = %rec.id, url = %rec.url, attempt, ?delay, "delivery failed; retrying");
            self.clock.sleep(delay).await;
        }
    }

    async fn attempt(&self, rec: &OutboxRecord, body: &Bytes) -> Attempt {
        let signature = self
            .config
            .signing_secret
            .as_ref()
            .map(|secret| signature(secret, rec.body.as_bytes()));
        let mut headers = vec![("idempotency-key", rec.id.as_str())];
        if let Some(s) = &signature {
            headers.push(("x-agora-signature", s.as_str()));
        }
        match self.transport.post(&rec.url, &headers, body.clone()).await {
            Ok(a) if a.status.is_success() => Attempt::Delivered,
            Ok(a) => {
                let after = a
                    .retry_after
                    .and_then(|v| retry_after(&v, self.clock.now_ms(), self.config.max_backoff));
                tracing::debug!(url = %rec.url, status = %a.status, "delivery refused");
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

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed first): `new_from_slice` cannot fail.
    Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

/// `hex(HMAC-SHA256(secret, body))`, lowercase: how GitHub, Discourse and Open Collective sign
/// webhooks, and what [`signature`] carries.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`: the `X-Agora-Signature` of a delivery, in the
/// form GitHub's `X-Hub-Signature-256` uses.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
}

/// Whether `provided` (a header value: `<prefix><hex>`, e.g. `sha256=...` with prefix
/// `sha256=`) is the HMAC-SHA256 of `body` under `secret`. Compared in constant time; a missing
/// header, another prefix or bad hex is a mismatch.
pub fn verify_hmac_sha256(
    secret: &[u8],
    body: &[u8],
    provided: Option<&str>,
    prefix: &str,
) -> bool {
    let Some(hex_sig) = provided.and_then(|p| p.trim().strip_prefix(prefix)) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

/// How long a `Retry-After` value asks to wait, at most `cap`: delay-seconds (`120`) or an
/// HTTP-date in any of the three forms RFC 9110 §5.6.7 says a recipient must accept
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
/// `Sun Nov  6 08:49:37 1994`), measured from `now_ms`. A date in the past is zero; anything
/// else (`1.5`, `-1`, garbage) is `None`, read as no header.
pub fn retry_after(value: &str, now_ms: u64, cap: Duration) -> Option<Duration> {
    let v = value.trim();
    let wait = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is still "very long": the cap decides.
        Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = http_date_ms(v, now_ms)?;
        Duration::from_millis(at.saturating_sub(now_ms))
    };
    Some(wait.min(cap))
}

/// An HTTP-date as epoch milliseconds (`now_ms` places a two-digit rfc850 year).
fn http_date_ms(v: &str, now_ms: u64) -> Option<u64> {
    use time::format_description::well_known::Rfc2822;
    use time::{Date, Month, OffsetDateTime, Time};

    fn month(m: &str) -> Option<Month> {
        const NAMES: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let i = NAMES.iter().position(|n| *n == m)?;
        Month::try_from(u8::try_from(i + 1).ok()?).ok()
    }
    fn clock_time(t: &str) -> Option<Time> {
        let mut parts = t.split(':').map(|p| p.parse::<u8>().ok());
        let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
        if parts.next().is_some() {
            return None;
        }
        Time::from_hms(h, m, s).ok()
    }
    fn epoch_ms(date: Date, t: Time) -> Option<u64> {
        let ts = date.with_time(t).assume_utc().unix_timestamp();
        u64::try_from(ts).ok()?.checked_mul(1000)
    }

    // IMF-fixdate (the only form senders may generate) is RFC 2822 with the GMT zone.
    if v.ends_with(" GMT") && v.as_bytes().get(3) == Some(&b',') {
        let t = OffsetDateTime::parse(v, &Rfc2822).ok()?;
        return u64::try_from(t.unix_timestamp()).ok()?.checked_mul(1000);
    }
    // rfc850-date: `Sunday, 06-Nov-94 08:49:37 GMT`.
    if let Some((_, rest)) = v.split_once(", ") {
        let mut parts = rest.split(' ');
        let (date, t, zone) = (parts.next()?, parts.next()?, parts.next()?);
        if zone != "GMT" || parts.next().is_some() {
            return None;
        }
        let mut d = date.split('-');
        let (day, mon, yy) = (d.next()?, d.next()?, d.next()?);
        if yy.len() != 2 || d.next().is_some() {
            return None;
        }
        let yy: i32 = yy.parse().ok()?;
        let now_year = OffsetDateTime::from_unix_timestamp(i64::try_from(now_ms / 1000).ok()?)
            .ok()?
            .year();
        // RFC 9110: a year more than 50 years ahead is the last such year in the past.
        let mut year = now_year - now_year.rem_euclid(100) + yy;
        if year > now_year + 50 {
            year -= 100;
        }
        let date = Date::from_calendar_date(year, month(mon)?, day.parse().ok()?).ok()?;
        return epoch_ms(date, clock_time(t)?);
    }
    // asctime-date: `Sun Nov  6 08:49:37 1994`.
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, mon, day, t, year] = parts.as_slice() else {
        return None;
    };
    let date = Date::from_calendar_date(year.parse().ok()?, month(mon)?, day.parse().ok()?).ok()?;
    epoch_ms(date, clock_time(t)?)
}

/// `first · 2^attempt`, at most `max` (attempt 0 waits `first`).
pub fn exponential_backoff(first: Duration, max: Duration, attempt: u32) -> Duration {
    first.saturating_mul(1u32 << attempt.min(31)).min(max)
}

/// A random wait between half of `d` and `d` ("equal jitter"): callers that failed together do
/// not all retry together, and none retries sooner than half its backoff.
pub fn jittered(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
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
        // GitHub's documented example for X-Hub-Signature-256.
        assert_eq!(
            hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        // RFC 4231 test case 6: a key longer than the block size is hashed first.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signatures_verify_only_with_the_right_secret_body_and_prefix() {
        let body = b"{\"a\":1}";
        let good = signature(b"s", body);
        assert!(verify_hmac_sha256(b"s", body, Some(&good), "sha256="));
        assert!(verify_hmac_sha256(
            b"s",
            body,
            Some(&format!(" {good} ")),
            "sha256="
        ));
        assert!(!verify_hmac_sha256(b"t", body, Some(&good), "sha256="));
        assert!(!verify_hmac_sha256(b"s", b"{ }", Some(&good), "sha256="));
        assert!(!verify_hmac_sha256(b"s", body, None, "sha256="));
        assert!(!verify_hmac_sha256(b"s", body, Some(&good[7..]), "sha256="));
        assert!(!verify_hmac_sha256(
            b"s",
            body,
            Some("sha256=zz"),
            "sha256="
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_every_http_date_form_and_is_capped() {
        let cap = Duration::from_secs(3600);
        // 1994-11-06T08:49:37Z.
        let at = 784_111_777_000;
        assert_eq!(retry_after("120", at, cap), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", at, cap), Some(Duration::ZERO));
        assert_eq!(retry_after("99999999999999999999999", at, cap), Some(cap));
        for date in [
            "Sun, 06 Nov 1994 08:51:37 GMT",
            "Sunday, 06-Nov-94 08:51:37 GMT",
            "Sun Nov  6 08:51:37 1994",
        ] {
            assert_eq!(
                retry_after(date, at, cap),
                Some(Duration::from_secs(120)),
                "{date}"
            );
        }
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", at, cap),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(
            retry_after("Mon, 07 Nov 1994 08:49:37 GMT", at, cap),
            Some(cap),
            "a day away, capped"
        );
        for bad in [
            "",
            "1.5",
            "-1",
            "soon",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sunday, 06-Foo-94 08:51:37 GMT",
        ] {
            assert_eq!(retry_after(bad, at, cap), None, "{bad:?}");
        }
        // A two-digit year more than 50 years ahead is in the past century; one less is not.
        let in_2030 = 1_900_000_000_000;
        assert_eq!(
            http_date_ms("Monday, 01-Jan-90 00:00:10 GMT", in_2030),
            Some(631_152_010_000)
        );
        assert_eq!(
            http_date_ms("Saturday, 01-Jan-50 00:00:00 GMT", in_2030),
            Some(2_524_608_000_000)
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_within_half() {
        let (first, max) = (Duration::from_millis(250), Duration::from_secs(30));
        assert_eq!(exponential_backoff(first, max, 0), first);
        assert_eq!(exponential_backoff(first, max, 3), Duration::from_secs(2));
        assert_eq!(exponential_backoff(first, max, 7), max);
        assert_eq!(exponential_backoff(first, max, u32::MAX), max);
        for _ in 0..100 {
            let j = jittered(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1000));
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
