//! Agora's actors and the services the gateway calls.
//!
//! One file per actor kind, its messages beside it: [`community`] (a community and which
//! plugins it enabled, with their settings), [`plugin_instance`] (one enabled plugin of one
//! community, with the plugin's own state), [`process`] (one governance process), [`vote`]
//! (one vote of the built-in `vote` plugin), [`governance`] (one community's governance
//! engine), [`identity`] (one community's Metagov identities), [`plugin_settings`] (a plugin's
//! node-wide state) and [`api_tokens`] (the scoped API tokens). [`services`] holds one service per resource; [`Agora`] bundles them. A service
//! validates its inputs, asks actors through their typed clients, and returns domain values;
//! it never sees HTTP. Every command carries the [`Principal`] acting.

pub mod api_tokens;
pub mod audit;
pub mod community;
#[cfg(test)]
mod counting;
mod env;
mod error;
pub mod events;
pub mod governance;
pub mod health;
pub mod identity;
pub mod outbound;
pub mod plugin_instance;
pub mod plugin_settings;
mod principal;
pub mod process;
mod resolved;
pub mod services;
mod slug;
pub mod vote;

pub use community::{CommunityView, PluginView};
pub use env::{ActorsEnv, RefreshQueue};
pub use error::ActorError;
pub use principal::{AgentId, AgentIdError, Caller, Principal, AGENT_ID_MAX};
pub use process::ProcessView;
pub use resolved::ResolveCache;
pub use services::Agora;
pub use slug::{uuid_v4, validate_slug, SLUG_MAX};
