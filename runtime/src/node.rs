//! The runtime of one node: arbiters, the directory, the committer, reminders, the outbox and
//! the courier of durable actor messages, and [`Runtime::ask`], the one way to reach an actor
//! from outside.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use actix::prelude::*;
use agora_storage::{CommitSeq, Committer, Engine, Replicator, StorageError, WriteBatch};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::activation::{ActMsg, Activation, Ask, Mail};
use crate::actor_id::{id_in_partition, partition_of, stable_hash, ActorId, PARTITIONS};
use crate::clock::Clock;
use crate::cluster::replica::ClusterReplicator;
use crate::cluster::{self, Cluster, ClusterConfig, ClusterView, Serving};
use crate::courier::{Courier, DeliverFn, KindRoute, MessageConfig};
use crate::directory::{sweep_schedule, Directory, Lookup, Mailbox};
use crate::effects::{Effects, Published, Reminder, RestoreAux, Stored};
use crate::fault::{self, Fault};
use crate::ids::IdAllocator;
use crate::keys;
use crate::messages::{Delivery, MessageRecord, Outcome};
use crate::outbox::{DeliveryConfig, Outbox};
use crate::reminders::Scheduler;

/// Events a slow event-stream subscriber may fall behind by before it misses some.
pub const EVENT_BUFFER: usize = 4096;

/// An actor the runtime can activate, passivate and restore.
///
/// What it answers is declared one operation at a time, by the [`Message`] types it handles.
pub trait VirtualActor: Sized + Send + Unpin + 'static {
    /// The kind part of the actor id, also the first part of its storage keys.
    const KIND: &'static str;
    /// Shared, read-only services the actor needs (registries, configuration).
    type Env: Clone + Send + Sync + Unpin + 'static;

    /// Rebuilds the actor from what it persisted. An error marks the record unreadable; the
    /// runtime then answers every message with an internal error instead of guessing.
    fn restore(id: &ActorId, env: &Self::Env, stored: Stored) -> Result<Self, String>;

    /// What activation calls: rebuilds the actor from its state record and the auxiliary
    /// records restore loads, read from storage as it takes them. The default collects them
    /// into [`Stored::aux`] for [`VirtualActor::restore`]; a kind that loads many records (a
    /// large community's item metadata) overrides it to decode each as it is read, so the
    /// records' buffers are never all alive at once.
    fn restore_streamed(
        id: &ActorId,
        env: &Self::Env,
        state: Option<Vec<u8>>,
        aux: RestoreAux<'_>,
    ) -> Result<Self, String> {
        let aux = aux.collect()?;
        Self::restore(id, env, Stored { state, aux })
    }

    /// A durable reminder came due. Its removal is committed with whatever this records.
    fn on_reminder(&mut self, env: &Self::Env, reminder: Reminder, fx: &mut Effects);

    /// Whether [`VirtualActor::restore`] gets every auxiliary record in [`Stored::aux`]
    /// (right for a few records the actor keeps in memory, like a vote's ballots) or none (for
    /// many records, read on demand with [`Effects::get_aux`] and [`Effects::scan_aux`]).
    const RESTORE_AUX: bool = true;

    /// With `RESTORE_AUX = false`: the (disjoint) sub-key prefixes whose records restore still loads into
    /// [`Stored::aux`] (in sub-key order), for a kind that keeps some of its many records in
    /// memory (one per entry of its state, so a change rewrites only its entries) and reads
    /// the rest on demand. Ignored when `RESTORE_AUX` loads everything.
    const RESTORE_AUX_PREFIXES: &'static [&'static [u8]] = &[];

    /// Whether this kind sets durable reminders. A kind that never does declares `false`, and
    /// activation skips the scan for its reminders: a fresh actor then costs one storage probe
    /// (its state) instead of three. Setting a reminder from such a kind is a bug the commit
    /// refuses rather than a reminder silently lost at the next activation.
    const REMINDERS: bool = true;

    /// A durable message another actor sent this one ([`Effects::send_to`]). Runs once per
    /// message however often it is delivered: its receipt is committed with whatever this
    /// records. Dispatch on [`Delivery::is`] and read it with [`Delivery::decode`]. The
    /// default drops it (kinds that take no messages).
    fn on_message(&mut self, env: &Self::Env, msg: Delivery, fx: &mut Effects) {
        let _ = (env, fx);
        tracing::warn!(
            kind = Self::KIND,
            message = %msg.message_kind,
            from = %msg.from_key,
            "dropped a durable message: this actor kind takes none"
        );
    }

    /// The partition an actor keyed `key` lives in. Default: the key's hash. Actors that
    /// belong with another (a community's processes and plugin instances) answer that one's
    /// partition, so they move between nodes together.
    fn partition(key: &str) -> u32 {
        partition_of(key)
    }
}

/// One operation on actor `A`: a typed value with its own reply type, so a caller gets
/// exactly what that operation answers. One small struct per operation, beside its actor.
///
/// Handlers are synchronous and must not block: they read the actor, decide, mutate it and
/// describe what to persist in [`Effects`]. A handler that refuses must do so before mutating
/// anything, because a refused message still leaves the activation in place.
pub trait Message<A: VirtualActor>: Send + 'static {
    type Reply: Send + 'static;

    fn handle(self, actor: &mut A, env: &A::Env, fx: &mut Effects) -> Self::Reply;
}

