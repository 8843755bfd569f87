//! The process actor (key: the process id): one governance process, its status, outcome and
//! plugin state. Timers the plugin sets are durable reminders, so a process completes on time
//! even across restarts, and exactly once. Every change of status or outcome is committed
//! together with the callback to `callback_url` and the `process_updated` driver event.

use agora_plugins::{Plugin, ProcessContext, ProcessStatus, WebhookRequest};
use agora_runtime::{ActorId, Effects, OutboxMessage, Reminder, Stored, VirtualActor};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{events, ActorError, ActorsEnv};

const RECORD: &str = "process";
const VERSION: u16 = 1;
const TIMER_PREFIX: &str = "timer:";

/// Index key prefix of pending processes: `pending/<slug>/<plugin>/<id>`, so a webhook for a
/// plugin instance reaches every pending process of that instance.
pub(crate) const PENDING_INDEX: &str = "pending/";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct State {
    id: u64,
    plugin: String,
    process: String,
    community: String,
    status: String,
    /// JSON text: outcome, errors, config and plugin state are arbitrary JSON.
    outcome: String,
    errors: String,
    config: String,
    plugin_state: String,
    callback_url: Option<String>,
    driver_url: Option<String>,
    created_ms: u64,
    updated_ms: u64,
}

impl State {
    /// Whether `name` is this process's `<plugin>.<process>`, checked without allocating.
    fn named(&self, name: &str) -> bool {
        name.strip_prefix(self.plugin.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            == Some(self.process.as_str())
    }
}

/// A process as Metagov shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessView {
    pub id: u64,
    pub name: String,
    pub community: String,
    pub status: &'static str,
    pub outcome: Value,
    pub errors: Value,
    /// Filled only for [`Command::Snapshot`]: what the plugin's network half needs.
    pub remote_input: Option<Box<RemoteInput>>,
}

/// A process's plugin, frozen config and plugin state, for `Plugin::remote`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteInput {
    pub plugin: String,
    pub process: String,
    pub config: Value,
    pub state: Value,
}

impl ProcessView {
    /// `{"id","name","community","status","url","errors","outcome"}`
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "community": self.community,
            "status": self.status,
            "url": Value::Null,
            "errors": self.errors,
            "outcome": self.outcome,
        })
    }
}

pub enum Command {
    Start {
        id: u64,
        community: String,
        plugin: String,
        process: String,
        params: Value,
        config: Value,
        callback_url: Option<String>,
        driver_url: Option<String>,
        /// What the plugin's network half observed before the start.
        remote: Option<Value>,
    },
    /// Reads the process the caller names `<plugin>.<process>` (another name: not found).
    Get {
        name: String,
    },
    /// Reads the process with its [`RemoteInput`].
    Snapshot,
    /// Closes the process the caller names `<plugin>.<process>`.
    Close {
        name: String,
        remote: Option<Value>,
    },
    Webhook {
        request: WebhookRequest,
    },
    /// A refresh the process asked for came back from the platform.
    Observe {
        observation: Value,
    },
}

pub type Reply = Result<ProcessView, ActorError>;

pub struct Process {
    key: String,
    state: Option<State>,
}

