//! Plugin instance health: `ok`, `degraded` or `failing`, with a reason. A background task
//! probes every enabled instance of a plugin that reaches a platform; reports live in memory
//! (health is about now, not history: status changes go to the audit log instead).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::outbound::BreakerView;

/// A probe slower than this makes an instance `degraded`.
pub const SLOW_PROBE_MS: u64 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthStatus {
    Ok,
    Degraded,
    Failing,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Failing => "failing",
        }
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// The plugin reaches no platform: nothing can fail.
    NotApplicable,
    Passed {
        latency_ms: u64,
    },
    Failed {
        code: String,
        message: String,
    },
}

/// One instance's health.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    pub community: String,
    pub plugin: String,
    pub status: HealthStatus,
    pub reason: String,
    pub checked_ms: u64,
    pub probe: ProbeResult,
    pub breaker: Option<BreakerView>,
}

impl HealthReport {
    /// Combines a probe with the breaker's view of recent calls; the worst signal wins.
    pub fn assess(
        community: &str,
        plugin: &str,
        probe: ProbeResult,
        breaker: Option<BreakerView>,
        checked_ms: u64,
    ) -> Self {
        let (status, reason) = match (&probe, &breaker) {
            (_, Some(b)) if b.state == "open" => (
                HealthStatus::Failing,
                format!(
                    "calls are paused after {} consecutive failures: {}",
                    b.consecutive_failures,
                    b.last_error.as_deref().unwrap_or("unknown error")
                ),
            ),
            (ProbeResult::Failed { message, .. }, _) => {
                (HealthStatus::Failing, format!("probe failed: {message}"))
            }
            (_, Some(b)) if b.state == "half_open" => (
                HealthStatus::Degraded,
                "recovering: the next call is a trial after repeated failures".to_string(),
            ),
            (_, Some(b)) if b.consecutive_failures > 0 => (
                HealthStatus::Degraded,
                format!(
                    "{} recent call(s) failed: {}",
                    b.consecutive_failures,
                    b.last_error.as_deref().unwrap_or("unknown error")
                ),
            ),
            (ProbeResult::Passed { latency_ms }, _) if *latency_ms > SLOW_PROBE_MS => (
                HealthStatus::Degraded,
                format!("the platform is slow: the probe took {latency_ms} ms"),
            ),
            (ProbeResult::Passed { latency_ms }, _) => (
                HealthStatus::Ok,
                format!("the platform answered the probe in {latency_ms} ms"),
            ),
            (ProbeResult::NotApplicable, _) => (
                HealthStatus::Ok,
                "the plugin reaches no external platform".to_string(),
            ),
        };
        HealthReport {
            community: community.to_string(),
            plugin: plugin.to_string(),
            status,
            reason,
            checked_ms,
            probe,
            breaker,
        }
    }

    pub fn to_json(&self) -> Value {
        let probe = match &self.probe {
            ProbeResult::NotApplicable => json!({"result": "not_applicable"}),
            ProbeResult::Passed { latency_ms } => {
                json!({"result": "passed", "latency_ms": latency_ms})
            }
            ProbeResult::Failed { code, message } => {
                json!({"result": "failed", "code": code, "message": message})
            }
        };
        json!({
            "community": self.community,
            "plugin": self.plugin,
            "status": self.status.as_str(),
            "reason": self.reason,
            "checked_at": crate::events::timestamp(self.checked_ms),
            "probe": probe,
            "breaker": self.breaker.as_ref().map(BreakerView::to_json)
                .unwrap_or_else(|| json!({"state": "closed", "consecutive_failures": 0})),
        })
    }
}

/// The latest report per instance.
#[derive(Default)]
pub struct HealthBoard {
    reports: Mutex<BTreeMap<(String, String), HealthReport>>,
}

impl HealthBoard {
    /// Stores `report`; answers the status it replaced, if any.
    pub fn put(&self, report: HealthReport) -> Option<HealthStatus> {
        let mut map = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        let key = (report.community.clone(), report.plugin.clone());
        map.insert(key, report).map(|r| r.status)
    }

    pub fn get(&self, community: &str, plugin: &str) -> Option<HealthReport> {
        let map = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(community.to_string(), plugin.to_string()))
            .cloned()
    }

    pub fn remove(&self, community: &str, plugin: &str) {
        let mut map = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(community.to_string(), plugin.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(state: &'static str, failures: u32) -> Option<BreakerView> {
        Some(BreakerView {
            state,
            consecutive_failures: failures,
            retry_in_ms: None,
            last_error: Some("503".into()),
            calls: 10,
            failures: u64::from(failures),
        })
    }

    #[test]
    fn the_worst_signal_decides() {
        let passed = ProbeResult::Passed { latency_ms: 5 };
        let failed = ProbeResult::Failed {
            code: "platform_unavailable".into(),
            message: "down".into(),
        };
        let at = |p: ProbeResult, b| HealthReport::assess("c", "p", p, b, 0).status;
        assert_eq!(at(passed.clone(), None), HealthStatus::Ok);
        assert_eq!(at(passed.clone(), breaker("closed", 0)), HealthStatus::Ok);
        assert_eq!(
            at(passed.clone(), breaker("closed", 2)),
            HealthStatus::Degraded
        );
        assert_eq!(
            at(passed.clone(), breaker("half_open", 0)),
            HealthStatus::Degraded
        );
        assert_eq!(at(passed, breaker("open", 5)), HealthStatus::Failing);
        assert_eq!(at(failed, breaker("closed", 0)), HealthStatus::Failing);
        assert_eq!(
            at(ProbeResult::Passed { latency_ms: 5_000 }, None),
            HealthStatus::Degraded
        );
        assert_eq!(at(ProbeResult::NotApplicable, None), HealthStatus::Ok);
    }
}
