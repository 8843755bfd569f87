//! Communities as a resource: create, read, replace (Metagov's PUT) and delete. A community's
//! plugin list is validated here, in full, before the community actor changes anything.

use std::sync::Arc;

use agora_plugins::ErrorCode;
use serde_json::Value;

use super::{AuditLog, Core, Plugins, Result};
use crate::community::{self, Community, CommunityView};
use crate::{uuid_v4, validate_slug, ActorError, Principal};

#[derive(Clone)]
pub struct Communities {
    core: Arc<Core>,
    plugins: Plugins,
    audit: AuditLog,
}

/// A PUT: a name or driver URL left out (`None`) keeps its value; the plugin list is the
/// whole truth, as in Metagov (left out, it is empty).
#[derive(Debug, Clone, Default)]
pub struct CommunityUpdate {
    pub readable_name: Option<String>,
    pub driver_url: Option<Option<String>>,
    /// `(plugin, config)`: every plugin that should be enabled.
    pub plugins: Vec<(String, Value)>,
}

impl Communities {
    pub(crate) fn new(core: Arc<Core>, plugins: Plugins, audit: AuditLog) -> Self {
        Communities {
            core,
            plugins,
            audit,
        }
    }

    /// Creates a community; without a slug it gets a random UUID, as in Metagov.
    pub async fn create(
        &self,
        slug: Option<String>,
        readable_name: String,
        driver_url: Option<String>,
        by: &Principal,
    ) -> Result<CommunityView> {
        let slug = slug.unwrap_or_else(uuid_v4);
        validate_slug(&slug)?;
        let cmd = community::Create {
            readable_name,
            driver_url,
            by: by.clone(),
        };
        self.core.communities.ask(&slug, cmd).await?
    }

    /// A page of the communities this node serves (every community on a single node), by
    /// slug: the first `limit` after `after`, and the slug to continue after, if more follow.
    pub fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<community::CommunitySummary>, Option<String>)> {
        let mut all: Vec<community::CommunitySummary> = self
            .core
            .rt
            .scan_states::<Community>(None)?
            .into_iter()
            .filter(|(slug, _)| after.is_none_or(|a| slug.as_str() > a))
            .filter_map(|(slug, bytes)| community::summary(&slug, &bytes))
            .collect();
        all.sort_by(|a, b| a.slug.cmp(&b.slug));
        let next = (all.len() > limit).then(|| all[limit - 1].slug.clone());
        all.truncate(limit);
        Ok((all, next))
    }

    pub async fn get(&self, slug: &str) -> Result<CommunityView> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        self.core.communities.ask(slug, community::Get).await?
    }

    /// Metagov's PUT: the plugin list is the whole truth; every config is validated first, so
    /// one bad entry changes nothing (and each plugin it names hears of the refusal in the
    /// audit log).
    pub async fn update(
        &self,
        slug: &str,
        update: CommunityUpdate,
        by: &Principal,
    ) -> Result<CommunityView> {
        let named: Vec<String> = update.plugins.iter().map(|(n, _)| n.clone()).collect();
        let result = self.update_checked(slug, update, by).await;
        if let Err(e @ ActorError::Invalid { .. }) = &result {
            for plugin in &named {
                self.audit
                    .refusal(by, Some(slug), plugin, "settings_change", e)
                    .await;
            }
        }
        result
    }

    async fn update_checked(
        &self,
        slug: &str,
        update: CommunityUpdate,
        by: &Principal,
    ) -> Result<CommunityView> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        for (i, (name, config)) in update.plugins.iter().enumerate() {
            if self.core.registry().get(name).is_none() {
                return Err(ActorError::refuse(
                    ErrorCode::UnknownPlugin,
                    format!("plugin '{name}' is not installed"),
                )
                .at(format!("plugins[{i}].name")));
            }
            let at = format!("plugins[{i}].config");
            self.plugins.effective_config(name, config, &at)?;
        }
        let mut new_ids = Vec::with_capacity(update.plugins.len());
        for _ in 0..update.plugins.len() {
            new_ids.push(self.plugins.new_instance_id(slug).await?);
        }
        let cmd = community::Update {
            readable_name: update.readable_name,
            driver_url: update.driver_url,
            plugins: update.plugins,
            new_ids,
            by: by.clone(),
        };
        let (view, removed) = self.core.communities.ask(slug, cmd).await??;
        for plugin in removed {
            self.plugins.purge_instance(slug, &plugin).await?;
        }
        Ok(view)
    }

    pub async fn delete(&self, slug: &str, by: &Principal) -> Result<()> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        let cmd = community::Delete { by: by.clone() };
        let removed = self.core.communities.ask(slug, cmd).await??;
        for plugin in removed {
            self.plugins.purge_instance(slug, &plugin).await?;
        }
        Ok(())
    }
}