/// A typed handle on every actor of kind `A`: [`Client::ask`] takes any message `A` handles
/// and answers that message's reply type. Cheap to clone.
pub struct Client<A> {
    rt: Runtime,
    kind: PhantomData<fn() -> A>,
}

impl<A> Clone for Client<A> {
    fn clone(&self) -> Self {
        Client {
            rt: self.rt.clone(),
            kind: PhantomData,
        }
    }
}

impl<A: VirtualActor> Client<A> {
    /// Sends `msg` to the actor keyed `key` (see [`Runtime::ask`]).
    pub async fn ask<M: Message<A>>(&self, key: &str, msg: M) -> Result<M::Reply, AskError> {
        self.rt.ask::<A, M>(key, msg).await
    }

    /// Sends `msg` to the actor keyed `key`, a key allocated just now (see [`Runtime::ask_new`]).
    pub async fn ask_new<M: Message<A>>(&self, key: &str, msg: M) -> Result<M::Reply, AskError> {
        self.rt.ask_new::<A, M>(key, msg).await
    }
}

tokio::task_local! {
    /// Set (by the gateway, for reads) to let asks be answered from a partition this node last
    /// served while Redis is unreachable. Writes never are: they cannot be fenced.
    pub static STALE_READS_OK: bool;
}

/// The id of actor `A` keyed `key`, in `A`'s partition.
pub(crate) fn actor_id<A: VirtualActor>(key: &str) -> ActorId {
    ActorId::new(A::KIND, key).in_partition(A::partition(key))
}

/// Why a message did not get an answer from its actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AskError {
    /// The actor's mailbox is full: retry later.
    #[error("the actor is overloaded; retry later")]
    Overloaded,
    /// Storage or the node cannot take the change right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The actor's stored state cannot be read by this build.
    #[error("internal error: {0}")]
    Internal(String),
    /// Cluster mode: another node serves (or is about to serve) this partition.
    #[error("partition {0} is served by another node")]
    NotOwner(u32),
}

impl From<StorageError> for AskError {
    fn from(e: StorageError) -> Self {
        AskError::Unavailable(e.to_string())
    }
}

/// An auxiliary record's sub-key and value.
pub type AuxPair = (Vec<u8>, Vec<u8>);

/// Runtime settings; every field has a production default.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Actors idle this long are passivated.
    pub idle_timeout: Duration,
    /// Messages queued per actor before callers get [`AskError::Overloaded`].
    pub mailbox_capacity: usize,
    /// Arbiter threads for actors (default: one per core).
    pub arbiters: usize,
    /// Reminders fired concurrently (bounds the burst after a restart).
    pub reminder_concurrency: usize,
    pub delivery: DeliveryConfig,
    /// Durable messages between actors.
    pub messages: MessageConfig,
    /// Cluster mode; `None`: a single node that owns every partition.
    pub cluster: Option<ClusterConfig>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            mailbox_capacity: 1024,
            arbiters: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            reminder_concurrency: 256,
            delivery: DeliveryConfig::default(),
            messages: MessageConfig::default(),
            cluster: None,
        }
    }
}

/// Gauges and counters for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeStats {
    pub active_actors: i64,
    pub mailbox_depth: i64,
    pub reminders_pending: i64,
    pub outbox_depth: i64,
    pub outbox_delivered: u64,
    pub outbox_failed_attempts: u64,
    /// Durable actor messages this node still has to deliver.
    pub messages_pending: i64,
    /// Durable actor messages handled by their receiver.
    pub messages_delivered: u64,
    /// Redeliveries the receiver had already handled (its receipt answered).
    pub messages_duplicates: u64,
    /// Messages dropped undelivered past the delivery window.
    pub messages_expired: u64,
    pub messages_failed_attempts: u64,
    pub commits: u64,
    /// Keys written or removed by those commits.
    pub storage_writes: u64,
    pub flushes: u64,
    pub commit_queue: u64,
    pub last_flush_us: u64,
    /// Committer time applying groups and flushing them, in total.
    pub commit_apply_ns: u64,
    pub commit_flush_ns: u64,
    pub storage_failed: bool,
}

/// Journal entries with their sequence numbers, and the cursor of the next page.
pub type JournalPage = (Vec<(u64, Vec<u8>)>, Option<u64>);

pub(crate) type FireFuture = Pin<Box<dyn Future<Output = Result<(), AskError>> + Send>>;
pub(crate) type FireFn = Arc<dyn Fn(ActorId, String, u64) -> FireFuture + Send + Sync>;

