//! Plugins: how Agora reaches the platforms communities live on, and the governance processes
//! they run.
//!
//! A plugin is one type implementing [`Plugin`], registered with one line in
//! [`builtin::available`]. Its metadata (config schema, actions, processes, events) is data, so the
//! gateway can validate inputs, publish schemas and serve `/metadata` without plugin code.
//! Plugin code is synchronous and pure with respect to the runtime: it reads and changes the
//! state it is handed and records timers and events in its context; the actor around it
//! persists everything in one commit.

pub mod builtin;
mod context;
mod error;
mod registry;
pub mod remote;
pub mod schema;
pub mod vote;
mod wire;

pub use context::{ActionContext, Event, ProcessContext, ProcessStatus, WebhookRequest};
pub use error::ErrorCode;
pub use registry::{PluginRegistry, Refusal, RegistryError, AGORA_VERSION};
pub use remote::{BoxFuture, Http, HttpError, HttpRequest, HttpResponse, Remote, RemoteOp};

use serde_json::Value;

/// Static description of a plugin.
#[derive(Debug, Clone)]
pub struct PluginMeta {
    pub name: &'static str,
    /// A human name for listings ("Randomness").
    pub verbose_name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub author: &'static str,
    /// The Agora versions this plugin supports, inclusive (`major.minor.patch`); `None`: no
    /// upper bound.
    pub agora_min: &'static str,
    pub agora_max: Option<&'static str>,
    /// Plugins that must be loaded for this one to load.
    pub depends_on: &'static [&'static str],
    /// Loaded when a deployment does not name its plugins (false for test kits).
    pub load_by_default: bool,
    /// `none`, `api_key` or `oauth`, as Metagov reports it.
    pub auth_type: &'static str,
    pub uses_webhook: bool,
    pub config_schema: Value,
    pub actions: Vec<ActionSpec>,
    pub processes: Vec<ProcessSpec>,
    pub events: Vec<EventSpec>,
    /// Entries the dashboard adds to a community's navigation when the plugin is enabled.
    pub navigation: Vec<NavItem>,
    /// Widgets the dashboard draws for communities where the plugin is enabled.
    pub widgets: Vec<WidgetSpec>,
}

/// A navigation entry on the dashboard: a label and the name of an icon from the dashboard's
/// own set (plugins ship no images, HTML or scripts).
#[derive(Debug, Clone)]
pub struct NavItem {
    pub label: &'static str,
    pub icon: &'static str,
    /// Lower first.
    pub order: u32,
}

/// How the dashboard draws a widget's data. The plugin supplies JSON only; the dashboard
/// draws it, as text, so a plugin cannot put code into an operator's browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidgetKind {
    /// `{"value": number or text, "label"?: text}`.
    Stat,
    /// `{"columns": [text], "rows": [[number or text]]}`.
    Table,
    /// `{"bars": [{"label": text, "value": number}]}`.
    Bars,
}

impl WidgetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WidgetKind::Stat => "stat",
            WidgetKind::Table => "table",
            WidgetKind::Bars => "bars",
        }
    }
}

/// A dashboard widget: its data is the answer of the plugin's read action `action`
/// ([`Plugin::read`]) for the community.
#[derive(Debug, Clone)]
pub struct WidgetSpec {
    /// Unique within the plugin; names the widget in its data route.
    pub name: &'static str,
    pub title: &'static str,
    /// Lower first.
    pub order: u32,
    pub kind: WidgetKind,
    pub action: &'static str,
}

#[derive(Debug, Clone)]
pub struct ActionSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters_schema: Value,
    pub response_schema: Value,
    /// Public actions are callable without the driver token, at `/api/action/...`.
    pub public: bool,
}

#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters_schema: Value,
    pub outcome_schema: Value,
}

#[derive(Debug, Clone)]
pub struct EventSpec {
    pub event_type: &'static str,
    pub schema: Value,
}

impl PluginMeta {
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }
    pub fn process(&self, name: &str) -> Option<&ProcessSpec> {
        self.processes.iter().find(|p| p.name == name)
    }
    pub fn widget(&self, name: &str) -> Option<&WidgetSpec> {
        self.widgets.iter().find(|w| w.name == name)
    }
}

/// A failure a plugin reports; becomes a 4xx with this code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl PluginError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::SchemaViolation,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A combination of settings the plugin cannot run with, found by
    /// [`Plugin::check_settings`]: `invalid_settings` (400), `field` naming one setting.
    pub fn invalid_settings(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidSettings,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The same error with its field under `at` (`plugins[0].config.default_high`).
    pub fn settings_at(mut self, at: &str) -> Self {
        if !at.is_empty() {
            self.field = Some(match self.field {
                Some(field) if !field.is_empty() => format!("{at}.{field}"),
                _ => at.to_string(),
            });
        }
        self
    }

    /// The platform answered, but not as the plugin needs (the gateway answers 502).
    pub fn platform(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::PlatformError,
            message: message.into(),
            field: None,
        }
    }
}

