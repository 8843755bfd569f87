//! The process actor (key: the process id): one governance process, its status, outcome and
//! plugin state. Timers the plugin sets are durable reminders, so a process completes on time
//! even across restarts, and exactly once. Every change of status or outcome is committed
//! together with the callback to `callback_url` and the `process_updated` driver event.

use agora_plugins::{Plugin, ProcessContext, ProcessStatus, WebhookRequest};
use agora_runtime::{ActorId, Effects, Message, OutboxMessage, Reminder, Stored, VirtualActor};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{events, ActorError, ActorsEnv, Principal};

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

/// A process in a list (votes too).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSummary {
    pub id: u64,
    /// `<plugin>.<process>`, or `vote.<method>`.
    pub name: String,
    pub community: String,
    /// `pending` or `completed`.
    pub status: &'static str,
    pub created_ms: u64,
    /// When a vote closes by itself.
    pub closing_at_ms: Option<u64>,
}

/// A plugin process's summary from its stored record.
pub fn summary(bytes: &[u8]) -> Option<ProcessSummary> {
    let (_, s) = decode_record::<State>(RECORD, VERSION, bytes).ok()?;
    Some(ProcessSummary {
        id: s.id,
        name: format!("{}.{}", s.plugin, s.process),
        community: s.community,
        status: if s.status == "completed" {
            "completed"
        } else {
            "pending"
        },
        created_ms: s.created_ms,
        closing_at_ms: None,
    })
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
    /// Filled only for [`Snapshot`]: what the plugin's network half needs.
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

/// Starts process `id` (a fresh id: a second start is a bug).
pub struct Start {
    pub id: u64,
    pub community: String,
    pub plugin: String,
    pub process: String,
    pub params: Value,
    pub config: Value,
    pub callback_url: Option<String>,
    pub driver_url: Option<String>,
    /// What the plugin's network half observed before the start.
    pub remote: Option<Value>,
    pub by: Principal,
}

/// Reads the process the caller names `<plugin>.<process>` (another name: not found).
pub struct Get {
    pub name: String,
}

/// Reads the process with its [`RemoteInput`].
pub struct Snapshot;

/// Closes the process the caller names `<plugin>.<process>`.
pub struct Close {
    pub name: String,
    /// What the plugin's network half observed while closing on the platform.
    pub remote: Option<Value>,
    pub by: Principal,
}

/// A webhook for the process's plugin instance reached this pending process.
pub struct Webhook {
    pub request: WebhookRequest,
    pub by: Principal,
}

/// A refresh the process asked for came back from the platform.
pub struct Observe {
    pub observation: Value,
}

/// What every process operation answers.
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
    /// changed: state, timers, pending index, callback, driver events. When the plugin changed
    /// nothing (a webhook or tick it ignores), nothing is written, unless `new`: a process
    /// being started is not on disk yet. Answers the process as committed (`None`: nothing
    /// was), so callers need not rebuild the view.
    fn run(
        &mut self,
        env: &ActorsEnv,
        fx: &mut Effects,
        new: bool,
        remote: Option<&Value>,
        f: impl FnOnce(&dyn Plugin, &mut ProcessContext<'_>) -> Result<(), agora_plugins::PluginError>,
    ) -> Result<Option<ProcessView>, ActorError> {
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
        let changed =
            status != before_status || outcome != before_outcome || errors != before_errors;
        let plugin_state = plugin_state.to_string();
        if !new
            && !changed
            && timers.is_empty()
            && cancelled.is_empty()
            && emitted.is_empty()
            && plugin_state == s.plugin_state
        {
            // Every pending process of an instance hears each of its webhooks; one that
            // ignores it must not cost a commit (nor move `updated_ms`).
            if refresh && status != ProcessStatus::Completed {
                env.refresh.request(s.id);
            }
            return Ok(None);
        }
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
        s.status = status.as_str().to_string();
        s.outcome = outcome.to_string();
        s.errors = errors.to_string();
        s.plugin_state = plugin_state;
        s.updated_ms = fx.now_ms();
        if status == ProcessStatus::Completed {
            fx.delete_index(Self::pending_key(s));
        } else {
            fx.put_index(Self::pending_key(s), Vec::new());
        }
        let view = Self::view(s);
        let driver_url = s.driver_url.clone().or_else(|| env.driver_url.clone());
        if changed {
            let body = env.json.process(&view);
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
                env.json.as_ref(),
                driver_url.as_deref(),
                &s.community,
                &s.plugin,
                &events::process_updated(body),
            );
        }
        for ev in &emitted {
            let json = env.json.as_ref();
            events::emit(fx, json, driver_url.as_deref(), &s.community, &s.plugin, ev);
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
        Ok(Some(view))
    }
}

impl Process {
    fn current(&self) -> Reply {
        self.state
            .as_ref()
            .map(Self::view)
            .ok_or_else(|| self.not_found())
    }
}

impl VirtualActor for Process {
    const KIND: &'static str = "process";
    type Env = ActorsEnv;
    /// A process keeps no auxiliary records: activation skips their scan.
    const RESTORE_AUX: bool = false;

    /// A process lives with its community: its id embeds the community's partition.
    fn partition(key: &str) -> u32 {
        agora_runtime::partition_of_id_key(key)
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
        if let Err(e) = self.run(env, fx, false, None, |p, ctx| p.tick(ctx, &timer)) {
            tracing::warn!(timer = %timer, error = %e, "process tick failed");
        }
    }
}

impl Message<Process> for Start {
    type Reply = Reply;

    fn handle(self, p: &mut Process, env: &ActorsEnv, fx: &mut Effects) -> Reply {
        if p.state.is_some() {
            // Ids are never reused; a second start is a caller bug, not a new process.
            return Err(ActorError::internal(format!(
                "process {} already exists",
                self.id
            )));
        }
        tracing::debug!(process = self.id, who = self.by.who(), agent = ?self.by.agent(), "process started");
        p.state = Some(State {
            id: self.id,
            plugin: self.plugin,
            process: self.process,
            community: self.community,
            status: "created".into(),
            outcome: "{}".into(),
            errors: "{}".into(),
            config: self.config.to_string(),
            plugin_state: "null".into(),
            callback_url: self.callback_url,
            driver_url: self.driver_url,
            created_ms: fx.now_ms(),
            updated_ms: fx.now_ms(),
        });
        let params = self.params;
        let started = p.run(env, fx, true, self.remote.as_ref(), |plugin, ctx| {
            plugin.start_process(ctx, &params)
        });
        match started {
            Ok(Some(view)) => Ok(view),
            Ok(None) => p.current(),
            Err(e) => {
                // Nothing was committed: the process never existed.
                p.state = None;
                Err(e)
            }
        }
    }
}

impl Message<Process> for Get {
    type Reply = Reply;

    fn handle(self, p: &mut Process, _env: &ActorsEnv, _fx: &mut Effects) -> Reply {
        p.state
            .as_ref()
            .filter(|s| s.named(&self.name))
            .map(Process::view)
            .ok_or_else(|| p.not_found())
    }
}

impl Message<Process> for Snapshot {
    type Reply = Reply;

    fn handle(self, p: &mut Process, _env: &ActorsEnv, _fx: &mut Effects) -> Reply {
        let s = p.state.as_ref().ok_or_else(|| p.not_found())?;
        let mut view = Process::view(s);
        view.remote_input = Some(Box::new(RemoteInput {
            plugin: s.plugin.clone(),
            process: s.process.clone(),
            config: parse(&s.config),
            state: parse(&s.plugin_state),
        }));
        Ok(view)
    }
}

impl Message<Process> for Observe {
    type Reply = Reply;

    fn handle(self, p: &mut Process, env: &ActorsEnv, fx: &mut Effects) -> Reply {
        let Some(s) = &p.state else {
            return Err(p.not_found());
        };
        if s.status == "completed" {
            return Ok(Process::view(s));
        }
        let observation = self.observation;
        p.run(env, fx, false, None, |plugin, ctx| {
            plugin.observe(ctx, &observation)
        })?
        .map_or_else(|| p.current(), Ok)
    }
}

impl Message<Process> for Close {
    type Reply = Reply;

    fn handle(self, p: &mut Process, env: &ActorsEnv, fx: &mut Effects) -> Reply {
        let Some(s) = p.state.as_ref().filter(|s| s.named(&self.name)) else {
            return Err(p.not_found());
        };
        if s.status == "completed" {
            return Err(ActorError::ProcessCompleted(s.id));
        }
        tracing::debug!(process = s.id, who = self.by.who(), agent = ?self.by.agent(), "process closed");
        // The contract: a closed process is completed, whatever the plugin did.
        p.run(env, fx, false, self.remote.as_ref(), |plugin, ctx| {
            plugin.close_process(ctx)?;
            ctx.status = ProcessStatus::Completed;
            Ok(())
        })?
        .map_or_else(|| p.current(), Ok)
    }
}

impl Message<Process> for Webhook {
    type Reply = Reply;

    fn handle(self, p: &mut Process, env: &ActorsEnv, fx: &mut Effects) -> Reply {
        let Some(s) = &p.state else {
            return Err(p.not_found());
        };
        if s.status == "completed" {
            return Ok(Process::view(s));
        }
        let request = self.request;
        p.run(env, fx, false, None, |plugin, ctx| {
            plugin.process_webhook(ctx, &request)
        })?
        .map_or_else(|| p.current(), Ok)
    }
}
