//! The plugins' network halves, run outside the actors: before an action, a process start or
//! close, and for the refreshes processes ask for (whose observation comes back to the process
//! as a message). Calls go through the instance's guarded client; a failed call is audited,
//! since errors are part of a plugin's history.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_plugins::{ErrorCode, Remote, RemoteOp};
use agora_runtime::Stop;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::{AuditLog, Core, Result};
use crate::process::{self, ProcessView, RemoteInput};
use crate::{ActorError, Principal};

/// Refreshes run at most this many at a time; more wait their turn.
const REFRESH_CONCURRENCY: usize = 64;
/// A call that takes longer than this is abandoned (the client's own timeouts and retries
/// normally end it long before).
const REMOTE_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Platform {
    core: Arc<Core>,
    audit: AuditLog,
}

impl Platform {
    pub(crate) fn new(core: Arc<Core>, audit: AuditLog) -> Self {
        Platform { core, audit }
    }

    /// Runs `plugin`'s network half for `op`, if it has one for that operation.
    pub(crate) async fn call(
        &self,
        community: &str,
        plugin: &str,
        config: &Value,
        op: RemoteOp<'_>,
    ) -> Result<Option<Value>> {
        let Some(p) = self.core.registry().get(plugin).cloned() else {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        };
        let http = self
            .core
            .outbound
            .for_instance(&format!("{community}/{plugin}"));
        let call = Remote {
            community,
            config,
            http: &http,
            op,
        };
        let Some(fut) = p.remote(call) else {
            return Ok(None);
        };
        match tokio::time::timeout(REMOTE_DEADLINE, fut).await {
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ActorError::refuse(
                ErrorCode::PlatformUnavailable,
                format!(
                    "the platform call did not finish within {} s",
                    REMOTE_DEADLINE.as_secs()
                ),
            )),
        }
    }

    /// [`Self::call`], with a failure of the platform audited as `platform_call:<what>`.
    pub(crate) async fn call_audited(
        &self,
        by: &Principal,
        community: &str,
        plugin: &str,
        config: &Value,
        op: RemoteOp<'_>,
        what: &str,
    ) -> Result<Option<Value>> {
        let result = self.call(community, plugin, config, op).await;
        if let Err(e) = &result {
            let platform_failed = matches!(
                e.code(),
                ErrorCode::PlatformError
                    | ErrorCode::PlatformUnavailable
                    | ErrorCode::PlatformNotConfigured
                    | ErrorCode::PlatformRequestInvalid
                    | ErrorCode::CircuitOpen
            );
            if platform_failed {
                let action = format!("platform_call:{what}");
                self.audit
                    .refusal(by, Some(community), plugin, &action, e)
                    .await;
            }
        }
        result
    }

    /// Before a driver closes process `id`, which it names `name`: the plugin's network half
    /// for the close (e.g. close the platform's poll and read its result).
    pub(crate) async fn close_process(
        &self,
        by: &Principal,
        name: &str,
        id: u64,
    ) -> Result<Option<Value>> {
        // A plugin with nothing to do on the platform when closing: the close message itself
        // checks the name and status, so the process need not be read first.
        let plugin = name.split_once('.').map(|(plugin, _)| plugin);
        if let Some(p) = plugin.and_then(|plugin| self.core.registry().get(plugin)) {
            if !p.remote_on_close() {
                return Ok(None);
            }
        }
        let (view, input) = self.snapshot(id).await?;
        if view.name != name {
            return Err(ActorError::ProcessNotFound(format!("{name}/{id}")));
        }
        if view.status == "completed" {
            return Err(ActorError::ProcessCompleted(id));
        }
        let op = RemoteOp::CloseProcess {
            process: &input.process,
            state: &input.state,
        };
        self.call_audited(by, &view.community, &input.plugin, &input.config, op, name)
            .await
    }

    /// The process with what its plugin's network half needs.
    async fn snapshot(&self, id: u64) -> Result<(ProcessView, RemoteInput)> {
        let mut view = self
            .core
            .processes
            .ask(&id.to_string(), process::Snapshot)
            .await??;
        let input = view
            .remote_input
            .take()
            .ok_or_else(|| ActorError::internal("a process snapshot without its remote input"))?;
        Ok((view, *input))
    }

    /// Drains refresh requests from processes: reads the platform, then hands the observation
    /// to the process. Runs until the queue closes or `stop`; then waits for the refreshes in
    /// flight.
    pub async fn run_refreshes(self, mut queue: UnboundedReceiver<u64>, mut stop: Stop) {
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let permits = Arc::new(tokio::sync::Semaphore::new(REFRESH_CONCURRENCY));
        let mut running = JoinSet::new();
        loop {
            let id = tokio::select! {
                id = queue.recv() => id,
                _ = stop.stopped() => break,
            };
            let Some(id) = id else { break };
            // Finished refreshes leave the set as they go, so it stays small.
            while running.try_join_next().is_some() {}
            // One refresh per process at a time: a second request while one runs adds nothing.
            if !in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id)
            {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let this = self.clone();
            let in_flight = in_flight.clone();
            running.spawn(async move {
                if let Err(e) = this.refresh(id).await {
                    tracing::warn!(process = id, error = %e, "process refresh failed");
                }
                in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                drop(permit);
            });
        }
        while running.join_next().await.is_some() {}
    }

    async fn refresh(&self, id: u64) -> Result<()> {
        let (view, input) = self.snapshot(id).await?;
        if view.status == "completed" {
            return Ok(());
        }
        let op = RemoteOp::Refresh {
            process: &input.process,
            state: &input.state,
        };
        let observed = self
            .call(&view.community, &input.plugin, &input.config, op)
            .await?;
        if let Some(observation) = observed {
            let observe = process::Observe { observation };
            self.core.processes.ask(&id.to_string(), observe).await??;
        }
        Ok(())
    }
}
