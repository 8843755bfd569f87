//! The service's platform side: running a plugin's network half (actions, process starts,
//! closes and refreshes) through the instance's guarded client, probing instance health in the
//! background, and routing platform-wide webhooks to the communities that follow the platform
//! object they are about.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_plugins::{PluginError, Remote, RemoteOp, WebhookRequest};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::audit::AuditEntry;
use crate::community::{self, route_prefix};
use crate::health::{HealthReport, HealthStatus, ProbeResult};
use crate::process::{self, Process};
use crate::service::{unexpected, Result};
use crate::{ActorError, Agora};

/// Refreshes run at most this many at a time; more wait their turn.
const REFRESH_CONCURRENCY: usize = 64;
/// A probe or refresh that takes longer than this is abandoned (the client's own timeouts and
/// retries normally end it long before).
const REMOTE_DEADLINE: Duration = Duration::from_secs(60);

fn platform_error(e: PluginError) -> ActorError {
    ActorError::from(e)
}

impl Agora {
    /// Runs `plugin`'s network half for `op`, if it has one for that operation.
    pub(crate) async fn call_platform(
        &self,
        community: &str,
        plugin: &str,
        config: &Value,
        op: RemoteOp<'_>,
    ) -> Result<Option<Value>> {
        let Some(p) = self.env.registry.get(plugin).cloned() else {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        };
        let http = self.outbound.for_instance(&format!("{community}/{plugin}"));
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
            Ok(Err(e)) => Err(platform_error(e)),
            Err(_) => Err(platform_error(PluginError {
                code: "platform_unavailable",
                message: format!(
                    "the platform call did not finish within {} s",
                    REMOTE_DEADLINE.as_secs()
                ),
                field: None,
            })),
        }
    }

    /// Records a failed platform call in the audit log (errors are part of a plugin's
    /// history) and hands the error back.
    pub(crate) async fn platform_failure(
        &self,
        community: &str,
        plugin: &str,
        what: &str,
        e: ActorError,
    ) -> ActorError {
        if e.code().starts_with("platform_") || e.code() == "circuit_open" {
            let action = format!("platform_call:{what}");
            self.audit_refusal(Some(community), plugin, &action, &e)
                .await;
        }
        e
    }

    /// [`Self::call_platform`], with failures audited.
    pub(crate) async fn call_platform_audited(
        &self,
        community: &str,
        plugin: &str,
        config: &Value,
        op: RemoteOp<'_>,
        what: &str,
    ) -> Result<Option<Value>> {
        match self.call_platform(community, plugin, config, op).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.platform_failure(community, plugin, what, e).await),
        }
    }

    /// Before a driver closes process `id`: the plugin's network half for the close (e.g.
    /// close the platform's poll and read its result).
    pub(crate) async fn close_on_platform(&self, name: &str, id: u64) -> Result<Option<Value>> {
        let view = self
            .rt
            .ask::<Process>(&id.to_string(), process::Command::Snapshot)
            .await??;
        if view.name != name {
            return Err(ActorError::ProcessNotFound(format!("{name}/{id}")));
        }
        if view.status == "completed" {
            return Err(ActorError::ProcessCompleted(id));
        }
        let input = view.remote_input.ok_or_else(unexpected)?;
        let op = RemoteOp::CloseProcess {
            process: &input.process,
            state: &input.state,
        };
        self.call_platform_audited(&view.community, &input.plugin, &input.config, op, name)
            .await
    }

    /// Drains refresh requests from processes: reads the platform, then hands the observation
    /// to the process. Runs until the queue closes.
    pub async fn run_refreshes(self, mut queue: UnboundedReceiver<u64>) {
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let permits = Arc::new(tokio::sync::Semaphore::new(REFRESH_CONCURRENCY));
        while let Some(id) = queue.recv().await {
            // One refresh per process at a time: a second request while one runs adds nothing.
            if !in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id)
            {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let this = self.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
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
    }

    async fn refresh(&self, id: u64) -> Result<()> {
        let key = id.to_string();
        let view = self
            .rt
            .ask::<Process>(&key, process::Command::Snapshot)
            .await??;
        if view.status == "completed" {
            return Ok(());
        }
        let input = view.remote_input.ok_or_else(unexpected)?;
        let op = RemoteOp::Refresh {
            process: &input.process,
            state: &input.state,
        };
        let observed = self
            .call_platform(&view.community, &input.plugin, &input.config, op)
            .await?;
        if let Some(observation) = observed {
            self.rt
                .ask::<Process>(&key, process::Command::Observe { observation })
                .await??;
        }
        Ok(())
    }

    /// Probes one instance now and stores the report; a change of status is audited.
    pub async fn probe(&self, slug: &str, plugin: &str) -> Result<HealthReport> {
        let resolved = self.resolve(slug, plugin).await?;
        let started = Instant::now();
        let probe = match self
            .call_platform(slug, plugin, &resolved.config, RemoteOp::Probe)
            .await
        {
            Ok(None) => ProbeResult::NotApplicable,
            Ok(Some(_)) => ProbeResult::Passed {
                latency_ms: started.elapsed().as_millis() as u64,
            },
            Err(e) => ProbeResult::Failed {
                code: e.code().to_string(),
                message: e.to_string(),
            },
        };
        let breaker = self.outbound.breaker_view(&format!("{slug}/{plugin}"));
        let report = HealthReport::assess(slug, plugin, probe, breaker, self.rt.clock().now_ms());
        let before = self.health.put(report.clone());
        if before != Some(report.status) && (before.is_some() || report.status != HealthStatus::Ok)
        {
            self.audit_health(&report, before).await;
        }
        Ok(report)
    }

    async fn audit_health(&self, report: &HealthReport, before: Option<HealthStatus>) {
        let entry = AuditEntry {
            at_ms: report.checked_ms,
            who: "health".into(),
            community: Some(report.community.clone()),
            plugin: report.plugin.clone(),
            action: "health".into(),
            outcome: if report.status == HealthStatus::Ok {
                "success".into()
            } else {
                "error".into()
            },
            message: format!(
                "{} -> {}: {}",
                before.map(HealthStatus::as_str).unwrap_or("unknown"),
                report.status.as_str(),
                report.reason
            ),
            before: None,
            after: None,
        };
        if let Some(bytes) = entry.encode() {
            if let Err(e) = self.rt.append_journal(bytes).await {
                tracing::warn!(error = %e, "could not record a health change in the audit log");
            }
        }
    }

    /// The health of `plugin` for one community: the latest report, with the breaker as it is
    /// now; probed first when none was taken yet.
    pub async fn community_plugin_health(&self, slug: &str, plugin: &str) -> Result<HealthReport> {
        if self.env.registry.get(plugin).is_none() {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        }
        match self.health.get(slug, plugin) {
            Some(mut report) => {
                // The breaker moves between probes (calls fail, cooldowns end); show it live.
                let breaker = self.outbound.breaker_view(&format!("{slug}/{plugin}"));
                if breaker != report.breaker {
                    report = HealthReport::assess(
                        slug,
                        plugin,
                        report.probe,
                        breaker,
                        report.checked_ms,
                    );
                }
                Ok(report)
            }
            None => self.probe(slug, plugin).await,
        }
    }

    /// Every community that enabled `plugin`, as the instance index lists them.
    pub fn communities_with(&self, plugin: &str) -> Result<Vec<String>> {
        let mut slugs: Vec<String> = self
            .rt
            .scan_index(None, community::INSTANCE_INDEX)?
            .into_iter()
            .filter_map(|(_, v)| {
                let text = String::from_utf8(v).ok()?;
                let (slug, p) = text.split_once('\0')?;
                (p == plugin).then(|| slug.to_string())
            })
            .collect();
        slugs.sort();
        slugs.dedup();
        Ok(slugs)
    }

    /// The health of every instance of `plugin` on this node.
    pub async fn plugin_health(&self, plugin: &str) -> Result<Vec<HealthReport>> {
        let mut out = Vec::new();
        for slug in self.communities_with(plugin)? {
            match self.community_plugin_health(&slug, plugin).await {
                Ok(r) => out.push(r),
                // Disabled on the node, or removed meanwhile: no instance runs to be healthy.
                Err(e) => tracing::debug!(community = %slug, plugin, error = %e, "no health"),
            }
        }
        Ok(out)
    }

    /// Probes every enabled instance every `interval`, until the task is dropped.
    pub async fn run_health(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let names: Vec<String> = self
                .env
                .registry
                .all()
                .map(|p| p.meta().name.to_string())
                .collect();
            for plugin in names {
                if !self.env.globals.get(&plugin).enabled {
                    continue;
                }
                let slugs = match self.communities_with(&plugin) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "health: cannot list plugin instances");
                        continue;
                    }
                };
                for slug in slugs {
                    match self.probe(&slug, &plugin).await {
                        // The plugin reaches no platform: its other instances cannot fail
                        // either, and are assessed when asked for.
                        Ok(r) if r.probe == ProbeResult::NotApplicable => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(community = %slug, plugin, error = %e, "health probe skipped")
                        }
                    }
                }
            }
        }
    }

    /// `POST /api/hooks/<plugin>`: a platform-wide webhook, delivered to every community
    /// whose instance follows the platform object it is about. Answers how many took it.
    pub async fn platform_webhook(&self, plugin: &str, request: WebhookRequest) -> Result<usize> {
        let p = self
            .env
            .registry
            .get(plugin)
            .cloned()
            .ok_or_else(|| ActorError::UnknownPlugin(plugin.to_string()))?;
        let not_routable = |message: String| ActorError::Invalid {
            code: "webhook_not_routable",
            message,
            field: None,
        };
        let platform_id = p.webhook_route(&request).ok_or_else(|| {
            not_routable(format!(
                "plugin '{plugin}' cannot tell which community this webhook is for; use /api/hooks/<community>/{plugin}"
            ))
        })?;
        let prefix = route_prefix(plugin, &platform_id);
        let slugs: Vec<String> = self
            .rt
            .scan_index(None, &prefix)?
            .into_iter()
            .map(|(k, _)| k.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        if slugs.is_empty() {
            return Err(not_routable(format!(
                "no community follows '{platform_id}' with plugin '{plugin}'"
            )));
        }
        let mut delivered = 0;
        let mut first_error = None;
        for slug in slugs {
            match self.webhook(&slug, plugin, request.clone()).await {
                Ok(()) => delivered += 1,
                Err(e) => {
                    tracing::warn!(community = %slug, plugin, error = %e, "platform webhook refused");
                    first_error.get_or_insert(e);
                }
            }
        }
        match (delivered, first_error) {
            (0, Some(e)) => Err(e),
            _ => Ok(delivered),
        }
    }
}
