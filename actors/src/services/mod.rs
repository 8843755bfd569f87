//! The operations behind the API, one small service per resource: [`Communities`],
//! [`Plugins`] (enabling plugins and their settings, node-wide and per community),
//! [`Actions`], [`Processes`] (votes among them, dispatched in one place), [`Votes`] (ballots),
//! [`Governance`] (a community's governance engine), [`Webhooks`], [`AuditLog`], [`Health`]
//! and [`Tokens`] (scoped API tokens). Each validates its input before any actor sees
//! it, asks the actors that own the data through their typed clients, and returns domain
//! values; none knows HTTP. A new resource costs one file here, one routes file in the gateway
//! and its actor.

mod actions;
mod audit;
mod communities;
mod governance;
mod health;
mod identity;
mod platform;
mod plugins;
mod processes;
mod tokens;
mod votes;
mod webhooks;
mod widgets;

use std::sync::Arc;

use agora_plugins::PluginRegistry;
use agora_runtime::{Client, Runtime};

pub use actions::Actions;
pub use audit::{AuditLog, AuditPage};
pub use communities::Communities;
pub use communities::CommunityUpdate;
pub use governance::{ActionQuery, Governance, ItemQuery, Page};
pub use health::Health;
pub use identity::{Identity, LinkRequest, UserFilter, IDENTITY_TEXT_MAX, MAX_CREATE};
pub use platform::Platform;
pub use plugins::{CommunityPlugin, Plugins};
pub use processes::{ProcessKind, ProcessStart, Processes};
pub use tokens::{hash_secret, TokenRequest, Tokens, TOKEN_COMMUNITIES_MAX, TOKEN_LABEL_MAX};
pub use votes::{BallotCast, Votes};
pub use webhooks::Webhooks;
pub use widgets::Widgets;

use crate::api_tokens::ApiTokens;
use crate::community::Community;
use crate::governance::Governance as GovernanceActor;
use crate::health::HealthBoard;
use crate::identity::Identities;
use crate::outbound::{Outbound, OutboundPolicy};
use crate::plugin_instance::PluginInstance;
use crate::plugin_settings::PluginSettings;
use crate::process::Process;
use crate::vote::Vote;
use crate::{ActorError, ActorsEnv};

pub(crate) type Result<T> = std::result::Result<T, ActorError>;

/// What every service shares: the runtime with a typed client per actor kind, the actors'
/// environment, the guarded platform client and the health reports.
pub(crate) struct Core {
    pub rt: Runtime,
    pub env: ActorsEnv,
    /// Guarded HTTP clients for plugins that call platforms, one breaker per instance.
    pub outbound: Outbound,
    pub health: HealthBoard,
    pub communities: Client<Community>,
    pub instances: Client<PluginInstance>,
    pub processes: Client<Process>,
    pub votes: Client<Vote>,
    pub governance: Client<GovernanceActor>,
    pub identities: Client<Identities>,
    pub settings: Client<PluginSettings>,
    pub tokens: Client<ApiTokens>,
}

impl Core {
    pub fn registry(&self) -> &PluginRegistry {
        &self.env.registry
    }

    pub fn now_ms(&self) -> u64 {
        self.rt.clock().now_ms()
    }
}

/// Every service of the node. Cheap to clone.
#[derive(Clone)]
pub struct Agora {
    pub communities: Communities,
    pub plugins: Plugins,
    pub actions: Actions,
    pub processes: Processes,
    pub votes: Votes,
    pub governance: Governance,
    pub identity: Identity,
    pub webhooks: Webhooks,
    pub audit: AuditLog,
    pub health: Health,
    pub platform: Platform,
    pub tokens: Tokens,
    pub widgets: Widgets,
    core: Arc<Core>,
}

impl Agora {
    /// Registers the actor kinds with the runtime and builds the services; calls to
    /// platforms follow `outbound` (timeouts, retries, breakers).
    pub fn new(rt: Runtime, env: ActorsEnv, outbound: OutboundPolicy) -> Self {
        rt.register::<Community>(env.clone());
        rt.register::<PluginInstance>(env.clone());
        rt.register::<Process>(env.clone());
        rt.register::<Vote>(env.clone());
        rt.register::<PluginSettings>(env.clone());
        rt.register::<GovernanceActor>(env.clone());
        rt.register::<Identities>(env.clone());
        rt.register::<ApiTokens>(env.clone());
        let core = Arc::new(Core {
            communities: rt.client(),
            instances: rt.client(),
            processes: rt.client(),
            votes: rt.client(),
            governance: rt.client(),
            identities: rt.client(),
            settings: rt.client(),
            tokens: rt.client(),
            outbound: Outbound::new(outbound, rt.clock().clone()),
            health: HealthBoard::default(),
            rt,
            env,
        });
        let audit = AuditLog::new(core.clone());
        let platform = Platform::new(core.clone(), audit.clone());
        let plugins = Plugins::new(core.clone(), audit.clone());
        let votes = Votes::new(core.clone());
        let processes = Processes::new(
            core.clone(),
            plugins.clone(),
            platform.clone(),
            votes.clone(),
        );
        Agora {
            communities: Communities::new(core.clone(), plugins.clone(), audit.clone()),
            actions: Actions::new(core.clone(), plugins.clone(), platform.clone()),
            widgets: Widgets::new(core.clone(), plugins.clone(), processes.clone()),
            processes,
            webhooks: Webhooks::new(core.clone(), plugins.clone()),
            governance: Governance::new(core.clone(), Identity::new(core.clone())),
            identity: Identity::new(core.clone()),
            health: Health::new(
                core.clone(),
                plugins.clone(),
                platform.clone(),
                audit.clone(),
            ),
            tokens: Tokens::new(core.clone()),
            votes,
            plugins,
            platform,
            audit,
            core,
        }
    }

    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.core.env.registry
    }

    pub fn runtime(&self) -> &Runtime {
        &self.core.rt
    }

    /// Calls every loaded plugin's `on_unload`, once, at shutdown.
    pub fn unload_plugins(&self) {
        self.core.env.registry.unload();
    }
}
