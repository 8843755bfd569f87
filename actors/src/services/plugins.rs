//! Plugins as a resource: which plugins run where, with what settings. Node-wide (the enabled
//! flag and global settings, kept in a cache every request reads) and per community (enable
//! with settings, disable by name or by instance id), and how the two layers resolve into the
//! configuration an instance runs with: plugin defaults < global settings < community
//! settings, validated as a whole.

use std::sync::Arc;

use agora_plugins::{schema, ErrorCode};
use agora_runtime::partition_of;
use serde_json::{json, Value};

use super::{AuditLog, Core, Result};
use crate::community::{self, PluginView, Resolved, INSTANCE_INDEX};
use crate::plugin_settings::{self, GlobalPlugin, PluginSettings};
use crate::{plugin_instance, validate_slug, ActorError, Principal};

/// One plugin as it stands for one community.
#[derive(Debug, Clone)]
pub struct CommunityPlugin {
    pub name: String,
    pub community: String,
    /// Enabled for this community (a Metagov plugin instance exists).
    pub enabled: bool,
    /// Enabled for the community and on the node: actions and processes run.
    pub active: bool,
    pub instance_id: Option<u64>,
    /// The community's own settings.
    pub settings: Option<Value>,
    /// Defaults < global < community, when enabled and valid.
    pub effective_settings: Option<Value>,
}

#[derive(Clone)]
pub struct Plugins {
    core: Arc<Core>,
    audit: AuditLog,
}

impl Plugins {
    pub(crate) fn new(core: Arc<Core>, audit: AuditLog) -> Self {
        Plugins { core, audit }
    }

    fn known(&self, plugin: &str) -> Result<()> {
        match self.core.registry().get(plugin) {
            Some(_) => Ok(()),
            None => Err(ActorError::UnknownPlugin(plugin.to_string())),
        }
    }

    /// A plugin's node-wide state (enabled, global settings).
    pub fn global(&self, plugin: &str) -> Result<GlobalPlugin> {
        self.known(plugin)?;
        Ok(self.core.env.globals.get(plugin))
    }

    /// Enables or disables `plugin` on the whole node.
    pub async fn set_enabled(
        &self,
        plugin: &str,
        enabled: bool,
        by: &Principal,
    ) -> Result<GlobalPlugin> {
        self.known(plugin)?;
        let cmd = plugin_settings::SetEnabled {
            enabled,
            by: by.clone(),
        };
        let g = self.core.settings.ask(plugin, cmd).await??;
        self.changed_global(plugin, g).await
    }

    /// Replaces `plugin`'s global settings, validated over the plugin's defaults; a refused
    /// change is audited and changes nothing.
    pub async fn set_settings(
        &self,
        plugin: &str,
        settings: Value,
        by: &Principal,
    ) -> Result<GlobalPlugin> {
        if let Err(e) = self.layered(plugin, &json!({}), &settings, "") {
            self.audit
                .refusal(by, None, plugin, "settings_change", &e)
                .await;
            return Err(e);
        }
        let cmd = plugin_settings::SetSettings {
            settings,
            by: by.clone(),
        };
        let g = self.core.settings.ask(plugin, cmd).await?;
        self.changed_global(plugin, g).await
    }

    /// After a durable change of node-wide state: this node's cache, then every other node's.
    async fn changed_global(&self, plugin: &str, g: GlobalPlugin) -> Result<GlobalPlugin> {
        self.core.env.globals.update(plugin, g.clone());
        self.core
            .rt
            .notify_cluster(&format!("{GLOBALS_NOTICE}{plugin}"))
            .await;
        Ok(g)
    }

    /// Every loaded plugin as it stands for one community.
    pub async fn for_community(&self, slug: &str) -> Result<Vec<CommunityPlugin>> {
        let community = self.community(slug).await?;
        let mut out = Vec::new();
        for p in self.core.registry().all() {
            let name = p.meta().name;
            let own = community.plugins.iter().find(|v| v.name == name);
            let global = self.core.env.globals.get(name);
            let effective = own.and_then(|v| self.effective_config(name, &v.config, "").ok());
            out.push(CommunityPlugin {
                name: name.to_string(),
                community: slug.to_string(),
                enabled: own.is_some(),
                active: own.is_some() && global.enabled,
                instance_id: own.map(|v| v.id),
                settings: own.map(|v| v.config.clone()),
                effective_settings: effective,
            });
        }
        Ok(out)
    }

