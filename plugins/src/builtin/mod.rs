//! Plugins compiled into Agora. Adding one: a new file here, and one line in [`available`].

mod randomness;

use std::sync::Arc;

use crate::{Plugin, PluginRegistry, RegistryError};

pub use randomness::Randomness;

/// Every plugin compiled into this build. A new plugin is one line here.
pub fn available() -> Vec<Arc<dyn Plugin>> {
    vec![
        Arc::new(Randomness::new()),
        Arc::new(crate::vote::VotePlugin::new()),
    ]
}

/// A registry holding every built-in plugin (tests and embedders that want them all).
pub fn all() -> Result<PluginRegistry, RegistryError> {
    let mut r = PluginRegistry::new();
    for p in available() {
        r.register(p)?;
    }
    Ok(r)
}
