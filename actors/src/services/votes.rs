//! Votes: the built-in `vote` plugin's processes (`vote.<method>`). Starting, reading and
//! closing one is reached through [`super::Processes`]; casting and listing ballots is this
//! resource's own. A vote's parameters are parsed once, here, and the parsed settings travel
//! to the vote actor.

use std::sync::Arc;

use agora_plugins::vote::{VoteSpec, METHODS};
use serde_json::Value;

use super::processes::{locate, ProcessKind, ProcessStart};
use super::{Core, Result};
use crate::vote;
use crate::{validate_slug, ActorError, Principal, ProcessView};

/// Inputs of `POST <process Location>/ballots`.
#[derive(Debug, Clone)]
pub struct BallotCast {
    /// `vote.<method>`
    pub name: String,
    pub id: String,
    pub voter: String,
    pub choice: Value,
}

#[derive(Clone)]
pub struct Votes {
    core: Arc<Core>,
}

impl Votes {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Votes { core }
    }

    /// Starts `vote.<method>`: every parameter is checked before an id is spent.
    pub(crate) async fn start(
        &self,
        method: &str,
        start: &ProcessStart,
        by: &Principal,
    ) -> Result<u64> {
        if self.core.registry().get("vote").is_none() || !METHODS.contains(&method) {
            return Err(ActorError::UnknownProcessType(start.name.clone()));
        }
        let (spec, counter) = VoteSpec::parse(method, &start.params)
            .map_err(|e| ActorError::schema(e.field, e.message))?;
        let closing_at_ms = parse_deadline(&spec.closing_at, self.core.now_ms())?;
        validate_slug(&start.community)
            .map_err(|_| ActorError::CommunityNotFound(start.community.clone()))?;
        let community = self
            .core
            .communities
            .ask(&start.community, crate::community::Get)
            .await??;
        let id = self
            .core
            .rt
            .next_id_in("process", agora_runtime::partition_of(&start.community))
            .await?;
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
        let cmd = vote::Open {
            id,
            community: start.community.clone(),
            method: method.to_string(),
            params: start.params.clone(),
            spec,
            counter,
            closing_at_ms,
            callback_url: start.callback_url.clone(),
            driver_url: community.driver_url,
            salt: hex::encode(salt),
            by: by.clone(),
            condition: None,
        };
        self.core.votes.ask_new(&id.to_string(), cmd).await??;
        Ok(id)
    }

    pub(crate) async fn get(&self, method: &str, id: u64) -> Result<ProcessView> {
        let cmd = vote::Get {
            method: method.to_string(),
        };
        self.core.votes.ask(&id.to_string(), cmd).await?
    }

    pub(crate) async fn close(&self, method: &str, id: u64, by: &Principal) -> Result<ProcessView> {
        let cmd = vote::Close {
            method: method.to_string(),
            by: by.clone(),
        };
        self.core.votes.ask(&id.to_string(), cmd).await?
    }

    /// Casts a ballot; answers the ballot receipt. Arrival time is taken here, before any
    /// queueing, and decides against the deadline.
    pub async fn cast(&self, cast: BallotCast, by: &Principal) -> Result<Value> {
        let arrived_ms = self.core.now_ms();
        let (method, id) = vote_at(&cast.name, &cast.id)?;
        let cmd = |phase| vote::Cast {
            method: method.to_string(),
            voter: cast.voter.clone(),
            choice: cast.choice.clone(),
            arrived_ms,
            by: by.clone(),
            phase,
        };
        match self.core.votes.ask(&id.to_string(), cmd(None)).await?? {
            vote::CastReply::Receipt(r) => Ok(r),
            vote::CastReply::NeedsPhase { community, item } => {
                // The phase at arrival decides, as the deadline does.
                let ask = crate::governance::PhaseAllows {
                    item,
                    at_ms: i64::try_from(arrived_ms).unwrap_or(i64::MAX),
                };
                let phase = self.core.governance.ask(&community, ask).await?;
                match self
                    .core
                    .votes
                    .ask(&id.to_string(), cmd(Some(phase)))
                    .await??
                {
                    vote::CastReply::Receipt(r) => Ok(r),
                    vote::CastReply::NeedsPhase { .. } => Err(ActorError::internal(
                        "the vote asked for its phase twice".to_string(),
                    )),
                }
            }
        }
    }

    /// The canonical ballot list of a vote, with its commitment.
    pub async fn ballots(&self, name: &str, id: &str) -> Result<Value> {
        let (method, id) = vote_at(name, id)?;
        let cmd = vote::Ballots {
            method: method.to_string(),
        };
        self.core.votes.ask(&id.to_string(), cmd).await?
    }
}

/// The method and id of the vote at `<name>/<id>`; a process of another kind has no ballots.
fn vote_at<'a>(name: &'a str, id: &str) -> Result<(&'a str, u64)> {
    match locate(name, id)? {
        (ProcessKind::Vote { method }, n) => Ok((method, n)),
        _ => Err(ActorError::ProcessNotFound(format!("{name}/{id}"))),
    }
}

/// `closing_at` as epoch milliseconds; it must be an RFC 3339 instant in the future.
fn parse_deadline(text: &str, now_ms: u64) -> Result<u64> {
    let bad = |m: &str| ActorError::schema("closing_at".into(), m.to_string());
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| bad(&format!("'closing_at' is not an RFC 3339 date-time: {e}")))?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    if ms <= i128::from(now_ms) {
        return Err(bad("'closing_at' must be in the future"));
    }
    u64::try_from(ms).map_err(|_| bad("'closing_at' is out of range"))
}
