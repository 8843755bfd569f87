//! The community actor (key: the slug): the community's name, its driver URL override, and
//! which plugins it enabled with which settings. It is the single source of truth for
//! "is plugin P enabled here, with what config"; plugin instances and processes get that
//! configuration from it with every request.

use std::collections::BTreeMap;

use agora_plugins::ErrorCode;
use agora_runtime::{ActorId, Effects, Message, Reminder, Stored, VirtualActor};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{mask_secrets, AuditEntry};
use crate::{ActorError, ActorsEnv, Principal};

const RECORD: &str = "community";
const VERSION: u16 = 1;

/// Index key prefix: plugin instance id → `slug\0plugin`.
pub(crate) const INSTANCE_INDEX: &str = "plugin-instance/";

/// Index key prefix for platform-wide webhooks: `route/<plugin>/<platform id>/<slug>`, so one
/// repository or collective followed by several communities reaches each of them.
pub(crate) const ROUTE_INDEX: &str = "route/";

/// The route index prefix of `platform_id` for `plugin` (the id escaped, since it may hold `/`).
pub(crate) fn route_prefix(plugin: &str, platform_id: &str) -> String {
    let escaped = platform_id.replace('%', "%25").replace('/', "%2F");
    format!("{ROUTE_INDEX}{plugin}/{escaped}/")
}

/// The route index key of a community's instance, when its plugin routes webhooks.
fn route_key(env: &ActorsEnv, plugin: &str, config: &str, slug: &str) -> Option<String> {
    let p = env.registry.get(plugin)?;
    let settings: Value = serde_json::from_str(config).ok()?;
    let id = p.platform_id(&settings)?;
    Some(format!("{}{slug}", route_prefix(plugin, &id)))
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct State {
    readable_name: String,
    #[serde(default)]
    driver_url: Option<String>,
    plugins: BTreeMap<String, PluginEntry>,
    created_ms: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct PluginEntry {
    id: u64,
    /// Stored as JSON text: plugin configs are arbitrary JSON and must round-trip exactly.
    config: String,
}

impl PluginEntry {
    fn holds(&self, config: &Value) -> bool {
        serde_json::from_str::<Value>(&self.config).ok().as_ref() == Some(config)
    }
}

/// A community as the operations return it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunityView {
    pub slug: String,
    pub readable_name: String,
    pub driver_url: Option<String>,
    pub plugins: Vec<PluginView>,
}

/// One enabled plugin of a community.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginView {
    pub id: u64,
    pub name: String,
    pub config: Value,
    pub community: String,
}

/// A community in a list: what an operator scans for.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunitySummary {
    pub slug: String,
    pub readable_name: String,
    /// The names of its enabled plugins.
    pub plugins: Vec<String>,
    pub created_ms: u64,
}

/// A community's summary from its stored record.
pub fn summary(slug: &str, bytes: &[u8]) -> Option<CommunitySummary> {
    let (_, s) = decode_record::<State>(RECORD, VERSION, bytes).ok()?;
    Some(CommunitySummary {
        slug: slug.to_string(),
        readable_name: s.readable_name,
        plugins: s.plugins.into_keys().collect(),
        created_ms: s.created_ms,
    })
}

/// Creates the community.
pub struct Create {
    pub readable_name: String,
    pub driver_url: Option<String>,
    pub by: Principal,
}

/// Reads the community.
pub struct Get;

/// Metagov's PUT: the plugin list is the whole truth (a PUT without one disables every
/// plugin). `new_ids` holds one fresh id per listed plugin, used only for plugins not already
/// enabled. A name or driver URL left out (`None`) keeps its value. Answers the community and
/// the plugins the PUT disabled.
pub struct Update {
    pub readable_name: Option<String>,
    pub driver_url: Option<Option<String>>,
    pub plugins: Vec<(String, Value)>,
    pub new_ids: Vec<u64>,
    pub by: Principal,
}

/// Deletes the community; answers the plugins that were enabled.
pub struct Delete {
    pub by: Principal,
}

/// Enables plugin `name` with `config` (or changes its config); `new_id` is its instance id
/// if it was not enabled yet. Answers the plugin, and whether anything changed (201 vs 200).
pub struct EnablePlugin {
    pub name: String,
    pub config: Value,
    pub new_id: u64,
    pub by: Principal,
}

