//! The courier: delivers durable actor messages (see [`crate::messages`]) from the node that
//! serves the sender's partition to the receiver, wherever it lives, and removes each sender's
//! entry once the receiver's handling is durable. It also sweeps old receipts.
//!
//! Messages from one sender to one receiver form a queue, delivered strictly one after another
//! in commit order: a message is sent only once the one before it was handled (or expired).
//! Different pairs go out in parallel, bounded by a semaphore. A failed attempt (receiver
//! overloaded, not reachable, its node moving) is retried with exponential backoff read from
//! the runtime's clock.
//!
//! **Retention.** Redelivery happens only while the sender's entry exists, and an entry never
//! outlives the delivery window (`MessageConfig::max_age` after it was sent): past it the
//! courier drops it, and a receiver refuses it as expired unless its receipt says it was
//! handled. So a receipt is needed for at most the window; it is kept for the window plus
//! [`RECEIPT_MARGIN`] (clock differences between the nodes that sent and received it) and
//! then swept. Confirming removals to receivers instead would cost a second round trip and
//! commit per message, and a confirmation lost in a crash would keep its receipt forever.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use agora_storage::{Engine, StorageError, WriteBatch};
use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::cluster::rpc::{RpcError, RpcKind};
use crate::fault::{self, Fault};
use crate::keys;
use crate::messages::{Delivery, MessageRecord, Outcome};
use crate::node::{AskError, Runtime, Shared};
use crate::outbox::exponential_backoff;
use crate::PARTITIONS;

/// Receipts are kept this long past the delivery window: more than any clock difference
/// between the nodes involved, so no node can still deliver a message whose receipt is gone.
pub const RECEIPT_MARGIN: Duration = Duration::from_secs(3600);
/// How often expired receipts are swept (on the runtime's clock).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Receipts deleted per batch by the sweeper.
const SWEEP_BATCH: usize = 1000;

/// How durable actor messages are delivered and retried.
#[derive(Debug, Clone)]
pub struct MessageConfig {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// The delivery window: a message not handled this long after it was sent is dropped (and
    /// logged) instead of retried again, and its receiver refuses it as expired.
    pub max_age: Duration,
    /// Cluster mode: how long one attempt waits for the receiver's node (runtime clock).
    pub timeout: Duration,
    /// Sender/receiver pairs delivered at once.
    pub concurrency: usize,
}

impl Default for MessageConfig {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_age: Duration::from_secs(7 * 24 * 3600),
            timeout: Duration::from_secs(10),
            concurrency: 64,
        }
    }
}

