//! The reminder scheduler: knows every pending reminder of the node, sleeps until the earliest
//! on the runtime's clock (so a manual clock that moves past a due time fires it at once), and
//! fires it by activating its actor.
//!
//! The scheduler's map is a cache of the `m/` records (each actor's reminders, due time
//! included): it is rebuilt from storage at start (so reminders that came due while the node
//! was down fire right away, oldest first) and kept up to date by commit notifications. Firing is at-least-once; the activation makes the effect
//! happen once, because the reminder's removal is committed with the effect.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use agora_storage::{decode_record, Engine, StorageError};
use tokio::sync::{mpsc, Notify};

use crate::activation::{ReminderRecord, REMINDER_KIND, REMINDER_VERSION};
use crate::actor_id::ActorId;
use crate::keys;
use crate::node::{FireFn, Shared};
use crate::PARTITIONS;

pub(crate) enum SchedulerEvent {
    Schedule {
        id: ActorId,
        name: String,
        due_ms: u64,
    },
    Cancel {
        id: ActorId,
        name: String,
        due_ms: u64,
    },
    /// A fire attempt ended; `retry` when the actor could not take it.
    Fired {
        id: ActorId,
        name: String,
        due_ms: u64,
        attempts: u32,
        retry: bool,
    },
}

#[derive(Clone)]
pub(crate) struct SchedulerSender(mpsc::UnboundedSender<SchedulerEvent>);

impl SchedulerSender {
    pub fn notify(&self, ev: SchedulerEvent) {
        // Only fails once the scheduler has stopped, when nothing is left to schedule.
        let _ = self.0.send(ev);
    }
}

pub(crate) struct Scheduler {
    tx: mpsc::UnboundedSender<SchedulerEvent>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<SchedulerEvent>>>,
    pending: Arc<AtomicI64>,
    concurrency: usize,
    stop: Arc<Notify>,
}

struct Entry {
    due_ms: u64,
    attempts: u32,
}

impl Scheduler {
    pub fn new(concurrency: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            pending: Arc::new(AtomicI64::new(0)),
            concurrency: concurrency.max(1),
            stop: Arc::new(Notify::new()),
        }
    }

    pub fn sender(&self) -> SchedulerSender {
        SchedulerSender(self.tx.clone())
    }

    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// Schedules every reminder stored in partition `p` (a partition this node just took over).
    pub fn load_partition(
        &self,
        engine: &Arc<dyn Engine>,
        p: u32,
        kinds: &[&'static str],
    ) -> Result<usize, StorageError> {
        let sender = self.sender();
        let mut n = 0;
        visit_stored(engine, p, kinds, |id, name, due_ms| {
            sender.notify(SchedulerEvent::Schedule { id, name, due_ms });
            n += 1;
        })?;
        Ok(n)
    }

    /// Starts the scheduler; with `load_all`, every stored reminder is loaded first (a single
    /// node owns every partition; a cluster node loads partitions as it takes them over).
    pub fn load_and_start(
        &self,
        engine: &Arc<dyn Engine>,
        shared: Weak<Shared>,
        load_all: bool,
    ) -> Result<(), StorageError> {
        let Some(rx) = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let kinds: Vec<&'static str> = match shared.upgrade() {
            Some(s) => s
                .fire
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .copied()
                .collect(),
            None => return Ok(()),
        };
        let mut state = State {
            entries: BTreeMap::new(),
            index: HashMap::new(),
        };
        let partitions = if load_all { 0..PARTITIONS } else { 0..0 };
        for p in partitions {
            visit_stored(engine, p, &kinds, |id, name, due| {
                state.schedule(key_of(&id, &name), due, due, 0);
            })?;
        }
        tracing::info!(reminders = state.entries.len(), "reminder scheduler loaded");
        self.pending
            .store(state.entries.len() as i64, Ordering::Relaxed);
        let worker = Worker {
            state,
            rx,
            tx: self.tx.clone(),
            shared,
            pending: self.pending.clone(),
            in_flight: 0,
            concurrency: self.concurrency,
            stop: self.stop.clone(),
        };
        tokio::spawn(worker.run());
        Ok(())
    }
}

