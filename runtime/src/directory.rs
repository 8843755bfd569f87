//! Which actors are active on this node, the one lock that makes activation and passivation
//! race-free, and the node-wide sweep that finds idle activations.
//!
//! A caller takes a slot and bumps its `pending` count under the shard lock; an idle actor
//! removes its own slot under the same lock, and only when `pending` is zero. So a message is
//! never sent to an activation that has decided to stop, and an id never has two activations.
//!
//! Idleness is kept here, not in each activation: every acquire stamps its slot with the
//! sweep's tick, and one sweep per node walks the slots. A timer per activation made a large
//! live population cost every actor-creating request more (each timer is an allocation and a
//! timer-wheel entry, and the wheel's work grows with the population).

use std::any::Any;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hashbrown::HashTable;

use crate::actor_id::ActorId;

const SHARDS: usize = 64;

/// An activation's address, type-erased, with what the sweep may ask of it.
pub(crate) trait Mailbox: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    /// Asks the activation to passivate if it still can (nothing in flight to disk).
    fn nudge_idle(&self);
}

pub(crate) struct Slot {
    pub addr: Arc<dyn Mailbox>,
    pub generation: u64,
    pub pending: Arc<AtomicUsize>,
    /// The sweep tick of the latest acquire.
    touched: u64,
}

/// The id's keyed hash is kept beside it: a shard that grows rehashes from stored hashes
/// instead of running SipHash over every key again.
struct Entry {
    hash: u64,
    id: ActorId,
    slot: Slot,
}

pub(crate) struct Directory {
    shards: Vec<Mutex<HashTable<Entry>>>,
    /// Keyed (SipHash with a per-process key): actor keys come from callers, and a keyless
    /// hash would let them pile ids into one bucket chain.
    hasher: RandomState,
    next_generation: AtomicU64,
    /// Advanced by each sweep: slots compare their stamp against it.
    tick: AtomicU64,
    pub active: AtomicI64,
    pub mailbox_depth: Arc<AtomicI64>,
}

pub(crate) enum Lookup {
    /// The slot's address, with `pending` already counted for this caller.
    Ready(Arc<dyn Mailbox>, Arc<AtomicUsize>),
    Full,
    /// `spawn` declined to create the activation.
    Refused,
}

