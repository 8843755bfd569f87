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
/// Answers `false` for a replay: a delivery id this instance took within
/// [`DELIVERY_WINDOW_MS`], which then changes nothing.
pub struct Webhook {
    pub request: WebhookRequest,
    pub config: Value,
    pub driver_url: Option<String>,
    pub by: Principal,
    /// The platform's id of this delivery (`Plugin::delivery_id`), when it sends one.
    pub delivery: Option<String>,
}

/// How long a taken delivery id is remembered: GitHub lets a delivery be redelivered for three
/// days, and the issue asks for at least one.
pub const DELIVERY_WINDOW_MS: u64 = 72 * 60 * 60 * 1000;
/// Auxiliary records: `delivery/id/<id>` → the time taken (u64 BE), for the replay check, and
/// `delivery/at/<time BE hex>/<id>`, in time order, for forgetting them.
const DELIVERY_ID: &str = "delivery/id/";
const DELIVERY_AT: &str = "delivery/at/";
/// Expired ids forgotten per webhook: enough to keep up with any delivery rate (each webhook
/// adds one), small enough to keep a handler short.
const SWEEP: usize = 16;

/// The plugin was disabled: forget its state.
pub struct Purge;

/// Runs one of the plugin's read actions (the data of a dashboard widget) on the state as it
/// is; changes nothing.
pub struct Read {
    pub action: String,
    pub config: Value,
}

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
    /// Reads its few auxiliary records on demand (or has none) and never sets reminders: a
    /// fresh activation probes only its state.
    const RESTORE_AUX: bool = false;
    const REMINDERS: bool = false;

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
    type Reply = Result<bool, ActorError>;

    fn handle(self, i: &mut PluginInstance, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let plugin = i.plugin(env)?;
        tracing::debug!(plugin = %i.plugin, who = self.by.who(), delivery = ?self.delivery, "webhook");
        let mut scratch = i.state.clone();
        let mut ctx = ActionContext::new(&i.community, &self.config, &mut scratch, fx.now_ms());
        // Verified first (the plugin's `webhook` checks the signature), so a forged request
        // can neither be told apart as a replay nor take a delivery id before the platform.
        plugin.webhook(&mut ctx, &self.request)?;
        let emitted = std::mem::take(&mut ctx.events);
        if let Some(id) = &self.delivery {
            let seen = format!("{DELIVERY_ID}{id}");
            let now = fx.now_ms();
            if taken_at(fx, &seen)?.is_some_and(|at| now.saturating_sub(at) < DELIVERY_WINDOW_MS) {
                tracing::info!(plugin = %i.plugin, community = %i.community, delivery = %id, "webhook replay ignored");
                return Ok(false);
            }
            fx.put_aux(seen, now.to_be_bytes().to_vec());
            fx.put_aux(format!("{DELIVERY_AT}{now:016x}/{id}"), Vec::new());
            forget_expired(fx, now)?;
        }
        i.finish(env, scratch, emitted, self.driver_url, fx);
        Ok(true)
    }
}

/// Forgets up to [`SWEEP`] delivery ids older than the window, oldest first.
fn forget_expired(fx: &mut Effects, now: u64) -> Result<(), ActorError> {
    let cutoff = now.saturating_sub(DELIVERY_WINDOW_MS);
    let old = fx
        .scan_aux(DELIVERY_AT.as_bytes(), None, SWEEP)
        .map_err(storage)?;
    for (key, _) in old {
        let Some((at, id)) = std::str::from_utf8(&key)
            .ok()
            .and_then(|k| k.strip_prefix(DELIVERY_AT))
            .and_then(|k| k.split_once('/'))
        else {
            continue;
        };
        match u64::from_str_radix(at, 16) {
            Ok(at) if at < cutoff => {
                // The id itself only if it was not taken again since (after its window).
                let seen = format!("{DELIVERY_ID}{id}");
                if taken_at(fx, &seen)? == Some(at) {
                    fx.delete_aux(seen);
                }
                fx.delete_aux(key.clone());
            }
            _ => break,
        }
    }
    Ok(())
}

/// When the delivery id recorded at `seen` was taken, if it was.
fn taken_at(fx: &Effects, seen: &str) -> Result<Option<u64>, ActorError> {
    Ok(fx
        .get_aux(seen.as_bytes())
        .map_err(storage)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes))
}

fn storage(e: agora_storage::StorageError) -> ActorError {
    ActorError::Runtime(agora_runtime::AskError::Unavailable(e.to_string()))
}

impl Message<PluginInstance> for Read {
    type Reply = Result<Value, ActorError>;

    fn handle(self, i: &mut PluginInstance, env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        Ok(i.plugin(env)?.read(&i.state, &self.config, &self.action)?)
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
