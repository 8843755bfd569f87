//! [`Agora`]: the operations behind every API route. Each validates its input against the
//! plugin schemas before any actor sees it, then asks the actors that own the data. Reads and
//! writes both return only once everything they observed is durable.

use std::sync::Arc;

use agora_plugins::{schema, PluginRegistry, RemoteOp, WebhookRequest};
use agora_runtime::{partition_of, Runtime, PARTITIONS};
use serde_json::{json, Value};

use crate::audit::{AuditEntry, AuditFilter};
use crate::community::{self, Community, CommunityView, PluginView, Resolved};
use crate::health::HealthBoard;
use crate::outbound::{Outbound, OutboundPolicy};
use crate::plugin_instance::{self, PluginInstance};
use crate::plugin_settings::{self, GlobalPlugin, PluginSettings};
use crate::process::{self, Process, ProcessView};
use crate::vote::{self, Vote};
use crate::{validate_slug, ActorError, ActorsEnv};

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

/// Audit entries with their ids, and the cursor of the next page.
pub type AuditPage = (Vec<(u64, AuditEntry)>, Option<u64>);

/// Inputs of `POST /api/internal/process/<plugin>.<process>`.
#[derive(Debug, Clone)]
pub struct ProcessStart {
    pub community: String,
    /// `<plugin>.<process>`
    pub name: String,
    /// The process inputs (without `callback_url`).
    pub params: Value,
    pub callback_url: Option<String>,
}

/// Inputs of `POST <process Location>/ballots`.
#[derive(Debug, Clone)]
pub struct BallotCast {
    /// `vote.<method>`
    pub name: String,
    pub id: String,
    pub voter: String,
    pub choice: Value,
}

#[derive(Clone)]
pub struct Agora {
    pub(crate) rt: Runtime,
    pub(crate) env: ActorsEnv,
    /// Guarded HTTP clients for plugins that call platforms, one breaker per instance.
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) health: Arc<HealthBoard>,
}

pub(crate) type Result<T> = std::result::Result<T, ActorError>;

pub(crate) fn unexpected() -> ActorError {
    ActorError::Runtime(agora_runtime::AskError::Internal(
        "an actor answered with an unexpected reply".into(),
    ))
}

/// Validates `value` against a plugin schema the registry compiled at load (filling defaults
/// first, integers as integers); the first violation is the error, its field prefixed with `at`.
fn check(schema: Option<&schema::Schema>, value: &Value, at: &str) -> Result<Value> {
    let schema = schema.ok_or_else(|| {
        ActorError::Runtime(agora_runtime::AskError::Internal(
            "a loaded plugin without its compiled schema".into(),
        ))
    })?;
    schema
        .check(value, at)
        .map_err(|v| ActorError::schema(v.path, v.message))
}

pub(crate) fn split_name(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
}

impl Agora {
    /// Registers the actor kinds with the runtime.
    pub fn new(rt: Runtime, env: ActorsEnv) -> Self {
        rt.register::<Community>(env.clone());
        rt.register::<PluginInstance>(env.clone());
        rt.register::<Process>(env.clone());
        rt.register::<Vote>(env.clone());
        rt.register::<PluginSettings>(env.clone());
        Agora {
            rt,
            env,
            outbound: Arc::new(Outbound::new(OutboundPolicy::default())),
            health: Arc::new(HealthBoard::default()),
        }
    }

    /// Replaces the policy of calls to platforms (timeouts, retries, breakers).
    pub fn with_outbound(mut self, policy: OutboundPolicy) -> Self {
        self.outbound = Arc::new(Outbound::new(policy));
        self
    }

    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.env.registry
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The configuration `plugin` runs with for a community whose own settings are
    /// `community`: plugin defaults < global settings < community settings, validated. Errors
    /// name the field under `at`.
    fn effective_config(&self, plugin: &str, community: &Value, at: &str) -> Result<Value> {
        let global = self.env.globals.get(plugin).settings;
        self.layered(plugin, &global, community, at)
    }

