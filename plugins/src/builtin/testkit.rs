//! `testkit`: a plugin for exercising Agora's plugin machinery from the outside. Never loaded
//! unless a deployment names it (`AGORA_PLUGINS=...,testkit`).
//!
//! Its settings decide whether its lifecycle hooks fail (`fail_on_enable`, `fail_on_disable`),
//! it has a secret setting (`token`) to show masking, and `AGORA_TESTKIT_FAIL_LOAD=1` makes its
//! `on_load` fail. Its action `echo` (public) answers its parameters; `fetch` calls the URL in its
//! `fetch_url` setting through the guarded client (and its health probe GETs `probe_url`), so
//! tests can prove retries, `Retry-After` and the circuit breaker against a scripted server.

use serde_json::{json, Value};

use crate::{
    ActionContext, ActionSpec, BoxFuture, ErrorCode, HttpRequest, Plugin, PluginError, PluginMeta,
    ProcessContext, Remote, RemoteOp,
};

pub struct Testkit {
    meta: PluginMeta,
}

impl Default for Testkit {
    fn default() -> Self {
        Self::new()
    }
}

impl Testkit {
    pub fn new() -> Self {
        Testkit {
            meta: PluginMeta {
                name: "testkit",
                verbose_name: "Test kit",
                version: "1.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: false,
                description: "Exercises plugin lifecycle hooks, settings and masking in tests.",
                auth_type: "none",
                uses_webhook: false,
                config_schema: json!({
                    "type": "object",
                    "properties": {
                        "fail_on_enable": {"type": "boolean", "default": false},
                        "fail_on_disable": {"type": "boolean", "default": false},
                        "token": {"type": "string", "x-secret": true},
                        "fetch_url": {"type": "string"},
                        "probe_url": {"type": "string"},
                        "label": {"type": "string"}
                    },
                    "additionalProperties": false
                }),
                actions: vec![
                    ActionSpec {
                        name: "echo",
                        description: "Answers its parameters.",
                        parameters_schema: json!({"type": "object"}),
                        response_schema: json!({"type": "object"}),
                        // No built-in action is public (as in Metagov); this one shows the
                        // public route serving one.
                        public: true,
                    },
                    ActionSpec {
                        name: "fetch",
                        description: "Calls `fetch_url` and answers the status and body it got.",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {
                                "method": {"type": "string", "enum": ["GET", "POST"], "default": "GET"}
                            },
                            "additionalProperties": false
                        }),
                        response_schema: json!({"type": "object"}),
                        public: false,
                    },
                ],
                processes: vec![],
                navigation: vec![],
                widgets: vec![],
                events: vec![],
            },
        }
    }
}

fn hook_failure(hook: &str) -> PluginError {
    PluginError {
        code: ErrorCode::HookFailed,
        message: format!("testkit's {hook} hook fails, as its settings ask"),
        field: None,
    }
}

impl Plugin for Testkit {
    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        params: &Value,
    ) -> Result<Value, PluginError> {
        match action {
            "fetch" => Ok(ctx.observation()?.clone()),
            _ => Ok(params.clone()),
        }
    }

    fn remote<'a>(&'a self, call: Remote<'a>) -> Option<BoxFuture<'a, Result<Value, PluginError>>> {
        let (method, url_setting) = match call.op {
            RemoteOp::Action {
                action: "fetch",
                params,
            } => match params.get("method").and_then(Value::as_str) {
                Some("POST") => ("POST", "fetch_url"),
                _ => ("GET", "fetch_url"),
            },
            RemoteOp::Probe if call.config.get("probe_url").is_some() => ("GET", "probe_url"),
            _ => return None,
        };
        Some(Box::pin(async move {
            let url = call.setting(url_setting)?;
            let resp = call.http.send(HttpRequest::new(method, url)).await?;
            if matches!(call.op, RemoteOp::Probe) && !resp.is_success() {
                return Err(PluginError::platform(format!(
                    "probe answered {}",
                    resp.status
                )));
            }
            Ok(json!({
                "status": resp.status,
                "body": String::from_utf8_lossy(&resp.body),
            }))
        }))
    }

    fn start_process(&self, _: &mut ProcessContext<'_>, _: &Value) -> Result<(), PluginError> {
        Err(PluginError {
            code: ErrorCode::Unsupported,
            message: "testkit has no processes".into(),
            field: None,
        })
    }

    fn tick(&self, _: &mut ProcessContext<'_>, _: &str) -> Result<(), PluginError> {
        Ok(())
    }

    fn close_process(&self, _: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }

    fn on_load(&self) -> Result<(), PluginError> {
        match std::env::var("AGORA_TESTKIT_FAIL_LOAD").as_deref() {
            Ok("1") => Err(hook_failure("on_load")),
            _ => Ok(()),
        }
    }

    fn on_enable(&self, _community: Option<&str>, settings: &Value) -> Result<(), PluginError> {
        if settings.get("fail_on_enable") == Some(&Value::Bool(true)) {
            return Err(hook_failure("on_enable"));
        }
        Ok(())
    }

    fn on_disable(&self, _community: Option<&str>, settings: &Value) -> Result<(), PluginError> {
        if settings.get("fail_on_disable") == Some(&Value::Bool(true)) {
            return Err(hook_failure("on_disable"));
        }
        Ok(())
    }
}
