//! One activation of one virtual actor: an actix actor that restores the actor's state on its
//! first message, handles one message at a time, turns each message's [`Effects`] into one
//! batch for the committer, and passivates itself when idle.
//!
//! Replies carry the commit sequence of the activation's latest batch; the caller waits until
//! it is durable. Handling does not wait, so a hot actor pipelines its writes into the group
//! commit while every answer still means "on disk". Because storage may lag, the activation
//! keeps its auxiliary writes in flight in an overlay its handlers read through, and the ids
//! of durable messages it handled in commits not yet durable.
//!
//! An ask is an [`Ask`] of one typed [`Message`]: the activation handles every message type
//! its actor implements, each with its own reply type, through the one mailbox. actix boxes a
//! message once when it enters the mailbox; the ask path adds no allocation of its own.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use actix::prelude::*;
use agora_storage::{decode_record, encode_record, CommitSeq, WriteBatch};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::actor_id::ActorId;
use crate::aux::AuxReader;
use crate::cluster::Serving;
use crate::directory::{sweep_schedule, Mailbox};
use crate::effects::{Effects, Reminder, RestoreAux};
use crate::keys;
use crate::messages::{
    Delivery, MessageRecord, Outcome, Receipt, ReceiptRecord, RECEIPT_KIND, RECEIPT_VERSION,
};
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
    /// The node's idle sweep: passivate unless something is still in flight.
    Idle,
    /// A durable message from another actor (boxed: most messages are asks, and this keeps
    /// every message small).
    Deliver {
        delivery: Box<Delivery>,
        reply: oneshot::Sender<Result<(Outcome, CommitSeq), AskError>>,
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
    pending: Arc<AtomicUsize>,
    /// The commit epoch and the partition's lease generation when state was last read from
    /// storage: when either moves on, memory may hold what storage never accepted (or what
    /// another node changed since), so the actor reads storage again.
    restored_epoch: u64,
    restored_lease: u64,
    /// Reads of auxiliary records, with the writes still in flight (lent to each handler).
    reader: Option<Box<AuxReader>>,
    /// Durable messages handled in commits that may not be durable yet: storage does not show
    /// their receipts, so a redelivery racing the commit must be caught here.
    handled_in_flight: HashMap<String, CommitSeq>,
    /// Nothing is stored under this id (a key allocated just now): the first restore reads
    /// nothing. Any later one (after a failed commit, a new lease) reads storage as usual.
    fresh: bool,
}

impl<A: VirtualActor> Activation<A> {
    pub fn new(
        id: ActorId,
        generation: u64,
        env: A::Env,
        shared: Weak<Shared>,
        pending: Arc<AtomicUsize>,
        fresh: bool,
    ) -> Self {
        Self {
            id,
            generation,
            env,
            shared,
            life: Life::Unrestored,
            reminders: BTreeMap::new(),
            last_seq: 0,
            pending,
            restored_epoch: 0,
            restored_lease: 0,
            reader: None,
            handled_in_flight: HashMap::new(),
            fresh,
        }
    }

