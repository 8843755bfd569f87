//! Webhooks as a resource: one for a community's plugin instance (the instance first, then
//! each of its pending processes), and platform-wide ones, routed by the `route/` index to
//! every community whose instance follows the platform object they are about.

use std::sync::Arc;

use agora_plugins::{ErrorCode, WebhookRequest};
use agora_runtime::partition_of;

use super::{Core, Plugins, Result};
use crate::community::route_prefix;
use crate::process::PENDING_INDEX;
use crate::{plugin_instance, process, ActorError, Principal};

#[derive(Clone)]
pub struct Webhooks {
    core: Arc<Core>,
    plugins: Plugins,
}

impl Webhooks {
    pub(crate) fn new(core: Arc<Core>, plugins: Plugins) -> Self {
        Webhooks { core, plugins }
    }

    /// A webhook for a community's plugin: the instance first, then each pending process.
    /// Answers `false` for a replay (a delivery id the instance took within its window),
    /// which changed nothing.
    pub async fn community(
        &self,
        slug: &str,
        plugin: &str,
        request: WebhookRequest,
        by: &Principal,
    ) -> Result<bool> {
        let Some(p) = self.core.registry().get(plugin).cloned() else {
            return Err(ActorError::UnknownPlugin(plugin.to_string()));
        };
        let resolved = self.plugins.resolve(slug, plugin).await?;
        let cmd = plugin_instance::Webhook {
            delivery: p.delivery_id(&request).filter(|id| usable_delivery_id(id)),
            request: request.clone(),
            config: resolved.config,
            driver_url: resolved.driver_url,
            by: by.clone(),
        };
        let fresh = self
            .core
            .instances
            .ask(&format!("{slug}/{plugin}"), cmd)
            .await??;
        if !fresh {
            // A replay: the instance took this delivery already, and so did its processes.
            return Ok(false);
        }
        let prefix = format!("{PENDING_INDEX}{slug}/{plugin}/");
        for (key, _) in self.core.rt.scan_index(Some(partition_of(slug)), &prefix)? {
            let Some(id) = key.rsplit('/').next() else {
                continue;
            };
            let cmd = process::Webhook {
                request: request.clone(),
                by: by.clone(),
            };
            if let Err(e) = self.core.processes.ask(id, cmd).await? {
                tracing::warn!(process = %id, error = %e, "webhook not taken by a pending process");
            }
        }
        Ok(true)
    }

    /// `POST /api/hooks/<plugin>`: a platform-wide webhook, delivered to every community
    /// (served by this node) whose instance follows the platform object it is about. Answers
    /// how many took it (a replay is taken by none).
    pub async fn platform(
        &self,
        plugin: &str,
        request: WebhookRequest,
        by: &Principal,
    ) -> Result<usize> {
        let p = self
            .core
            .registry()
            .get(plugin)
            .cloned()
            .ok_or_else(|| ActorError::UnknownPlugin(plugin.to_string()))?;
        // Verify first where the plugin can (issue 13 §7): what a delivery is about, and
        // whether anyone follows it, is then told only to the platform itself.
        let global = self.plugins.global_settings(plugin);
        let verified = match p.verify_platform_webhook(&global, &request) {
            Some(verdict) => {
                verdict?;
                true
            }
            None => false,
        };
        let not_routable = |message: String| -> Result<usize> {
            if verified {
                tracing::info!(plugin, reason = %message, "authentic platform webhook routes nowhere");
                Ok(0)
            } else {
                Err(ActorError::refuse(ErrorCode::WebhookNotRoutable, message))
            }
        };
        let Some(platform_id) = p.webhook_route(&request) else {
            return not_routable(format!(
                "plugin '{plugin}' cannot tell which community this webhook is for; use /api/hooks/<community>/{plugin}"
            ));
        };
        let prefix = route_prefix(plugin, &platform_id);
        let slugs: Vec<String> = self
            .core
            .rt
            .scan_index(None, &prefix)?
            .into_iter()
            .map(|(k, _)| k.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        if slugs.is_empty() {
            return not_routable(format!(
                "no community follows '{platform_id}' with plugin '{plugin}'"
            ));
        }
        let mut delivered = 0;
        let mut first_error = None;
        for slug in slugs {
            match self.community(&slug, plugin, request.clone(), by).await {
                Ok(true) => delivered += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(community = %slug, plugin, error = %e, "platform webhook refused");
                    first_error.get_or_insert(e);
                }
            }
        }
        match (delivered, first_error) {
            // Authentic for the node, refused by a community with a secret of its own: the
            // platform did nothing wrong, and a 401 would tell it which communities exist.
            (0, Some(e)) if verified && e.code() == ErrorCode::InvalidSignature => Ok(0),
            (0, Some(e)) => Err(e),
            _ => Ok(delivered),
        }
    }
}

/// A delivery id is used as a storage key: 1 to 128 visible ASCII characters. Another one (no
/// platform sends such) is not deduplicated rather than refused, since the delivery is
/// authentic.
fn usable_delivery_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}
