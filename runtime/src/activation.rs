//! One activation of one virtual actor: an actix actor that restores the actor's state on its
//! first message, handles one message at a time, turns each message's [`Effects`] into one
//! batch for the committer, and passivates itself when idle.
//!
//! Replies carry the commit sequence of the activation's latest batch; the caller waits until
//! it is durable. Handling does not wait, so a hot actor pipelines its writes into the group
//! commit while every answer still means "on disk".
//!
//! An ask is an [`Ask`] of one typed [`Message`]: the activation handles every message type
//! its actor implements, each with its own reply type, through the one mailbox. actix boxes a
//! message once when it enters the mailbox; the ask path adds no allocation of its own.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;
use agora_storage::{decode_record, encode_record, CommitSeq, WriteBatch};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::actor_id::ActorId;
use crate::cluster::Serving;
use crate::effects::{Effects, Reminder, Stored};
use crate::keys;
use crate::node::{AskError, Message, Shared, VirtualActor};
use crate::outbox::OutboxRecord;
use crate::reminders::SchedulerEvent;

/// Messages the runtime itself sends an activation.
pub(crate) enum ActMsg {
    Fire {
        name: String,
        due_ms: u64,
        reply: oneshot::Sender<Result<CommitSeq, AskError>>,
    },
}

impl actix::Message for ActMsg {
    type Result = ();
}

/// A caller's message `M` for actor `A`, with where its reply goes.
pub(crate) struct Ask<A: VirtualActor, M: Message<A>> {
    msg: M,
    reply: oneshot::Sender<Result<(M::Reply, CommitSeq), AskError>>,
    /// A read that may be answered from this node's last copy of a partition it can no
    /// longer confirm it serves (Redis unreachable).
    stale_ok: bool,
    actor: PhantomData<fn() -> A>,
}

impl<A: VirtualActor, M: Message<A>> Ask<A, M> {
    pub fn new(
        msg: M,
        reply: oneshot::Sender<Result<(M::Reply, CommitSeq), AskError>>,
        stale_ok: bool,
    ) -> Self {
        Ask {
            msg,
            reply,
            stale_ok,
            actor: PhantomData,
        }
    }
}

impl<A: VirtualActor, M: Message<A>> actix::Message for Ask<A, M> {
    type Result = ();
}

/// What may enter an activation's mailbox. (Spelled as a trait with concrete impls, not as a
/// `Handler` bound on `Runtime::send`: such a bound hides the activation's context type.)
pub(crate) trait Mail<A: VirtualActor>: Sized + Send + 'static {
    fn try_send(self, addr: &Addr<Activation<A>>) -> Result<(), SendError<Self>>;
}

impl<A: VirtualActor> Mail<A> for ActMsg {
    fn try_send(self, addr: &Addr<Activation<A>>) -> Result<(), SendError<Self>> {
        addr.try_send(self)
    }
}

impl<A: VirtualActor, M: Message<A>> Mail<A> for Ask<A, M> {
    fn try_send(self, addr: &Addr<Activation<A>>) -> Result<(), SendError<Self>> {
        addr.try_send(self)
    }
}

/// A reminder as stored beside its actor (`m/` keys).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct ReminderRecord {
    pub due_ms: u64,
    pub payload: Vec<u8>,
}

pub(crate) const REMINDER_KIND: &str = "reminder";
pub(crate) const REMINDER_VERSION: u16 = 1;

enum Life<A> {
    Unrestored,
    Ready(A),
    Broken(String),
}

pub(crate) struct Activation<A: VirtualActor> {
    id: ActorId,
    generation: u64,
    env: A::Env,
    shared: Weak<Shared>,
    life: Life<A>,
    reminders: BTreeMap<String, ReminderRecord>,
    last_seq: CommitSeq,
    last_active: Instant,
    pending: Arc<AtomicUsize>,
    /// The commit epoch and the partition's lease generation when state was last read from
    /// storage: when either moves on, memory may hold what storage never accepted (or what
    /// another node changed since), so the actor reads storage again.
    restored_epoch: u64,
    restored_lease: u64,
}

