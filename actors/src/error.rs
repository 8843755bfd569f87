//! Everything an operation can refuse, with a stable machine-readable code per variant.

use agora_plugins::PluginError;
use agora_runtime::AskError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error("{0}")]
    InvalidSlug(String),
    #[error("community with slug '{0}' already exists")]
    CommunityExists(String),
    #[error("community '{0}' does not exist")]
    CommunityNotFound(String),
    #[error("plugin '{0}' is not installed")]
    UnknownPlugin(String),
    #[error("plugin '{plugin}' is not enabled for community '{community}'")]
    PluginNotEnabled { plugin: String, community: String },
    #[error("plugin '{0}' is disabled on this node")]
    PluginDisabled(String),
    #[error("no plugin instance has id {0}")]
    PluginInstanceNotFound(u64),
    #[error("'{0}' is not an action of an installed plugin")]
    UnknownAction(String),
    #[error("'{0}' is not a public action")]
    ActionNotPublic(String),
    #[error("'{0}' is not a governance process of an installed plugin")]
    UnknownProcessType(String),
    #[error("no process {0}")]
    ProcessNotFound(String),
    #[error("can't close process {0}: it has already completed")]
    ProcessCompleted(u64),
    /// Input that fails a schema or a plugin's own check.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error(transparent)]
    Runtime(#[from] AskError),
}

impl ActorError {
    /// The stable snake_case code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ActorError::InvalidSlug(_) => "invalid_slug",
            ActorError::CommunityExists(_) => "community_exists",
            ActorError::CommunityNotFound(_) => "community_not_found",
            ActorError::UnknownPlugin(_) => "unknown_plugin",
            ActorError::PluginNotEnabled { .. } => "plugin_not_enabled",
            ActorError::PluginDisabled(_) => "plugin_disabled",
            ActorError::PluginInstanceNotFound(_) => "plugin_instance_not_found",
            ActorError::UnknownAction(_) | ActorError::ActionNotPublic(_) => "unknown_action",
            ActorError::UnknownProcessType(_) => "unknown_process_type",
            ActorError::ProcessNotFound(_) => "process_not_found",
            ActorError::ProcessCompleted(_) => "process_completed",
            ActorError::Invalid { code, .. } => code,
            ActorError::Runtime(AskError::Overloaded) => "overloaded",
            ActorError::Runtime(AskError::Unavailable(_)) => "unavailable",
            ActorError::Runtime(AskError::Internal(_)) => "internal",
            ActorError::Runtime(AskError::NotOwner(_)) => "not_owner",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ActorError::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn schema(field: String, message: String) -> Self {
        ActorError::Invalid {
            code: "schema_violation",
            message,
            field: Some(field),
        }
    }
}

impl From<PluginError> for ActorError {
    fn from(e: PluginError) -> Self {
        ActorError::Invalid {
            code: e.code,
            message: e.message,
            field: e.field,
        }
    }
}
