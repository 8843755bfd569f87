//! The audit log as a resource: reading it (filtered, paged), and recording what is refused
//! outside any actor's commit (a refused change, a plugin the node would not load).

use std::sync::Arc;

use agora_plugins::ErrorCode;

use super::{Core, Result};
use crate::audit::{AuditEntry, AuditFilter};
use crate::{ActorError, Principal};

/// Audit entries with their ids, and the cursor of the next page.
pub type AuditPage = (Vec<(u64, AuditEntry)>, Option<u64>);

#[derive(Clone)]
pub struct AuditLog {
    core: Arc<Core>,
}

impl AuditLog {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        AuditLog { core }
    }

    /// Audit entries matching `filter`, oldest first, after `cursor`; at most `limit`; with the
    /// cursor of the next page when there may be more.
    pub async fn page(
        &self,
        filter: &AuditFilter,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<AuditPage> {
        let (rows, next) = self
            .core
            .rt
            .read_journal(cursor, limit, |bytes| {
                AuditEntry::decode(bytes).is_some_and(|e| filter.matches(&e))
            })
            .await?;
        let entries = rows
            .into_iter()
            .filter_map(|(seq, b)| AuditEntry::decode(&b).map(|e| (seq, e)))
            .collect();
        Ok((entries, next))
    }

    /// Records, once at start, every plugin this node refused to load.
    pub async fn record_load_refusals(&self) -> Result<()> {
        let by = Principal::node("node");
        for r in self.core.registry().refused() {
            let entry =
                AuditEntry::new(&by, self.core.now_ms(), &r.name, "load").refused(r.reason.clone());
            if let Some(bytes) = entry.encode() {
                self.core.rt.append_journal(bytes).await?;
            }
        }
        Ok(())
    }

    /// Records a refused plugin change. Best effort: the refusal is what the caller must hear
    /// about, so a failure to record it is logged, not returned.
    pub(crate) async fn refusal(
        &self,
        by: &Principal,
        community: Option<&str>,
        plugin: &str,
        action: &str,
        e: &ActorError,
    ) {
        // Runtime trouble is not a refusal; a failed hook was recorded by the actor itself, in
        // the commit that kept everything else unchanged.
        if matches!(e, ActorError::Runtime(_)) || e.code() == ErrorCode::HookFailed {
            return;
        }
        let mut entry = AuditEntry::new(by, self.core.now_ms(), plugin, action)
            .refused(format!("{}: {e}", e.code()));
        if let Some(c) = community {
            entry = entry.in_community(c);
        }
        self.append(entry, "a refused change").await;
    }

    /// Appends `entry` on its own; `what` names it in the warning should that fail.
    pub(crate) async fn append(&self, entry: AuditEntry, what: &str) {
        if let Some(bytes) = entry.encode() {
            if let Err(err) = self.core.rt.append_journal(bytes).await {
                tracing::warn!(error = %err, "could not record {what} in the audit log");
            }
        }
    }
}