impl<A: VirtualActor> Activation<A> {
    pub fn new(
        id: ActorId,
        generation: u64,
        env: A::Env,
        shared: Weak<Shared>,
        pending: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            id,
            generation,
            env,
            shared,
            life: Life::Unrestored,
            reminders: BTreeMap::new(),
            last_seq: 0,
            last_active: Instant::now(),
            pending,
            restored_epoch: 0,
            restored_lease: 0,
        }
    }

    fn restore(&mut self, shared: &Shared) {
        self.restored_epoch = shared.committer.epoch();
        self.reminders.clear();
        let engine = shared.engine();
        let loaded = (|| -> Result<A, String> {
            let state = engine
                .get(&keys::state(&self.id))
                .map_err(|e| e.to_string())?;
            let prefix = keys::aux_prefix(&self.id);
            let aux = engine
                .scan_prefix(&prefix)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|(k, v)| (k[prefix.len()..].to_vec(), v))
                .collect();
            let rprefix = keys::actor_reminders_prefix(&self.id);
            for (k, v) in engine.scan_prefix(&rprefix).map_err(|e| e.to_string())? {
                let name = String::from_utf8_lossy(&k[rprefix.len()..]).into_owned();
                let (_, rec) = decode_record::<ReminderRecord>(REMINDER_KIND, REMINDER_VERSION, &v)
                    .map_err(|e| e.to_string())?;
                self.reminders.insert(name, rec);
            }
            A::restore(&self.id, &self.env, Stored { state, aux })
        })();
        self.life = match loaded {
            Ok(a) => Life::Ready(a),
            Err(e) => {
                tracing::error!(actor = %self.id, error = %e, "actor state cannot be restored");
                Life::Broken(e)
            }
        };
    }

    /// Turns `fx` into one batch and queues it. On failure the in-memory actor is ahead of disk,
    /// so the activation must not serve another message.
    fn commit(&mut self, shared: &Shared, fx: Effects) -> Result<(), AskError> {
        if fx.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        let mut sched = Vec::new();
        let mut outbox = Vec::new();
        match fx.state {
            Some(Some(bytes)) => batch.put(keys::state(&self.id), bytes),
            Some(None) => batch.delete(keys::state(&self.id)),
            None => {}
        }
        for (sub, v) in fx.aux {
            let k = keys::aux(&self.id, &sub);
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        for name in fx.cancel_reminders {
            if let Some(old) = self.reminders.remove(&name) {
                batch.delete(keys::actor_reminder(&self.id, &name));
                batch.delete(keys::due(old.due_ms, &self.id, &name));
                sched.push(SchedulerEvent::Cancel {
                    id: self.id.clone(),
                    name,
                    due_ms: old.due_ms,
                });
            }
        }
        for r in fx.set_reminders {
            if let Some(old) = self.reminders.get(&r.name) {
                batch.delete(keys::due(old.due_ms, &self.id, &r.name));
                sched.push(SchedulerEvent::Cancel {
                    id: self.id.clone(),
                    name: r.name.clone(),
                    due_ms: old.due_ms,
                });
            }
            let rec = ReminderRecord {
                due_ms: r.due_ms,
                payload: r.payload,
            };
            let bytes = encode_record(REMINDER_KIND, REMINDER_VERSION, &rec)
                .map_err(|e| AskError::Internal(e.to_string()))?;
            batch.put(keys::actor_reminder(&self.id, &r.name), bytes);
            batch.put(keys::due(r.due_ms, &self.id, &r.name), Vec::new());
            sched.push(SchedulerEvent::Schedule {
                id: self.id.clone(),
                name: r.name.clone(),
                due_ms: r.due_ms,
            });
            self.reminders.insert(r.name, rec);
        }
        for m in fx.outbox {
            let seq = shared.outbox_seq.fetch_add(1, Ordering::Relaxed);
            let mut key = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut key);
            let rec = OutboxRecord {
                id: hex::encode(key),
                url: m.url,
                body: m.body,
                ordering_key: m.ordering_key,
                created_ms: fx_now(shared),
            };
            let bytes = rec
                .encode()
                .map_err(|e| AskError::Internal(e.to_string()))?;
            let key = keys::outbox(self.id.partition, seq);
            batch.put(key.clone(), bytes);
            outbox.push((key, rec));
        }
        for entry in fx.journal {
            let seq = shared.journal_seq.fetch_add(1, Ordering::Relaxed);
            batch.put(keys::journal(seq), entry);
        }
        for (k, v) in fx.index {
            match v {
                Some(v) => batch.put(keys::index(self.id.partition, &k), v),
                None => batch.delete(keys::index(self.id.partition, &k)),
            }
        }
        let published = fx.published;
        let on_durable = if sched.is_empty() && outbox.is_empty() && published.is_empty() {
            None
        } else {
            let scheduler = shared.scheduler.sender();
            let deliverer = shared.outbox.clone();
            let events = shared.events.clone();
            Some(Box::new(move |r: Result<(), agora_storage::StorageError>| {
                if r.is_ok() {
                    for ev in sched {
                        scheduler.notify(ev);
                    }
                    for (key, rec) in outbox {
                        deliverer.enqueue(key, rec);
                    }
                    for p in published {
                        // No subscriber is not an error: the stream is live-only.
                        let _ = events.send(Arc::new(p));
                    }
                }
            }) as agora_storage::OnDurable)
        };
        self.last_seq = shared
            .committer
            .submit_fenced(batch, self.restored_epoch, on_durable)?;
        Ok(())
    }

    fn poison(&mut self, shared: &Shared, ctx: &mut Context<Self>, why: String) {
        tracing::error!(actor = %self.id, error = %why, "activation stopped: memory may be ahead of disk");
        self.life = Life::Broken(why);
        shared.directory.remove(&self.id, self.generation);
        ctx.stop();
    }
}

fn fx_now(shared: &Shared) -> u64 {
    shared.clock.now_ms()
}