/// What every plugin implements. Inputs reach these methods already validated against the
/// schemas in [`PluginMeta`], with schema defaults filled in.
pub trait Plugin: Send + Sync + 'static {
    fn meta(&self) -> &PluginMeta;

    /// Runs action `action` (one of `meta().actions`) and returns its JSON result.
    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        params: &Value,
    ) -> Result<Value, PluginError>;

    /// Runs read action `action` (named by one of `meta().widgets`) on the instance's state
    /// and returns the widget's data. It changes nothing and calls no platform, so a viewer
    /// may run it. Default: the plugin has no read actions.
    fn read(&self, _state: &Value, _config: &Value, action: &str) -> Result<Value, PluginError> {
        Err(PluginError {
            code: ErrorCode::UnknownWidget,
            message: format!(
                "plugin '{}' has no read action '{action}'",
                self.meta().name
            ),
            field: None,
        })
    }

    /// Checks the settings as a whole, for what a schema cannot say: one setting against
    /// another, or what the platform needs together. `settings` are the effective settings
    /// (defaults < global < community), already valid against the config schema; Agora runs
    /// this whenever settings are stored at any layer, and a refusal
    /// ([`PluginError::invalid_settings`]) stores nothing. Default: nothing more to check.
    fn check_settings(&self, _settings: &Value) -> Result<(), PluginError> {
        Ok(())
    }

    /// A webhook for this plugin instance; may emit events. Default: accept and ignore.
    fn webhook(
        &self,
        _ctx: &mut ActionContext<'_>,
        _req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    /// Starts a governance process: sets its status, outcome and timers.
    fn start_process(
        &self,
        ctx: &mut ProcessContext<'_>,
        params: &Value,
    ) -> Result<(), PluginError>;

    /// A webhook reached a pending process of this plugin instance. Default: ignore.
    fn process_webhook(
        &self,
        _ctx: &mut ProcessContext<'_>,
        _req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    /// The network half of the plugin (see [`remote`]): for `call.op`, talk to the platform
    /// through `call.http` and return an observation for the synchronous half. `None` (the
    /// default): this plugin does no network work for that operation.
    fn remote<'a>(
        &'a self,
        _call: Remote<'a>,
    ) -> Option<BoxFuture<'a, Result<Value, PluginError>>> {
        None
    }

    /// Whether [`Plugin::remote`] may do network work when a driver closes one of this
    /// plugin's processes. `false` lets the close skip reading the process for the network
    /// half (one actor hop per close). The default is `true`, so a plugin that does not say is
    /// always asked; a test holds every `false` to a `remote` that answers `None`.
    fn remote_on_close(&self) -> bool {
        true
    }

    /// A refresh the process asked for (`ctx.request_refresh()`) read `observation` from the
    /// platform. Default: ignore.
    fn observe(
        &self,
        _ctx: &mut ProcessContext<'_>,
        _observation: &Value,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    /// The platform-side identity of a community's instance (a repository, a collective),
    /// read from the community's settings; `POST /api/hooks/<plugin>` routes by it.
    fn platform_id(&self, _settings: &Value) -> Option<String> {
        None
    }

    /// The platform's id of this webhook delivery, the same when the platform redelivers it:
    /// a delivery id an instance took in the last 72 hours is a replay, answered 200 and
    /// ignored. `None` (the default): the platform sends none, and every delivery is taken.
    fn delivery_id(&self, _req: &WebhookRequest) -> Option<String> {
        None
    }

    /// Verifies a platform-wide webhook (`POST /api/hooks/<plugin>`) with the node-wide
    /// settings (`node_settings`: the global settings as stored), before it is routed. With a verdict, an
    /// authentic webhook that routes nowhere is answered 200 and does nothing, and an
    /// unauthentic one is refused 401 whatever it is about, so an anonymous caller cannot tell
    /// which platform objects the node follows. `None` (the default): the plugin verifies only
    /// per community, after routing, with each community's settings.
    fn verify_platform_webhook(
        &self,
        _node_settings: &Value,
        _req: &WebhookRequest,
    ) -> Option<Result<(), PluginError>> {
        None
    }

    /// The platform-side identity a platform-wide webhook is about (matched against
    /// [`Plugin::platform_id`]). Default: such webhooks are not routable.
    fn webhook_route(&self, _req: &WebhookRequest) -> Option<String> {
        None
    }

    /// A timer the process set came due.
    fn tick(&self, ctx: &mut ProcessContext<'_>, timer: &str) -> Result<(), PluginError>;

    /// The driver closes the process: it must end `completed` with its final outcome.
    fn close_process(&self, ctx: &mut ProcessContext<'_>) -> Result<(), PluginError>;

    /// Lifecycle: the node loads the plugin (once, at start). An error refuses the plugin.
    fn on_load(&self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Lifecycle: the plugin is being enabled for `community` with these settings (`None`: on
    /// the whole node). Called before the change is stored; an error refuses the change.
    fn on_enable(&self, _community: Option<&str>, _settings: &Value) -> Result<(), PluginError> {
        Ok(())
    }

    /// Lifecycle: the plugin is being disabled for `community` (`None`: on the whole node).
    /// Called before the change is stored; an error refuses the change.
    fn on_disable(&self, _community: Option<&str>, _settings: &Value) -> Result<(), PluginError> {
        Ok(())
    }

    /// Lifecycle: the node stops (once, at shutdown).
    fn on_unload(&self) {}
}
