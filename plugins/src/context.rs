//! What a plugin sees while it runs: its configuration, the state it owns, the clock, and
//! places to record timers and events. Contexts are plain data; the actor around the plugin
//! turns what they collected into one durable change.

use serde_json::Value;

/// An event for the driver, in Metagov's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: String,
    pub data: Value,
    pub initiator: Value,
}

/// A webhook as received, for plugins that verify signatures and read platform payloads.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Context for actions and instance-level webhooks.
pub struct ActionContext<'a> {
    pub community: &'a str,
    pub config: &'a Value,
    /// The plugin instance's own persisted state (starts as `null`).
    pub state: &'a mut Value,
    pub now_ms: u64,
    pub events: Vec<Event>,
}

impl<'a> ActionContext<'a> {
    pub fn new(community: &'a str, config: &'a Value, state: &'a mut Value, now_ms: u64) -> Self {
        Self {
            community,
            config,
            state,
            now_ms,
            events: Vec::new(),
        }
    }

    pub fn emit(&mut self, event_type: impl Into<String>, data: Value) {
        self.events.push(Event {
            event_type: event_type.into(),
            data,
            initiator: Value::Object(Default::default()),
        });
    }
}

/// The three statuses Metagov knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessStatus {
    Created,
    Pending,
    Completed,
}

impl ProcessStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessStatus::Created => "created",
            ProcessStatus::Pending => "pending",
            ProcessStatus::Completed => "completed",
        }
    }
}

/// Context for a governance process.
pub struct ProcessContext<'a> {
    pub community: &'a str,
    /// The process type without the plugin prefix, e.g. `delayed-stochastic-vote`.
    pub process: &'a str,
    pub config: &'a Value,
    /// The process's own persisted plugin state (starts as `null`).
    pub state: &'a mut Value,
    pub status: ProcessStatus,
    pub outcome: Value,
    pub errors: Value,
    pub now_ms: u64,
    pub timers: Vec<(String, u64)>,
    pub cancelled_timers: Vec<String>,
    pub events: Vec<Event>,
}

impl<'a> ProcessContext<'a> {
    pub fn new(
        community: &'a str,
        process: &'a str,
        config: &'a Value,
        state: &'a mut Value,
        now_ms: u64,
    ) -> Self {
        Self {
            community,
            process,
            config,
            state,
            status: ProcessStatus::Created,
            outcome: Value::Object(Default::default()),
            errors: Value::Object(Default::default()),
            now_ms,
            timers: Vec::new(),
            cancelled_timers: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Asks for `tick(timer)` at `due_ms` (durable: survives restarts, fires once).
    pub fn set_timer(&mut self, timer: impl Into<String>, due_ms: u64) {
        self.timers.push((timer.into(), due_ms));
    }

    pub fn cancel_timer(&mut self, timer: impl Into<String>) {
        self.cancelled_timers.push(timer.into());
    }

    pub fn complete(&mut self, outcome: Value) {
        self.status = ProcessStatus::Completed;
        self.outcome = outcome;
    }
}
