//! Plugin instance health as a resource: probe an instance now, read one instance's health or
//! every instance of a plugin on this node, and the background prober. A change of status is
//! audited.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
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
    /// Plugins whose probe answered that they reach no platform. The prober's later rounds
    /// skip them: probing one instance per round of a plugin that can never fail is work for
    /// nothing, and listing its instances grows with the node.
    no_platform: Arc<Mutex<HashSet<String>>>,
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
            no_platform: Arc::default(),
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
        let wanted = [plugin.to_string()];
        Ok(self
            .instances_of(&wanted)?
            .remove(plugin)
            .unwrap_or_default())
    }

    /// For each plugin of `wanted`, the communities (served by this node) that enabled it,
    /// sorted: one pass over the instance index, whatever the number of plugins.
    fn instances_of(&self, wanted: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
        let mut by_plugin: BTreeMap<String, Vec<String>> = BTreeMap::new();
        self.core
            .rt
            .visit_index(None, INSTANCE_INDEX, &mut |_, v| {
                let Ok(text) = std::str::from_utf8(v) else {
                    return;
                };
                let Some((slug, plugin)) = text.split_once('\0') else {
                    return;
                };
                if wanted.iter().any(|w| w == plugin) {
                    by_plugin
                        .entry(plugin.to_string())
                        .or_default()
                        .push(slug.to_string());
                }
            })?;
        for slugs in by_plugin.values_mut() {
            slugs.sort();
            slugs.dedup();
        }
        Ok(by_plugin)
    }

    fn no_platform(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set is only ever extended by whole names; a panic elsewhere leaves it valid.
        self.no_platform.lock().unwrap_or_else(|p| p.into_inner())
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

    /// One round of the prober: every instance of every enabled plugin that may reach a
    /// platform. Answers the plugins it listed instances for.
    pub(crate) async fn probe_all(&self) -> Vec<String> {
        let names: Vec<String> = {
            let skip = self.no_platform();
            self.core
                .registry()
                .all()
                .map(|p| p.meta().name.to_string())
                .filter(|p| self.core.env.globals.get(p).enabled && !skip.contains(p))
                .collect()
        };
        if names.is_empty() {
            return names;
        }
        let mut instances = match self.instances_of(&names) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "health: cannot list plugin instances");
                return Vec::new();
            }
        };
        for plugin in &names {
            for slug in instances.remove(plugin).unwrap_or_default() {
                match self.probe(&slug, plugin).await {
                    // The plugin reaches no platform: its other instances cannot fail
                    // either, and are assessed when asked for; later rounds skip it.
                    Ok(r) if r.probe == ProbeResult::NotApplicable => {
                        self.no_platform().insert(plugin.clone());
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(community = %slug, plugin, error = %e, "health probe skipped")
                    }
                }
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use agora_runtime::{Runtime, RuntimeConfig, SystemClock, PARTITIONS};
    use serde_json::json;

    use crate::counting::Counting;
    use crate::outbound::OutboundPolicy;
    use crate::services::CommunityUpdate;
    use crate::{Agora, Principal};

    /// A round of the prober lists the instance index once, whatever the number of plugins,
    /// and a plugin that reaches no platform is left out of the rounds after it said so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_lists_the_instances_once_and_skips_plugins_without_a_platform() {
        let engine = Arc::new(Counting::default());
        let rt = Runtime::start(
            RuntimeConfig::default(),
            engine.clone(),
            Arc::new(SystemClock),
        )
        .unwrap();
        let agora = Agora::new(rt, crate::env::tests::env(), OutboundPolicy::default());
        let by = Principal::node("test");
        for slug in ["a", "b", "c"] {
            agora
                .communities
                .create(Some(slug.into()), slug.into(), None, &by)
                .await
                .unwrap();
            let update = CommunityUpdate {
                readable_name: None,
                driver_url: None,
                plugins: vec![(
                    "randomness".into(),
                    json!({"default_low": 1, "default_high": 5}),
                )],
            };
            agora.communities.update(slug, update, &by).await.unwrap();
        }
        let index = super::INSTANCE_INDEX.as_bytes();
        engine.take_scans(index);

        let first = agora.health.probe_all().await;
        assert!(first.iter().any(|p| p == "randomness"), "{first:?}");
        assert!(
            first.len() > 1,
            "the platform plugins are enabled too: {first:?}"
        );
        assert_eq!(
            engine.take_scans(index),
            PARTITIONS as usize,
            "one pass over the index (one prefix per partition) for {} plugins",
            first.len()
        );

        let second = agora.health.probe_all().await;
        assert!(!second.iter().any(|p| p == "randomness"), "{second:?}");
        assert_eq!(second.len(), first.len() - 1, "{second:?}");
        assert_eq!(engine.take_scans(index), PARTITIONS as usize);

        // Asked for, every instance is still listed and assessed.
        let reports = agora.health.plugin("randomness").await.unwrap();
        let slugs: Vec<&str> = reports.iter().map(|r| r.community.as_str()).collect();
        assert_eq!(slugs, ["a", "b", "c"]);
    }
}
