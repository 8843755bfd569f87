//! `github`: the GitHub platform plugin (being written; not loaded by default yet).

use serde_json::{json, Value};

use crate::{ActionContext, Plugin, PluginError, PluginMeta, ProcessContext};

pub struct Github {
    meta: PluginMeta,
}

impl Default for Github {
    fn default() -> Self {
        Self::new()
    }
}

impl Github {
    pub fn new() -> Self {
        Self {
            meta: PluginMeta {
                name: "github",
                verbose_name: "GitHub",
                version: "0.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: false,
                description: "GitHub (placeholder).",
                auth_type: "api_key",
                uses_webhook: true,
                config_schema: json!({"type": "object"}),
                actions: vec![],
                processes: vec![],
                events: vec![],
            },
        }
    }
}

impl Plugin for Github {
    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    fn action(
        &self,
        _ctx: &mut ActionContext<'_>,
        action: &str,
        _params: &Value,
    ) -> Result<Value, PluginError> {
        Err(PluginError::invalid(
            "action",
            format!("no action {action}"),
        ))
    }

    fn start_process(
        &self,
        _ctx: &mut ProcessContext<'_>,
        _params: &Value,
    ) -> Result<(), PluginError> {
        Err(PluginError::invalid("process", "no processes"))
    }

    fn tick(&self, _ctx: &mut ProcessContext<'_>, _timer: &str) -> Result<(), PluginError> {
        Ok(())
    }

    fn close_process(&self, _ctx: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }
}
