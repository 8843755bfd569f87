//! Which actors are active on this node, and the one lock that makes activation and
//! passivation race-free.
//!
//! A caller takes a slot and bumps its `pending` count under the shard lock; an idle actor
//! removes its own slot under the same lock, and only when `pending` is zero. So a message is
//! never sent to an activation that has decided to stop, and an id never has two activations.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::actor_id::{stable_hash, ActorId};

const SHARDS: usize = 64;

pub(crate) struct Slot {
    pub addr: Arc<dyn Any + Send + Sync>,
    pub generation: u64,
    pub pending: Arc<AtomicUsize>,
}

pub(crate) struct Directory {
    shards: Vec<Mutex<HashMap<ActorId, Slot>>>,
    next_generation: AtomicU64,
    pub active: AtomicI64,
    pub mailbox_depth: Arc<AtomicI64>,
}

pub(crate) enum Lookup {
    /// The slot's address, with `pending` already counted for this caller.
    Ready(Arc<dyn Any + Send + Sync>, Arc<AtomicUsize>),
    Full,
    /// `spawn` declined to create the activation.
    Refused,
}

impl Directory {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_generation: AtomicU64::new(1),
            active: AtomicI64::new(0),
            mailbox_depth: Arc::new(AtomicI64::new(0)),
        }
    }

    fn shard(&self, id: &ActorId) -> std::sync::MutexGuard<'_, HashMap<ActorId, Slot>> {
        let i =
            (stable_hash(id.key.as_bytes()) ^ stable_hash(id.kind.as_bytes())) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds the activation of `id`, or creates it with `spawn(generation, pending)`.
    pub fn acquire(
        &self,
        id: &ActorId,
        capacity: usize,
        spawn: impl FnOnce(u64, Arc<AtomicUsize>) -> Option<Arc<dyn Any + Send + Sync>>,
    ) -> Lookup {
        let mut shard = self.shard(id);
        // Look up before `entry`, which would clone the id on every call.
        if let Some(slot) = shard.get(id) {
            if slot.pending.load(Ordering::Relaxed) >= capacity {
                return Lookup::Full;
            }
            slot.pending.fetch_add(1, Ordering::Relaxed);
            self.mailbox_depth.fetch_add(1, Ordering::Relaxed);
            return Lookup::Ready(slot.addr.clone(), slot.pending.clone());
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(AtomicUsize::new(0));
        let Some(addr) = spawn(generation, pending.clone()) else {
            return Lookup::Refused;
        };
        self.active.fetch_add(1, Ordering::Relaxed);
        let slot = shard.entry(id.clone()).or_insert(Slot {
            addr,
            generation,
            pending,
        });
        if slot.pending.load(Ordering::Relaxed) >= capacity {
            return Lookup::Full;
        }
        slot.pending.fetch_add(1, Ordering::Relaxed);
        self.mailbox_depth.fetch_add(1, Ordering::Relaxed);
        Lookup::Ready(slot.addr.clone(), slot.pending.clone())
    }

    /// Undoes one `acquire` whose message was never delivered.
    pub fn release(&self, pending: &AtomicUsize) {
        pending.fetch_sub(1, Ordering::Relaxed);
        self.mailbox_depth.fetch_sub(1, Ordering::Relaxed);
    }

    /// Removes the slot if it is still this generation and nobody is about to send to it.
    pub fn remove_if_idle(&self, id: &ActorId, generation: u64) -> bool {
        let mut shard = self.shard(id);
        match shard.get(id) {
            Some(s) if s.generation == generation && s.pending.load(Ordering::Relaxed) == 0 => {
                shard.remove(id);
                self.active.fetch_sub(1, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Removes the slot of a failed activation, whatever is pending (those callers get an error).
    pub fn remove(&self, id: &ActorId, generation: u64) {
        let mut shard = self.shard(id);
        if shard.get(id).map(|s| s.generation) == Some(generation) {
            shard.remove(id);
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