fn status_of(s: &str) -> ProcessStatus {
    match s {
        "pending" => ProcessStatus::Pending,
        "completed" => ProcessStatus::Completed,
        _ => ProcessStatus::Created,
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl Process {
    fn view(s: &State) -> ProcessView {
        ProcessView {
            id: s.id,
            name: format!("{}.{}", s.plugin, s.process),
            community: s.community.clone(),
            status: status_of(&s.status).as_str(),
            outcome: parse(&s.outcome),
            errors: parse(&s.errors),
            remote_input: None,
        }
    }

    fn not_found(&self) -> ActorError {
        ActorError::ProcessNotFound(self.key.clone())
    }

    fn pending_key(s: &State) -> String {
        format!("{PENDING_INDEX}{}/{}/{}", s.community, s.plugin, s.id)
    }

    /// Runs `f` on the plugin with a context built from the state, then commits whatever it
    /// changed: state, timers, pending index, callback, driver events.
    fn run(
        &mut self,
        env: &ActorsEnv,
        fx: &mut Effects,
        remote: Option<&Value>,
        f: impl FnOnce(&dyn Plugin, &mut ProcessContext<'_>) -> Result<(), agora_plugins::PluginError>,
    ) -> Result<(), ActorError> {
        let Some(s) = &self.state else {
            return Err(self.not_found());
        };
        let plugin = env
            .registry
            .get(&s.plugin)
            .cloned()
            .ok_or_else(|| ActorError::UnknownPlugin(s.plugin.clone()))?;
        let config = parse(&s.config);
        let mut plugin_state = parse(&s.plugin_state);
        let before_status = status_of(&s.status);
        let before_outcome = parse(&s.outcome);
        let before_errors = parse(&s.errors);
        let mut ctx = ProcessContext::new(
            &s.community,
            &s.process,
            &config,
            &mut plugin_state,
            fx.now_ms(),
        );
        ctx.status = before_status;
        ctx.outcome = before_outcome.clone();
        ctx.errors = before_errors.clone();
        ctx.remote = remote;
        f(plugin.as_ref(), &mut ctx)?;
        let refresh = ctx.refresh_requested;
        let status = ctx.status;
        let outcome = std::mem::take(&mut ctx.outcome);
        let errors = std::mem::take(&mut ctx.errors);
        let timers = std::mem::take(&mut ctx.timers);
        let cancelled = std::mem::take(&mut ctx.cancelled_timers);
        let emitted = std::mem::take(&mut ctx.events);
        drop(ctx);

        let Some(s) = &mut self.state else {
            return Err(self.not_found());
        };
        for t in cancelled {
            fx.cancel_reminder(format!("{TIMER_PREFIX}{t}"));
        }
        if status == ProcessStatus::Completed {
            // A completed process has nothing left to wait for.
            for t in timers.iter().map(|(t, _)| t) {
                fx.cancel_reminder(format!("{TIMER_PREFIX}{t}"));
            }
        } else {
            for (t, due) in timers {
                fx.set_reminder(format!("{TIMER_PREFIX}{t}"), due, Vec::new());
            }
        }
        let changed =
            status != before_status || outcome != before_outcome || errors != before_errors;
        s.status = status.as_str().to_string();
        s.outcome = outcome.to_string();
        s.errors = errors.to_string();
        s.plugin_state = plugin_state.to_string();
        s.updated_ms = fx.now_ms();
        if status == ProcessStatus::Completed {
            fx.delete_index(Self::pending_key(s));
        } else {
            fx.put_index(Self::pending_key(s), Vec::new());
        }
        let view = Self::view(s);
        let driver_url = s.driver_url.clone().or_else(|| env.driver_url.clone());
        if changed {
            let body = view.to_json();
            // Metagov calls back when a process completes or its outcome changes, not when it
            // merely starts; drivers rely on that.
            let callback = status == ProcessStatus::Completed || outcome != before_outcome;
            if let (true, Some(url)) = (callback, &s.callback_url) {
                fx.send(OutboxMessage {
                    url: url.clone(),
                    body: body.to_string(),
                    ordering_key: format!("process/{}", s.id),
                });
            }
            events::emit(
                fx,
                driver_url.as_deref(),
                &s.community,
                &s.plugin,
                &events::process_updated(body),
            );
        }
        for ev in &emitted {
            events::emit(fx, driver_url.as_deref(), &s.community, &s.plugin, ev);
        }
        match encode_record(RECORD, VERSION, &*s) {
            Ok(bytes) => fx.save_state(bytes),
            Err(e) => tracing::error!(error = %e, "process state failed to encode"),
        }
        if refresh && status != ProcessStatus::Completed {
            // Queued now, run by the service; its Observe reaches this mailbox after this
            // message, so it sees the state committed here.
            env.refresh.request(s.id);
        }
        Ok(())
    }
}

impl VirtualActor for Process {
    const KIND: &'static str = "process";
    type Env = ActorsEnv;
    type Command = Command;
    type Reply = Reply;

    /// A process lives with its community: its id embeds the community's partition.
    fn partition(key: &str) -> u32 {
        key.parse::<u64>()
            .map(|id| (id % u64::from(agora_runtime::PARTITIONS)) as u32)
            .unwrap_or_else(|_| agora_runtime::partition_of(key))
    }

    fn restore(id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let state = match stored.state {
            Some(bytes) => Some(
                decode_record::<State>(RECORD, VERSION, &bytes)
                    .map_err(|e| e.to_string())?
                    .1,
            ),
            None => None,
        };
        Ok(Process {
            key: id.key.clone(),
            state,
        })
    }

    fn handle(&mut self, env: &ActorsEnv, cmd: Command, fx: &mut Effects) -> Reply {
        match cmd {
            Command::Start {
                id,
                community,
                plugin,
                process,
                params,
                config,
                callback_url,
                driver_url,
                remote,
            } => {
                if self.state.is_some() {
                    // Ids are never reused; a second start is a caller bug, not a new process.
                    return Err(ActorError::Runtime(agora_runtime::AskError::Internal(
                        format!("process {id} already exists"),
                    )));
                }
                self.state = Some(State {
                    id,
                    plugin,
                    process,
                    community,
                    status: "created".into(),
                    outcome: "{}".into(),
                    errors: "{}".into(),
                    config: config.to_string(),
                    plugin_state: "null".into(),
                    callback_url,
                    driver_url,
                    created_ms: fx.now_ms(),
                    updated_ms: fx.now_ms(),
                });
                let started = self.run(env, fx, remote.as_ref(), |p, ctx| {
                    p.start_process(ctx, &params)
                });
                if let Err(e) = started {
                    // Nothing was committed: the process never existed.
                    self.state = None;
                    return Err(e);
                }
                self.state
                    .as_ref()
                    .map(Self::view)
                    .ok_or_else(|| self.not_found())
            }
            Command::Get { name } => self
                .state
                .as_ref()
                .filter(|s| s.named(&name))
                .map(Self::view)
                .ok_or_else(|| self.not_found()),
            Command::Snapshot => {
                let s = self.state.as_ref().ok_or_else(|| self.not_found())?;
                let mut view = Self::view(s);
                view.remote_input = Some(Box::new(RemoteInput {
                    plugin: s.plugin.clone(),
                    process: s.process.clone(),
                    config: parse(&s.config),
                    state: parse(&s.plugin_state),
                }));
                Ok(view)
            }
            Command::Observe { observation } => {
                let Some(s) = &self.state else {
                    return Err(self.not_found());
                };
                if s.status == "completed" {
                    return Ok(Self::view(s));
                }
                self.run(env, fx, None, |p, ctx| p.observe(ctx, &observation))?;
                self.state
                    .as_ref()
                    .map(Self::view)
                    .ok_or_else(|| self.not_found())
            }
            Command::Close { name, remote } => {
                let Some(s) = self.state.as_ref().filter(|s| s.named(&name)) else {
                    return Err(self.not_found());
                };
                if s.status == "completed" {
                    return Err(ActorError::ProcessCompleted(s.id));
                }
                // The contract: a closed process is completed, whatever the plugin did.
                self.run(env, fx, remote.as_ref(), |p, ctx| {
                    p.close_process(ctx)?;
                    ctx.status = ProcessStatus::Completed;
                    Ok(())
                })?;
                self.state
                    .as_ref()
                    .map(Self::view)
                    .ok_or_else(|| self.not_found())
            }
            Command::Webhook { request } => {
                let Some(s) = &self.state else {
                    return Err(self.not_found());
                };
                if s.status == "completed" {
                    return Ok(Self::view(s));
                }
                self.run(env, fx, None, |p, ctx| p.process_webhook(ctx, &request))?;
                self.state
                    .as_ref()
                    .map(Self::view)
                    .ok_or_else(|| self.not_found())
            }
        }
    }

    fn on_reminder(&mut self, env: &ActorsEnv, r: Reminder, fx: &mut Effects) {
        let Some(timer) = r.name.strip_prefix(TIMER_PREFIX).map(str::to_owned) else {
            return;
        };
        if self
            .state
            .as_ref()
            .map(|s| s.status == "completed")
            .unwrap_or(true)
        {
            return;
        }
        if let Err(e) = self.run(env, fx, None, |p, ctx| p.tick(ctx, &timer)) {
            tracing::warn!(timer = %timer, error = %e, "process tick failed");
        }
    }
}
