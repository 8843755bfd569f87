//! The plugin-settings actor (key: the plugin name): whether a plugin is enabled on this node
//! globally, and its global settings, the middle layer of plugin defaults < global settings <
//! community settings. Every change is audited in the same commit.

use std::collections::HashMap;
use std::sync::RwLock;

use agora_plugins::ErrorCode;
use agora_runtime::{ActorId, Effects, Message, Reminder, Stored, VirtualActor};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::{mask_secrets, AuditEntry};
use crate::{ActorError, ActorsEnv, Principal};

const RECORD: &str = "plugin-settings";
const VERSION: u16 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct State {
    enabled: bool,
    /// Global settings (JSON text): only what the operator set, not the defaults.
    settings: String,
    /// Bumped on every change, so the read cache keeps the newest state whatever order
    /// answers arrive in.
    version: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            enabled: true,
            settings: "{}".into(),
            version: 0,
        }
    }
}

/// A plugin's node-wide state.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalPlugin {
    pub enabled: bool,
    pub settings: Value,
    pub version: u64,
}

impl Default for GlobalPlugin {
    fn default() -> Self {
        GlobalPlugin {
            enabled: true,
            settings: json!({}),
            version: 0,
        }
    }
}

/// A plugin's node-wide state from its stored record (a replica read in cluster mode).
pub fn decode_global(bytes: &[u8]) -> Option<GlobalPlugin> {
    let (_, s) = decode_record::<State>(RECORD, VERSION, bytes).ok()?;
    Some(GlobalPlugin {
        enabled: s.enabled,
        settings: serde_json::from_str(&s.settings).unwrap_or_else(|_| json!({})),
        version: s.version,
    })
}

/// The read side every request consults: filled at start, updated after each durable change.
#[derive(Default)]
pub struct GlobalPlugins {
    map: RwLock<HashMap<String, GlobalPlugin>>,
}

impl GlobalPlugins {
    pub fn get(&self, plugin: &str) -> GlobalPlugin {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(plugin)
            .cloned()
            .unwrap_or_default()
    }

    /// Keeps `state` unless a newer version is already known.
    pub fn update(&self, plugin: &str, state: GlobalPlugin) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let keep_old = map
            .get(plugin)
            .is_some_and(|old| old.version > state.version);
        if !keep_old {
            map.insert(plugin.to_string(), state);
        }
    }
}

/// Reads the plugin's node-wide state.
pub struct Get;

/// Enables or disables the plugin on the whole node (its hook may refuse).
pub struct SetEnabled {
    pub enabled: bool,
    pub by: Principal,
}

/// Replaces the global settings, already validated over the plugin's defaults by the service.
pub struct SetSettings {
    pub settings: Value,
    pub by: Principal,
}

pub struct PluginSettings {
    plugin: String,
    state: State,
}

impl PluginSettings {
    fn view(&self) -> GlobalPlugin {
        GlobalPlugin {
            enabled: self.state.enabled,
            settings: serde_json::from_str(&self.state.settings).unwrap_or_else(|_| json!({})),
            version: self.state.version,
        }
    }

    fn commit(
        &mut self,
        env: &ActorsEnv,
        by: &Principal,
        fx: &mut Effects,
        action: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) {
        self.state.version += 1;
        match encode_record(RECORD, VERSION, &self.state) {
            Ok(b) => fx.save_state(b),
            Err(e) => tracing::error!(error = %e, "plugin settings failed to encode"),
        }
        let show = |v: Value| mask_secrets(&env.registry, &self.plugin, &v).to_string();
        let entry = AuditEntry {
            message: "global".into(),
            before: before.map(show),
            after: after.map(show),
            ..AuditEntry::new(by, fx.now_ms(), &self.plugin, action)
        };
        if let Some(bytes) = entry.encode() {
            fx.journal(bytes);
        }
    }
}

impl VirtualActor for PluginSettings {
    const KIND: &'static str = "plugin-settings";
    type Env = ActorsEnv;
    /// Reads its few auxiliary records on demand (or has none) and never sets reminders: a
    /// fresh activation probes only its state.
    const RESTORE_AUX: bool = false;
    const REMINDERS: bool = false;

    fn restore(id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let state = match stored.state {
            Some(bytes) => {
                decode_record::<State>(RECORD, VERSION, &bytes)
                    .map_err(|e| e.to_string())?
                    .1
            }
            None => State::default(),
        };
        Ok(PluginSettings {
            plugin: id.key.clone(),
            state,
        })
    }

    fn on_reminder(&mut self, _env: &ActorsEnv, _r: Reminder, _fx: &mut Effects) {}
}

impl Message<PluginSettings> for Get {
    type Reply = GlobalPlugin;

    fn handle(self, p: &mut PluginSettings, _env: &ActorsEnv, _fx: &mut Effects) -> GlobalPlugin {
        p.view()
    }
}

impl Message<PluginSettings> for SetEnabled {
    type Reply = Result<GlobalPlugin, ActorError>;

    fn handle(self, p: &mut PluginSettings, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let SetEnabled { enabled, by } = self;
        if p.state.enabled == enabled {
            return Ok(p.view());
        }
        // The hook runs before anything changes: a refusal leaves the plugin as it was.
        let settings = p.view().settings;
        let hooked = env.registry.get(&p.plugin).map(|plugin| {
            if enabled {
                plugin.on_enable(None, &settings)
            } else {
                plugin.on_disable(None, &settings)
            }
        });
        let action = if enabled { "enable" } else { "disable" };
        if let Some(Err(e)) = hooked {
            let hook = if enabled { "on_enable" } else { "on_disable" };
            let message = format!("{}'s {hook} hook failed: {}", p.plugin, e.message);
            let entry = AuditEntry::new(&by, fx.now_ms(), &p.plugin, action)
                .refused(format!("{}: {message}", ErrorCode::HookFailed));
            if let Some(bytes) = entry.encode() {
                fx.journal(bytes);
            }
            return Err(ActorError::refuse(ErrorCode::HookFailed, message));
        }
        p.state.enabled = enabled;
        p.commit(env, &by, fx, action, None, None);
        Ok(p.view())
    }
}

impl Message<PluginSettings> for SetSettings {
    type Reply = GlobalPlugin;

    fn handle(self, p: &mut PluginSettings, env: &ActorsEnv, fx: &mut Effects) -> GlobalPlugin {
        let before = p.view().settings;
        if before != self.settings {
            p.state.settings = self.settings.to_string();
            let after = Some(self.settings);
            p.commit(env, &self.by, fx, "settings_change", Some(before), after);
        }
        p.view()
    }
}
