//! Group commit: one thread applies every queued batch, flushes once, then acknowledges all.
//!
//! Writers never flush themselves. They submit a batch and get a [`CommitSeq`]; the batch is
//! durable once [`Committer::durable`] reaches it. Sequence numbers are handed out under the
//! same lock as the channel send, so the queue is in sequence order and the durable watermark
//! only ever covers a contiguous prefix of submissions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::watch;

use crate::engine::{Engine, WriteBatch};
use crate::StorageError;

/// Position of a submitted batch in the commit order. 0 means "nothing to wait for".
pub type CommitSeq = u64;

/// Work to run on the committer thread once a batch is flushed (or failed).
pub type OnDurable = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// Somewhere every batch must reach before it counts (the cluster's replica in Redis). Runs on
/// the committer thread, once per group, before the engine sees the group.
pub trait Replicator: Send + Sync {
    /// An error rejects every replicated batch of the group: none is applied, their callbacks
    /// and waiters get [`StorageError::Rejected`], and the commit epoch moves on.
    fn replicate(&self, batch: &WriteBatch) -> Result<(), String>;
}

/// Rejected sequences remembered for waiters; a waiter looks within moments of rejection.
const REJECTED_KEPT: usize = 100_000;

struct Request {
    seq: CommitSeq,
    batch: WriteBatch,
    on_durable: Option<OnDurable>,
    /// The commit epoch the batch was built in (`None`: valid in any epoch).
    epoch: Option<u64>,
    /// Whether the batch goes through the replicator (imports from the replica do not).
    replicate: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Watermark {
    durable: CommitSeq,
    failed: bool,
}

struct Sender {
    next_seq: CommitSeq,
    tx: Option<mpsc::Sender<Request>>,
}

struct Inner {
    engine: Arc<dyn Engine>,
    replicator: Option<Arc<dyn Replicator>>,
    /// Moves on whenever a replicated group is rejected: batches built in an older epoch may
    /// rest on a rejected change, so they are rejected too.
    epoch: AtomicU64,
    rejected: Mutex<std::collections::BTreeMap<CommitSeq, String>>,
    sender: Mutex<Sender>,
    watermark: watch::Sender<Watermark>,
    failure: Mutex<Option<String>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    flushes: AtomicU64,
    batches: AtomicU64,
    /// Keys written or removed: per request, this is what the commit path's cost scales with.
    writes: AtomicU64,
    queued: AtomicU64,
    last_flush_us: AtomicU64,
    /// Time spent applying groups and waiting on flushes: where a write's commit time goes.
    apply_ns: AtomicU64,
    flush_ns: AtomicU64,
    /// Held while a group is applied and flushed, and by [`Committer::paused`]: whoever holds
    /// it sees storage between two whole groups.
    gate: Mutex<()>,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct CommitterStats {
    pub flushes: u64,
    pub batches: u64,
    pub writes: u64,
    pub queued: u64,
    pub durable: CommitSeq,
    pub last_flush_us: u64,
    pub apply_ns: u64,
    pub flush_ns: u64,
}

#[derive(Clone)]
pub struct Committer {
    inner: Arc<Inner>,
}

/// How often sled is fsynced when a replica holds the durable copy.
const REPLICA_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Most batches merged into one flush; bounds the latency a huge burst adds to its first writer.
const MAX_GROUP: usize = 4096;

impl Committer {
    pub fn start(engine: Arc<dyn Engine>) -> Committer {
        Self::start_with(engine, None)
    }

    /// A committer whose batches must first reach `replicator`.
    pub fn start_with(
        engine: Arc<dyn Engine>,
        replicator: Option<Arc<dyn Replicator>>,
    ) -> Committer {
        let (tx, rx) = mpsc::channel::<Request>();
        let (watermark, _) = watch::channel(Watermark {
            durable: 0,
            failed: false,
        });
        let inner = Arc::new(Inner {
            engine,
            replicator,
            epoch: AtomicU64::new(1),
            rejected: Mutex::new(std::collections::BTreeMap::new()),
            sender: Mutex::new(Sender {
                next_seq: 1,
                tx: Some(tx),
            }),
            watermark,
            failure: Mutex::new(None),
            thread: Mutex::new(None),
            flushes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            last_flush_us: AtomicU64::new(0),
            apply_ns: AtomicU64::new(0),
            flush_ns: AtomicU64::new(0),
            gate: Mutex::new(()),
        });
        let worker = inner.clone();
        let handle = std::thread::Builder::new()
            .name("agora-committer".into())
            .spawn(move || run(worker, rx))
            .expect("spawning the committer thread");
        *lock(&inner.thread) = Some(handle);
        Committer { inner }
    }