/// Disables the plugin instance `id`; answers the plugin's name.
pub struct DisablePlugin {
    pub id: u64,
    pub by: Principal,
}

/// Which config and driver URL `plugin` runs with here.
pub struct Resolve {
    pub plugin: String,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub instance_id: u64,
    pub config: Value,
    pub driver_url: Option<String>,
}

pub struct Community {
    slug: String,
    state: Option<State>,
}

impl Community {
    fn view(&self, s: &State) -> CommunityView {
        CommunityView {
            slug: self.slug.clone(),
            readable_name: s.readable_name.clone(),
            driver_url: s.driver_url.clone(),
            plugins: s
                .plugins
                .iter()
                .map(|(name, e)| self.plugin_view(name, e))
                .collect(),
        }
    }

    fn plugin_view(&self, name: &str, e: &PluginEntry) -> PluginView {
        PluginView {
            id: e.id,
            name: name.to_string(),
            config: serde_json::from_str(&e.config).unwrap_or(Value::Null),
            community: self.slug.clone(),
        }
    }

    /// Persists the state. Every change of it comes through here (or `Delete`), so this is
    /// also where the community's kept `Resolve` answers are dropped.
    fn save(&self, env: &ActorsEnv, fx: &mut Effects) {
        env.resolved.invalidate(&self.slug);
        if let Some(s) = &self.state {
            match encode_record(RECORD, VERSION, s) {
                Ok(bytes) => fx.save_state(bytes),
                Err(e) => tracing::error!(error = %e, "community state failed to encode"),
            }
        }
    }

    fn not_found(&self) -> ActorError {
        ActorError::CommunityNotFound(self.slug.clone())
    }

    /// Drops the index entries of an instance that is going away.
    fn unindex(&self, env: &ActorsEnv, fx: &mut Effects, plugin: &str, e: &PluginEntry) {
        fx.delete_index(format!("{INSTANCE_INDEX}{}", e.id));
        if let Some(key) = route_key(env, plugin, &e.config, &self.slug) {
            fx.delete_index(key);
        }
    }

    fn index_value(&self, plugin: &str) -> Vec<u8> {
        format!("{}\0{}", self.slug, plugin).into_bytes()
    }

    /// Calls `plugin`'s `on_enable` or `on_disable` for this community.
    fn hook(
        &self,
        env: &ActorsEnv,
        plugin: &str,
        enable: bool,
        settings: &Value,
    ) -> Result<(), String> {
        let Some(p) = env.registry.get(plugin) else {
            return Ok(());
        };
        let r = if enable {
            p.on_enable(Some(&self.slug), settings)
        } else {
            p.on_disable(Some(&self.slug), settings)
        };
        r.map_err(|e| e.message)
    }

    /// Records a refused transition (nothing else changes) and builds its error.
    fn hook_failed(
        &self,
        by: &Principal,
        fx: &mut Effects,
        plugin: &str,
        enable: bool,
        why: String,
    ) -> ActorError {
        let (action, hook) = if enable {
            ("enable", "on_enable")
        } else {
            ("disable", "on_disable")
        };
        let message = format!("{plugin}'s {hook} hook failed: {why}");
        let entry = AuditEntry::new(by, fx.now_ms(), plugin, action)
            .in_community(&self.slug)
            .refused(format!("{}: {message}", ErrorCode::HookFailed));
        if let Some(bytes) = entry.encode() {
            fx.journal(bytes);
        }
        ActorError::refuse(ErrorCode::HookFailed, message)
    }

    /// Runs the hooks of a set of transitions in order; when one fails, undoes the ones that
    /// ran (the opposite hook) and reports the failure. `(plugin, enable, settings)`.
    fn run_hooks(
        &self,
        env: &ActorsEnv,
        by: &Principal,
        fx: &mut Effects,
        transitions: &[(String, bool, Value)],
    ) -> Result<(), ActorError> {
        for (i, (plugin, enable, settings)) in transitions.iter().enumerate() {
            if let Err(why) = self.hook(env, plugin, *enable, settings) {
                for (done, was_enable, s) in transitions[..i].iter().rev() {
                    if let Err(e) = self.hook(env, done, !was_enable, s) {
                        tracing::warn!(plugin = %done, error = %e, "undoing a lifecycle hook failed");
                    }
                }
                return Err(self.hook_failed(by, fx, plugin, *enable, why));
            }
        }
        Ok(())
    }