    /// `settings` laid over `base` and the plugin's defaults, checked against its schema.
    fn layered(&self, plugin: &str, base: &Value, settings: &Value, at: &str) -> Result<Value> {
        let p = self
            .env
            .registry
            .get(plugin)
            .ok_or_else(|| ActorError::UnknownPlugin(plugin.to_string()))?;
        if !settings.is_object() {
            return Err(ActorError::schema(
                at.to_string(),
                "a plugin's settings are a JSON object".into(),
            ));
        }
        let merged = check(
            self.env.registry.config_schema(plugin),
            &deep_merge(base, settings),
            at,
        )?;
        p.check_settings(&merged).map_err(|e| e.settings_at(at))?;
        Ok(merged)
    }

    /// Reads every loaded plugin's global state into the shared cache. Call once at start,
    /// after the runtime runs, before serving.
    pub async fn load_globals(&self) -> Result<()> {
        let names: Vec<String> = self
            .env
            .registry
            .all()
            .map(|p| p.meta().name.to_string())
            .collect();
        for name in names {
            let g = match self
                .rt
                .ask::<PluginSettings>(&name, plugin_settings::Command::Get)
                .await
            {
                Ok(g) => g?,
                // Cluster mode: another node serves this plugin's settings; read what it
                // committed from the replica.
                Err(agora_runtime::AskError::NotOwner(_)) => {
                    self.reload_global(&name).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.env.globals.update(&name, g);
        }
        Ok(())
    }

    /// Refreshes the cache of `plugin`'s node-wide state from what was committed (in cluster
    /// mode, wherever its actor lives). Best effort: a failure keeps the cached state.
    async fn reload_global(&self, plugin: &str) {
        match self.rt.committed_state::<PluginSettings>(plugin).await {
            Ok(Some(bytes)) => match plugin_settings::decode_global(&bytes) {
                Some(g) => self.env.globals.update(plugin, g),
                None => tracing::warn!(plugin, "unreadable global plugin settings"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(plugin, error = %e, "global plugin settings not refreshed"),
        }
    }

    /// Keeps this node's cache of node-wide plugin settings in step with changes made through
    /// any node of the cluster. Runs until the node stops.
    pub async fn run_global_sync(self) {
        let mut notices = self.rt.subscribe_notices();
        loop {
            match notices.recv().await {
                Ok(n) => {
                    if let Some(plugin) = n.strip_prefix("globals ") {
                        self.reload_global(plugin).await;
                    }
                }
                // Missed some: refresh everything.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let names: Vec<String> = self
                        .env
                        .registry
                        .all()
                        .map(|p| p.meta().name.to_string())
                        .collect();
                    for n in names {
                        self.reload_global(&n).await;
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Records, in the audit log, every plugin this node refused to load (once, at start).
    pub async fn record_refusals(&self) -> Result<()> {
        for r in self.env.registry.refused() {
            let entry = AuditEntry {
                at_ms: self.rt.clock().now_ms(),
                who: "node".into(),
                community: None,
                plugin: r.name.clone(),
                action: "load".into(),
                outcome: "error".into(),
                message: r.reason.clone(),
                before: None,
                after: None,
            };
            if let Some(bytes) = entry.encode() {
                self.rt.append_journal(bytes).await?;
            }
        }
        Ok(())
    }

    /// Calls every loaded plugin's `on_unload`, once, at shutdown.
    pub fn unload_plugins(&self) {
        self.env.registry.unload();
    }

    /// A plugin's node-wide state (enabled, global settings).
    pub fn global_plugin(&self, plugin: &str) -> Result<GlobalPlugin> {
        if self.env.registry.get(plugin).is_none() {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        }
        Ok(self.env.globals.get(plugin))
    }

    /// Enables or disables `plugin` on the whole node.
    pub async fn set_plugin_enabled(&self, plugin: &str, enabled: bool) -> Result<GlobalPlugin> {
        self.global_plugin(plugin)?;
        let g = self
            .rt
            .ask::<PluginSettings>(plugin, plugin_settings::Command::SetEnabled(enabled))
            .await??;
        self.env.globals.update(plugin, g.clone());
        self.rt.notify_cluster(&format!("globals {plugin}")).await;
        Ok(g)
    }

    /// Replaces `plugin`'s global settings, validated over the plugin's defaults; a refused
    /// change is audited and changes nothing.
    pub async fn set_plugin_settings(&self, plugin: &str, settings: Value) -> Result<GlobalPlugin> {
        let checked = self.layered(plugin, &json!({}), &settings, "").map(|_| ());
        if let Err(e) = &checked {
            self.audit_refusal(None, plugin, "settings_change", e).await;
            checked?;
        }
        let g = self
            .rt
            .ask::<PluginSettings>(plugin, plugin_settings::Command::SetSettings(settings))
            .await??;
        self.env.globals.update(plugin, g.clone());
        self.rt.notify_cluster(&format!("globals {plugin}")).await;
        Ok(g)
    }

    /// Every loaded plugin as it stands for one community.
    pub async fn community_plugins(&self, slug: &str) -> Result<Vec<CommunityPlugin>> {
        let community = self.get_community(slug).await?;
        let mut out = Vec::new();
        for p in self.env.registry.all() {
            let name = p.meta().name;
            let own = community.plugins.iter().find(|v| v.name == name);
            let global = self.env.globals.get(name);
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

    /// Disables `plugin` for one community (idempotent).
    pub async fn disable_plugin_for(&self, slug: &str, plugin: &str) -> Result<()> {
        if self.env.registry.get(plugin).is_none() {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        }
        let community = self.get_community(slug).await?;
        match community.plugins.iter().find(|v| v.name == plugin) {
            Some(v) => self.disable_plugin_instance(v.id).await,
            None => Ok(()),
        }
    }

    async fn instance_id(&self, community: &str) -> Result<u64> {
        let n = self.rt.next_id("plugin-instance").await?;
        Ok(n * u64::from(PARTITIONS) + u64::from(partition_of(community)))
    }

    pub async fn create_community(
        &self,
        slug: Option<String>,
        readable_name: String,
        driver_url: Option<String>,
    ) -> Result<CommunityView> {
        let slug = slug.unwrap_or_else(uuid_v4);
        validate_slug(&slug)?;
        let cmd = community::Command::Create {
            readable_name,
            driver_url,
        };
        match self.rt.ask::<Community>(&slug, cmd).await? {
            community::Reply::Community(r) => r,
            _ => Err(unexpected()),
        }
    }

    pub async fn get_community(&self, slug: &str) -> Result<CommunityView> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        match self
            .rt
            .ask::<Community>(slug, community::Command::Get)
            .await?
        {
            community::Reply::Community(r) => r,
            _ => Err(unexpected()),
        }
    }

    /// Metagov's PUT: the plugin list is the whole truth; every config is validated first, so
    /// one bad entry changes nothing.
    /// Metagov's PUT: the plugin list is the whole truth; every config is validated first, so
    /// one bad entry changes nothing. A field left out (`None`) keeps its current value.
    pub async fn update_community(
        &self,
        slug: &str,
        readable_name: Option<String>,
        driver_url: Option<Option<String>>,
        plugins: Option<Vec<(String, Value)>>,
    ) -> Result<CommunityView> {
        let named: Vec<String> = plugins.iter().flatten().map(|(n, _)| n.clone()).collect();
        let result = self
            .update_community_inner(slug, readable_name, driver_url, plugins)
            .await;
        if let Err(e) = &result {
            if matches!(e, ActorError::Invalid { .. }) {
                for plugin in &named {
                    self.audit_refusal(Some(slug), plugin, "settings_change", e)
                        .await;
                }
            }
        }
        result
    }

    async fn update_community_inner(
        &self,
        slug: &str,
        readable_name: Option<String>,
        driver_url: Option<Option<String>>,
        plugins: Option<Vec<(String, Value)>>,
    ) -> Result<CommunityView> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        let mut checked = None;
        let mut new_ids = Vec::new();
        if let Some(plugins) = plugins {
            let mut list = Vec::with_capacity(plugins.len());
            for (i, (name, config)) in plugins.into_iter().enumerate() {
                if self.env.registry.get(&name).is_none() {
                    return Err(ActorError::Invalid {
                        code: "unknown_plugin",
                        message: format!("plugin '{name}' is not installed"),
                        field: Some(format!("plugins[{i}].name")),
                    });
                }
                let at = format!("plugins[{i}].config");
                self.effective_config(&name, &config, &at)?;
                list.push((name.clone(), config));
            }
            for _ in 0..list.len() {
                new_ids.push(self.instance_id(slug).await?);
            }
            checked = Some(list);
        }
        let cmd = community::Command::Update {
            readable_name,
            driver_url,
            plugins: checked,
            new_ids,
        };
        let (view, removed) = match self.rt.ask::<Community>(slug, cmd).await? {
            community::Reply::Updated(r) => r?,
            _ => return Err(unexpected()),
        };
        for plugin in removed {
            self.purge_instance(slug, &plugin).await?;
        }
        Ok(view)
    }

    pub async fn delete_community(&self, slug: &str) -> Result<()> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        let removed = match self
            .rt
            .ask::<Community>(slug, community::Command::Delete)
            .await?
        {
            community::Reply::Removed(r) => r?,
            _ => return Err(unexpected()),
        };
        for plugin in removed {
            self.purge_instance(slug, &plugin).await?;
        }
        Ok(())
    }

    async fn purge_instance(&self, slug: &str, plugin: &str) -> Result<()> {
        self.outbound.forget(&format!("{slug}/{plugin}"));
        self.health.remove(slug, plugin);
        self.rt
            .ask::<PluginInstance>(&format!("{slug}/{plugin}"), plugin_instance::Command::Purge)
            .await??;
        Ok(())
    }

    /// Enables `plugin` for the community (or changes its config). The bool says whether
    /// anything changed.
    pub async fn enable_plugin(
        &self,
        slug: &str,
        plugin: &str,
        config: Value,
    ) -> Result<(PluginView, bool)> {
        let result = self.enable_plugin_inner(slug, plugin, config).await;
        if let Err(e) = &result {
            self.audit_refusal(Some(slug), plugin, "enable", e).await;
        }
        result
    }

    async fn enable_plugin_inner(
        &self,
        slug: &str,
        plugin: &str,
        config: Value,
    ) -> Result<(PluginView, bool)> {
        validate_slug(slug)?;
        self.effective_config(plugin, &config, "")?;
        let new_id = self.instance_id(slug).await?;
        let cmd = community::Command::EnablePlugin {
            name: plugin.to_string(),
            config,
            new_id,
        };
        match self.rt.ask::<Community>(slug, cmd).await? {
            community::Reply::Plugin(r) => r,
            _ => Err(unexpected()),
        }
    }

    /// Records a refused plugin change in the audit log. Best effort: the refusal is what the
    /// caller must hear about, so a failure to record it is logged, not returned.
    pub(crate) async fn audit_refusal(
        &self,
        community: Option<&str>,
        plugin: &str,
        action: &str,
        e: &ActorError,
    ) {
        // Runtime trouble is not a refusal; a failed hook was recorded by the actor itself, in
        // the commit that kept everything else unchanged.
        if matches!(e, ActorError::Runtime(_)) || e.code() == "hook_failed" {
            return;
        }
        let entry = AuditEntry {
            at_ms: self.rt.clock().now_ms(),
            who: self.env.principal.clone(),
            community: community.map(str::to_owned),
            plugin: plugin.to_string(),
            action: action.to_string(),
            outcome: "error".into(),
            message: format!("{}: {e}", e.code()),
            before: None,
            after: None,
        };
        if let Some(bytes) = entry.encode() {
            if let Err(err) = self.rt.append_journal(bytes).await {
                tracing::warn!(error = %err, "could not record a refused change in the audit log");
            }
        }
    }

    /// Audit entries matching `filter`, oldest first, after `cursor`; at most `limit`; with the
    /// cursor of the next page when there may be more.
    pub async fn audit_log(
        &self,
        filter: &AuditFilter,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<AuditPage> {
        let (rows, next) = self
            .rt
            .read_journal(cursor, limit, |bytes| {
                AuditEntry::decode(bytes).is_some_and(|e| filter.matches(&e))
            })
            .await?;
        let entries = rows
            .into_iter()
            .filter_map(|(seq, b)| AuditEntry::decode(&b).map(|e| (seq, e)))
            .collect();
        Ok((entries, next))
    }

    /// Metagov's `DELETE /api/internal/plugin/<name>/<id>`: the id alone names the instance.
    pub async fn disable_plugin_instance(&self, id: u64) -> Result<()> {
        let key = format!("{}{id}", community::INSTANCE_INDEX);
        let entry = self
            .rt
            .read_index((id % u64::from(PARTITIONS)) as u32, &key)?
            .ok_or(ActorError::PluginInstanceNotFound(id))?;
        let entry = String::from_utf8_lossy(&entry).into_owned();
        let (slug, plugin) = entry
            .split_once('\0')
            .ok_or(ActorError::PluginInstanceNotFound(id))?;
        match self
            .rt
            .ask::<Community>(slug, community::Command::DisablePlugin { id })
            .await?
        {
            community::Reply::Removed(r) => {
                r?;
            }
            _ => return Err(unexpected()),
        }
        self.purge_instance(slug, plugin).await
    }

    /// The plugin as it runs for this community: enabled globally and for the community, with
    /// its effective configuration.
    pub(crate) async fn resolve(&self, slug: &str, plugin: &str) -> Result<Resolved> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        let cmd = community::Command::Resolve {
            plugin: plugin.to_string(),
        };
        let mut resolved = match self.rt.ask::<Community>(slug, cmd).await? {
            community::Reply::Resolved(r) => r?,
            _ => return Err(unexpected()),
        };
        if !self.env.globals.get(plugin).enabled {
            return Err(ActorError::PluginDisabled(plugin.to_string()));
        }
        let global = self.env.globals.get(plugin);
        if global.version == 0 {
            // No global settings were ever set: the community's settings were checked over the
            // (compiled-in) defaults when stored, so only the defaults need filling in.
            if let Some(p) = self.env.registry.get(plugin) {
                resolved.config = schema::apply_defaults(&p.meta().config_schema, &resolved.config);
            }
            return Ok(resolved);
        }
        resolved.config = self
            .layered(plugin, &global.settings, &resolved.config, "settings")
            .map_err(|e| ActorError::Invalid {
                code: "invalid_settings",
                message: format!(
                    "the merged settings of plugin '{plugin}' for '{slug}' are invalid: {e}"
                ),
                field: e.field().map(str::to_owned),
            })?;
        Ok(resolved)
    }

    /// Runs `<plugin>.<action>` for the community. `public_only` refuses non-public actions
    /// (the unauthenticated route).
    pub async fn run_action(
        &self,
        slug: &str,
        name: &str,
        params: Value,
        public_only: bool,
    ) -> Result<Value> {
        let unknown = || ActorError::UnknownAction(name.to_string());
        let (plugin, action) = split_name(name).ok_or_else(unknown)?;
        let p = self.env.registry.get(plugin).ok_or_else(unknown)?;
        let spec = p.meta().action(action).ok_or_else(unknown)?;
        if public_only && !spec.public {
            return Err(ActorError::ActionNotPublic(name.to_string()));
        }
        let params = check(
            self.env.registry.action_schema(plugin, spec.name),
            &params,
            "parameters",
        )?;
        let resolved = self.resolve(slug, plugin).await?;
        let op = RemoteOp::Action {
            action,
            params: &params,
        };
        let remote = self
            .call_platform_audited(slug, plugin, &resolved.config, op, name)
            .await?;
        let cmd = plugin_instance::Command::Action {
            action: action.to_string(),
            params,
            config: resolved.config,
            driver_url: resolved.driver_url,
            remote,
        };
        self.rt
            .ask::<PluginInstance>(&format!("{slug}/{plugin}"), cmd)
            .await?
    }

    /// Starts a process; returns its id (the Location is built from it).
    pub async fn start_process(&self, start: ProcessStart) -> Result<u64> {
        let unknown = || ActorError::UnknownProcessType(start.name.clone());
        let (plugin, process) = split_name(&start.name).ok_or_else(unknown)?;
        if plugin == VOTE {
            return self.start_vote(process, start.clone()).await;
        }
        let p = self.env.registry.get(plugin).ok_or_else(unknown)?;
        let spec = p.meta().process(process).ok_or_else(unknown)?;
        let params = check(
            self.env.registry.process_schema(plugin, spec.name),
            &start.params,
            "",
        )?;
        let resolved = self.resolve(&start.community, plugin).await?;
        let op = RemoteOp::StartProcess {
            process,
            params: &params,
        };
        let remote = self
            .call_platform_audited(&start.community, plugin, &resolved.config, op, &start.name)
            .await?;
        let n = self.rt.next_id("process").await?;
        let id = n * u64::from(PARTITIONS) + u64::from(partition_of(&start.community));
        let cmd = process::Command::Start {
            id,
            community: start.community.clone(),
            plugin: plugin.to_string(),
            process: process.to_string(),
            params,
            config: resolved.config,
            callback_url: start.callback_url,
            driver_url: resolved.driver_url,
            remote,
        };
        self.rt.ask::<Process>(&id.to_string(), cmd).await??;
        Ok(id)
    }

    /// Gets or closes a process by the name and id of its Location: one message; the actor
    /// answers "not found" when the name is not the process's own.
    async fn ask_process(&self, name: &str, id: &str, close: bool) -> Result<ProcessView> {
        let not_found = || ActorError::ProcessNotFound(format!("{name}/{id}"));
        let n: u64 = id.parse().map_err(|_| not_found())?;
        if name.starts_with("vote.") {
            let op = if close {
                vote::Op::Close
            } else {
                vote::Op::Get
            };
            return match self.ask_vote(name, n, op).await? {
                vote::Reply::Process(r) => r,
                _ => Err(unexpected()),
            };
        }
        let cmd = if close {
            let remote = self.close_on_platform(name, n).await?;
            process::Command::Close {
                name: name.to_string(),
                remote,
            }
        } else {
            process::Command::Get {
                name: name.to_string(),
            }
        };
        match self.rt.ask::<Process>(&n.to_string(), cmd).await? {
            Err(ActorError::ProcessNotFound(_)) => Err(not_found()),
            r => r,
        }
    }

    pub async fn get_process(&self, name: &str, id: &str) -> Result<ProcessView> {
        self.ask_process(name, id, false).await
    }

    pub async fn close_process(&self, name: &str, id: &str) -> Result<ProcessView> {
        self.ask_process(name, id, true).await
    }

    /// A webhook for a community's plugin: the instance first, then each pending process.
    pub async fn webhook(&self, slug: &str, plugin: &str, request: WebhookRequest) -> Result<()> {
        if self.env.registry.get(plugin).is_none() {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        }
        let resolved = self.resolve(slug, plugin).await?;
        let cmd = plugin_instance::Command::Webhook {
            request: request.clone(),
            config: resolved.config,
            driver_url: resolved.driver_url,
        };
        self.rt
            .ask::<PluginInstance>(&format!("{slug}/{plugin}"), cmd)
            .await??;
        let prefix = format!("{}{slug}/{plugin}/", process::PENDING_INDEX);
        for (key, _) in self.rt.scan_index(Some(partition_of(slug)), &prefix)? {
            let Some(id) = key.rsplit('/').next() else {
                continue;
            };
            let cmd = process::Command::Webhook {
                request: request.clone(),
            };
            if let Err(e) = self.rt.ask::<Process>(id, cmd).await? {
                tracing::warn!(process = %id, error = %e, "webhook not taken by a pending process");
            }
        }
        Ok(())
    }

    /// Starts `vote.<method>`: every parameter is checked before an id is spent.
    async fn start_vote(&self, method: &str, start: ProcessStart) -> Result<u64> {
        if self.env.registry.get(VOTE).is_none() || !agora_plugins::vote::METHODS.contains(&method)
        {
            return Err(ActorError::UnknownProcessType(start.name.clone()));
        }
        agora_plugins::vote::VoteSpec::parse(method, &start.params).map_err(|e| {
            ActorError::Invalid {
                code: "schema_violation",
                message: e.message,
                field: Some(e.field),
            }
        })?;
        let closing_at_ms = parse_deadline(&start.params, self.rt.clock().now_ms())?;
        let community = self.get_community(&start.community).await?;
        let n = self.rt.next_id("process").await?;
        let id = n * u64::from(PARTITIONS) + u64::from(partition_of(&start.community));
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
        let cmd = vote::Command::Open {
            id,
            community: start.community.clone(),
            method: method.to_string(),
            params: start.params,
            closing_at_ms,
            callback_url: start.callback_url,
            driver_url: community.driver_url,
            salt: hex::encode(salt),
        };
        match self.rt.ask::<Vote>(&id.to_string(), cmd).await? {
            vote::Reply::Process(r) => r.map(|_| id),
            _ => Err(unexpected()),
        }
    }

    async fn ask_vote(&self, name: &str, id: u64, op: vote::Op) -> Result<vote::Reply> {
        let cmd = vote::Command::Named {
            name: name.to_string(),
            op,
        };
        Ok(self.rt.ask::<Vote>(&id.to_string(), cmd).await?)
    }

    /// Casts a ballot; the answer is the ballot receipt. Arrival time is taken here, before
    /// any queueing, and decides against the deadline.
    pub async fn cast_ballot(&self, cast: BallotCast) -> Result<Value> {
        let arrived_ms = self.rt.clock().now_ms();
        let not_found = || ActorError::ProcessNotFound(format!("{}/{}", cast.name, cast.id));
        if !cast.name.starts_with("vote.") {
            return Err(not_found());
        }
        let n: u64 = cast.id.parse().map_err(|_| not_found())?;
        let cmd = vote::Op::Cast {
            voter: cast.voter,
            choice: cast.choice,
            arrived_ms,
        };
        match self.ask_vote(&cast.name, n, cmd).await? {
            vote::Reply::Receipt(r) => r,
            _ => Err(unexpected()),
        }
    }

    /// The canonical ballot list of a vote, with its commitment.
    pub async fn list_ballots(&self, name: &str, id: &str) -> Result<Value> {
        let not_found = || ActorError::ProcessNotFound(format!("{name}/{id}"));
        if !name.starts_with("vote.") {
            return Err(not_found());
        }
        let n: u64 = id.parse().map_err(|_| not_found())?;
        match self.ask_vote(name, n, vote::Op::Ballots).await? {
            vote::Reply::Ballots(r) => r,
            _ => Err(unexpected()),
        }
    }
}

const VOTE: &str = "vote";

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

/// A random (version 4) UUID in its hyphenated form, as Metagov gives slug-less communities.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `closing_at` as epoch milliseconds; it must be an RFC 3339 instant in the future.
fn parse_deadline(params: &Value, now_ms: u64) -> Result<u64> {
    let bad = |m: &str| ActorError::schema("closing_at".into(), m.to_string());
    let text = params
        .get("closing_at")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("'closing_at' is a required RFC 3339 date-time"))?;
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| bad(&format!("'closing_at' is not an RFC 3339 date-time: {e}")))?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    if ms <= i128::from(now_ms) {
        return Err(bad("'closing_at' must be in the future"));
    }
    u64::try_from(ms).map_err(|_| bad("'closing_at' is out of range"))
}
