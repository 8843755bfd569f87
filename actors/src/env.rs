//! Services every actor shares: the plugin registry, the node's default driver URL, the cache
//! of node-wide plugin settings, the refresh queue, the JSON drivers receive, and the cache of
//! communities' `Resolve` answers.

use std::sync::Arc;

use agora_plugins::PluginRegistry;

use crate::events::DriverJson;
use crate::plugin_settings::GlobalPlugins;
use crate::resolved::ResolveCache;

#[derive(Clone)]
pub struct ActorsEnv {
    pub registry: Arc<PluginRegistry>,
    /// Where driver events go unless a community overrides it.
    pub driver_url: Option<String>,
    /// Each plugin's global enabled flag and settings, as last committed.
    pub globals: Arc<GlobalPlugins>,
    /// Where processes ask for a refresh from their platform.
    pub refresh: RefreshQueue,
    /// Metagov's JSON for callbacks and driver events (the gateway's).
    pub json: Arc<dyn DriverJson>,
    /// What each community's `Resolve` answered (`ResolveCache::new(false)` in cluster mode).
    pub resolved: Arc<ResolveCache>,
}

/// Process ids whose plugin asked to read the platform again; the service drains it.
#[derive(Clone, Default)]
pub struct RefreshQueue(Option<tokio::sync::mpsc::UnboundedSender<u64>>);

impl RefreshQueue {
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<u64>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self(Some(tx)), rx)
    }

    pub(crate) fn request(&self, process_id: u64) {
        match &self.0 {
            Some(tx) if tx.send(process_id).is_ok() => {}
            _ => tracing::debug!(process = process_id, "no refresh runner: refresh dropped"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Names what was sent, enough to tell it apart in a test.
    struct TestJson;

    impl DriverJson for TestJson {
        fn process(&self, p: &crate::ProcessView) -> Value {
            json!({"id": p.id, "status": p.status})
        }
        fn event(&self, community: &str, _: &str, e: &agora_plugins::Event, _: u64) -> Value {
            json!({"community": community, "event_type": e.event_type})
        }
    }

    /// Every built-in plugin, no driver URL, no refresh runner.
    pub fn env() -> ActorsEnv {
        ActorsEnv {
            registry: Arc::new(agora_plugins::builtin::all().expect("the built-in plugins load")),
            driver_url: None,
            globals: Default::default(),
            refresh: Default::default(),
            json: Arc::new(TestJson),
            resolved: Default::default(),
        }
    }
}
