//! Metagov's identity directory as a resource (`/api/internal/identity/...`): identities and
//! the platform accounts linked to them, one directory per community (the identities actor).
//! Ids are allocated here, in the community's partition, so an id alone finds its community;
//! everything Metagov answers with a 500 is a 4xx here.

use std::sync::Arc;

use agora_plugins::ErrorCode;
use serde_json::Value;

use super::{Core, Result};
use crate::identity::{self as id, Account, LINK_TYPES, QUALITIES};
use crate::{validate_slug, ActorError};

/// The most ids one `create_id` may ask for.
pub const MAX_CREATE: u64 = 1000;

/// `link_account`'s inputs.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub community: String,
    pub external_id: u64,
    pub platform_type: String,
    pub platform_identifier: String,
    pub community_platform_id: Option<String>,
    pub custom_data: Value,
    pub link_type: Option<String>,
    pub link_quality: Option<String>,
}

/// `get_users`' filters.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub platform_type: Option<String>,
    pub community_platform_id: Option<String>,
    pub link_type: Option<String>,
    pub link_quality: Option<String>,
    pub platform_identifier: Option<String>,
}

#[derive(Clone)]
pub struct Identity {
    core: Arc<Core>,
}

fn bad(field: &str, message: impl Into<String>) -> ActorError {
    ActorError::Invalid {
        code: ErrorCode::InvalidRequest,
        message: message.into(),
        field: Some(field.into()),
    }
}

/// The longest `platform_type`, `platform_identifier` or `community_platform_id`, in bytes.
pub const IDENTITY_TEXT_MAX: usize = 200;

fn text(field: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > IDENTITY_TEXT_MAX {
        return Err(bad(
            field,
            format!("'{field}' is 1 to {IDENTITY_TEXT_MAX} bytes"),
        ));
    }
    Ok(())
}

impl Identity {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Identity { core }
    }

    /// The community, which must exist; answers its enabled plugins' names.
    async fn community(&self, slug: &str) -> Result<Vec<String>> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))?;
        let c = self
            .core
            .communities
            .ask(slug, crate::community::Get)
            .await??;
        Ok(c.plugins.into_iter().map(|p| p.name).collect())
    }

    /// The community an identity id belongs to (its index entry, in the id's partition).
    fn community_of(&self, external_id: u64) -> Result<String> {
        let p = agora_runtime::partition_of_id(external_id);
        let slug = self
            .core
            .rt
            .read_index(p, &id::index_key(external_id))?
            .and_then(|b| String::from_utf8(b).ok());
        slug.ok_or_else(|| ActorError::Invalid {
            code: ErrorCode::IdentityNotFound,
            message: format!("no identity {external_id}"),
            field: Some("external_id".into()),
        })
    }

    /// `create_id`: `count` fresh identities.
    pub async fn create(&self, community: &str, count: u64) -> Result<Vec<u64>> {
        if !(1..=MAX_CREATE).contains(&count) {
            return Err(bad("count", format!("'count' is 1 to {MAX_CREATE}")));
        }
        self.community(community).await?;
        let p = agora_runtime::partition_of(community);
        let mut ids = Vec::new();
        for _ in 0..count {
            ids.push(self.core.rt.next_id_in("identity", p).await?);
        }
        self.core
            .identities
            .ask(community, id::CreateIds { ids })
            .await?
    }

    /// `link_account`: `platform_type` must name a plugin enabled for the community.
    pub async fn link(&self, r: LinkRequest) -> Result<Value> {
        text("platform_type", &r.platform_type)?;
        text("platform_identifier", &r.platform_identifier)?;
        if let Some(c) = &r.community_platform_id {
            text("community_platform_id", c)?;
        }
        let link_type = r.link_type.unwrap_or_else(|| "unknown".into());
        if !LINK_TYPES.contains(&link_type.as_str()) {
            return Err(bad(
                "link_type",
                format!("'link_type' is one of {LINK_TYPES:?}"),
            ));
        }
        let link_quality = r.link_quality.unwrap_or_else(|| "unknown".into());
        if !QUALITIES.contains(&link_quality.as_str()) {
            return Err(bad(
                "link_quality",
                format!("'link_quality' is one of {QUALITIES:?}"),
            ));
        }
        let plugins = self.community(&r.community).await?;
        if !plugins.contains(&r.platform_type) {
            return Err(ActorError::PluginNotEnabled {
                plugin: r.platform_type,
                community: r.community,
            });
        }
        let account = Account {
            external_id: r.external_id,
            platform_type: r.platform_type,
            platform_identifier: r.platform_identifier,
            community_platform_id: r.community_platform_id,
            custom_data: r.custom_data.to_string(),
            link_type,
            link_quality,
        };
        self.core
            .identities
            .ask(&r.community, id::Link { account })
            .await?
    }

    /// `unlink_account`.
    pub async fn unlink(
        &self,
        community: &str,
        platform_type: String,
        platform_identifier: String,
        community_platform_id: Option<String>,
    ) -> Result<Value> {
        self.community(community).await?;
        let cmd = id::Unlink {
            platform_type,
            platform_identifier,
            community_platform_id,
        };
        self.core.identities.ask(community, cmd).await?
    }

    /// `get_user`.
    pub async fn user(&self, external_id: u64) -> Result<Value> {
        let slug = self.community_of(external_id)?;
        self.core
            .identities
            .ask(&slug, id::GetUser { external_id })
            .await?
    }

    /// `get_users`.
    pub async fn users(&self, community: &str, f: UserFilter) -> Result<Value> {
        self.community(community).await?;
        let cmd = id::GetUsers {
            platform_type: f.platform_type,
            community_platform_id: f.community_platform_id,
            link_type: f.link_type,
            link_quality: f.link_quality,
            platform_identifier: f.platform_identifier,
        };
        self.core.identities.ask(community, cmd).await?
    }

    /// `filter_users_by_account`.
    pub async fn filter(&self, community: &str, external_ids: Vec<u64>) -> Result<Value> {
        self.community(community).await?;
        self.core
            .identities
            .ask(community, id::FilterUsers { external_ids })
            .await?
    }

    /// `get_linked_account`.
    pub async fn linked_account(
        &self,
        external_id: u64,
        platform_type: String,
        community_platform_id: Option<String>,
    ) -> Result<Value> {
        let slug = self.community_of(external_id)?;
        let cmd = id::GetLinkedAccount {
            external_id,
            platform_type,
            community_platform_id,
        };
        self.core.identities.ask(&slug, cmd).await?
    }

    /// `merge_ids`: both identities of one community.
    pub async fn merge_ids(&self, primary: u64, secondary: u64) -> Result<Value> {
        let a = self.community_of(primary)?;
        let b = self.community_of(secondary)?;
        if a != b {
            return Err(bad(
                "secondary_instance_id",
                "identities of two communities cannot merge",
            ));
        }
        self.core
            .identities
            .ask(&a, id::Merge { primary, secondary })
            .await?
    }

    /// The agent `agent` names in `community` (see [`id::Resolve`]); most agent ids are
    /// neither identity ids nor accounts, and cost no message.
    pub async fn resolve(&self, community: &str, agent: &str) -> Result<id::Agent> {
        if agent.parse::<u64>().is_err() && !agent.contains(':') {
            return Ok(id::Agent {
                id: agent.to_string(),
                platforms: Vec::new(),
            });
        }
        let cmd = id::Resolve {
            agent: agent.to_string(),
        };
        Ok(self.core.identities.ask(community, cmd).await?)
    }
}
