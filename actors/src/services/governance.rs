//! Governance as a resource (`/api/v1/communities/{slug}/...`): founding and reading the
//! constitution, actions (decided, dry-run, read and listed), items with their versions and
//! notices, subscriptions and the hash-chained log. Every operation is one message to the
//! community's governance actor; acting ones first read the community (it must exist, and its
//! driver URL goes with the command), and allocate the vote process ids an action asks for.

use std::sync::Arc;

use agora_plugins::ErrorCode;
use serde_json::Value;

use super::{Core, Identity, Result};
use crate::governance::{self as gov, Reader, Submitted};
use crate::identity::Agent;
use crate::{validate_slug, ActorError, Principal};

/// Filters of `GET /actions`.
#[derive(Debug, Clone, Default)]
pub struct ActionQuery {
    pub status: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// Filters of `GET /items`.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    pub typ: Option<String>,
    pub within: Option<String>,
    pub include_inactive: bool,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// A page request (`cursor`, `limit`).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub cursor: Option<String>,
    pub limit: usize,
}

#[derive(Clone)]
pub struct Governance {
    core: Arc<Core>,
    identity: Identity,
}

/// The agent a command acts for; acting without one is 400 `missing_header`.
fn actor(by: &Principal) -> Result<String> {
    by.agent()
        .map(str::to_string)
        .ok_or_else(|| ActorError::Invalid {
            code: ErrorCode::MissingHeader,
            message: "acting on governance needs 'X-Agora-Actor: <agent id>'".into(),
            field: Some("X-Agora-Actor".into()),
        })
}

/// Who reads: the agent named, or the driver itself.
fn reader(by: &Principal) -> Reader {
    match by.agent() {
        Some(a) => Reader::Agent(a.to_string()),
        None => Reader::Driver,
    }
}

/// The most vote ids one action may ask for (its conditions are bounded far below this).
const MAX_VOTE_IDS: usize = 1024;

impl Governance {
    pub(crate) fn new(core: Arc<Core>, identity: Identity) -> Self {
        Governance { core, identity }
    }

    /// The agent acting, resolved through the community's identities (an identity id or a
    /// linked account names the identity's primary id).
    async fn actor(&self, slug: &str, by: &Principal) -> Result<Agent> {
        let agent = actor(by)?;
        self.identity.resolve(slug, &agent).await
    }

    /// Who reads, resolved as [`Governance::actor`] resolves an agent.
    async fn reader(&self, slug: &str, by: &Principal) -> Result<Reader> {
        Ok(match reader(by) {
            Reader::Agent(a) => Reader::Agent(self.identity.resolve(slug, &a).await?.id),
            Reader::Driver => Reader::Driver,
        })
    }

