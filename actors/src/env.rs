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
}