    /// Runs `f` over the engine with no group being applied meanwhile (commits queue up and
    /// go on when it returns): a consistent view of everything applied so far. For a
    /// snapshot: keep `f` short (copy, do not stream to a client).
    pub fn paused<R>(&self, f: impl FnOnce(&dyn Engine) -> R) -> R {
        let _gate = lock(&self.inner.gate);
        f(self.inner.engine.as_ref())
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.inner.engine
    }

    /// Queues a batch. The returned sequence is durable once [`Self::wait_durable`] returns.
    pub fn submit(&self, batch: WriteBatch) -> Result<CommitSeq, StorageError> {
        self.submit_with(batch, None)
    }

    /// Queues a batch and runs `on_durable` on the committer thread once it is flushed (or failed).
    /// Keep the callback short: it delays every later acknowledgement.
    pub fn submit_with(
        &self,
        batch: WriteBatch,
        on_durable: Option<OnDurable>,
    ) -> Result<CommitSeq, StorageError> {
        self.enqueue(batch, on_durable, None, true)
    }

    /// Queues a batch built on state read in commit epoch `epoch`; rejected if the epoch has
    /// moved on by the time it commits.
    pub fn submit_fenced(
        &self,
        batch: WriteBatch,
        epoch: u64,
        on_durable: Option<OnDurable>,
    ) -> Result<CommitSeq, StorageError> {
        self.enqueue(batch, on_durable, Some(epoch), true)
    }

    /// Queues a batch that is applied locally only (a copy of what the replica already holds).
    pub fn submit_local(&self, batch: WriteBatch) -> Result<CommitSeq, StorageError> {
        self.enqueue(batch, None, None, false)
    }

    /// Whether the batch `seq`, already past the watermark, was rejected by the replica.
    pub fn rejection(&self, seq: CommitSeq) -> Result<(), StorageError> {
        if self.inner.replicator.is_none() {
            return Ok(());
        }
        match lock(&self.inner.rejected).get(&seq) {
            Some(why) => Err(StorageError::Rejected(why.clone())),
            None => Ok(()),
        }
    }

    /// The last sequence handed out (0: none yet).
    pub fn last_submitted(&self) -> CommitSeq {
        lock(&self.inner.sender).next_seq - 1
    }

    /// The current commit epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    fn enqueue(
        &self,
        batch: WriteBatch,
        on_durable: Option<OnDurable>,
        epoch: Option<u64>,
        replicate: bool,
    ) -> Result<CommitSeq, StorageError> {
        if let Some(msg) = lock(&self.inner.failure).clone() {
            return Err(StorageError::Failed(msg));
        }
        let mut s = lock(&self.inner.sender);
        let seq = s.next_seq;
        let tx = s.tx.as_ref().ok_or(StorageError::Stopped)?;
        tx.send(Request {
            seq,
            batch,
            on_durable,
            epoch,
            replicate,
        })
        .map_err(|_| StorageError::Stopped)?;
        s.next_seq += 1;
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        Ok(seq)
    }

    /// The highest sequence known to be on disk.
    pub fn durable(&self) -> CommitSeq {
        self.inner.watermark.borrow().durable
    }

    /// Waits until `seq` is on disk.
    pub async fn wait_durable(&self, seq: CommitSeq) -> Result<(), StorageError> {
        let mut rx = self.inner.watermark.subscribe();
        let w = *rx
            .wait_for(|w| w.durable >= seq || w.failed)
            .await
            .map_err(|_| StorageError::Stopped)?;
        if w.durable >= seq {
            match lock(&self.inner.rejected).get(&seq) {
                Some(why) => Err(StorageError::Rejected(why.clone())),
                None => Ok(()),
            }
        } else {
            Err(StorageError::Failed(
                lock(&self.inner.failure).clone().unwrap_or_default(),
            ))
        }
    }

    pub fn is_failed(&self) -> bool {
        self.inner.watermark.borrow().failed
    }

    pub fn stats(&self) -> CommitterStats {
        CommitterStats {
            flushes: self.inner.flushes.load(Ordering::Relaxed),
            batches: self.inner.batches.load(Ordering::Relaxed),
            writes: self.inner.writes.load(Ordering::Relaxed),
            queued: self.inner.queued.load(Ordering::Relaxed),
            durable: self.durable(),
            last_flush_us: self.inner.last_flush_us.load(Ordering::Relaxed),
            apply_ns: self.inner.apply_ns.load(Ordering::Relaxed),
            flush_ns: self.inner.flush_ns.load(Ordering::Relaxed),
        }
    }

