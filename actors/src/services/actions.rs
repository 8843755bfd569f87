//! Plugin actions as a resource: `<plugin>.<action>` for a community, from the driver or, for
//! actions a plugin marks public, from anyone.

use std::sync::Arc;

use agora_plugins::RemoteOp;
use serde_json::Value;

use super::plugins::check;
use super::{Core, Platform, Plugins, Result};
use crate::{plugin_instance, ActorError, Principal};

#[derive(Clone)]
pub struct Actions {
    core: Arc<Core>,
    plugins: Plugins,
    platform: Platform,
}

impl Actions {
    pub(crate) fn new(core: Arc<Core>, plugins: Plugins, platform: Platform) -> Self {
        Actions {
            core,
            plugins,
            platform,
        }
    }

    /// Runs `<plugin>.<action>` for the community: parameters checked against the action's
    /// schema, the platform called (if the plugin does), then the instance actor runs it.
    /// `public_only` refuses non-public actions (the unauthenticated route).
    pub async fn run(
        &self,
        slug: &str,
        name: &str,
        params: Value,
        public_only: bool,
        by: &Principal,
    ) -> Result<Value> {
        let unknown = || ActorError::UnknownAction(name.to_string());
        let (plugin, action) = name.split_once('.').ok_or_else(unknown)?;
        let p = self.core.registry().get(plugin).ok_or_else(unknown)?;
        let spec = p.meta().action(action).ok_or_else(unknown)?;
        if public_only && !spec.public {
            return Err(ActorError::ActionNotPublic(name.to_string()));
        }
        let params = check(
            self.core.registry().action_schema(plugin, spec.name),
            &params,
            "parameters",
        )?;
        let resolved = self.plugins.resolve(slug, plugin).await?;
        let op = RemoteOp::Action {
            action,
            params: &params,
        };
        let remote = self
            .platform
            .call_audited(by, slug, plugin, &resolved.config, op, name)
            .await?;
        let cmd = plugin_instance::Action {
            action: action.to_string(),
            params,
            config: resolved.config,
            driver_url: resolved.driver_url,
            remote,
            by: by.clone(),
        };
        self.core
            .instances
            .ask(&format!("{slug}/{plugin}"), cmd)
            .await?
    }
}