    /// Appends an audit entry to this commit.
    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        env: &ActorsEnv,
        by: &Principal,
        fx: &mut Effects,
        plugin: &str,
        action: &str,
        before: Option<&str>,
        after: Option<&Value>,
        message: &str,
    ) {
        let show = |v: &Value| mask_secrets(&env.registry, plugin, v).to_string();
        let entry = AuditEntry {
            message: message.to_string(),
            before: before
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .map(|b| show(&b)),
            after: after.map(show),
            ..AuditEntry::new(by, fx.now_ms(), plugin, action).in_community(&self.slug)
        };
        if let Some(bytes) = entry.encode() {
            fx.journal(bytes);
        }
    }

    /// Enables `name` with `config` (or changes its config), with the audit entry.
    fn add_plugin(
        &mut self,
        env: &ActorsEnv,
        by: &Principal,
        name: &str,
        config: Value,
        id: u64,
        fx: &mut Effects,
    ) {
        let before = self
            .state
            .as_ref()
            .and_then(|s| s.plugins.get(name))
            .map(|e| e.config.clone());
        let action = if before.is_some() {
            "settings_change"
        } else {
            "enable"
        };
        self.audit(
            env,
            by,
            fx,
            name,
            action,
            before.as_deref(),
            Some(&config),
            "",
        );
        let value = self.index_value(name);
        if let Some(key) = before
            .as_deref()
            .and_then(|b| route_key(env, name, b, &self.slug))
        {
            fx.delete_index(key);
        }
        if let Some(key) = route_key(env, name, &config.to_string(), &self.slug) {
            fx.put_index(key, Vec::new());
        }
        if let Some(s) = &mut self.state {
            s.plugins.insert(
                name.to_string(),
                PluginEntry {
                    id,
                    config: config.to_string(),
                },
            );
            fx.put_index(format!("{INSTANCE_INDEX}{id}"), value);
        }
    }

    fn update(
        &mut self,
        env: &ActorsEnv,
        cmd: Update,
        fx: &mut Effects,
    ) -> Result<(CommunityView, Vec<String>), ActorError> {
        let Update {
            readable_name,
            driver_url,
            plugins,
            new_ids,
            by,
        } = cmd;
        let Some(s) = &self.state else {
            return Err(self.not_found());
        };
        let readable_name = readable_name.unwrap_or_else(|| s.readable_name.clone());
        let driver_url = driver_url.unwrap_or_else(|| s.driver_url.clone());
        let wanted: BTreeMap<String, Value> = plugins.into_iter().collect();
        let removed: Vec<(String, u64)> = s
            .plugins
            .iter()
            .filter(|(n, _)| !wanted.contains_key(*n))
            .map(|(n, e)| (n.clone(), e.id))
            .collect();
        let mut changed = s.readable_name != readable_name || s.driver_url != driver_url;
        let mut ids = new_ids.into_iter();
        let mut to_add = Vec::new();
        for (name, config) in wanted {
            match s.plugins.get(&name) {
                Some(e) if e.holds(&config) => {}
                Some(e) => to_add.push((name, config, e.id)),
                None => {
                    let id = ids.next().ok_or_else(|| {
                        ActorError::internal("no plugin instance id was reserved")
                    })?;
                    to_add.push((name, config, id));
                }
            }
        }
        changed |= !to_add.is_empty() || !removed.is_empty();
        let mut transitions: Vec<(String, bool, Value)> = removed
            .iter()
            .map(|(name, _)| {
                let settings = s
                    .plugins
                    .get(name)
                    .and_then(|e| serde_json::from_str(&e.config).ok())
                    .unwrap_or(Value::Null);
                (name.clone(), false, settings)
            })
            .collect();
        for (name, config, _) in &to_add {
            if !s.plugins.contains_key(name) {
                transitions.push((name.clone(), true, config.clone()));
            }
        }
        self.run_hooks(env, &by, fx, &transitions)?;
        for (name, _) in &removed {
            let before = self
                .state
                .as_ref()
                .and_then(|s| s.plugins.get(name))
                .map(|e| e.config.clone());
            self.audit(
                env,
                &by,
                fx,
                name,
                "disable",
                before.as_deref(),
                None,
                "left out of a PUT",
            );
        }
        if let Some(s) = &mut self.state {
            s.readable_name = readable_name;
            s.driver_url = driver_url;
        }
        for (name, _) in &removed {
            let entry = self.state.as_mut().and_then(|s| s.plugins.remove(name));
            if let Some(e) = entry {
                self.unindex(env, fx, name, &e);
            }
        }
        for (name, config, id) in to_add {
            self.add_plugin(env, &by, &name, config, id, fx);
        }
        if changed {
            self.save(env, fx);
        }
        let view = self
            .state
            .as_ref()
            .map(|s| self.view(s))
            .ok_or_else(|| self.not_found())?;
        Ok((view, removed.into_iter().map(|(n, _)| n).collect()))
    }
}