    /// Refuses new batches, commits and flushes everything queued, and joins the thread.
    pub fn shutdown(&self) {
        lock(&self.inner.sender).tx = None;
        if let Some(handle) = lock(&self.inner.thread).take() {
            let _ = handle.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(inner: Arc<Inner>, rx: mpsc::Receiver<Request>) {
    let mut group: Vec<Request> = Vec::with_capacity(MAX_GROUP);
    let mut last_flush = Instant::now();
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let last_seq = group.last().map(|r| r.seq).unwrap_or(0);
        let n = group.len() as u64;
        // Per position in the group: why that batch was rejected, if it was.
        let mut rejections: Vec<Option<String>> = vec![None; group.len()];
        if let Some(replicator) = &inner.replicator {
            let epoch = inner.epoch.load(Ordering::Acquire);
            let mut outgoing = WriteBatch::new();
            let mut members = Vec::new();
            for (i, r) in group.iter().enumerate() {
                if r.epoch.is_some_and(|e| e != epoch) {
                    rejections[i] =
                        Some("written on state a rejected commit may have changed".into());
                } else if r.replicate {
                    outgoing.extend(r.batch.clone());
                    members.push(i);
                }
            }
            if !outgoing.is_empty() {
                if let Err(why) = replicator.replicate(&outgoing) {
                    tracing::warn!(error = %why, batches = members.len(), "commit rejected");
                    inner.epoch.fetch_add(1, Ordering::AcqRel);
                    for i in members {
                        rejections[i] = Some(why.clone());
                    }
                }
            }
        }
        let mut applied_group = Vec::with_capacity(group.len());
        let mut keys = 0;
        for (i, r) in group.iter_mut().enumerate() {
            if rejections[i].is_none() && !r.batch.is_empty() {
                keys += r.batch.len();
                applied_group.push(std::mem::take(&mut r.batch));
            }
        }
        if rejections.iter().any(Option::is_some) {
            let mut rejected = lock(&inner.rejected);
            for (r, why) in group.iter().zip(&rejections) {
                if let Some(why) = why {
                    rejected.insert(r.seq, why.clone());
                }
            }
            while rejected.len() > REJECTED_KEPT {
                rejected.pop_first();
            }
        }
        let started = Instant::now();
        let result = if applied_group.is_empty() {
            Ok(())
        } else {
            // A group's cost is apply + flush, both accounted for `/metrics`. The group goes to
            // the engine as its batches, not merged: each must be atomic, the group need not be,
            // and sled can apply one-key batches without making readers wait.
            //
            // With a replicator, the replica (Redis, fsync always) holds the durable copy and
            // sled is a cache rebuilt at every takeover, so commits do not wait on sled's
            // fsync: it runs at most every REPLICA_FLUSH_EVERY.
            let _gate = lock(&inner.gate);
            // Timed from here: a snapshot holding the gate is not the commit path's cost.
            let applying = Instant::now();
            inner.writes.fetch_add(keys as u64, Ordering::Relaxed);
            let applied = inner.engine.apply_group(applied_group);
            inner
                .apply_ns
                .fetch_add(applying.elapsed().as_nanos() as u64, Ordering::Relaxed);
            applied.and_then(|_| {
                if inner.replicator.is_some() && last_flush.elapsed() < REPLICA_FLUSH_EVERY {
                    Ok(())
                } else {
                    let flushing = Instant::now();
                    last_flush = flushing;
                    let flushed = inner.engine.flush();
                    inner
                        .flush_ns
                        .fetch_add(flushing.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    flushed
                }
            })
        };
        inner
            .last_flush_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        inner.flushes.fetch_add(1, Ordering::Relaxed);
        inner.batches.fetch_add(n, Ordering::Relaxed);
        inner.queued.fetch_sub(n, Ordering::Relaxed);
        // Callbacks run before the watermark moves, so whoever sees a batch durable also sees
        // its follow-up work (reminder scheduling, outbox delivery) already queued.
        for (i, r) in group.drain(..).enumerate() {
            if let Some(cb) = r.on_durable {
                match &rejections[i] {
                    Some(why) => cb(Err(StorageError::Rejected(why.clone()))),
                    None => cb(result.clone()),
                }
            }
        }
        match &result {
            Ok(()) => {
                inner.watermark.send_modify(|w| w.durable = last_seq);
            }
            Err(e) => {
                // Memory and disk may now disagree for the writers of this group; refusing every
                // later write keeps a failing disk from acknowledging anything it did not keep.
                tracing::error!(error = %e, "commit failed; refusing further writes");
                *lock(&inner.failure) = Some(e.to_string());
                inner.watermark.send_modify(|w| w.failed = true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{MemEngine, SledEngine};

    #[tokio::test]
    async fn concurrent_writers_share_flushes_and_all_become_durable() {
        let dir = tempfile::tempdir().unwrap();
        let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(dir.path()).unwrap());
        let c = Committer::start(engine.clone());
        let mut tasks = Vec::new();
        for t in 0..8u32 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..200u32 {
                    let mut b = WriteBatch::new();
                    b.put(format!("k/{t}/{i}").into_bytes(), i.to_be_bytes().to_vec());
                    let seq = c.submit(b).unwrap();
                    c.wait_durable(seq).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let stats = c.stats();
        assert_eq!(stats.batches, 1600);
        assert!(stats.flushes <= 1600);
        assert!(
            stats.apply_ns > 0 && stats.flush_ns > 0,
            "the committer's time is accounted: {stats:?}"
        );
        assert_eq!(engine.scan_prefix(b"k/").unwrap().len(), 1600);
        c.shutdown();
    }

    #[tokio::test]
    async fn callbacks_run_after_the_batch_is_applied() {
        let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let c = Committer::start(engine.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let e2 = engine.clone();
        let mut b = WriteBatch::new();
        b.put(b"x".to_vec(), b"1".to_vec());
        c.submit_with(
            b,
            Some(Box::new(move |r| {
                let seen = e2.get(b"x").unwrap();
                let _ = tx.send((r.is_ok(), seen));
            })),
        )
        .unwrap();
        let (ok, seen) = rx.await.unwrap();
        assert!(ok);
        assert_eq!(seen, Some(b"1".to_vec()));
    }

    struct Gate(std::sync::atomic::AtomicBool);

    impl Replicator for Gate {
        fn replicate(&self, _: &WriteBatch) -> Result<(), String> {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("replica down".into())
            }
        }
    }

    #[tokio::test]
    async fn a_rejected_commit_writes_nothing_and_fences_batches_of_its_epoch() {
        let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let gate = Arc::new(Gate(std::sync::atomic::AtomicBool::new(false)));
        let c = Committer::start_with(engine.clone(), Some(gate.clone()));
        let epoch = c.epoch();
        let put = |k: &str| {
            let mut b = WriteBatch::new();
            b.put(k.as_bytes().to_vec(), b"1".to_vec());
            b
        };
        let seq = c.submit_fenced(put("a"), epoch, None).unwrap();
        assert!(matches!(
            c.wait_durable(seq).await,
            Err(StorageError::Rejected(_))
        ));
        assert_eq!(engine.get(b"a").unwrap(), None);
        assert!(c.epoch() > epoch, "a rejection moves the epoch on");
        // Asked again once the watermark is past it, the answer is still "rejected".
        assert!(c.durable() >= seq);
        assert!(matches!(c.rejection(seq), Err(StorageError::Rejected(_))));

        // The replica is back, but a batch built before the rejection is still refused...
        gate.0.store(true, Ordering::SeqCst);
        let stale = c.submit_fenced(put("b"), epoch, None).unwrap();
        assert!(c.wait_durable(stale).await.is_err());
        assert_eq!(engine.get(b"b").unwrap(), None);
        // ...while one built in the new epoch, and local imports, go through.
        let fresh = c.submit_fenced(put("c"), c.epoch(), None).unwrap();
        c.wait_durable(fresh).await.unwrap();
        let local = c.submit_local(put("d")).unwrap();
        c.wait_durable(local).await.unwrap();
        assert_eq!(engine.get(b"c").unwrap(), Some(b"1".to_vec()));
        assert_eq!(engine.get(b"d").unwrap(), Some(b"1".to_vec()));
        c.shutdown();
    }

    #[tokio::test]
    async fn shutdown_commits_what_was_queued_and_refuses_more() {
        let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
        let c = Committer::start(engine.clone());
        let mut b = WriteBatch::new();
        b.put(b"q".to_vec(), b"1".to_vec());
        let seq = c.submit(b).unwrap();
        c.shutdown();
        assert!(c.durable() >= seq);
        assert!(matches!(
            c.submit(WriteBatch::new()),
            Err(StorageError::Stopped)
        ));
    }
}
