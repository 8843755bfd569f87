//! Dashboard widgets as a resource: the data of a widget a plugin declares, for one community
//! where the plugin is enabled. Widgets are read-only: a viewer may read them.

use std::sync::Arc;

use agora_plugins::{vote, ErrorCode};
use serde_json::{json, Value};

use super::{Core, Plugins, Processes, Result};
use crate::{plugin_instance, ActorError};

const VOTE_PLUGIN: &str = "vote";

/// Rows of the "open votes" widget: a widget is a glance, the process list is the full view.
const OPEN_VOTE_ROWS: usize = 20;

#[derive(Clone)]
pub struct Widgets {
    core: Arc<Core>,
    plugins: Plugins,
    processes: Processes,
}

impl Widgets {
    pub(crate) fn new(core: Arc<Core>, plugins: Plugins, processes: Processes) -> Self {
        Widgets {
            core,
            plugins,
            processes,
        }
    }

    /// The data of widget `widget` of `plugin` for community `slug`: the answer of the read
    /// action the widget names. Refused when the plugin is not enabled for the community
    /// (votes need no enabling).
    pub async fn data(&self, slug: &str, plugin: &str, widget: &str) -> Result<Value> {
        let p = self
            .core
            .registry()
            .get(plugin)
            .ok_or_else(|| ActorError::UnknownPlugin(plugin.to_string()))?
            .clone();
        let spec = p.meta().widget(widget).ok_or_else(|| {
            ActorError::refuse(
                ErrorCode::UnknownWidget,
                format!("plugin '{plugin}' declares no widget '{widget}'"),
            )
        })?;
        // Votes run in every community: the vote plugin is never enabled per community.
        if plugin == VOTE_PLUGIN && spec.action == vote::OPEN_VOTES {
            return self.open_votes(slug).await;
        }
        let resolved = self.plugins.resolve(slug, plugin).await?;
        let read = plugin_instance::Read {
            action: spec.action.to_string(),
            config: resolved.config,
        };
        self.core
            .instances
            .ask(&format!("{slug}/{plugin}"), read)
            .await?
    }

    /// The vote plugin's read action: its processes live in vote actors, not in its instance.
    async fn open_votes(&self, slug: &str) -> Result<Value> {
        let open = self.processes.list(slug, true).await?;
        let rows: Vec<Value> = open
            .iter()
            .filter(|p| p.name.starts_with("vote."))
            .take(OPEN_VOTE_ROWS)
            .map(|p| {
                let closes = p.closing_at_ms.map_or_else(String::new, rfc3339);
                json!([p.id, p.name.trim_start_matches("vote."), closes])
            })
            .collect();
        Ok(json!({"columns": ["Vote", "Method", "Closes at"], "rows": rows}))
    }
}

/// RFC 3339 (UTC), for people reading the widget.
fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