impl VirtualActor for Community {
    const KIND: &'static str = "community";
    type Env = ActorsEnv;
    /// Reads its few auxiliary records on demand (or has none) and never sets reminders: a
    /// fresh activation probes only its state.
    const RESTORE_AUX: bool = false;
    const REMINDERS: bool = false;

    fn restore(id: &ActorId, env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        // What storage holds is the authority from here on; nothing kept may predate it.
        env.resolved.invalidate(&id.key);
        let state = match stored.state {
            Some(bytes) => Some(
                decode_record::<State>(RECORD, VERSION, &bytes)
                    .map_err(|e| e.to_string())?
                    .1,
            ),
            None => None,
        };
        Ok(Community {
            slug: id.key.clone(),
            state,
        })
    }

    fn on_reminder(&mut self, _env: &ActorsEnv, _r: Reminder, _fx: &mut Effects) {}
}

impl Message<Community> for Create {
    type Reply = Result<CommunityView, ActorError>;

    fn handle(self, c: &mut Community, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        if c.state.is_some() {
            return Err(ActorError::CommunityExists(c.slug.clone()));
        }
        tracing::debug!(community = %c.slug, who = self.by.who(), agent = ?self.by.agent(), "community created");
        let s = State {
            readable_name: self.readable_name,
            driver_url: self.driver_url,
            plugins: BTreeMap::new(),
            created_ms: fx.now_ms(),
        };
        let view = c.view(&s);
        c.state = Some(s);
        c.save(env, fx);
        Ok(view)
    }
}

impl Message<Community> for Get {
    type Reply = Result<CommunityView, ActorError>;

    fn handle(self, c: &mut Community, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        match &c.state {
            Some(s) => Ok(c.view(s)),
            None => Err(c.not_found()),
        }
    }
}

impl Message<Community> for Update {
    type Reply = Result<(CommunityView, Vec<String>), ActorError>;

    fn handle(self, c: &mut Community, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        c.update(env, self, fx)
    }
}

impl Message<Community> for Delete {
    type Reply = Result<Vec<String>, ActorError>;

    fn handle(self, c: &mut Community, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let Some(s) = &c.state else {
            return Err(c.not_found());
        };
        let enabled: Vec<(String, String)> = s
            .plugins
            .iter()
            .map(|(n, e)| (n.clone(), e.config.clone()))
            .collect();
        let transitions: Vec<(String, bool, Value)> = enabled
            .iter()
            .map(|(n, cfg)| {
                (
                    n.clone(),
                    false,
                    serde_json::from_str(cfg).unwrap_or(Value::Null),
                )
            })
            .collect();
        c.run_hooks(env, &self.by, fx, &transitions)?;
        for (name, config) in &enabled {
            c.audit(
                env,
                &self.by,
                fx,
                name,
                "disable",
                Some(config),
                None,
                "community deleted",
            );
        }
        let Some(s) = c.state.take() else {
            return Err(c.not_found());
        };
        for (name, e) in &s.plugins {
            c.unindex(env, fx, name, e);
        }
        env.resolved.invalidate(&c.slug);
        fx.delete_state();
        Ok(s.plugins.into_keys().collect())
    }
}

impl Message<Community> for EnablePlugin {
    type Reply = Result<(PluginView, bool), ActorError>;

    fn handle(self, c: &mut Community, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let EnablePlugin {
            name,
            config,
            new_id,
            by,
        } = self;
        let Some(s) = &c.state else {
            return Err(c.not_found());
        };
        let (id, changed) = match s.plugins.get(&name) {
            Some(e) => (e.id, !e.holds(&config)),
            None => {
                c.run_hooks(env, &by, fx, &[(name.clone(), true, config.clone())])?;
                (new_id, true)
            }
        };
        if changed {
            c.add_plugin(env, &by, &name, config, id, fx);
            c.save(env, fx);
        }
        let view = c
            .state
            .as_ref()
            .and_then(|s| s.plugins.get(&name).map(|e| c.plugin_view(&name, e)));
        view.map(|v| (v, changed)).ok_or_else(|| c.not_found())
    }
}