    fn slug(slug: &str) -> Result<()> {
        validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.to_string()))
    }

    /// The community's driver URL; 404 when there is no such community.
    async fn driver_url(&self, slug: &str) -> Result<Option<String>> {
        Self::slug(slug)?;
        let c = self
            .core
            .communities
            .ask(slug, crate::community::Get)
            .await??;
        Ok(c.driver_url)
    }

    /// `POST /governance`.
    pub async fn found(&self, slug: &str, by: &Principal, body: Value) -> Result<Value> {
        actor(by)?;
        let driver_url = self.driver_url(slug).await?;
        let actor = self.actor(slug, by).await?;
        let cmd = gov::Found {
            actor: actor.id,
            body,
            driver_url,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /governance`.
    pub async fn constitution(&self, slug: &str) -> Result<Value> {
        Self::slug(slug)?;
        self.core.governance.ask(slug, gov::GetConstitution).await?
    }

    /// `POST /actions`: the action as recorded.
    pub async fn act(&self, slug: &str, by: &Principal, body: Value) -> Result<Value> {
        actor(by)?;
        let driver_url = self.driver_url(slug).await?;
        let actor = self.actor(slug, by).await?;
        let partition = agora_runtime::partition_of(slug);
        let mut vote_ids = Vec::new();
        loop {
            let cmd = gov::Submit {
                actor: actor.id.clone(),
                platforms: actor.platforms.clone(),
                body: body.clone(),
                driver_url: driver_url.clone(),
                vote_ids: vote_ids.clone(),
                prefetched: gov::prefetch(&self.core.rt, slug, &body),
            };
            match self.core.governance.ask(slug, cmd).await?? {
                Submitted::Done(record) => return Ok(record.to_json()),
                Submitted::NeedVoteIds(n) if n <= MAX_VOTE_IDS && n > vote_ids.len() => {
                    while vote_ids.len() < n {
                        vote_ids.push(self.core.rt.next_id_in("process", partition).await?);
                    }
                }
                Submitted::NeedVoteIds(n) => {
                    return Err(ActorError::Invalid {
                        code: ErrorCode::TooManyVotes,
                        message: format!("the action would open {n} votes"),
                        field: None,
                    })
                }
            }
        }
    }

    /// `POST /actions?dry_run=true`.
    pub async fn dry_run(&self, slug: &str, by: &Principal, body: Value) -> Result<Value> {
        actor(by)?;
        Self::slug(slug)?;
        let actor = self.actor(slug, by).await?;
        let cmd = gov::DryRun {
            actor: actor.id,
            platforms: actor.platforms,
            prefetched: gov::prefetch(&self.core.rt, slug, &body),
            body,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /actions/{id}`.
    pub async fn action(&self, slug: &str, by: &Principal, id: String) -> Result<Value> {
        Self::slug(slug)?;
        let cmd = gov::GetAction {
            reader: self.reader(slug, by).await?,
            id,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /actions`.
    pub async fn actions(&self, slug: &str, by: &Principal, q: ActionQuery) -> Result<Value> {
        Self::slug(slug)?;
        let cmd = gov::ListActions {
            reader: self.reader(slug, by).await?,
            status: q.status,
            actor: q.actor,
            target: q.target,
            cursor: q.cursor,
            limit: q.limit,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /items/{id}[?version=n]`.
    pub async fn item(
        &self,
        slug: &str,
        by: &Principal,
        id: String,
        version: Option<u32>,
    ) -> Result<Value> {
        Self::slug(slug)?;
        let cmd = gov::GetItem {
            reader: self.reader(slug, by).await?,
            id,
            version,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /items`.
    pub async fn items(&self, slug: &str, by: &Principal, q: ItemQuery) -> Result<gov::ItemsPage> {
        Self::slug(slug)?;
        let cmd = gov::ListItems {
            reader: self.reader(slug, by).await?,
            typ: q.typ,
            within: q.within,
            include_inactive: q.include_inactive,
            cursor: q.cursor,
            limit: q.limit,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /items/{id}/versions`.
    pub async fn versions(&self, slug: &str, by: &Principal, id: String, p: Page) -> Result<Value> {
        Self::slug(slug)?;
        let cmd = gov::ItemVersions {
            reader: self.reader(slug, by).await?,
            id,
            cursor: p.cursor,
            limit: p.limit,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /items/{id}/notices`.
    pub async fn notices(&self, slug: &str, by: &Principal, id: String, p: Page) -> Result<Value> {
        Self::slug(slug)?;
        let cmd = gov::ItemNotices {
            reader: self.reader(slug, by).await?,
            id,
            cursor: p.cursor,
            limit: p.limit,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `POST /subscriptions` (its `deliver_to` already checked by the caller).
    pub async fn subscribe(&self, slug: &str, by: &Principal, body: Value) -> Result<Value> {
        actor(by)?;
        Self::slug(slug)?;
        let actor = self.actor(slug, by).await?;
        let cmd = gov::Subscribe {
            actor: actor.id,
            body,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /subscriptions`: the agent's own.
    pub async fn subscriptions(&self, slug: &str, by: &Principal) -> Result<Value> {
        actor(by)?;
        Self::slug(slug)?;
        let actor = self.actor(slug, by).await?;
        let cmd = gov::Subscriptions { actor: actor.id };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `DELETE /subscriptions/{item}`.
    pub async fn unsubscribe(&self, slug: &str, by: &Principal, item: String) -> Result<()> {
        actor(by)?;
        Self::slug(slug)?;
        let actor = self.actor(slug, by).await?;
        let cmd = gov::Unsubscribe {
            actor: actor.id,
            item,
        };
        self.core.governance.ask(slug, cmd).await?
    }

    /// `GET /governance/log`.
    pub async fn log(&self, slug: &str, by: &Principal, p: Page) -> Result<Value> {
        Self::slug(slug)?;
        let cmd = gov::Log {
            reader: self.reader(slug, by).await?,
            cursor: p.cursor,
            limit: p.limit,
        };
        self.core.governance.ask(slug, cmd).await?
    }
}
