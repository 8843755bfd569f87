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
    /// The raw query string, without `?` (platforms that cannot sign put a shared secret there).
    pub query: Option<String>,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
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
    /// What [`crate::Plugin::remote`] observed for this action, when the plugin has a network
    /// half.
    pub remote: Option<&'a Value>,
}

impl<'a> ActionContext<'a> {
    pub fn new(community: &'a str, config: &'a Value, state: &'a mut Value, now_ms: u64) -> Self {
        Self {
            community,
            config,
            state,
            now_ms,
            events: Vec::new(),
            remote: None,
        }
    }

    /// The remote observation, or a `platform_error` when the network half did not run.
    pub fn observation(&self) -> Result<&'a Value, crate::PluginError> {
        self.remote
            .ok_or_else(|| crate::PluginError::platform("the platform was not called"))
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
    /// What [`crate::Plugin::remote`] observed before `start_process` or `close_process`.
    pub remote: Option<&'a Value>,
    /// Set by [`ProcessContext::request_refresh`].
    pub refresh_requested: bool,
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
            remote: None,
            refresh_requested: false,
        }
    }

    /// The remote observation, or a `platform_error` when the network half did not run.
    pub fn observation(&self) -> Result<&'a Value, crate::PluginError> {
        self.remote
            .ok_or_else(|| crate::PluginError::platform("the platform was not called"))
    }

    /// Asks for a [`crate::RemoteOp::Refresh`] once this change is committed; its observation
    /// comes back through [`crate::Plugin::observe`]. A lost refresh (a crash in between) is
    /// simply not observed, so processes that follow a platform also tick periodically.
    pub fn request_refresh(&mut self) {
        self.refresh_requested = true;
    }

    pub fn emit(&mut self, event_type: impl Into<String>, data: Value) {
        self.events.push(Event {
            event_type: event_type.into(),
            data,
            initiator: Value::Object(Default::default()),
        });
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

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && s.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let req = WebhookRequest {
            headers: vec![],
            query: Some("a=1&secret=s%20t%2B&flag&x=%zz".into()),
            body: vec![],
        };
        assert_eq!(req.query_param("secret").as_deref(), Some("s t+"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("x").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("b"), None);
    }
}