    async fn community(&self, slug: &str) -> Result<crate::CommunityView> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        self.core.communities.ask(slug, community::Get).await?
    }

    /// Enables `plugin` for the community (or changes its config). The bool says whether
    /// anything changed. A refusal is audited.
    pub async fn enable(
        &self,
        slug: &str,
        plugin: &str,
        config: Value,
        by: &Principal,
    ) -> Result<(PluginView, bool)> {
        let result = self.enable_checked(slug, plugin, config, by).await;
        if let Err(e) = &result {
            self.audit
                .refusal(by, Some(slug), plugin, "enable", e)
                .await;
        }
        result
    }

    async fn enable_checked(
        &self,
        slug: &str,
        plugin: &str,
        config: Value,
        by: &Principal,
    ) -> Result<(PluginView, bool)> {
        validate_slug(slug)?;
        self.effective_config(plugin, &config, "")?;
        let cmd = community::EnablePlugin {
            name: plugin.to_string(),
            config,
            new_id: self.new_instance_id(slug).await?,
            by: by.clone(),
        };
        self.core.communities.ask(slug, cmd).await?
    }

    /// Disables `plugin` for one community (idempotent).
    pub async fn disable_for(&self, slug: &str, plugin: &str, by: &Principal) -> Result<()> {
        self.known(plugin)?;
        let community = self.community(slug).await?;
        match community.plugins.iter().find(|v| v.name == plugin) {
            Some(v) => self.disable_instance(v.id, by).await,
            None => Ok(()),
        }
    }

    /// Metagov's `DELETE /api/internal/plugin/<name>/<id>`: the id alone names the instance.
    pub async fn disable_instance(&self, id: u64, by: &Principal) -> Result<()> {
        let slug = self.instance_community(id)?;
        let cmd = community::DisablePlugin { id, by: by.clone() };
        let plugin = self.core.communities.ask(&slug, cmd).await??;
        self.purge_instance(&slug, &plugin).await
    }

    /// The community of plugin instance `id` (read on the node serving its partition).
    pub fn instance_community(&self, id: u64) -> Result<String> {
        let key = format!("{INSTANCE_INDEX}{id}");
        let entry = self
            .core
            .rt
            .read_index(agora_runtime::partition_of_id(id), &key)?
            .ok_or(ActorError::PluginInstanceNotFound(id))?;
        let entry = String::from_utf8_lossy(&entry).into_owned();
        let (slug, _) = entry
            .split_once('\0')
            .ok_or(ActorError::PluginInstanceNotFound(id))?;
        Ok(slug.to_string())
    }

    /// A fresh plugin instance id, in the community's partition.
    pub(crate) async fn new_instance_id(&self, slug: &str) -> Result<u64> {
        Ok(self
            .core
            .rt
            .next_id_in("plugin-instance", partition_of(slug))
            .await?)
    }

    /// Forgets everything a disabled instance left behind: its state, breaker and health.
    pub(crate) async fn purge_instance(&self, slug: &str, plugin: &str) -> Result<()> {
        let instance = format!("{slug}/{plugin}");
        self.core.outbound.forget(&instance);
        self.core.health.remove(slug, plugin);
        self.core
            .instances
            .ask(&instance, plugin_instance::Purge)
            .await?;
        Ok(())
    }

    /// The configuration `plugin` runs with for a community whose own settings are
    /// `community`: plugin defaults < global settings < community settings, validated. Errors
    /// name the field under `at`.
    pub(crate) fn effective_config(
        &self,
        plugin: &str,
        community: &Value,
        at: &str,
    ) -> Result<Value> {
        let global = self.core.env.globals.get(plugin).settings;
        self.layered(plugin, &global, community, at)
    }

    /// `plugin`'s global settings as stored (validated when stored; not laid over the
    /// defaults, which may require what only a community can say).
    pub(crate) fn global_settings(&self, plugin: &str) -> Value {
        self.core.env.globals.get(plugin).settings
    }

    /// `settings` laid over `base` and the plugin's defaults, checked against its schema.
    fn layered(&self, plugin: &str, base: &Value, settings: &Value, at: &str) -> Result<Value> {
        let p = self
            .core
            .registry()
            .get(plugin)
            .ok_or_else(|| ActorError::UnknownPlugin(plugin.to_string()))?;
        if !settings.is_object() {
            return Err(ActorError::schema(
                at.to_string(),
                "a plugin's settings are a JSON object".into(),
            ));
        }
        let merged = check(
            self.core.registry().config_schema(plugin),
            &deep_merge(base, settings),
            at,
        )?;
        p.check_settings(&merged).map_err(|e| e.settings_at(at))?;
        Ok(merged)
    }

    /// The plugin as it runs for this community: enabled on the node and for the community,
    /// with its effective configuration.
    pub(crate) async fn resolve(&self, slug: &str, plugin: &str) -> Result<Resolved> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        let cache = &self.core.env.resolved;
        let mut resolved = match cache.get(slug, plugin) {
            Some(kept) => kept,
            None => {
                let cmd = community::Resolve {
                    plugin: plugin.to_string(),
                };
                let (resolved, generation) = self.core.communities.ask(slug, cmd).await??;
                cache.keep(slug, plugin, generation, &resolved);
                resolved
            }
        };
        let global = self.core.env.globals.get(plugin);
        if !global.enabled {
            return Err(ActorError::PluginDisabled(plugin.to_string()));
        }
        if global.version == 0 {
            // No global settings were ever set: the community's settings were checked over the
            // (compiled-in) defaults when stored, so only the defaults need filling in.
            if let Some(p) = self.core.registry().get(plugin) {
                resolved.config = schema::apply_defaults(&p.meta().config_schema, &resolved.config);
            }
            return Ok(resolved);
        }
        resolved.config = self
            .layered(plugin, &global.settings, &resolved.config, "settings")
            .map_err(|e| ActorError::Invalid {
                code: ErrorCode::InvalidSettings,
                message: format!(
                    "the merged settings of plugin '{plugin}' for '{slug}' are invalid: {e}"
                ),
                field: e.field().map(str::to_owned),
            })?;
        Ok(resolved)
    }

    /// Reads every loaded plugin's node-wide state into the shared cache. Call once at start,
    /// after the runtime runs, before serving.
    pub async fn load_globals(&self) -> Result<()> {
        for name in self.names() {
            match self.core.settings.ask(&name, plugin_settings::Get).await {
                Ok(g) => self.core.env.globals.update(&name, g),
                // Cluster mode: another node serves this plugin's settings; read what it
                // committed from the replica.
                Err(agora_runtime::AskError::NotOwner(_)) => self.reload_global(&name).await,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn names(&self) -> Vec<String> {
        self.core
            .registry()
            .all()
            .map(|p| p.meta().name.to_string())
            .collect()
    }

    /// Refreshes the cache of `plugin`'s node-wide state from what was committed (in cluster
    /// mode, wherever its actor lives). Best effort: a failure keeps the cached state.
    async fn reload_global(&self, plugin: &str) {
        match self.core.rt.committed_state::<PluginSettings>(plugin).await {
            Ok(Some(bytes)) => match plugin_settings::decode_global(&bytes) {
                Some(g) => self.core.env.globals.update(plugin, g),
                None => tracing::warn!(plugin, "unreadable global plugin settings"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(plugin, error = %e, "global plugin settings not refreshed"),
        }
    }

    /// Keeps this node's cache of node-wide plugin settings in step with changes made through
    /// any node of the cluster, until `stop`.
    pub async fn run_global_sync(self, mut stop: agora_runtime::Stop) {
        let mut notices = self.core.rt.subscribe_notices();
        loop {
            let notice = tokio::select! {
                n = notices.recv() => n,
                _ = stop.stopped() => return,
            };
            match notice {
                Ok(n) => {
                    if let Some(plugin) = n.strip_prefix(GLOBALS_NOTICE) {
                        self.reload_global(plugin).await;
                    }
                }
                // Missed some: refresh everything.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for n in self.names() {
                        self.reload_global(&n).await;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// The cluster notice that a plugin's node-wide state changed (followed by its name).
const GLOBALS_NOTICE: &str = "globals ";

/// Validates `value` against a plugin schema the registry compiled at load (filling defaults
/// first, integers as integers); the first violation is the error, its field prefixed with `at`.
pub(crate) fn check(schema: Option<&schema::Schema>, value: &Value, at: &str) -> Result<Value> {
    let schema = schema.ok_or_else(|| {
        ActorError::Runtime(agora_runtime::AskError::Internal(
            "a loaded plugin without its compiled schema".into(),
        ))
    })?;
    schema
        .check(value, at)
        .map_err(|v| ActorError::schema(v.path, v.message))
}

/// `over` laid on `base`: objects merge key by key (recursively), anything else replaces.
fn deep_merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => over.clone(),
    }
}