pub(crate) struct Shared {
    pub config: RuntimeConfig,
    pub clock: Arc<dyn Clock>,
    pub committer: Committer,
    pub directory: Directory,
    pub arbiters: Vec<ArbiterHandle>,
    pub envs: RwLock<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    pub fire: RwLock<HashMap<&'static str, FireFn>>,
    /// Per registered kind: where its actors live and how a message reaches them here.
    pub routes: RwLock<HashMap<&'static str, KindRoute>>,
    pub scheduler: Scheduler,
    pub outbox: Arc<Outbox>,
    pub outbox_seq: AtomicU64,
    pub courier: Arc<Courier>,
    pub message_seq: AtomicU64,
    pub journal_seq: AtomicU64,
    pub ids: IdAllocator,
    /// Durable events, live, for `/api/internal/events` subscribers.
    pub events: tokio::sync::broadcast::Sender<Arc<Published>>,
    pub cluster: Option<Arc<Cluster>>,
    pub notices: tokio::sync::broadcast::Sender<String>,
    actix_stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    actix_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Shared {
    pub fn engine(&self) -> &Arc<dyn Engine> {
        self.committer.engine()
    }
}

/// A handle on the node's runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
}

impl Runtime {
    /// Starts the actor threads and the committer over `engine`. Call [`Runtime::run_background`]
    /// from inside a tokio runtime once every actor kind is registered.
    pub fn start(
        config: RuntimeConfig,
        engine: Arc<dyn Engine>,
        clock: Arc<dyn Clock>,
    ) -> Result<Runtime, StorageError> {
        // Before partitions, actor records sat at the top level; reading such a database with
        // this layout would silently show it empty.
        for old in [&b"s/"[..], b"q/", b"o/"] {
            if engine.last_with_prefix(old)?.is_some() {
                return Err(StorageError::Io(
                    "this data directory was written by an Agora before 0.2's partitioned layout; start with an empty directory".into(),
                ));
            }
        }
        let cluster = match &config.cluster {
            Some(c) => Some(Arc::new(
                Cluster::new(c.clone(), clock.clone()).map_err(StorageError::Io)?,
            )),
            None => None,
        };
        let replicator = cluster
            .as_ref()
            .map(|c| Arc::new(ClusterReplicator::new(c.clone())) as Arc<dyn Replicator>);
        let (arbiters, stop_tx, thread) = start_arbiters(config.arbiters.max(1));
        let committer = Committer::start_with(engine.clone(), replicator);
        // Outbox and message sequences are node-wide, so the next one follows the highest in
        // any partition.
        let mut next_outbox = 0;
        let mut next_message = 0;
        let mut legacy_due = 0;
        for p in 0..PARTITIONS {
            let legacy = engine.scan_prefix(&keys::section(p, keys::LEGACY_DUE))?;
            if !legacy.is_empty() {
                legacy_due += legacy.len();
                let mut batch = WriteBatch::new();
                for (k, _) in legacy {
                    batch.delete(k);
                }
                // Not flushed: should the node die before its first commit, the next start
                // deletes them again.
                engine.apply(batch)?;
            }
            if let Some(k) = engine.last_with_prefix(&keys::section(p, keys::OUTBOX))? {
                if let Some(seq) = keys::parse_outbox(&k) {
                    next_outbox = next_outbox.max(seq + 1);
                }
            }
            if let Some(k) = engine.last_with_prefix(&keys::section(p, keys::MESSAGE))? {
                if let Some(seq) = keys::parse_message(&k) {
                    next_message = next_message.max(seq + 1);
                }
            }
        }
        if legacy_due > 0 {
            tracing::info!(
                keys = legacy_due,
                "deleted the due index an earlier Agora kept beside each reminder"
            );
        }
        let next_journal = match engine.last_with_prefix(keys::JOURNAL)? {
            Some(k) => keys::parse_journal(&k).map(|s| s + 1).unwrap_or(1),
            None => 1,
        };
        let outbox = Arc::new(Outbox::new(
            config.delivery.clone(),
            committer.clone(),
            clock.clone(),
        ));
        let courier = Arc::new(Courier::new(config.messages.clone(), clock.clone()));
        let shared = Arc::new(Shared {
            scheduler: Scheduler::new(config.reminder_concurrency),
            ids: IdAllocator::new(
                committer.clone(),
                cluster.as_ref().map(|c| c.client.clone()),
            ),
            notices: cluster
                .as_ref()
                .map(|c| c.rpc.notices.clone())
                .unwrap_or_else(|| tokio::sync::broadcast::channel(64).0),
            cluster,
            events: tokio::sync::broadcast::channel(EVENT_BUFFER).0,
            config,
            clock,
            committer,
            directory: Directory::new(),
            arbiters,
            envs: RwLock::new(HashMap::new()),
            fire: RwLock::new(HashMap::new()),
            routes: RwLock::new(HashMap::new()),
            outbox,
            outbox_seq: AtomicU64::new(next_outbox),
            courier,
            message_seq: AtomicU64::new(next_message),
            journal_seq: AtomicU64::new(next_journal),
            actix_stop: Mutex::new(Some(stop_tx)),
            actix_thread: Mutex::new(Some(thread)),
        });
        let (every, quiet) = sweep_schedule(shared.config.idle_timeout);
        shared.arbiters[0].spawn(idle_sweep(Arc::downgrade(&shared), every, quiet));
        Ok(Runtime { shared })
    }

