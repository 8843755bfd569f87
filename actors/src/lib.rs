//! Agora's actors and the operations the gateway calls.
//!
//! Three actor kinds, one file each: [`community`] (a community and which plugins it enabled,
//! with their settings), [`plugin_instance`] (one enabled plugin of one community, with the
//! plugin's own state), and [`process`] (one governance process). [`Agora`] is the service
//! facade: each method validates its inputs, asks one or more actors through the runtime, and
//! returns domain values; it never sees HTTP.

pub mod audit;
pub mod community;
mod env;
mod error;
pub mod events;
pub mod health;
pub mod outbound;
mod platform;
pub mod plugin_instance;
pub mod plugin_settings;
pub mod process;
mod service;
mod slug;
pub mod vote;

pub use community::{CommunityView, PluginView};
pub use env::{ActorsEnv, RefreshQueue};
pub use error::ActorError;
pub use process::ProcessView;
pub use service::{uuid_v4, Agora, BallotCast, CommunityPlugin, ProcessStart};
pub use slug::{validate_slug, SLUG_MAX};

pub use agora_plugins as plugins;
pub use agora_runtime as runtime;
