//! Plugin instance health as a resource: probe an instance now, read one instance's health or
//! every instance of a plugin on this node, and the background prober. A change of status is
//! audited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_plugins::RemoteOp;
use agora_runtime::Stop;

use super::{AuditLog, Core, Platform, Plugins, Result};
use crate::audit::AuditEntry;
use crate::community::INSTANCE_INDEX;
use crate::health::{HealthReport, HealthStatus, ProbeResult};
use crate::{ActorError, Principal};

#[derive(Clone)]
pub struct Health {
    core: Arc<Core>,
    plugins: Plugins,
    platform: Platform,
    audit: AuditLog,
}

impl Health {
    pub(crate) fn new(
        core: Arc<Core>,
        plugins: Plugins,
        platform: Platform,
        audit: AuditLog,
    ) -> Self {
        Health {
            core,
            plugins,
            platform,
            audit,
        }
    }

    /// Probes one instance now and stores the report; a change of status is audited.
    pub async fn probe(&self, slug: &str, plugin: &str) -> Result<HealthReport> {
        let resolved = self.plugins.resolve(slug, plugin).await?;
        let started = Instant::now();
        let probe = match self
            .platform
            .call(slug, plugin, &resolved.config, RemoteOp::Probe)
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
        let breaker = self.core.outbound.breaker_view(&format!("{slug}/{plugin}"));
        let report = HealthReport::assess(slug, plugin, probe, breaker, self.core.now_ms());
        let before = self.core.health.put(report.clone());
        if before != Some(report.status) && (before.is_some() || report.status != HealthStatus::Ok)
        {
            self.audit_change(&report, before).await;
        }
        Ok(report)
    }

    async fn audit_change(&self, report: &HealthReport, before: Option<HealthStatus>) {
        let by = Principal::node("health");
        let mut entry = AuditEntry::new(&by, report.checked_ms, &report.plugin, "health")
            .in_community(&report.community);
        entry.message = format!(
            "{} -> {}: {}",
            before.map(HealthStatus::as_str).unwrap_or("unknown"),
            report.status.as_str(),
            report.reason
        );
        if report.status != HealthStatus::Ok {
            entry.outcome = "error".into();
        }
        self.audit.append(entry, "a health change").await;
    }

    /// The health of `plugin` for one community: the latest report, with the breaker as it is
    /// now; probed first when none was taken yet.
    pub async fn community(&self, slug: &str, plugin: &str) -> Result<HealthReport> {
        if self.core.registry().get(plugin).is_none() {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        }
        match self.core.health.get(slug, plugin) {
            Some(mut report) => {
                // The breaker moves between probes (calls fail, cooldowns end); show it live.
                let breaker = self.core.outbound.breaker_view(&format!("{slug}/{plugin}"));
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

    /// Every community (served by this node) that enabled `plugin`, as the instance index
    /// lists them.
    fn communities_with(&self, plugin: &str) -> Result<Vec<String>> {
        let mut slugs: Vec<String> = self
            .core
            .rt
            .scan_index(None, INSTANCE_INDEX)?
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
    pub async fn plugin(&self, plugin: &str) -> Result<Vec<HealthReport>> {
        if self.core.registry().get(plugin).is_none() {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        }
        let mut out = Vec::new();
        for slug in self.communities_with(plugin)? {
            match self.community(&slug, plugin).await {
                Ok(r) => out.push(r),
                // Disabled on the node, or removed meanwhile: no instance runs to be healthy.
                Err(e) => tracing::debug!(community = %slug, plugin, error = %e, "no health"),
            }
        }
        Ok(out)
    }

    /// Probes every enabled instance every `interval`, until `stop`.
    pub async fn run_prober(self, interval: Duration, mut stop: Stop) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.stopped() => return,
            }
            tokio::select! {
                _ = self.probe_all() => {}
                _ = stop.stopped() => return,
            }
        }
    }

    async fn probe_all(&self) {
        let names: Vec<String> = self
            .core
            .registry()
            .all()
            .map(|p| p.meta().name.to_string())
            .collect();
        for plugin in names {
            if !self.core.env.globals.get(&plugin).enabled {
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