/// Calls `f` with every reminder stored in partition `p` (its `m/` records, read whole: the
/// due time is in the record) whose actor kind is registered.
fn visit_stored(
    engine: &Arc<dyn Engine>,
    p: u32,
    kinds: &[&'static str],
    mut f: impl FnMut(ActorId, String, u64),
) -> Result<(), StorageError> {
    for (k, v) in engine.scan_prefix(&keys::section(p, keys::ACTOR_REMINDER))? {
        let Some((kind, key, name)) = keys::parse_actor_reminder(&k) else {
            tracing::warn!("skipping a malformed reminder key");
            continue;
        };
        let Some(kind) = kinds.iter().find(|k| **k == kind) else {
            tracing::warn!(%kind, "skipping a reminder of an unregistered actor kind");
            continue;
        };
        let rec = match decode_record::<ReminderRecord>(REMINDER_KIND, REMINDER_VERSION, &v) {
            Ok((_, rec)) => rec,
            Err(e) => {
                tracing::warn!(%kind, %key, %name, error = %e, "skipping an unreadable reminder");
                continue;
            }
        };
        f(ActorId::new(kind, key), name, rec.due_ms);
    }
    Ok(())
}

/// One pending reminder, named by `kind\0key\0name` in a single shared allocation: a node may
/// hold millions of reminders of passivated actors, and this map is all they cost in memory.
type Key = Arc<str>;

fn key_of(id: &ActorId, name: &str) -> Key {
    let mut k = String::with_capacity(id.kind.len() + id.key.len() + name.len() + 2);
    k.push_str(id.kind);
    k.push('\0');
    k.push_str(&id.key);
    k.push('\0');
    k.push_str(name);
    Arc::from(k)
}

/// Splits a key back into the actor (with its registered, static kind) and the reminder name.
fn split_key(
    key: &str,
    kinds: &HashMap<&'static str, FireFn>,
) -> Option<(ActorId, String, FireFn)> {
    let mut parts = key.splitn(3, '\0');
    let (kind, actor, name) = (parts.next()?, parts.next()?, parts.next()?);
    let (kind, fire) = kinds.get_key_value(kind)?;
    Some((ActorId::new(kind, actor), name.to_string(), fire.clone()))
}

struct State {
    /// (fire at, reminder) → the reminder's own due time and attempts so far.
    entries: BTreeMap<(u64, Key), Entry>,
    index: HashMap<Key, u64>,
}

impl State {
    fn schedule(&mut self, key: Key, due_ms: u64, fire_at: u64, attempts: u32) {
        if let Some(old) = self.index.remove(&key) {
            self.entries.remove(&(old, key.clone()));
        }
        self.index.insert(key.clone(), fire_at);
        self.entries
            .insert((fire_at, key), Entry { due_ms, attempts });
    }

    fn cancel(&mut self, key: Key, due_ms: u64) {
        if let Some(fire_at) = self.index.get(&key).copied() {
            let ek = (fire_at, key);
            if self.entries.get(&ek).map(|e| e.due_ms) == Some(due_ms) {
                self.entries.remove(&ek);
                self.index.remove(&ek.1);
            }
        }
    }
}

struct Worker {
    state: State,
    rx: mpsc::UnboundedReceiver<SchedulerEvent>,
    tx: mpsc::UnboundedSender<SchedulerEvent>,
    shared: Weak<Shared>,
    pending: Arc<AtomicI64>,
    in_flight: usize,
    concurrency: usize,
    stop: Arc<Notify>,
}

impl Worker {
    async fn run(mut self) {
        loop {
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            let now = shared.clock.now_ms();
            self.fire_due(&shared, now);
            self.pending.store(
                (self.state.entries.len() + self.in_flight) as i64,
                Ordering::Relaxed,
            );
            // Nothing to wait for (or no room to fire more): only an event can change that.
            let wake: crate::clock::Sleep = match self.state.entries.keys().next() {
                Some((at, _)) if self.in_flight < self.concurrency => {
                    shared.clock.sleep_until((*at).max(now + 1))
                }
                _ => Box::pin(std::future::pending()),
            };
            drop(shared);
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.apply(ev),
                    None => return,
                },
                _ = wake => {}
                _ = self.stop.notified() => return,
            }
            // Take every event already queued before deciding what is due.
            while let Ok(ev) = self.rx.try_recv() {
                self.apply(ev);
            }
        }
    }

    fn apply(&mut self, ev: SchedulerEvent) {
        match ev {
            SchedulerEvent::Schedule { id, name, due_ms } => {
                self.state.schedule(key_of(&id, &name), due_ms, due_ms, 0)
            }
            SchedulerEvent::Cancel { id, name, due_ms } => {
                self.state.cancel(key_of(&id, &name), due_ms)
            }
            SchedulerEvent::Fired {
                id,
                name,
                due_ms,
                attempts,
                retry,
            } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                // A newer schedule for the same name supersedes the failed attempt.
                let key = key_of(&id, &name);
                let superseded = self.state.index.contains_key(&key);
                if retry && !superseded {
                    let backoff = 50u64.saturating_mul(1 << attempts.min(8)).min(10_000);
                    let at = self.shared.upgrade().map(|s| s.clock.now_ms()).unwrap_or(0) + backoff;
                    self.state.schedule(key, due_ms, at, attempts + 1);
                }
            }
        }
    }

    fn fire_due(&mut self, shared: &Arc<Shared>, now: u64) {
        while self.in_flight < self.concurrency {
            let Some(first) = self.state.entries.first_entry() else {
                return;
            };
            if first.key().0 > now {
                return;
            }
            let ((_, key), entry) = first.remove_entry();
            self.state.index.remove(&key);
            let parsed = split_key(&key, &shared.fire.read().unwrap_or_else(|p| p.into_inner()));
            let Some((id, name, fire)) = parsed else {
                continue;
            };
            self.in_flight += 1;
            let tx = self.tx.clone();
            let due_ms = entry.due_ms;
            let attempts = entry.attempts;
            let cluster = shared.cluster.clone();
            tokio::spawn(async move {
                let result = fire(id.clone(), name.clone(), due_ms).await;
                // Another node serves the partition now and fires its reminders itself. Not so
                // while this node is still taking the partition over: it loads the reminders
                // before it serves them, and must fire them once it does.
                let moved = match &result {
                    Err(crate::AskError::NotOwner(p)) => {
                        cluster.as_ref().is_none_or(|c| !c.holds_lease(*p))
                    }
                    _ => false,
                };
                if let (Err(e), false) = (&result, moved) {
                    tracing::warn!(actor = %id, reminder = %name, error = %e, "reminder not taken; will retry");
                }
                let _ = tx.send(SchedulerEvent::Fired {
                    id,
                    name,
                    due_ms,
                    attempts,
                    retry: result.is_err() && !moved,
                });
            });
        }
    }
}
