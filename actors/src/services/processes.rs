//! Governance processes as a resource: start (`<plugin>.<process>`), read and close. A vote
//! is a process kind like any plugin's: [`ProcessKind::of`] is the one place that tells them
//! apart, and every operation dispatches on it.

use std::sync::Arc;

use agora_plugins::RemoteOp;
use serde_json::Value;

use super::plugins::check;
use super::{Core, Platform, Plugins, Result, Votes};
use crate::process::{self, Process, ProcessSummary, ProcessView};
use crate::vote::{self, Vote};
use crate::{ActorError, Principal};

/// The plugin whose processes are votes, run by the vote actor rather than by plugin code.
const VOTE_PLUGIN: &str = "vote";

/// What a process name `<plugin>.<process>` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind<'a> {
    /// `vote.<method>`: one of the built-in vote plugin's methods.
    Vote { method: &'a str },
    /// A process of a plugin (known or not: starting one checks).
    Plugin { plugin: &'a str, process: &'a str },
}

impl<'a> ProcessKind<'a> {
    /// `None`: not of the form `<plugin>.<process>`.
    pub fn of(name: &'a str) -> Option<Self> {
        let (plugin, process) = name.split_once('.')?;
        Some(if plugin == VOTE_PLUGIN {
            ProcessKind::Vote { method: process }
        } else {
            ProcessKind::Plugin { plugin, process }
        })
    }
}

/// Inputs of `POST /api/internal/process/<plugin>.<process>`.
#[derive(Debug, Clone)]
pub struct ProcessStart {
    pub community: String,
    /// `<plugin>.<process>`
    pub name: String,
    /// The process inputs (without `callback_url`).
    pub params: Value,
    pub callback_url: Option<String>,
}

#[derive(Clone)]
pub struct Processes {
    core: Arc<Core>,
    plugins: Plugins,
    platform: Platform,
    votes: Votes,
}

impl Processes {
    pub(crate) fn new(core: Arc<Core>, plugins: Plugins, platform: Platform, votes: Votes) -> Self {
        Processes {
            core,
            plugins,
            platform,
            votes,
        }
    }

    /// Starts a process; answers its id (the Location is built from it).
    pub async fn start(&self, start: ProcessStart, by: &Principal) -> Result<u64> {
        let unknown = || ActorError::UnknownProcessType(start.name.clone());
        match ProcessKind::of(&start.name).ok_or_else(unknown)? {
            ProcessKind::Vote { method } => self.votes.start(method, &start, by).await,
            ProcessKind::Plugin { plugin, process } => {
                self.start_plugin_process(plugin, process, &start, by).await
            }
        }
    }

    async fn start_plugin_process(
        &self,
        plugin: &str,
        process: &str,
        start: &ProcessStart,
        by: &Principal,
    ) -> Result<u64> {
        let unknown = || ActorError::UnknownProcessType(start.name.clone());
        let p = self.core.registry().get(plugin).ok_or_else(unknown)?;
        let spec = p.meta().process(process).ok_or_else(unknown)?;
        let params = check(
            self.core.registry().process_schema(plugin, spec.name),
            &start.params,
            "",
        )?;
        let resolved = self.plugins.resolve(&start.community, plugin).await?;
        let op = RemoteOp::StartProcess {
            process,
            params: &params,
        };
        let remote = self
            .platform
            .call_audited(
                by,
                &start.community,
                plugin,
                &resolved.config,
                op,
                &start.name,
            )
            .await?;
        let id = self
            .core
            .rt
            .next_id_in("process", agora_runtime::partition_of(&start.community))
            .await?;
        let cmd = process::Start {
            id,
            community: start.community.clone(),
            plugin: plugin.to_string(),
            process: process.to_string(),
            params,
            config: resolved.config,
            callback_url: start.callback_url.clone(),
            driver_url: resolved.driver_url,
            remote,
            by: by.clone(),
        };
        self.core.processes.ask_new(&id.to_string(), cmd).await??;
        Ok(id)
    }

    /// Every process of community `slug` (votes too), newest first; `open_only`: only those
    /// still pending. Read where the community lives (its processes share its partition).
    pub async fn list(&self, slug: &str, open_only: bool) -> Result<Vec<ProcessSummary>> {
        // 404 for a community that does not exist, rather than an empty list.
        crate::validate_slug(slug).map_err(|_| ActorError::CommunityNotFound(slug.into()))?;
        self.core
            .communities
            .ask(slug, crate::community::Get)
            .await??;
        let p = agora_runtime::partition_of(slug);
        let rt = &self.core.rt;
        let mut all: Vec<ProcessSummary> = rt
            .scan_states::<Process>(Some(p))?
            .iter()
            .filter_map(|(_, b)| process::summary(b))
            .chain(
                rt.scan_states::<Vote>(Some(p))?
                    .iter()
                    .filter_map(|(_, b)| vote::summary(b)),
            )
            .filter(|s| s.community == slug && (!open_only || s.status == "pending"))
            .collect();
        all.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    /// The process at `<name>/<id>` (its Location).
    pub async fn get(&self, name: &str, id: &str) -> Result<ProcessView> {
        let (kind, n) = locate(name, id)?;
        match kind {
            ProcessKind::Vote { method } => self.votes.get(method, n).await,
            ProcessKind::Plugin { .. } => {
                let cmd = process::Get {
                    name: name.to_string(),
                };
                self.ask(name, n, cmd).await
            }
        }
    }

    /// Closes the process at `<name>/<id>`: the platform first (if its plugin has a network
    /// half for closing), then the process, which ends `completed`.
    pub async fn close(&self, name: &str, id: &str, by: &Principal) -> Result<ProcessView> {
        let (kind, n) = locate(name, id)?;
        match kind {
            ProcessKind::Vote { method } => self.votes.close(method, n, by).await,
            ProcessKind::Plugin { .. } => {
                let remote = self.platform.close_process(by, name, n).await?;
                let cmd = process::Close {
                    name: name.to_string(),
                    remote,
                    by: by.clone(),
                };
                self.ask(name, n, cmd).await
            }
        }
    }

    /// Asks process `n`; its "not found" names the process as the caller did.
    async fn ask<M>(&self, name: &str, n: u64, msg: M) -> Result<ProcessView>
    where
        M: agora_runtime::Message<process::Process, Reply = process::Reply>,
    {
        match self.core.processes.ask(&n.to_string(), msg).await? {
            Err(ActorError::ProcessNotFound(_)) => {
                Err(ActorError::ProcessNotFound(format!("{name}/{n}")))
            }
            r => r,
        }
    }
}

/// The kind and numeric id of the process at `<name>/<id>`; anything else is not found.
pub(crate) fn locate<'a>(name: &'a str, id: &str) -> Result<(ProcessKind<'a>, u64)> {
    let not_found = || ActorError::ProcessNotFound(format!("{name}/{id}"));
    let kind = ProcessKind::of(name).ok_or_else(not_found)?;
    let n = id.parse().map_err(|_| not_found())?;
    Ok((kind, n))
}