impl<A: VirtualActor> Actor for Activation<A> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let idle = shared.config.idle_timeout;
        let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        ctx.run_interval(every, move |act, ctx| {
            let Some(shared) = act.shared.upgrade() else {
                ctx.stop();
                return;
            };
            let quiet = act.last_active.elapsed() >= idle
                && act.pending.load(Ordering::Relaxed) == 0
                && shared.committer.durable() >= act.last_seq;
            // The directory re-checks `pending` under its lock: a caller may be about to send.
            if quiet && shared.directory.remove_if_idle(&act.id, act.generation) {
                tracing::debug!(actor = %act.id, "passivated");
                ctx.stop();
            }
        });
    }
}

impl<A: VirtualActor> Activation<A> {
    /// What every message goes through before its handler: counts it out of the mailbox,
    /// checks that this node still serves the partition (`stale_ok`: a read that may be
    /// answered from a copy it served last), and restores the actor when memory may be
    /// stale. `Err(Some(e))`: answer `e`; `Err(None)`: the runtime is gone, nobody to answer.
    fn admit(
        &mut self,
        ctx: &mut Context<Self>,
        stale_ok: bool,
    ) -> Result<Arc<Shared>, Option<AskError>> {
        self.pending.fetch_sub(1, Ordering::Relaxed);
        self.last_active = Instant::now();
        let shared = self.shared.upgrade().ok_or(None)?;
        shared
            .directory
            .mailbox_depth
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(cluster) = &shared.cluster {
            let stale_read = stale_ok && cluster.stale_readable(self.id.partition);
            match cluster.serving(self.id.partition) {
                Serving::No if stale_read => {}
                Serving::No => {
                    // The partition moved (or its lease lapsed): this activation is done.
                    shared.directory.remove(&self.id, self.generation);
                    ctx.stop();
                    return Err(Some(AskError::NotOwner(self.id.partition)));
                }
                Serving::Yes { generation } => {
                    if generation != self.restored_lease {
                        self.restored_lease = generation;
                        self.life = Life::Unrestored;
                    }
                }
            }
        }
        if shared.committer.epoch() != self.restored_epoch && matches!(self.life, Life::Ready(_)) {
            self.life = Life::Unrestored;
        }
        if matches!(self.life, Life::Unrestored) {
            self.restore(&shared);
        }
        Ok(shared)
    }
}

impl<A: VirtualActor, M: Message<A>> Handler<Ask<A, M>> for Activation<A> {
    type Result = ();

    fn handle(&mut self, ask: Ask<A, M>, ctx: &mut Context<Self>) {
        // Debug level: with the default `info` filter the span costs nothing per message, and
        // every warning or error an actor logs names the actor itself.
        let span = tracing::debug_span!("actor", actor = %self.id);
        let _enter = span.enter();
        let Ask {
            msg,
            reply,
            stale_ok,
            ..
        } = ask;
        let shared = match self.admit(ctx, stale_ok) {
            Ok(shared) => shared,
            Err(refusal) => {
                if let Some(e) = refusal {
                    let _ = reply.send(Err(e));
                }
                return;
            }
        };
        let mut fx = Effects::new(shared.clock.now_ms());
        let actor = match &mut self.life {
            Life::Ready(a) => a,
            Life::Broken(e) => {
                let _ = reply.send(Err(AskError::Internal(e.clone())));
                return;
            }
            Life::Unrestored => return,
        };
        let answer = msg.handle(actor, &self.env, &mut fx);
        match self.commit(&shared, fx) {
            Ok(()) => {
                let _ = reply.send(Ok((answer, self.last_seq)));
            }
            Err(e) => {
                let _ = reply.send(Err(e.clone()));
                self.poison(&shared, ctx, e.to_string());
            }
        }
    }
}

impl<A: VirtualActor> Handler<ActMsg> for Activation<A> {
    type Result = ();

    fn handle(&mut self, msg: ActMsg, ctx: &mut Context<Self>) {
        let span = tracing::debug_span!("actor", actor = %self.id);
        let _enter = span.enter();
        match msg {
            ActMsg::Fire {
                name,
                due_ms,
                reply,
            } => {
                let shared = match self.admit(ctx, false) {
                    Ok(shared) => shared,
                    Err(refusal) => {
                        if let Some(e) = refusal {
                            let _ = reply.send(Err(e));
                        }
                        return;
                    }
                };
                let mut fx = Effects::new(shared.clock.now_ms());
                let actor = match &mut self.life {
                    Life::Ready(a) => a,
                    Life::Broken(e) => {
                        let _ = reply.send(Err(AskError::Internal(e.clone())));
                        return;
                    }
                    Life::Unrestored => return,
                };
                // A reminder fires at most once: a stale or repeated delivery finds it gone.
                let current = self
                    .reminders
                    .get(&name)
                    .filter(|r| r.due_ms == due_ms)
                    .cloned();
                if let Some(rec) = current {
                    fx.cancel_reminder(name.clone());
                    actor.on_reminder(
                        &self.env,
                        Reminder {
                            name,
                            due_ms,
                            payload: rec.payload,
                        },
                        &mut fx,
                    );
                    if let Err(e) = self.commit(&shared, fx) {
                        let _ = reply.send(Err(e.clone()));
                        self.poison(&shared, ctx, e.to_string());
                        return;
                    }
                }
                let _ = reply.send(Ok(self.last_seq));
            }
        }
    }
}
