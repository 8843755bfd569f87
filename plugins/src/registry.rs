//! The plugins this node runs, by name, with their schemas checked and compiled once at start.
//!
//! A deployment chooses which compiled-in plugins load. A plugin that cannot load (not in this
//! build, a version range that excludes this Agora, a missing dependency, a schema we cannot
//! enforce) is refused with its reason, logged and listed; the node still starts. Requests
//! validate against the compiled schemas held here ([`PluginRegistry::config_schema`] and
//! friends), never compiling one per request.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::schema::Schema;
use crate::Plugin;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("plugin {plugin} is registered twice")]
    Duplicate { plugin: String },
    #[error("plugin {plugin} has an unsupported schema at {at}: {message}")]
    Schema {
        plugin: String,
        at: String,
        message: String,
    },
}

/// This build's version, compared with each plugin's supported range.
pub const AGORA_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a plugin was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<&'static str, Arc<dyn Plugin>>,
    schemas: BTreeMap<&'static str, Arc<PluginSchemas>>,
    refused: Vec<Refusal>,
}

/// One plugin's schemas, compiled.
#[derive(Default)]
struct PluginSchemas {
    config: Option<Schema>,
    /// By kind (`action`, `action response`, `process`, `process outcome`, `event`), then name.
    named: BTreeMap<&'static str, BTreeMap<&'static str, Schema>>,
}

