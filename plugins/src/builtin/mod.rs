//! Plugins compiled into Agora. Adding one: a new file here, and one line in [`all`].

mod randomness;

use std::sync::Arc;

use crate::{PluginRegistry, RegistryError};

pub use randomness::Randomness;

/// A registry holding every built-in plugin.
pub fn all() -> Result<PluginRegistry, RegistryError> {
    let mut r = PluginRegistry::new();
    r.register(Arc::new(Randomness::new()))?;
    r.register(Arc::new(crate::vote::VotePlugin::new()))?;
    Ok(r)
}
