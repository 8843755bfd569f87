//! What [`community::Resolve`](crate::community::Resolve) answered, kept per community, so an
//! action, a webhook or a process start does not ask the community actor every time: that hop
//! was about a quarter of the thread switches of an action (BENCHMARKS.md, issue 14).
//!
//! Only the community actor changes what `Resolve` answers, and every handler that changes
//! it drops the community's entries while it runs, before its change can be answered. An
//! answer is kept only if no such change came between the actor computing it and the caller
//! storing it (the community's `generation`), and only once the caller has it, that is once
//! everything the actor did before it is durable. So a kept answer is never older than the
//! one the actor would give.
//!
//! Cluster mode keeps nothing: a community's partition can move to another node and back,
//! and what changed meanwhile was never seen by this node's actor (the e2e test
//! `cluster::an_action_through_any_node_sees_each_change_of_its_plugin_at_once` pauses an
//! owner past its lease to make exactly that happen; with the cache on, it fails).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::community::Resolved;

/// Communities kept at most; past it the cache starts over, which is always safe.
const MAX_COMMUNITIES: usize = 100_000;

pub struct ResolveCache {
    enabled: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_generation: u64,
    communities: HashMap<String, Slot>,
}

struct Slot {
    generation: u64,
    plugins: HashMap<String, Resolved>,
}

impl Default for ResolveCache {
    fn default() -> Self {
        Self::new(true)
    }
}

impl ResolveCache {
    /// `enabled: false` keeps nothing (cluster mode).
    pub fn new(enabled: bool) -> Self {
        ResolveCache {
            enabled,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section below leaves the maps whole, so a poisoned lock holds
        // nothing half-written.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, community: &str, plugin: &str) -> Option<Resolved> {
        if !self.enabled {
            return None;
        }
        self.lock()
            .communities
            .get(community)?
            .plugins
            .get(plugin)
            .cloned()
    }

    /// The generation an answer computed now belongs to. Called by the community actor while
    /// it answers `Resolve`, so it is ordered with [`Self::invalidate`] by the actor's mailbox.
    pub(crate) fn generation(&self, community: &str) -> u64 {
        if !self.enabled {
            return 0;
        }
        let mut inner = self.lock();
        if let Some(slot) = inner.communities.get(community) {
            return slot.generation;
        }
        if inner.communities.len() >= MAX_COMMUNITIES {
            inner.communities.clear();
        }
        inner.next_generation += 1;
        let generation = inner.next_generation;
        inner.communities.insert(
            community.to_string(),
            Slot {
                generation,
                plugins: HashMap::new(),
            },
        );
        generation
    }

    /// Keeps `resolved` unless the community changed since `generation` was handed out.
    pub(crate) fn keep(&self, community: &str, plugin: &str, generation: u64, resolved: &Resolved) {
        if !self.enabled {
            return;
        }
        let mut inner = self.lock();
        if let Some(slot) = inner.communities.get_mut(community) {
            if slot.generation == generation {
                slot.plugins.insert(plugin.to_string(), resolved.clone());
            }
        }
    }

    /// Drops what is kept for `community`; a generation handed out before is never current
    /// again, since the next one comes from a counter that only grows.
    pub(crate) fn invalidate(&self, community: &str) {
        if self.enabled {
            self.lock().communities.remove(community);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().communities.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolved(id: u64) -> Resolved {
        Resolved {
            instance_id: id,
            config: json!({"n": id}),
            driver_url: None,
        }
    }

    #[test]
    fn an_answer_is_kept_under_its_generation_and_served() {
        let c = ResolveCache::default();
        assert!(c.get("a", "randomness").is_none());
        let g = c.generation("a");
        c.keep("a", "randomness", g, &resolved(1));
        assert_eq!(c.get("a", "randomness").unwrap().instance_id, 1);
        assert!(c.get("a", "github").is_none());
        assert!(c.get("b", "randomness").is_none());
        assert_eq!(c.generation("a"), g, "no change: the same generation");
    }

    #[test]
    fn an_answer_computed_before_a_change_is_not_kept() {
        let c = ResolveCache::default();
        let before = c.generation("a");
        // The plugin is disabled between the actor's answer and the caller keeping it.
        c.invalidate("a");
        c.keep("a", "randomness", before, &resolved(1));
        assert!(c.get("a", "randomness").is_none());
        // Nor after the community is asked again: its new generation differs.
        let after = c.generation("a");
        assert_ne!(after, before);
        c.keep("a", "randomness", before, &resolved(1));
        assert!(c.get("a", "randomness").is_none());
        c.keep("a", "randomness", after, &resolved(2));
        assert_eq!(c.get("a", "randomness").unwrap().instance_id, 2);
    }

    #[test]
    fn a_change_drops_every_plugin_of_that_community_only() {
        let c = ResolveCache::default();
        for slug in ["a", "b"] {
            let g = c.generation(slug);
            c.keep(slug, "randomness", g, &resolved(1));
            c.keep(slug, "github", g, &resolved(2));
        }
        c.invalidate("a");
        assert!(c.get("a", "randomness").is_none());
        assert!(c.get("a", "github").is_none());
        assert!(c.get("b", "github").is_some());
    }

    #[test]
    fn a_disabled_cache_keeps_nothing() {
        let c = ResolveCache::new(false);
        let g = c.generation("a");
        c.keep("a", "randomness", g, &resolved(1));
        assert!(c.get("a", "randomness").is_none());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn the_cache_starts_over_past_its_bound() {
        let c = ResolveCache::default();
        for i in 0..MAX_COMMUNITIES {
            c.generation(&format!("c{i}"));
        }
        assert_eq!(c.len(), MAX_COMMUNITIES);
        let g = c.generation("one-more");
        assert_eq!(c.len(), 1);
        c.keep("one-more", "randomness", g, &resolved(1));
        assert!(c.get("one-more", "randomness").is_some());
    }
}
