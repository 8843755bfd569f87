//! The plugin-instance actor (key: `community/plugin`): one enabled plugin of one community,
//! holding the plugin's own state (a lucky number, a platform cursor). Actions and webhooks for
//! the instance run here, one at a time, so plugin state needs no locks.

use std::sync::Arc;

use agora_plugins::{ActionContext, Plugin, WebhookRequest};
use agora_runtime::{ActorId, Effects, Message, Reminder, Stored, VirtualActor};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{events, ActorError, ActorsEnv, Principal};

const RECORD: &str = "plugin-instance";
const VERSION: u16 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct State {
    /// The plugin's state as JSON text (arbitrary JSON must round-trip exactly).
    plugin_state: String,
}

/// Runs one of the plugin's actions; answers the action's result.
pub struct Action {
    pub action: String,
    pub params: Value,
    pub config: Value,
    pub driver_url: Option<String>,
    /// What the plugin's network half observed for this action.
    pub remote: Option<Value>,
    pub by: Principal,
}

/// A webhook for this instance.
pub struct Webhook {
    pub request: WebhookRequest,
    pub config: Value,
    pub driver_url: Option<String>,
    pub by: Principal,
}

/// The plugin was disabled: forget its state.
pub struct Purge;

pub struct PluginInstance {
    community: String,
    plugin: String,
    state: Value,
}

impl PluginInstance {
    fn plugin(&self, env: &ActorsEnv) -> Result<Arc<dyn Plugin>, ActorError> {
        env.registry
            .get(&self.plugin)
            .cloned()
            .ok_or_else(|| ActorError::UnknownPlugin(self.plugin.clone()))
    }

    /// Persists the plugin state if it changed and turns emitted events into outbox messages.
    fn finish(
        &mut self,
        env: &ActorsEnv,
        new_state: Value,
        emitted: Vec<agora_plugins::Event>,
        driver_url: Option<String>,
        fx: &mut Effects,
    ) {
        if new_state != self.state {
            self.state = new_state;
            let rec = State {
                plugin_state: self.state.to_string(),
            };
            match encode_record(RECORD, VERSION, &rec) {
                Ok(b) => fx.save_state(b),
                Err(e) => tracing::error!(error = %e, "plugin state failed to encode"),
            }
        }
        let url = driver_url.or_else(|| env.driver_url.clone());
        for ev in &emitted {
            let json = env.json.as_ref();
            events::emit(fx, json, url.as_deref(), &self.community, &self.plugin, ev);
        }
    }
}

impl VirtualActor for PluginInstance {
    const KIND: &'static str = "plugin";
    type Env = ActorsEnv;

    /// An instance (`community/plugin`) lives with its community.
    fn partition(key: &str) -> u32 {
        agora_runtime::partition_of(key.split_once('/').map_or(key, |(slug, _)| slug))
    }

    fn restore(id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let (community, plugin) = id
            .key
            .split_once('/')
            .ok_or_else(|| format!("plugin instance key {} lacks a '/'", id.key))?;
        let state = match stored.state {
            Some(bytes) => {
                let (_, s) =
                    decode_record::<State>(RECORD, VERSION, &bytes).map_err(|e| e.to_string())?;
                serde_json::from_str(&s.plugin_state).map_err(|e| e.to_string())?
            }
            None => Value::Null,
        };
        Ok(PluginInstance {
            community: community.to_string(),
            plugin: plugin.to_string(),
            state,
        })
    }

    fn on_reminder(&mut self, _env: &ActorsEnv, _r: Reminder, _fx: &mut Effects) {}
}

impl Message<PluginInstance> for Action {
    type Reply = Result<Value, ActorError>;

    fn handle(self, i: &mut PluginInstance, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let plugin = i.plugin(env)?;
        tracing::debug!(plugin = %i.plugin, action = %self.action, who = self.by.who(), agent = ?self.by.agent(), "action");
        // The plugin works on a copy, so a refused action leaves the state untouched.
        let mut scratch = i.state.clone();
        let mut ctx = ActionContext::new(&i.community, &self.config, &mut scratch, fx.now_ms());
        ctx.remote = self.remote.as_ref();
        let result = plugin.action(&mut ctx, &self.action, &self.params)?;
        let emitted = std::mem::take(&mut ctx.events);
        i.finish(env, scratch, emitted, self.driver_url, fx);
        Ok(result)
    }
}

impl Message<PluginInstance> for Webhook {
    type Reply = Result<(), ActorError>;

    fn handle(self, i: &mut PluginInstance, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let plugin = i.plugin(env)?;
        tracing::debug!(plugin = %i.plugin, who = self.by.who(), "webhook");
        let mut scratch = i.state.clone();
        let mut ctx = ActionContext::new(&i.community, &self.config, &mut scratch, fx.now_ms());
        plugin.webhook(&mut ctx, &self.request)?;
        let emitted = std::mem::take(&mut ctx.events);
        i.finish(env, scratch, emitted, self.driver_url, fx);
        Ok(())
    }
}

impl Message<PluginInstance> for Purge {
    type Reply = ();

    fn handle(self, i: &mut PluginInstance, _env: &ActorsEnv, fx: &mut Effects) {
        if !i.state.is_null() {
            i.state = Value::Null;
            fx.delete_state();
        }
    }
}
