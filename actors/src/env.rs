//! Services every actor shares: the plugin registry and the node's default driver URL.

use std::sync::Arc;

use agora_plugins::PluginRegistry;

use crate::plugin_settings::GlobalPlugins;

#[derive(Clone)]
pub struct ActorsEnv {
    pub registry: Arc<PluginRegistry>,
    /// Where driver events go unless a community overrides it.
    pub driver_url: Option<String>,
    /// Who the node acts for in the audit log: `driver` (token auth) or `dev`.
    pub principal: String,
    /// Each plugin's global enabled flag and settings, as last committed.
    pub globals: Arc<GlobalPlugins>,
    /// Where processes ask for a refresh from their platform.
    pub refresh: RefreshQueue,
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