/// `major.minor.patch` as numbers; anything unparsable sorts as 0.
fn version(v: &str) -> (u64, u64, u64) {
    let mut it = v.split('.').map(|p| p.trim().parse::<u64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

impl PluginRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plugin after checking every schema it publishes is one we can enforce.
    pub fn register(&mut self, plugin: Arc<dyn Plugin>) -> Result<(), RegistryError> {
        let meta = plugin.meta();
        let name = meta.name;
        if self.plugins.contains_key(name) {
            return Err(RegistryError::Duplicate {
                plugin: name.into(),
            });
        }
        // Every schema a plugin publishes, not only those inputs are checked against: drivers
        // read the others (responses, outcomes, events) from `/metadata`, and tests check
        // emitted events against theirs.
        let mut named: Vec<((&'static str, &'static str), &serde_json::Value)> = Vec::new();
        for a in &meta.actions {
            named.push((("action", a.name), &a.parameters_schema));
            named.push((("action response", a.name), &a.response_schema));
        }
        for p in &meta.processes {
            named.push((("process", p.name), &p.parameters_schema));
            named.push((("process outcome", p.name), &p.outcome_schema));
        }
        for e in &meta.events {
            named.push((("event", e.event_type), &e.schema));
        }
        let compile = |at: String, doc: &serde_json::Value| {
            Schema::compile(doc).map_err(|message| RegistryError::Schema {
                plugin: name.into(),
                at,
                message,
            })
        };
        let mut compiled = PluginSchemas {
            config: Some(compile("config".into(), &meta.config_schema)?),
            named: BTreeMap::new(),
        };
        for ((kind, item), doc) in named {
            let schema = compile(format!("{kind} {item}"), doc)?;
            compiled.named.entry(kind).or_default().insert(item, schema);
        }
        self.schemas.insert(name, Arc::new(compiled));
        self.plugins.insert(name, plugin);
        Ok(())
    }

    /// Loads `wanted` (every candidate when `None`) out of `candidates`, refusing, with a
    /// reason, each plugin that cannot run on `agora_version` or whose dependencies are
    /// missing.
    pub fn select(
        candidates: Vec<Arc<dyn Plugin>>,
        wanted: Option<&[String]>,
        agora_version: &str,
    ) -> PluginRegistry {
        let mut registry = PluginRegistry::new();
        let mut pending: Vec<Arc<dyn Plugin>> = Vec::new();
        if let Some(wanted) = wanted {
            for name in wanted {
                if !candidates.iter().any(|p| p.meta().name == name) {
                    registry.refuse(name, "not compiled into this build of Agora".into());
                }
            }
        }
        for p in candidates {
            let meta = p.meta();
            let chosen = match wanted {
                Some(w) => w.iter().any(|n| n == meta.name),
                None => meta.load_by_default,
            };
            if !chosen {
                continue;
            }
            let here = version(agora_version);
            let too_old = here < version(meta.agora_min);
            let too_new = meta.agora_max.is_some_and(|max| here > version(max));
            if too_old || too_new {
                let range = format!(
                    ">= {}{}",
                    meta.agora_min,
                    meta.agora_max
                        .map(|m| format!(", <= {m}"))
                        .unwrap_or_default()
                );
                registry.refuse(
                    meta.name,
                    format!("supports Agora {range}; this is Agora {agora_version}"),
                );
                continue;
            }
            pending.push(p);
        }
        // Dependencies resolve to a fixpoint: refusing one plugin may strand another.
        loop {
            let names: Vec<&str> = pending.iter().map(|p| p.meta().name).collect();
            let stranded = pending
                .iter()
                .position(|p| p.meta().depends_on.iter().any(|d| !names.contains(d)));
            let Some(i) = stranded else { break };
            let p = pending.remove(i);
            let missing: Vec<&str> = p
                .meta()
                .depends_on
                .iter()
                .copied()
                .filter(|d| !names.contains(d))
                .collect();
            registry.refuse(
                p.meta().name,
                format!(
                    "needs plugin(s) that are not loaded: {}",
                    missing.join(", ")
                ),
            );
        }
        // Load in dependency order: a plugin loads once all it needs has loaded, and is refused
        // when something it needs was refused (or the needs form a cycle).
        while !pending.is_empty() {
            let mut progressed = false;
            let mut i = 0;
            while i < pending.len() {
                let deps = pending[i].meta().depends_on;
                let refused_dep = deps
                    .iter()
                    .find(|d| registry.refused.iter().any(|r| r.name == **d));
                if let Some(d) = refused_dep {
                    let p = pending.remove(i);
                    registry.refuse(
                        p.meta().name,
                        format!("needs plugin '{d}', which did not load"),
                    );
                    progressed = true;
                    continue;
                }
                if deps.iter().all(|d| registry.get(d).is_some()) {
                    let p = pending.remove(i);
                    registry.load(p);
                    progressed = true;
                    continue;
                }
                i += 1;
            }
            if !progressed {
                for p in pending.drain(..) {
                    registry.refuse(p.meta().name, "its dependencies form a cycle".into());
                }
            }
        }
        registry
    }

    /// Runs `on_load`, then registers; a failure refuses the plugin.
    fn load(&mut self, p: Arc<dyn Plugin>) {
        let name = p.meta().name;
        if let Err(e) = p.on_load() {
            self.refuse(name, format!("on_load failed: {}", e.message));
            return;
        }
        if let Err(e) = self.register(p) {
            self.refuse(name, e.to_string());
        }
    }

    /// Calls `on_unload` of every loaded plugin, once; at node shutdown.
    pub fn unload(&self) {
        for p in self.plugins.values() {
            p.on_unload();
        }
    }

    fn refuse(&mut self, name: &str, reason: String) {
        tracing::warn!(plugin = %name, %reason, "plugin refused; the node starts without it");
        self.refused.push(Refusal {
            name: name.to_string(),
            reason,
        });
    }

    /// Plugins that were asked for or compiled in but not loaded, with why.
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.values()
    }

    /// The compiled config schema of a loaded plugin.
    pub fn config_schema(&self, plugin: &str) -> Option<&Schema> {
        self.schemas.get(plugin)?.config.as_ref()
    }

    /// The compiled parameters schema of a loaded plugin's action.
    pub fn action_schema(&self, plugin: &str, action: &str) -> Option<&Schema> {
        self.named(plugin, "action", action)
    }

    /// The compiled parameters schema of a loaded plugin's process.
    pub fn process_schema(&self, plugin: &str, process: &str) -> Option<&Schema> {
        self.named(plugin, "process", process)
    }

    /// The compiled schema of an event a loaded plugin emits (its `data`).
    pub fn event_schema(&self, plugin: &str, event_type: &str) -> Option<&Schema> {
        self.named(plugin, "event", event_type)
    }

    fn named(&self, plugin: &str, kind: &str, item: &str) -> Option<&Schema> {
        self.schemas.get(plugin)?.named.get(kind)?.get(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActionContext, PluginError, PluginMeta, ProcessContext};
    use serde_json::{json, Value};

    struct Fake(PluginMeta);

    impl Plugin for Fake {
        fn meta(&self) -> &PluginMeta {
            &self.0
        }
        fn action(
            &self,
            _: &mut ActionContext<'_>,
            _: &str,
            _: &Value,
        ) -> Result<Value, PluginError> {
            Ok(Value::Null)
        }
        fn start_process(&self, _: &mut ProcessContext<'_>, _: &Value) -> Result<(), PluginError> {
            Ok(())
        }
        fn tick(&self, _: &mut ProcessContext<'_>, _: &str) -> Result<(), PluginError> {
            Ok(())
        }
        fn close_process(&self, _: &mut ProcessContext<'_>) -> Result<(), PluginError> {
            Ok(())
        }
    }

    fn fake(
        name: &'static str,
        min: &'static str,
        max: Option<&'static str>,
        deps: &'static [&'static str],
    ) -> Arc<dyn Plugin> {
        Arc::new(Fake(PluginMeta {
            name,
            verbose_name: name,
            version: "1.0.0",
            description: "",
            author: "",
            agora_min: min,
            agora_max: max,
            depends_on: deps,
            load_by_default: true,
            auth_type: "none",
            uses_webhook: false,
            config_schema: json!({"type": "object"}),
            actions: vec![],
            processes: vec![],
            navigation: vec![],
            widgets: vec![],
            events: vec![],
        }))
    }

    #[test]
    fn plugins_outside_their_version_range_or_missing_dependencies_are_refused() {
        let candidates = vec![
            fake("ok", "0.1.0", None, &[]),
            fake("future", "2.0.0", None, &[]),
            fake("past", "0.0.1", Some("0.0.9"), &[]),
            fake("needs_future", "0.1.0", None, &["future"]),
            fake("needs_ok", "0.1.0", None, &["ok"]),
            fake("chain", "0.1.0", None, &["needs_future"]),
        ];
        let r = PluginRegistry::select(candidates, None, "0.1.0");
        let loaded: Vec<&str> = r.all().map(|p| p.meta().name).collect();
        assert_eq!(loaded, vec!["needs_ok", "ok"]);
        let refused: Vec<&str> = r.refused().iter().map(|x| x.name.as_str()).collect();
        assert_eq!(refused, vec!["future", "past", "needs_future", "chain"]);
        assert!(r.refused()[0].reason.contains(">= 2.0.0"));
        assert!(r.refused()[2].reason.contains("future"));
    }

    #[test]
    fn a_deployment_loads_only_what_it_names_and_refuses_unknown_names() {
        let candidates = vec![fake("a", "0.1.0", None, &[]), fake("b", "0.1.0", None, &[])];
        let wanted = vec!["b".to_string(), "zzz".to_string()];
        let r = PluginRegistry::select(candidates, Some(&wanted), "0.1.0");
        assert!(r.get("b").is_some() && r.get("a").is_none());
        assert_eq!(r.refused().len(), 1);
        assert_eq!(r.refused()[0].name, "zzz");
    }
}
