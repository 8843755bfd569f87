//! The plugins this node runs, by name, with their schemas checked once at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{schema, Plugin};

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

#[derive(Clone, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<&'static str, Arc<dyn Plugin>>,
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
        let mut schemas = vec![("config".to_string(), &meta.config_schema)];
        for a in &meta.actions {
            schemas.push((format!("action {}", a.name), &a.parameters_schema));
        }
        for p in &meta.processes {
            schemas.push((format!("process {}", p.name), &p.parameters_schema));
        }
        for (at, s) in schemas {
            schema::check_supported(s).map_err(|message| RegistryError::Schema {
                plugin: name.into(),
                at,
                message,
            })?;
        }
        self.plugins.insert(name, plugin);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.values()
    }
}