    /// Makes actors of kind `A` reachable, with `env` as their shared services.
    pub fn register<A: VirtualActor>(&self, env: A::Env) {
        self.shared
            .envs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<A>(), Box::new(env));
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let fire: FireFn = Arc::new(move |id: ActorId, name: String, due: u64| {
            let weak = weak.clone();
            Box::pin(async move {
                let shared = weak
                    .upgrade()
                    .ok_or_else(|| AskError::Unavailable("runtime stopped".into()))?;
                // The scheduler knows kind and key; the partition is the kind's to say.
                let id = actor_id::<A>(&id.key);
                Runtime { shared }.fire::<A>(id, name, due).await
            }) as FireFuture
        });
        self.shared
            .fire
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(A::KIND, fire);
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let deliver: DeliverFn = Arc::new(move |key: String, delivery: Delivery| {
            let weak = weak.clone();
            Box::pin(async move {
                let shared = weak
                    .upgrade()
                    .ok_or_else(|| AskError::Unavailable("runtime stopped".into()))?;
                Runtime { shared }.deliver_here::<A>(&key, delivery).await
            }) as futures_util::future::BoxFuture<'static, Result<Outcome, AskError>>
        });
        self.shared
            .routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                A::KIND,
                KindRoute {
                    partition: A::partition,
                    deliver,
                },
            );
    }

    /// Loads pending reminders, outbox entries and actor messages and starts firing and
    /// delivering them. Must run inside the tokio runtime that should carry that work.
    pub fn run_background(&self) -> Result<(), StorageError> {
        let engine = self.shared.engine().clone();
        let single = self.shared.cluster.is_none();
        self.shared.outbox.load_and_start(&engine, single)?;
        self.shared.courier.load_and_start(
            Arc::downgrade(&self.shared),
            &engine,
            &self.shared.message_seq,
            single,
        )?;
        self.shared
            .scheduler
            .load_and_start(&engine, Arc::downgrade(&self.shared), single)?;
        if let Some(cluster) = &self.shared.cluster {
            cluster.rpc.set_message_handler(self.message_handler());
            tokio::spawn(cluster::run(Arc::downgrade(&self.shared), cluster.clone()));
            tokio::spawn(
                cluster
                    .rpc
                    .clone()
                    .listen(cluster.client.clone(), self.shared.events.clone()),
            );
            // Durable local events go to every other node too.
            let mut local = self.shared.events.subscribe();
            let c = cluster.clone();
            tokio::spawn(async move {
                loop {
                    match local.recv().await {
                        Ok(p) if !p.remote => c.rpc.publish_event(&c.client, &p).await,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "events not fanned out: relay fell behind")
                        }
                        Err(_) => return,
                    }
                }
            });
        }
        Ok(())
    }

    /// Whether this node runs in cluster mode.
    pub fn is_cluster(&self) -> bool {
        self.shared.cluster.is_some()
    }

    /// Cluster mode: how the cluster looks from this node (`None` on a single node).
    pub fn cluster_view(&self) -> Option<ClusterView> {
        self.shared.cluster.as_ref().map(|c| c.view())
    }

    /// Where requests for `partition` should run: `Ok(None)` here, `Ok(Some(node))` on
    /// another node, `Err` when no node serves it right now.
    pub fn route(&self, partition: u32) -> Result<Option<String>, AskError> {
        let Some(c) = &self.shared.cluster else {
            return Ok(None);
        };
        if let Serving::Yes { .. } = c.serving(partition) {
            return Ok(None);
        }
        match c.owner_of(partition) {
            Some(node) if node != c.config.node_id => Ok(Some(node)),
            _ => Err(AskError::NotOwner(partition)),
        }
    }

    /// The stored state record of actor `A` keyed `key`, as committed: from the Redis replica
    /// in cluster mode (wherever the actor lives), from local storage otherwise.
    pub async fn committed_state<A: VirtualActor>(
        &self,
        key: &str,
    ) -> Result<Option<Vec<u8>>, AskError> {
        let id = actor_id::<A>(key);
        let field = keys::state(&id);
        match &self.shared.cluster {
            None => Ok(self.shared.engine().get(&field)?),
            Some(c) => c
                .hget(&cluster::data_key(id.partition), &field)
                .await
                .map_err(AskError::Unavailable),
        }
    }

    /// Tells every node of the cluster (this one included) `notice`; nothing on a single node.
    pub async fn notify_cluster(&self, notice: &str) {
        if let Some(c) = &self.shared.cluster {
            c.rpc.notify(&c.client, notice).await;
        } else {
            let _ = self.shared.notices.send(notice.to_string());
        }
    }

    /// Notices sent with [`Runtime::notify_cluster`] from any node.
    pub fn subscribe_notices(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.shared.notices.subscribe()
    }

    /// Cluster mode: whether Redis answered this node's last round (always true alone).
    pub fn redis_ok(&self) -> bool {
        self.shared.cluster.as_ref().is_none_or(|c| c.redis_ok())
    }

    /// Whether reads of `partition` may be answered here from a copy this node served until
    /// Redis became unreachable.
    pub fn stale_readable(&self, partition: u32) -> bool {
        self.shared
            .cluster
            .as_ref()
            .is_some_and(|c| c.stale_readable(partition))
    }

    /// Sends `payload` to `node`'s forwarded-request handler and answers its reply.
    /// `NotOwner` means the request surely did not run there; `Unavailable` means it may have.
    pub async fn forward(
        &self,
        node: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, AskError> {
        let c = self
            .shared
            .cluster
            .as_ref()
            .ok_or_else(|| AskError::Internal("not in cluster mode".into()))?;
        c.rpc
            .call(&c.client, node, payload, timeout)
            .await
            .map_err(|e| match e {
                // Nobody received it: safe to send again, elsewhere. Likewise when Redis could
                // not take the message: a commit needs Redis too. (A publish that timed out on
                // a slow, not dead, Redis may still have arrived: a rare double send.)
                cluster::rpc::RpcError::NotListening(_) | cluster::rpc::RpcError::Redis(_) => {
                    AskError::NotOwner(u32::MAX)
                }
                e => AskError::Unavailable(e.to_string()),
            })
    }

    /// Installs what runs requests other nodes forward here.
    pub fn serve_forwarded(&self, handler: cluster::rpc::Handler) {
        if let Some(c) = &self.shared.cluster {
            c.rpc.set_handler(handler);
        }
    }

    /// SIGTERM in cluster mode: hands every partition over before the node stops.
    pub async fn leave_cluster(&self) {
        if let Some(c) = &self.shared.cluster {
            cluster::leave(&self.shared, c).await;
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// Every event published from now on, once durable. A subscriber that falls more than
    /// `EVENT_BUFFER` events behind is told how many it missed (`Lagged`).
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<Arc<Published>> {
        self.shared.events.subscribe()
    }

    /// A typed client for actors of kind `A`.
    pub fn client<A: VirtualActor>(&self) -> Client<A> {
        Client {
            rt: self.clone(),
            kind: PhantomData,
        }
    }

    /// Sends `msg` to the actor `A` keyed `key`, activating it if needed, and returns its reply
    /// once every change that actor made so far is durable.
    pub async fn ask<A: VirtualActor, M: Message<A>>(
        &self,
        key: &str,
        msg: M,
    ) -> Result<M::Reply, AskError> {
        self.ask_as(key, msg, false).await
    }

    /// [`Runtime::ask`] to an actor whose key was allocated just now (from
    /// [`Runtime::next_id_in`], which never hands out an id twice), so nothing can be stored
    /// under it: activating it reads nothing from storage. Starting a process used to pay
    /// three storage probes (state, records, reminders) to learn that.
    pub async fn ask_new<A: VirtualActor, M: Message<A>>(
        &self,
        key: &str,
        msg: M,
    ) -> Result<M::Reply, AskError> {
        self.ask_as(key, msg, true).await
    }

    async fn ask_as<A: VirtualActor, M: Message<A>>(
        &self,
        key: &str,
        msg: M,
        fresh: bool,
    ) -> Result<M::Reply, AskError> {
        let id = actor_id::<A>(key);
        // Single nodes skip this: it is only ever true in a cluster that lost Redis.
        let stale_ok = self.shared.cluster.as_ref().is_some_and(|c| {
            c.stale_readable(id.partition) && STALE_READS_OK.try_with(|ok| *ok).unwrap_or(false)
        });
        if !stale_ok {
            self.check_serving(id.partition)?;
        }
        let (tx, rx) = oneshot::channel();
        self.send::<A, _>(&id, Ask::new(msg, tx, stale_ok), fresh)?;
        let (reply, seq) = rx
            .await
            .map_err(|_| AskError::Unavailable(format!("{id} stopped before answering")))??;
        self.wait_durable(seq).await?;
        Ok(reply)
    }

    /// Hands a durable message to the local activation of `A` keyed `key` and answers once
    /// its handling (or its "already handled") is durable.
    pub(crate) async fn deliver_here<A: VirtualActor>(
        &self,
        key: &str,
        delivery: Delivery,
    ) -> Result<Outcome, AskError> {
        let id = actor_id::<A>(key);
        self.check_serving(id.partition)?;
        let (tx, rx) = oneshot::channel();
        self.send::<A, _>(
            &id,
            ActMsg::Deliver {
                delivery: Box::new(delivery),
                reply: tx,
            },
            false,
        )?;
        let (outcome, seq) = rx
            .await
            .map_err(|_| AskError::Unavailable(format!("{id} stopped before answering")))??;
        self.wait_durable(seq).await?;
        if outcome == Outcome::Handled {
            fault::check(Fault::AfterReceiveCommit);
        }
        Ok(outcome)
    }

    /// Runs the durable messages other nodes deliver to actors this node serves.
    fn message_handler(&self) -> cluster::rpc::Handler {
        let weak = Arc::downgrade(&self.shared);
        Arc::new(move |bytes: Vec<u8>| {
            let weak = weak.clone();
            Box::pin(async move {
                let result: Result<Outcome, AskError> = async {
                    let shared = weak
                        .upgrade()
                        .ok_or_else(|| AskError::Unavailable("runtime stopped".into()))?;
                    let rec = MessageRecord::decode(&bytes)
                        .map_err(|e| AskError::Internal(e.to_string()))?;
                    let route = shared
                        .routes
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(rec.to_kind.as_str())
                        .cloned()
                        .ok_or_else(|| {
                            AskError::Internal(format!(
                                "actor kind {} is not registered",
                                rec.to_kind
                            ))
                        })?;
                    (route.deliver)(rec.to_key.clone(), rec.delivery()).await
                }
                .await;
                rmp_serde::to_vec_named(&result).unwrap_or_default()
            }) as futures_util::future::BoxFuture<'static, Vec<u8>>
        })
    }

    fn check_serving(&self, partition: u32) -> Result<(), AskError> {
        match &self.shared.cluster {
            Some(c) if c.serving(partition) == Serving::No => Err(AskError::NotOwner(partition)),
            _ => Ok(()),
        }
    }

    async fn fire<A: VirtualActor>(
        &self,
        id: ActorId,
        name: String,
        due_ms: u64,
    ) -> Result<(), AskError> {
        self.check_serving(id.partition)?;
        let (tx, rx) = oneshot::channel();
        self.send::<A, _>(
            &id,
            ActMsg::Fire {
                name,
                due_ms,
                reply: tx,
            },
            false,
        )?;
        let seq = rx
            .await
            .map_err(|_| AskError::Unavailable(format!("{id} stopped before answering")))??;
        self.wait_durable(seq).await
    }

    async fn wait_durable(&self, seq: CommitSeq) -> Result<(), AskError> {
        if seq > self.shared.committer.durable() {
            self.shared.committer.wait_durable(seq).await?;
        } else {
            // In a cluster the watermark also moves past batches the replica rejected; only
            // the committer knows which.
            self.shared.committer.rejection(seq)?;
        }
        Ok(())
    }

    /// Queues `msg` in the mailbox of `id`'s activation (created if needed). Every kind of
    /// message shares the one bounded mailbox; actix boxes each message once on the way in.
    /// `fresh`: an activation created here has nothing stored (see [`Runtime::ask_new`]).
    fn send<A: VirtualActor, T: Mail<A>>(
        &self,
        id: &ActorId,
        msg: T,
        fresh: bool,
    ) -> Result<(), AskError> {
        let shared = &self.shared;
        let mut refusal = None;
        let spawn = |generation: u64, pending: Arc<AtomicUsize>| {
            // The env is cloned only when an activation is created, not per message.
            let env = match self.env::<A>() {
                Ok(env) => env,
                Err(e) => {
                    refusal = Some(e);
                    return None;
                }
            };
            let n = shared.arbiters.len();
            let arbiter = &shared.arbiters[(stable_hash(id.key.as_bytes()) as usize) % n];
            let activation = Activation::<A>::new(
                id.clone(),
                generation,
                env,
                Arc::downgrade(shared),
                pending,
                fresh,
            );
            // The mailbox is created here, at its final capacity, so no caller can ever see
            // actix's small default while the arbiter is still starting the actor.
            let (tx, rx) = actix::dev::channel::channel(shared.config.mailbox_capacity + 16);
            arbiter.spawn_fn(move || {
                let ctx = Context::with_receiver(rx);
                actix::spawn(ctx.into_future(activation));
            });
            let addr: Addr<Activation<A>> = Addr::new(tx);
            Some(Arc::new(addr) as Arc<dyn Mailbox>)
        };
        let lookup = shared
            .directory
            .acquire(id, shared.config.mailbox_capacity, spawn);
        let (addr, pending) = match lookup {
            Lookup::Ready(addr, pending) => (addr, pending),
            Lookup::Full => return Err(AskError::Overloaded),
            Lookup::Refused => {
                return Err(refusal
                    .unwrap_or_else(|| AskError::Internal(format!("{id} could not be activated"))))
            }
        };
        let addr = addr
            .as_any()
            .downcast_ref::<Addr<Activation<A>>>()
            .ok_or_else(|| AskError::Internal(format!("{id} is registered with another type")))?;
        match msg.try_send(addr) {
            Ok(()) => Ok(()),
            Err(SendError::Full(_)) => {
                shared.directory.release(&pending);
                Err(AskError::Overloaded)
            }
            Err(SendError::Closed(_)) => {
                shared.directory.release(&pending);
                Err(AskError::Unavailable(format!("{id} is stopping")))
            }
        }
    }

    fn env<A: VirtualActor>(&self) -> Result<A::Env, AskError> {
        let envs = self.shared.envs.read().unwrap_or_else(|p| p.into_inner());
        envs.get(&TypeId::of::<A>())
            .and_then(|e| e.downcast_ref::<A::Env>())
            .cloned()
            .ok_or_else(|| AskError::Internal(format!("actor kind {} is not registered", A::KIND)))
    }

    /// The auxiliary record `sub` of actor `A` keyed `key`, as durably stored: never a write
    /// that a crash could still undo, so it may lag what the actor itself sees. In cluster
    /// mode, only on the node serving the actor (`NotOwner` elsewhere).
    pub async fn read_aux<A: VirtualActor>(
        &self,
        key: &str,
        sub: &[u8],
    ) -> Result<Option<Vec<u8>>, AskError> {
        let id = actor_id::<A>(key);
        self.check_serving(id.partition)?;
        let value = self.shared.engine().get(&keys::aux(&id, sub))?;
        self.settle().await?;
        Ok(value)
    }

    /// The last auxiliary record of actor `A` keyed `key` whose sub-key starts with `prefix`
    /// (sub-key and value), as storage holds it right now. Unlike [`Runtime::read_aux`] it
    /// does not wait: the record may be a write not yet durable, or one a cluster replica
    /// will reject. So it is only a hint that the actor checks against its own state, read
    /// on the caller's thread to spare the actor's one thread a storage read (a prefetch).
    pub fn peek_last_aux<A: VirtualActor>(
        &self,
        key: &str,
        prefix: &[u8],
    ) -> Result<Option<AuxPair>, AskError> {
        let id = actor_id::<A>(key);
        self.check_serving(id.partition)?;
        let engine = self.shared.engine();
        let Some(full) = engine.last_with_prefix(&keys::aux(&id, prefix))? else {
            return Ok(None);
        };
        let Some(value) = engine.get(&full)? else {
            return Ok(None);
        };
        let sub = full[keys::aux_prefix(&id).len()..].to_vec();
        Ok(Some((sub, value)))
    }

    /// Up to `limit` auxiliary records of actor `A` keyed `key` whose sub-key starts with
    /// `prefix` and sorts after `after`, in sub-key order, as durably stored (see
    /// [`Runtime::read_aux`]). Page by passing the last sub-key returned as `after`.
    pub async fn scan_aux<A: VirtualActor>(
        &self,
        key: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<agora_storage::Pairs, AskError> {
        let id = actor_id::<A>(key);
        self.check_serving(id.partition)?;
        let page = crate::aux::scan_stored(
            &**self.shared.engine(),
            &keys::aux_prefix(&id),
            prefix,
            after,
            limit,
        )?;
        self.settle().await?;
        Ok(page)
    }

    /// Waits until everything storage showed so far is durable. Called after a read: what it
    /// saw was applied, so submitted before this call, so covered by the wait.
    async fn settle(&self) -> Result<(), AskError> {
        let seq = self.shared.committer.last_submitted();
        match self.shared.committer.wait_durable(seq).await {
            // A rejected batch was never applied, so nothing read came from it.
            Ok(()) | Err(StorageError::Rejected(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads an index entry an actor of `partition` wrote through [`Effects::put_index`].
    pub fn read_index(&self, partition: u32, key: &str) -> Result<Option<Vec<u8>>, AskError> {
        Ok(self.shared.engine().get(&keys::index(partition, key))?)
    }

    /// Every index entry whose key starts with `prefix` (the full index key with its value),
    /// in one partition or, with `None`, in every partition this node serves.
    pub fn scan_index(
        &self,
        partition: Option<u32>,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, AskError> {
        let mut out = Vec::new();
        self.visit_index(partition, prefix, &mut |k, v| {
            out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()))
        })?;
        Ok(out)
    }

    /// [`Runtime::scan_index`] without copying: calls `visit` with each entry's key (the full
    /// index key) and value in sled's own buffers, for a pass over a large index that keeps
    /// only what it matches.
    pub fn visit_index(
        &self,
        partition: Option<u32>,
        prefix: &str,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), AskError> {
        let strip = keys::section(0, keys::INDEX).len();
        let partitions = match partition {
            Some(p) => p..p + 1,
            None => 0..PARTITIONS,
        };
        for p in partitions {
            // A cluster node may keep a stale copy of a partition it served before; only what
            // it serves now counts.
            if partition.is_none() && self.check_serving(p).is_err() {
                continue;
            }
            self.shared
                .engine()
                .visit_prefix(&keys::index(p, prefix), &mut |k, v| {
                    visit(&k[strip..], v);
                    std::ops::ControlFlow::Continue(())
                })?;
        }
        Ok(())
    }

    /// Writes a consistent copy of this node's storage to `out` (the backup layout of
    /// `agora_storage::write_snapshot`), with commits held back while it is written; answers
    /// the record count. Blocking: run it off the async threads, into a local file.
    pub fn snapshot(&self, out: &mut dyn std::io::Write) -> Result<u64, AskError> {
        Ok(self
            .shared
            .committer
            .paused(|engine| agora_storage::write_snapshot(engine, out))?)
    }

    /// The committed state records of the actors of kind `A`, by key: in `partition`, or in
    /// every partition this node serves. Storage only: what a 2xx answer promised is there;
    /// a change still being committed is not.
    pub fn scan_states<A: VirtualActor>(
        &self,
        partition: Option<u32>,
    ) -> Result<Vec<(String, Vec<u8>)>, AskError> {
        let partitions = match partition {
            Some(p) => {
                self.check_serving(p)?;
                p..p + 1
            }
            None => 0..PARTITIONS,
        };
        let mut out = Vec::new();
        for p in partitions {
            if partition.is_none() && self.check_serving(p).is_err() {
                continue;
            }
            let prefix = keys::states_prefix(p, A::KIND);
            out.extend(
                self.shared
                    .engine()
                    .scan_prefix(&prefix)?
                    .into_iter()
                    .map(|(k, v)| (String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), v)),
            );
        }
        Ok(out)
    }

    /// Appends a journal entry outside any actor (for example a refused request worth
    /// auditing) and returns its sequence once it is durable.
    pub async fn append_journal(&self, entry: Vec<u8>) -> Result<u64, AskError> {
        let seq = self.shared.journal_seq.fetch_add(1, Ordering::Relaxed);
        let mut batch = agora_storage::WriteBatch::new();
        batch.put(keys::journal(seq), entry);
        let at = self.shared.committer.submit(batch)?;
        self.shared.committer.wait_durable(at).await?;
        Ok(seq)
    }

    /// Journal entries after `after` (all when `None`) that `keep` accepts, oldest first, at
    /// most `limit`; with the sequence to pass as `after` for the next page, when there may be
    /// more.
    pub async fn read_journal(
        &self,
        after: Option<u64>,
        limit: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<JournalPage, AskError> {
        const PAGE: usize = 1024;
        if let Some(c) = &self.shared.cluster {
            return c
                .read_journal(after, limit, PAGE, keep)
                .await
                .map_err(AskError::Unavailable);
        }
        let mut out = Vec::new();
        let mut from = keys::journal(after.map(|a| a.saturating_add(1)).unwrap_or(0));
        loop {
            let page = self.shared.engine().scan_from(keys::JOURNAL, &from, PAGE)?;
            let full = page.len() == PAGE;
            for (k, v) in page {
                let Some(seq) = keys::parse_journal(&k) else {
                    continue;
                };
                from = keys::journal(seq.saturating_add(1));
                if keep(&v) {
                    out.push((seq, v));
                    if out.len() == limit {
                        return Ok((out, Some(seq)));
                    }
                }
            }
            if !full {
                return Ok((out, None));
            }
        }
    }

    /// A node-unique, never reused number in `namespace` (durable before it is returned).
    pub async fn next_id(&self, namespace: &str) -> Result<u64, AskError> {
        Ok(self.shared.ids.next(namespace).await?)
    }

    /// A never reused id in `namespace` that embeds `partition` (see
    /// [`crate::partition_of_id`]), for an actor that must live in that partition.
    pub async fn next_id_in(&self, namespace: &str, partition: u32) -> Result<u64, AskError> {
        Ok(id_in_partition(self.next_id(namespace).await?, partition))
    }

    pub fn stats(&self) -> RuntimeStats {
        let c = self.shared.committer.stats();
        let o = self.shared.outbox.stats();
        let m = self.shared.courier.stats();
        RuntimeStats {
            active_actors: self.shared.directory.active.load(Ordering::Relaxed),
            mailbox_depth: self.shared.directory.mailbox_depth.load(Ordering::Relaxed),
            reminders_pending: self.shared.scheduler.pending(),
            outbox_depth: o.depth,
            outbox_delivered: o.delivered,
            outbox_failed_attempts: o.failed_attempts,
            messages_pending: m.pending,
            messages_delivered: m.delivered,
            messages_duplicates: m.duplicates,
            messages_expired: m.expired,
            messages_failed_attempts: m.failed_attempts,
            commits: c.batches,
            storage_writes: c.writes,
            flushes: c.flushes,
            commit_queue: c.queued,
            last_flush_us: c.last_flush_us,
            commit_apply_ns: c.apply_ns,
            commit_flush_ns: c.flush_ns,
            storage_failed: self.shared.committer.is_failed(),
        }
    }

    /// True while storage accepts writes.
    pub fn is_healthy(&self) -> bool {
        !self.shared.committer.is_failed()
    }

    /// Deletes the receipts of durable messages older than the delivery window (plus a
    /// margin) now, rather than at the next hourly sweep. Answers how many.
    pub fn sweep_receipts(&self) -> Result<usize, AskError> {
        Ok(crate::courier::sweep_receipts(&self.shared)?)
    }

    /// Stops firing reminders and delivering, commits and flushes everything acknowledged or
    /// queued, and stops the actor threads. Call after the gateway has drained.
    pub fn shutdown(&self) {
        self.shared.scheduler.stop();
        self.shared.outbox.stop();
        self.shared.courier.stop();
        self.shared.committer.shutdown();
        if let Some(tx) = self
            .shared
            .actix_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = tx.send(());
        }
        if let Some(t) = self
            .shared
            .actix_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }
}

/// The node's one idle sweep: runs on an arbiter, so it lives exactly as long as the actors.
async fn idle_sweep(shared: Weak<Shared>, every: Duration, quiet: u64) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        for idle in shared.directory.sweep(quiet) {
            idle.nudge_idle();
        }
    }
}

type ArbiterStart = (
    Vec<ArbiterHandle>,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
);

/// actix needs a `System` on the thread that creates arbiters; it gets its own thread so the
/// gateway's tokio runtime stays a plain tokio runtime.
fn start_arbiters(n: usize) -> ArbiterStart {
    let (handles_tx, handles_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("agora-actix".into())
        .spawn(move || {
            let system = actix_rt::System::new();
            let arbiters: Vec<Arbiter> =
                system.block_on(async { (0..n).map(|_| Arbiter::new()).collect::<Vec<Arbiter>>() });
            let _ = handles_tx.send(arbiters.iter().map(|a| a.handle()).collect::<Vec<_>>());
            let _ = stop_rx.recv();
            for a in &arbiters {
                a.stop();
            }
            for a in arbiters {
                let _ = a.join();
            }
        })
        .expect("spawning the actor system thread");
    let handles = handles_rx
        .recv()
        .expect("the actor system thread reports its arbiters");
    (handles, stop_tx, thread)
}