    fn restore(&mut self, shared: &Shared) {
        self.restored_epoch = shared.committer.epoch();
        self.reminders.clear();
        self.handled_in_flight.clear();
        let engine = shared.engine();
        match &mut self.reader {
            Some(r) => r.reset(),
            None => {
                self.reader = Some(Box::new(AuxReader::new(
                    engine.clone(),
                    keys::aux_prefix(&self.id),
                )))
            }
        }
        let fresh = std::mem::take(&mut self.fresh);
        let loaded = (|| -> Result<A, String> {
            let state = if fresh {
                None
            } else {
                engine
                    .get(&keys::state(&self.id))
                    .map_err(|e| e.to_string())?
            };
            let aux = RestoreAux::new(
                engine.as_ref(),
                keys::aux_prefix(&self.id),
                if fresh {
                    Some(&[])
                } else {
                    (!A::RESTORE_AUX).then_some(A::RESTORE_AUX_PREFIXES)
                },
            );
            let rprefix = keys::actor_reminders_prefix(&self.id);
            let stored_reminders = if A::REMINDERS && !fresh {
                engine.scan_prefix(&rprefix).map_err(|e| e.to_string())?
            } else {
                Vec::new()
            };
            for (k, v) in stored_reminders {
                let name = String::from_utf8_lossy(&k[rprefix.len()..]).into_owned();
                let (_, rec) = decode_record::<ReminderRecord>(REMINDER_KIND, REMINDER_VERSION, &v)
                    .map_err(|e| e.to_string())?;
                self.reminders.insert(name, rec);
            }
            A::restore_streamed(&self.id, &self.env, state, aux)
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
        if !A::REMINDERS && !fx.set_reminders.is_empty() {
            return Err(AskError::Internal(format!(
                "actor kind {} declares no reminders (VirtualActor::REMINDERS) but set one",
                A::KIND
            )));
        }
        let mut batch = WriteBatch::new();
        let mut sched = Vec::new();
        let mut outbox = Vec::new();
        let mut messages = Vec::new();
        let now_ms = fx.now_ms();
        match fx.state {
            Some(Some(bytes)) => batch.put(keys::state(&self.id), bytes),
            Some(None) => batch.delete(keys::state(&self.id)),
            None => {}
        }
        // What the overlay must show until this batch is applied.
        let mut aux_in_flight = Vec::with_capacity(fx.aux.len());
        for (sub, v) in fx.aux {
            let k = keys::aux(&self.id, &sub);
            match &v {
                Some(v) => batch.put(k, v.clone()),
                None => batch.delete(k),
            }
            aux_in_flight.push((sub, v));
        }
        let handled = match fx.receipt {
            Some(r) => {
                let bytes = encode_record(RECEIPT_KIND, RECEIPT_VERSION, &r.record)
                    .map_err(|e| AskError::Internal(e.to_string()))?;
                batch.put(keys::receipt(&self.id, r.sent_ms, &r.id), bytes);
                Some(r.id)
            }
            None => None,
        };
        for m in fx.messages {
            let seq = shared.message_seq.fetch_add(1, Ordering::Relaxed);
            let mut id = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut id);
            let rec = MessageRecord {
                id: hex::encode(id),
                from_kind: self.id.kind.to_string(),
                from_key: self.id.key.clone(),
                to_kind: m.to.kind.to_string(),
                to_key: m.to.key,
                message_kind: m.message_kind.to_string(),
                sent_ms: now_ms,
                payload: m.payload,
            };
            let bytes = rec
                .encode()
                .map_err(|e| AskError::Internal(e.to_string()))?;
            let key = keys::message(self.id.partition, seq);
            batch.put(key.clone(), bytes);
            messages.push((key, rec));
        }
        for name in fx.cancel_reminders {
            if let Some(old) = self.reminders.remove(&name) {
                batch.delete(keys::actor_reminder(&self.id, &name));
                sched.push(SchedulerEvent::Cancel {
                    id: self.id.clone(),
                    name,
                    due_ms: old.due_ms,
                });
            }
        }
        for r in fx.set_reminders {
            if let Some(old) = self.reminders.get(&r.name) {
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
                created_ms: now_ms,
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
        let on_durable =
            if sched.is_empty() && outbox.is_empty() && published.is_empty() && messages.is_empty()
            {
                None
            } else {
                let scheduler = shared.scheduler.sender();
                let deliverer = shared.outbox.clone();
                let courier = shared.courier.clone();
                let events = shared.events.clone();
                Some(Box::new(move |r: Result<(), agora_storage::StorageError>| {
                    if r.is_ok() {
                        for ev in sched {
                            scheduler.notify(ev);
                        }
                        for (key, rec) in outbox {
                            deliverer.enqueue(key, rec);
                        }
                        for (key, rec) in messages {
                            courier.enqueue(key, rec);
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
        if !aux_in_flight.is_empty() {
            if let Some(r) = &mut self.reader {
                r.record(aux_in_flight, self.last_seq);
            }
        }
        if let Some(id) = handled {
            self.handled_in_flight.insert(id, self.last_seq);
        }
        Ok(())
    }

    fn poison(&mut self, shared: &Shared, ctx: &mut Context<Self>, why: String) {
        tracing::error!(actor = %self.id, error = %why, "activation stopped: memory may be ahead of disk");
        self.life = Life::Broken(why);
        shared.directory.remove(&self.id, self.generation);
        ctx.stop();
    }
}

impl<A: VirtualActor> Actor for Activation<A> {
    type Context = Context<Self>;
}

impl<A: VirtualActor> Mailbox for Addr<Activation<A>> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn nudge_idle(&self) {
        // A full mailbox is not idle; the next sweep asks again.
        let _ = self.try_send(ActMsg::Idle);
    }
}

impl<A: VirtualActor> Activation<A> {
    /// The sweep found this activation unasked for the idle timeout. It stops only once its
    /// writes are durable, and the directory re-checks under its lock that no caller is
    /// about to send.
    fn passivate_if_idle(&mut self, ctx: &mut Context<Self>) {
        let Some(shared) = self.shared.upgrade() else {
            ctx.stop();
            return;
        };
        let (_, quiet) = sweep_schedule(shared.config.idle_timeout);
        if self.pending.load(Ordering::Relaxed) == 0
            && shared.committer.durable() >= self.last_seq
            && shared
                .directory
                .remove_if_idle(&self.id, self.generation, quiet)
        {
            tracing::debug!(actor = %self.id, "passivated");
            ctx.stop();
        }
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
        // Only an activation with writes in flight pays for reading the watermark.
        let in_flight = self.reader.as_ref().is_some_and(|r| r.in_flight())
            || !self.handled_in_flight.is_empty();
        if in_flight {
            let durable = shared.committer.durable();
            if let Some(r) = &mut self.reader {
                r.trim(durable);
            }
            self.handled_in_flight.retain(|_, seq| *seq > durable);
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
        let mut fx = effects_for(&shared);
        let actor = match &mut self.life {
            Life::Ready(a) => a,
            Life::Broken(e) => {
                let _ = reply.send(Err(AskError::Internal(e.clone())));
                return;
            }
            Life::Unrestored => return,
        };
        fx.reader = self.reader.take();
        let answer = msg.handle(actor, &self.env, &mut fx);
        self.reader = fx.reader.take();
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

/// A fresh change record at the runtime's now, knowing whether the event stream is watched.
fn effects_for(shared: &Shared) -> Effects {
    let mut fx = Effects::new(shared.clock.now_ms());
    fx.unwatched = shared.events.receiver_count() == 0;
    fx
}

impl<A: VirtualActor> Handler<ActMsg> for Activation<A> {
    type Result = ();

    fn handle(&mut self, msg: ActMsg, ctx: &mut Context<Self>) {
        let span = tracing::debug_span!("actor", actor = %self.id);
        let _enter = span.enter();
        match msg {
            ActMsg::Idle => self.passivate_if_idle(ctx),
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
                let mut fx = effects_for(&shared);
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
                    fx.reader = self.reader.take();
                    actor.on_reminder(
                        &self.env,
                        Reminder {
                            name,
                            due_ms,
                            payload: rec.payload,
                        },
                        &mut fx,
                    );
                    self.reader = fx.reader.take();
                    if let Err(e) = self.commit(&shared, fx) {
                        let _ = reply.send(Err(e.clone()));
                        self.poison(&shared, ctx, e.to_string());
                        return;
                    }
                }
                let _ = reply.send(Ok(self.last_seq));
            }
            ActMsg::Deliver { delivery, reply } => {
                let shared = match self.admit(ctx, false) {
                    Ok(shared) => shared,
                    Err(refusal) => {
                        if let Some(e) = refusal {
                            let _ = reply.send(Err(e));
                        }
                        return;
                    }
                };
                let fx = effects_for(&shared);
                match self.deliver(&shared, *delivery, fx) {
                    Ok(outcome) => {
                        let _ = reply.send(Ok((outcome, self.last_seq)));
                    }
                    Err(DeliverError::Refused(e)) => {
                        let _ = reply.send(Err(e));
                    }
                    Err(DeliverError::Poisoned(e)) => {
                        let _ = reply.send(Err(e.clone()));
                        self.poison(&shared, ctx, e.to_string());
                    }
                }
            }
        }
    }
}

enum DeliverError {
    /// Nothing happened; the courier may try again.
    Refused(AskError),
    /// The commit failed: memory may be ahead of disk.
    Poisoned(AskError),
}

impl<A: VirtualActor> Activation<A> {
    /// Handles a durable message at most once: a receipt (durable, or in a commit still in
    /// flight) answers `Duplicate`; a message past the delivery window that was never handled
    /// answers `Expired`; otherwise the handler runs and its effects commit with the receipt.
    fn deliver(
        &mut self,
        shared: &Shared,
        delivery: Delivery,
        mut fx: Effects,
    ) -> Result<Outcome, DeliverError> {
        let actor = match &mut self.life {
            Life::Ready(a) => a,
            Life::Broken(e) => return Err(DeliverError::Refused(AskError::Internal(e.clone()))),
            Life::Unrestored => {
                return Err(DeliverError::Refused(AskError::Unavailable(
                    "actor not restored".into(),
                )))
            }
        };
        if self.handled_in_flight.contains_key(&delivery.id) {
            return Ok(Outcome::Duplicate);
        }
        let receipt_key = keys::receipt(&self.id, delivery.sent_ms, &delivery.id);
        // One point read, like restoring: a receipt from an earlier activation or node.
        match shared.engine().get(&receipt_key) {
            Ok(Some(_)) => return Ok(Outcome::Duplicate),
            Ok(None) => {}
            Err(e) => return Err(DeliverError::Refused(e.into())),
        }
        if fx.now_ms()
            > delivery
                .sent_ms
                .saturating_add(shared.config.messages.max_age_ms())
        {
            return Ok(Outcome::Expired);
        }
        let receipt = Receipt {
            id: delivery.id.clone(),
            sent_ms: delivery.sent_ms,
            record: ReceiptRecord {
                from_kind: delivery.from_kind.clone(),
                from_key: delivery.from_key.clone(),
                handled_ms: fx.now_ms(),
            },
        };
        fx.reader = self.reader.take();
        actor.on_message(&self.env, delivery, &mut fx);
        self.reader = fx.reader.take();
        fx.receipt = Some(receipt);
        self.commit(shared, fx).map_err(DeliverError::Poisoned)?;
        Ok(Outcome::Handled)
    }
}