impl Message<Community> for DisablePlugin {
    type Reply = Result<String, ActorError>;

    fn handle(self, c: &mut Community, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let DisablePlugin { id, by } = self;
        let not_found = || ActorError::PluginInstanceNotFound(id);
        let (name, before) = c
            .state
            .as_ref()
            .and_then(|s| s.plugins.iter().find(|(_, e)| e.id == id))
            .map(|(n, e)| (n.clone(), e.config.clone()))
            .ok_or_else(not_found)?;
        let settings = serde_json::from_str(&before).unwrap_or(Value::Null);
        c.run_hooks(env, &by, fx, &[(name.clone(), false, settings)])?;
        c.audit(env, &by, fx, &name, "disable", Some(&before), None, "");
        let Some(s) = &mut c.state else {
            return Err(not_found());
        };
        if let Some(e) = s.plugins.remove(&name) {
            c.unindex(env, fx, &name, &e);
        }
        c.save(env, fx);
        Ok(name)
    }
}

impl Message<Community> for Resolve {
    /// The answer, and the generation under which the caller may keep it (`ResolveCache`).
    type Reply = Result<(Resolved, u64), ActorError>;

    fn handle(self, c: &mut Community, env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        let Some(s) = &c.state else {
            return Err(c.not_found());
        };
        match s.plugins.get(&self.plugin) {
            Some(e) => Ok((
                Resolved {
                    instance_id: e.id,
                    config: serde_json::from_str(&e.config).unwrap_or(Value::Null),
                    driver_url: s.driver_url.clone(),
                },
                env.resolved.generation(&c.slug),
            )),
            None => Err(ActorError::PluginNotEnabled {
                plugin: self.plugin,
                community: c.slug.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> ActorsEnv {
        crate::env::tests::env()
    }

    fn by() -> Principal {
        Principal::new(crate::Caller::Driver, None)
    }

    fn fresh() -> Community {
        Community::restore(&ActorId::new("community", "c"), &env(), Stored::default()).unwrap()
    }

    #[test]
    fn put_is_the_whole_truth_and_unchanged_config_writes_nothing() {
        let mut c = fresh();
        let mut fx = Effects::new(1);
        let create = Create {
            readable_name: "C".into(),
            driver_url: None,
            by: by(),
        };
        create.handle(&mut c, &env(), &mut fx).unwrap();
        let enable = |new_id| EnablePlugin {
            name: "randomness".into(),
            config: json!({"default_low": 1}),
            new_id,
            by: by(),
        };
        let mut fx = Effects::new(2);
        let (v, changed) = enable(9).handle(&mut c, &env(), &mut fx).unwrap();
        assert_eq!((v.id, changed), (9, true));
        let mut fx = Effects::new(3);
        let (v, changed) = enable(10).handle(&mut c, &env(), &mut fx).unwrap();
        assert_eq!((v.id, changed), (9, false));
        assert!(fx.is_empty());
        let mut fx = Effects::new(4);
        let update = Update {
            readable_name: Some("C".into()),
            driver_url: None,
            plugins: vec![],
            new_ids: vec![],
            by: by(),
        };
        let (v, removed) = update.handle(&mut c, &env(), &mut fx).unwrap();
        assert!(v.plugins.is_empty());
        assert_eq!(removed, vec!["randomness".to_string()]);
    }

    #[test]
    fn state_round_trips_through_its_record() {
        let s = State {
            readable_name: "n".into(),
            driver_url: Some("http://d".into()),
            plugins: BTreeMap::from([(
                "randomness".to_string(),
                PluginEntry {
                    id: 3,
                    config: "{\"a\":1.5}".into(),
                },
            )]),
            created_ms: 5,
        };
        let bytes = encode_record(RECORD, VERSION, &s).unwrap();
        assert_eq!(
            decode_record::<State>(RECORD, VERSION, &bytes).unwrap().1,
            s
        );
        assert!(Community::restore(
            &ActorId::new("community", "c"),
            &env(),
            Stored {
                state: Some(vec![0xc1]),
                aux: vec![]
            }
        )
        .is_err());
    }
}
