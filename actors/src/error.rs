//! Everything an operation can refuse. Each variant has one [`ErrorCode`] (and through it one
//! HTTP status, chosen by the gateway from the code alone).

use agora_plugins::{ErrorCode, PluginError};
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
    /// Input that fails a schema, a plugin's own check or a vote's rules.
    #[error("{message}")]
    Invalid {
        code: ErrorCode,
        message: String,
        field: Option<String>,
    },
    #[error(transparent)]
    Runtime(#[from] AskError),
}

impl ActorError {
    /// The stable code clients match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            ActorError::InvalidSlug(_) => ErrorCode::InvalidSlug,
            ActorError::CommunityExists(_) => ErrorCode::CommunityExists,
            ActorError::CommunityNotFound(_) => ErrorCode::CommunityNotFound,
            ActorError::UnknownPlugin(_) => ErrorCode::UnknownPlugin,
            ActorError::PluginNotEnabled { .. } => ErrorCode::PluginNotEnabled,
            ActorError::PluginDisabled(_) => ErrorCode::PluginDisabled,
            ActorError::PluginInstanceNotFound(_) => ErrorCode::PluginInstanceNotFound,
            ActorError::UnknownAction(_) | ActorError::ActionNotPublic(_) => {
                ErrorCode::UnknownAction
            }
            ActorError::UnknownProcessType(_) => ErrorCode::UnknownProcessType,
            ActorError::ProcessNotFound(_) => ErrorCode::ProcessNotFound,
            ActorError::ProcessCompleted(_) => ErrorCode::ProcessCompleted,
            ActorError::Invalid { code, .. } => *code,
            ActorError::Runtime(AskError::Overloaded) => ErrorCode::Overloaded,
            ActorError::Runtime(AskError::Unavailable(_)) => ErrorCode::Unavailable,
            ActorError::Runtime(AskError::Internal(_)) => ErrorCode::Internal,
            ActorError::Runtime(AskError::NotOwner(_)) => ErrorCode::NotOwner,
        }
    }

    /// Where in the request the problem is, when the error knows.
    pub fn field(&self) -> Option<&str> {
        match self {
            ActorError::Invalid { field, .. } => field.as_deref(),
            ActorError::InvalidSlug(_) => Some("slug"),
            _ => None,
        }
    }

    /// A refusal with `code`.
    pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> Self {
        ActorError::Invalid {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The same refusal, naming the field at fault.
    pub(crate) fn at(mut self, at: impl Into<String>) -> Self {
        if let ActorError::Invalid { field, .. } = &mut self {
            *field = Some(at.into());
        }
        self
    }

    pub(crate) fn schema(field: String, message: String) -> Self {
        ActorError::refuse(ErrorCode::SchemaViolation, message).at(field)
    }

    /// A bug: an actor was asked something it cannot answer (an id reused, say).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ActorError::Runtime(AskError::Internal(message.into()))
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