impl Directory {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            hasher: RandomState::new(),
            next_generation: AtomicU64::new(1),
            tick: AtomicU64::new(0),
            active: AtomicI64::new(0),
            mailbox_depth: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The id's hash and its shard. The shard takes bits 40..46, which the table itself never
    /// uses (it probes with the low bits and tags with the top seven), so entries of one shard
    /// still spread over its whole table.
    fn locate(&self, id: &ActorId) -> (u64, MutexGuard<'_, HashTable<Entry>>) {
        let hash = self.hasher.hash_one(id);
        let i = (hash >> 40) as usize % SHARDS;
        (
            hash,
            self.shards[i].lock().unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Finds the activation of `id`, or creates it with `spawn(generation, pending)`.
    pub fn acquire(
        &self,
        id: &ActorId,
        capacity: usize,
        spawn: impl FnOnce(u64, Arc<AtomicUsize>) -> Option<Arc<dyn Mailbox>>,
    ) -> Lookup {
        let (hash, mut shard) = self.locate(id);
        let tick = self.tick.load(Ordering::Relaxed);
        if let Some(e) = shard.find_mut(hash, |e| e.id == *id) {
            return self.count(&mut e.slot, capacity, tick);
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(AtomicUsize::new(0));
        let Some(addr) = spawn(generation, pending.clone()) else {
            return Lookup::Refused;
        };
        self.active.fetch_add(1, Ordering::Relaxed);
        let entry = shard.insert_unique(
            hash,
            Entry {
                hash,
                id: id.clone(),
                slot: Slot {
                    addr,
                    generation,
                    pending,
                    touched: tick,
                },
            },
            |e| e.hash,
        );
        self.count(&mut entry.into_mut().slot, capacity, tick)
    }

    fn count(&self, slot: &mut Slot, capacity: usize, tick: u64) -> Lookup {
        if slot.pending.load(Ordering::Relaxed) >= capacity {
            return Lookup::Full;
        }
        slot.touched = tick;
        slot.pending.fetch_add(1, Ordering::Relaxed);
        self.mailbox_depth.fetch_add(1, Ordering::Relaxed);
        Lookup::Ready(slot.addr.clone(), slot.pending.clone())
    }

    /// Undoes one `acquire` whose message was never delivered.
    pub fn release(&self, pending: &AtomicUsize) {
        pending.fetch_sub(1, Ordering::Relaxed);
        self.mailbox_depth.fetch_sub(1, Ordering::Relaxed);
    }

    /// Advances the tick and returns the activations nobody has acquired for `quiet_ticks`
    /// ticks and nobody is about to send to.
    pub fn sweep(&self, quiet_ticks: u64) -> Vec<Arc<dyn Mailbox>> {
        let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let mut idle = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            idle.extend(
                shard
                    .iter()
                    .filter(|e| Self::quiet(&e.slot, now, quiet_ticks))
                    .map(|e| e.slot.addr.clone()),
            );
        }
        idle
    }

    fn quiet(slot: &Slot, now: u64, quiet_ticks: u64) -> bool {
        now.saturating_sub(slot.touched) >= quiet_ticks && slot.pending.load(Ordering::Relaxed) == 0
    }

    /// Removes the slot if it is still this generation, has stayed unacquired for
    /// `quiet_ticks` ticks, and nobody is about to send to it.
    pub fn remove_if_idle(&self, id: &ActorId, generation: u64, quiet_ticks: u64) -> bool {
        let now = self.tick.load(Ordering::Relaxed);
        let (hash, mut shard) = self.locate(id);
        match shard.find_entry(hash, |e| e.id == *id) {
            Ok(e)
                if e.get().slot.generation == generation
                    && Self::quiet(&e.get().slot, now, quiet_ticks) =>
            {
                e.remove();
                self.active.fetch_sub(1, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Removes the slot of a failed activation, whatever is pending (those callers get an error).
    pub fn remove(&self, id: &ActorId, generation: u64) {
        let (hash, mut shard) = self.locate(id);
        if let Ok(e) = shard.find_entry(hash, |e| e.id == *id) {
            if e.get().slot.generation == generation {
                e.remove();
                self.active.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// How often the sweep runs for an idle timeout, and how many ticks without an acquire make a
/// slot idle. A slot stamped during tick `t` is idle from tick `t + quiet`, so an actor
/// passivates between `idle` and `idle + every` after its last message (as when each
/// activation had its own timer).
pub(crate) fn sweep_schedule(idle: Duration) -> (Duration, u64) {
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    let quiet = idle.as_nanos().div_ceil(every.as_nanos()) as u64 + 1;
    (every, quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_never_passivates_before_the_idle_timeout() {
        for idle_ms in [1, 10, 49, 50, 200, 2_000, 120_000, 300_000, 3_600_000] {
            let idle = Duration::from_millis(idle_ms);
            let (every, quiet) = sweep_schedule(idle);
            // The latest a stamp can fall in its tick is just before the next tick begins.
            assert!(every * (quiet as u32 - 1) >= idle, "{idle_ms} ms");
            assert!(every * (quiet as u32 - 1) < idle + every, "{idle_ms} ms");
        }
    }

    struct Probe(AtomicUsize);

    impl Mailbox for Arc<Probe> {
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn nudge_idle(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn probe_slot(dir: &Directory, key: &str) -> (Arc<Probe>, Arc<AtomicUsize>, u64) {
        let probe = Arc::new(Probe(AtomicUsize::new(0)));
        let mut generation = 0;
        let p = probe.clone();
        let Lookup::Ready(_, pending) = dir.acquire(&ActorId::new("t", key), 8, |g, _| {
            generation = g;
            Some(Arc::new(p) as Arc<dyn Mailbox>)
        }) else {
            panic!("not ready")
        };
        (probe, pending, generation)
    }

    #[test]
    fn a_slot_is_swept_only_when_unacquired_for_the_quiet_ticks_and_nothing_is_pending() {
        let dir = Directory::new();
        let (_, a_pending, a_gen) = probe_slot(&dir, "a");
        let (_, b_pending, _) = probe_slot(&dir, "b");
        dir.release(&a_pending);
        // b keeps a message pending; a is acquired again after two ticks.
        assert!(dir.sweep(3).is_empty());
        assert!(dir.sweep(3).is_empty());
        let (_, again, _) = probe_slot(&dir, "a");
        dir.release(&again);
        assert!(dir.sweep(3).is_empty());
        assert!(dir.sweep(3).is_empty());
        assert!(!dir.remove_if_idle(&ActorId::new("t", "a"), a_gen, 3));
        let idle = dir.sweep(3);
        assert_eq!(idle.len(), 1, "only a, three ticks after its last acquire");
        idle[0].nudge_idle();
        // A stale generation is not removed; the current one is.
        assert!(!dir.remove_if_idle(&ActorId::new("t", "a"), a_gen + 100, 3));
        assert!(dir.remove_if_idle(&ActorId::new("t", "a"), a_gen, 3));
        assert_eq!(dir.active.load(Ordering::Relaxed), 1);
        dir.release(&b_pending);
        assert_eq!(dir.sweep(3).len(), 1, "b once its message is handled");
    }

    #[test]
    fn many_ids_stay_reachable_as_shards_grow() {
        let dir = Directory::new();
        let mut generations = Vec::new();
        for i in 0..20_000 {
            let (_, pending, g) = probe_slot(&dir, &format!("k{i}"));
            dir.release(&pending);
            generations.push(g);
        }
        assert_eq!(dir.active.load(Ordering::Relaxed), 20_000);
        // Acquiring again finds the same activation: no second spawn.
        for (i, g) in generations.iter().enumerate() {
            let Lookup::Ready(_, pending) =
                dir.acquire(&ActorId::new("t", format!("k{i}")), 8, |_, _| {
                    panic!("k{i} (generation {g}) spawned twice")
                })
            else {
                panic!("not ready")
            };
            dir.release(&pending);
        }
        for (i, g) in generations.iter().enumerate() {
            dir.remove(&ActorId::new("t", format!("k{i}")), *g);
        }
        assert_eq!(dir.active.load(Ordering::Relaxed), 0);
    }
}