impl MessageConfig {
    pub(crate) fn max_age_ms(&self) -> u64 {
        u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Hands one message to the local activation of a receiver kind; answers once the receiver's
/// commit is durable.
pub(crate) type DeliverFn =
    Arc<dyn Fn(String, Delivery) -> BoxFuture<'static, Result<Outcome, AskError>> + Send + Sync>;

/// What the courier needs to know about a receiver kind.
#[derive(Clone)]
pub(crate) struct KindRoute {
    pub partition: fn(&str) -> u32,
    pub deliver: DeliverFn,
}

pub(crate) struct CourierStats {
    pub pending: i64,
    pub delivered: u64,
    pub duplicates: u64,
    pub expired: u64,
    pub failed_attempts: u64,
}

/// One sender/receiver pair's undelivered messages, with their storage keys, in commit order.
type Queue = VecDeque<(Vec<u8>, MessageRecord)>;

#[derive(Default)]
struct Queues {
    by_pair: HashMap<String, Queue>,
    /// Every storage key queued, so reloading a partition never queues a message twice.
    keys: HashSet<Vec<u8>>,
    /// Pairs a worker is draining: never two workers on one pair (order, and one removal).
    draining: HashSet<String>,
}

enum Done {
    Delivered(Outcome),
    /// The sender's partition is served elsewhere now; its new owner delivers.
    Moved,
    /// Expired on the sender's side without an answer from the receiver.
    Expired,
    Stopping,
}

pub(crate) struct Courier {
    config: MessageConfig,
    clock: Arc<dyn Clock>,
    shared: OnceLock<Weak<Shared>>,
    queues: Mutex<Queues>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    semaphore: Arc<Semaphore>,
    depth: AtomicI64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    expired: AtomicU64,
    failed_attempts: AtomicU64,
    stopped: AtomicBool,
}

impl Courier {
    pub fn new(config: MessageConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            clock,
            shared: OnceLock::new(),
            queues: Mutex::new(Queues::default()),
            runtime: Mutex::new(None),
            depth: AtomicI64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    pub fn stats(&self) -> CourierStats {
        CourierStats {
            pending: self.depth.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
        }
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the pending messages of partition `p`, in commit order, and moves `next_seq` past
    /// them so this node's own messages sort after them.
    fn read_partition(
        engine: &Arc<dyn Engine>,
        p: u32,
        next_seq: &AtomicU64,
    ) -> Result<Vec<(u64, Vec<u8>, MessageRecord)>, StorageError> {
        let mut out = Vec::new();
        for (k, v) in engine.scan_prefix(&keys::section(p, keys::MESSAGE))? {
            let Some(seq) = keys::parse_message(&k) else {
                continue;
            };
            next_seq.fetch_max(seq + 1, Ordering::AcqRel);
            match MessageRecord::decode(&v) {
                Ok(rec) => out.push((seq, k, rec)),
                Err(e) => {
                    tracing::error!(seq, error = %e, "unreadable actor message left in place")
                }
            }
        }
        Ok(out)
    }

    /// Queues the pending messages of partition `p` (just taken over).
    pub fn load_partition(
        self: &Arc<Self>,
        engine: &Arc<dyn Engine>,
        p: u32,
        next_seq: &AtomicU64,
    ) -> Result<usize, StorageError> {
        let entries = Self::read_partition(engine, p, next_seq)?;
        let n = entries.len();
        for (_, k, rec) in entries {
            self.enqueue(k, rec);
        }
        Ok(n)
    }

    /// Starts delivering (and sweeping receipts); with `load_all`, every pending message is
    /// queued first, in commit order (a cluster node loads partitions as it takes them over).
    pub fn load_and_start(
        self: &Arc<Self>,
        shared: Weak<Shared>,
        engine: &Arc<dyn Engine>,
        next_seq: &AtomicU64,
        load_all: bool,
    ) -> Result<(), StorageError> {
        let _ = self.shared.set(shared);
        let handle = tokio::runtime::Handle::current();
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.clone());
        let mut entries = Vec::new();
        if load_all {
            for p in 0..PARTITIONS {
                entries.extend(Self::read_partition(engine, p, next_seq)?);
            }
        }
        entries.sort_by_key(|(seq, _, _)| *seq);
        let n = entries.len();
        for (_, k, rec) in entries {
            self.enqueue(k, rec);
        }
        // Messages committed before the start were queued without a runtime to drain them.
        let idle: Vec<String> = {
            let mut q = self.lock();
            let pairs: Vec<String> = q.by_pair.keys().cloned().collect();
            pairs
                .into_iter()
                .filter(|p| q.draining.insert(p.clone()))
                .collect()
        };
        for pair in idle {
            handle.spawn(self.clone().drain(pair));
        }
        handle.spawn(self.clone().sweep_forever());
        tracing::info!(pending = n, "actor messages loaded");
        Ok(())
    }

    /// Queues a message once its sender's commit is durable. Safe from any thread.
    pub fn enqueue(self: &Arc<Self>, key: Vec<u8>, rec: MessageRecord) {
        let pair = rec.ordering_key();
        // Before `load_and_start` there is no runtime yet; the start drains every queue.
        let handle = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let start_worker = {
            let mut q = self.lock();
            if !q.keys.insert(key.clone()) {
                return;
            }
            q.by_pair
                .entry(pair.clone())
                .or_default()
                .push_back((key, rec));
            self.depth.fetch_add(1, Ordering::Relaxed);
            handle.is_some() && q.draining.insert(pair.clone())
        };
        if let (true, Some(h)) = (start_worker, handle) {
            h.spawn(self.clone().drain(pair));
        }
    }

    /// Delivers one pair's queue front to back until it is empty.
    async fn drain(self: Arc<Self>, pair: String) {
        loop {
            let front = {
                let mut q = self.lock();
                let front = q.by_pair.get(&pair).and_then(|q| q.front().cloned());
                if front.is_none() {
                    q.by_pair.remove(&pair);
                    q.draining.remove(&pair);
                }
                front
            };
            let Some((storage_key, rec)) = front else {
                return;
            };
            let partition = keys::partition_of_key(&storage_key).unwrap_or(0);
            match self.deliver_until_done(partition, &rec).await {
                Done::Stopping => return,
                Done::Moved => {
                    // The new owner loaded these from the replica; this node forgets them.
                    let mut q = self.lock();
                    q.draining.remove(&pair);
                    if let Some(queue) = q.by_pair.remove(&pair) {
                        self.depth.fetch_sub(queue.len() as i64, Ordering::Relaxed);
                        for (k, _) in queue {
                            q.keys.remove(&k);
                        }
                    }
                    return;
                }
                Done::Delivered(outcome) => {
                    fault::check(Fault::BeforeSenderRemoval);
                    match outcome {
                        Outcome::Handled => {
                            self.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Duplicate => {
                            self.duplicates.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(id = %rec.id, "message was handled before; removing it");
                        }
                        Outcome::Expired => {
                            self.expired.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(id = %rec.id, from = %rec.from_key, to = %rec.to_key, kind = %rec.message_kind, "actor message refused as expired; dropping it");
                        }
                    }
                    self.remove(storage_key.clone());
                }
                Done::Expired => {
                    self.expired.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(id = %rec.id, from = %rec.from_key, to = %rec.to_key, kind = %rec.message_kind, "actor message undeliverable within its window; dropping it");
                    self.remove(storage_key.clone());
                }
            }
            let mut q = self.lock();
            q.keys.remove(&storage_key);
            self.depth.fetch_sub(1, Ordering::Relaxed);
            if let Some(queue) = q.by_pair.get_mut(&pair) {
                queue.pop_front();
                if queue.is_empty() {
                    q.by_pair.remove(&pair);
                    q.draining.remove(&pair);
                    return;
                }
            }
        }
    }

    /// Deletes the sender's entry. Losing this delete (a crash, a lease lost in a cluster)
    /// only means one more delivery, which the receiver's receipt turns into a no-op.
    fn remove(&self, storage_key: Vec<u8>) {
        let Some(shared) = self.shared.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut batch = WriteBatch::new();
        batch.delete(storage_key);
        if let Err(e) = shared.committer.submit(batch) {
            tracing::warn!(error = %e, "delivered actor message not removed; it will be delivered again");
        }
    }

    /// Retries with backoff until the receiver answers, the message expires, or the sender's
    /// partition moves away.
    async fn deliver_until_done(&self, partition: u32, rec: &MessageRecord) -> Done {
        fault::check(Fault::AfterSendCommit);
        let mut attempt = 0u32;
        loop {
            if self.stopped.load(Ordering::Relaxed) {
                return Done::Stopping;
            }
            let Some(shared) = self.shared.get().and_then(Weak::upgrade) else {
                return Done::Stopping;
            };
            if let Some(c) = &shared.cluster {
                // Not "serving": a takeover queues the partition's messages before it serves.
                if !c.holds_lease(partition) {
                    return Done::Moved;
                }
            }
            // Past the window a receiver refuses it anyway (unless it was handled): stop
            // retrying one that cannot be reached.
            if self.clock.now_ms() > rec.sent_ms.saturating_add(self.config.max_age_ms()) {
                return Done::Expired;
            }
            let result = {
                let _permit = self.semaphore.acquire().await;
                self.attempt(&shared, rec).await
            };
            drop(shared);
            match result {
                Ok(outcome) => return Done::Delivered(outcome),
                Err(e) => {
                    self.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    let delay = exponential_backoff(
                        self.config.first_backoff,
                        self.config.max_backoff,
                        attempt,
                    );
                    attempt = attempt.saturating_add(1);
                    // Warn at attempts 1, 2, 4, 8...: loud enough, never a flood.
                    if attempt.is_power_of_two() {
                        tracing::warn!(id = %rec.id, to = %rec.to_key, attempt, error = %e, "actor message still not delivered; retrying");
                    } else {
                        tracing::debug!(id = %rec.id, to = %rec.to_key, attempt, error = %e, ?delay, "actor message not delivered; retrying");
                    }
                    self.clock.sleep(delay).await;
                }
            }
        }
    }

    /// One attempt: to the receiver's activation here, or over RPC to the node serving it.
    async fn attempt(
        &self,
        shared: &Arc<Shared>,
        rec: &MessageRecord,
    ) -> Result<Outcome, AskError> {
        let route = shared
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(rec.to_kind.as_str())
            .cloned()
            .ok_or_else(|| {
                AskError::Internal(format!("actor kind {} is not registered", rec.to_kind))
            })?;
        let partition = (route.partition)(&rec.to_key);
        let rt = Runtime {
            shared: shared.clone(),
        };
        let Some(node) = rt.route(partition)? else {
            return (route.deliver)(rec.to_key.clone(), rec.delivery()).await;
        };
        let Some(c) = &shared.cluster else {
            return Err(AskError::Internal("routed without a cluster".into()));
        };
        let payload = rec
            .encode()
            .map_err(|e| AskError::Internal(e.to_string()))?;
        let reply = c
            .rpc
            .call_kind(
                &c.client,
                &node,
                RpcKind::Message,
                payload,
                self.config.timeout,
            )
            .await
            .map_err(|e| match e {
                RpcError::NotListening(_) | RpcError::Redis(_) => AskError::NotOwner(partition),
                e => AskError::Unavailable(e.to_string()),
            })?;
        rmp_serde::from_slice::<Result<Outcome, AskError>>(&reply)
            .map_err(|e| AskError::Internal(format!("unreadable delivery reply: {e}")))?
    }

    async fn sweep_forever(self: Arc<Self>) {
        loop {
            self.clock.sleep(SWEEP_EVERY).await;
            if self.stopped.load(Ordering::Relaxed) {
                return;
            }
            let Some(shared) = self.shared.get().and_then(Weak::upgrade) else {
                return;
            };
            match sweep_receipts(&shared) {
                Ok(0) => {}
                Ok(n) => tracing::info!(receipts = n, "expired message receipts swept"),
                Err(e) => tracing::warn!(error = %e, "sweeping message receipts failed"),
            }
        }
    }
}

/// Deletes the receipts of messages sent longer ago than the delivery window plus
/// [`RECEIPT_MARGIN`], in every partition this node serves. Answers how many.
pub(crate) fn sweep_receipts(shared: &Shared) -> Result<usize, StorageError> {
    let keep = shared
        .config
        .messages
        .max_age_ms()
        .saturating_add(RECEIPT_MARGIN.as_millis() as u64);
    let cutoff = shared.clock.now_ms().saturating_sub(keep);
    let engine = shared.engine();
    let mut swept = 0;
    for p in 0..PARTITIONS {
        if let Some(c) = &shared.cluster {
            if c.serving(p) == crate::cluster::Serving::No {
                continue;
            }
        }
        let section = keys::section(p, keys::RECEIPT);
        let mut from = section.clone();
        loop {
            let page = engine.scan_from(&section, &from, SWEEP_BATCH)?;
            let full = page.len() == SWEEP_BATCH;
            let mut batch = WriteBatch::new();
            let mut reached_live = false;
            for (k, _) in page {
                // Receipts sort by send time: the first one still needed ends the sweep.
                match keys::parse_receipt(&k) {
                    Some(sent) if sent >= cutoff => {
                        reached_live = true;
                        break;
                    }
                    _ => {}
                }
                from = k.clone();
                from.push(0);
                batch.delete(k);
            }
            swept += batch.len();
            if !batch.is_empty() {
                shared.committer.submit(batch)?;
            }
            if reached_live || !full {
                break;
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use std::sync::Condvar;

    use agora_storage::{MemEngine, Pairs};
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::clock::ManualClock;
    use crate::effects::{Effects, Reminder, Stored};
    use crate::messages::ActorMessage;
    use crate::node::{Message, RuntimeConfig, VirtualActor};
    use crate::ActorId;

    #[derive(Serialize, Deserialize)]
    struct Note {
        n: u64,
    }
    impl ActorMessage for Note {
        const KIND: &'static str = "note";
    }

    /// Keeps every note it handled, in order.
    struct Tally(Vec<u64>);

    impl VirtualActor for Tally {
        const KIND: &'static str = "tally";
        type Env = ();

        fn restore(_: &ActorId, _: &(), stored: Stored) -> Result<Self, String> {
            match stored.state {
                Some(b) => serde_json::from_slice(&b)
                    .map(Tally)
                    .map_err(|e| e.to_string()),
                None => Ok(Tally(Vec::new())),
            }
        }
        fn on_reminder(&mut self, _: &(), _: Reminder, _: &mut Effects) {}
        fn on_message(&mut self, _: &(), msg: Delivery, fx: &mut Effects) {
            if let Ok(note) = msg.decode::<Note>() {
                self.0.push(note.n);
                fx.save_state(serde_json::to_vec(&self.0).unwrap());
            }
        }
    }

    /// Reads the notes handled so far.
    impl Message<Tally> for () {
        type Reply = Vec<u64>;
        fn handle(self, t: &mut Tally, _: &(), _: &mut Effects) -> Vec<u64> {
            t.0.clone()
        }
    }

    /// An engine whose writes can be held back, to keep commits in flight.
    #[derive(Default)]
    struct Gated {
        inner: MemEngine,
        closed: Mutex<bool>,
        opened: Condvar,
    }

    impl Gated {
        fn set(&self, closed: bool) {
            *self.closed.lock().unwrap() = closed;
            self.opened.notify_all();
        }
    }

    impl Engine for Gated {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            self.inner.get(key)
        }
        fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StorageError> {
            self.inner.scan_prefix(prefix)
        }
        fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            self.inner.last_with_prefix(prefix)
        }
        fn scan_from(&self, p: &[u8], from: &[u8], limit: usize) -> Result<Pairs, StorageError> {
            self.inner.scan_from(p, from, limit)
        }
        fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
            let mut closed = self.closed.lock().unwrap();
            while *closed {
                closed = self.opened.wait(closed).unwrap();
            }
            drop(closed);
            self.inner.apply(batch)
        }
        fn flush(&self) -> Result<(), StorageError> {
            Ok(())
        }
        fn size_on_disk(&self) -> Option<u64> {
            None
        }
    }

    fn message(id: &str, n: u64, sent_ms: u64) -> Delivery {
        let payload = agora_storage::encode_record(Note::KIND, 1, &Note { n }).unwrap();
        MessageRecord {
            id: id.into(),
            from_kind: "sender".into(),
            from_key: "s".into(),
            to_kind: Tally::KIND.into(),
            to_key: "t".into(),
            message_kind: Note::KIND.into(),
            sent_ms,
            payload,
        }
        .delivery()
    }

    fn start(engine: Arc<dyn Engine>, clock: Arc<ManualClock>) -> Runtime {
        let rt = Runtime::start(RuntimeConfig::default(), engine, clock).unwrap();
        rt.register::<Tally>(());
        rt
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_is_handled_once_however_often_it_is_delivered() {
        let engine = Arc::new(Gated::default());
        let clock = Arc::new(ManualClock::new(1_000_000));
        let rt = start(engine.clone(), clock.clone());
        let now = clock.now_ms();

        assert_eq!(
            rt.deliver_here::<Tally>("t", message("m1", 1, now)).await,
            Ok(Outcome::Handled)
        );
        // Again, from storage's receipt.
        assert_eq!(
            rt.deliver_here::<Tally>("t", message("m1", 1, now)).await,
            Ok(Outcome::Duplicate)
        );

        // Twice while the first handling's commit is still held back from storage: the
        // activation remembers what it handled until the receipt is durable.
        engine.set(true);
        let submitted = rt.shared.committer.last_submitted();
        let first = tokio::spawn({
            let rt = rt.clone();
            async move { rt.deliver_here::<Tally>("t", message("m2", 2, now)).await }
        });
        // The first handling has committed (held back) before the second is sent.
        while rt.shared.committer.last_submitted() == submitted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let second = tokio::spawn({
            let rt = rt.clone();
            async move { rt.deliver_here::<Tally>("t", message("m2", 2, now)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !first.is_finished() && !second.is_finished(),
            "nothing is durable yet"
        );
        engine.set(false);
        assert_eq!(first.await.unwrap(), Ok(Outcome::Handled));
        assert_eq!(second.await.unwrap(), Ok(Outcome::Duplicate));

        // Past the delivery window and never handled: refused, the handler does not run.
        let window = RuntimeConfig::default().messages.max_age_ms();
        clock.advance(window + 1);
        assert_eq!(
            rt.deliver_here::<Tally>("t", message("m3", 3, now)).await,
            Ok(Outcome::Expired)
        );
        // One handled before stays a duplicate (its receipt outlives the window).
        assert_eq!(
            rt.deliver_here::<Tally>("t", message("m1", 1, now)).await,
            Ok(Outcome::Duplicate)
        );
        assert_eq!(rt.ask::<Tally, _>("t", ()).await.unwrap(), vec![1, 2]);
        rt.shutdown();

        // A new life of the node (same storage) still knows what was handled...
        let rt = start(engine.clone(), clock.clone());
        assert_eq!(
            rt.deliver_here::<Tally>("t", message("m2", 2, now)).await,
            Ok(Outcome::Duplicate)
        );
        // ...until the receipts are swept, once no sender may deliver them any more.
        assert_eq!(
            rt.sweep_receipts().unwrap(),
            0,
            "not yet: within the margin"
        );
        clock.advance(RECEIPT_MARGIN.as_millis() as u64);
        assert_eq!(rt.sweep_receipts().unwrap(), 2);
        assert_eq!(rt.ask::<Tally, _>("t", ()).await.unwrap(), vec![1, 2]);
        rt.shutdown();
        assert!(engine
            .inner
            .scan_prefix(&keys::section(
                crate::node::actor_id::<Tally>("t").partition,
                keys::RECEIPT
            ))
            .unwrap()
            .is_empty());
    }
}
