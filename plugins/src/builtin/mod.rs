//! Plugins compiled into Agora. Adding one: a new file here, and one line in [`available`].

mod discourse;
mod github;
mod loomio;
mod opencollective;
mod randomness;
mod testkit;

use std::sync::Arc;

use crate::{Plugin, PluginRegistry, RegistryError};

pub use discourse::Discourse;
pub use github::Github;
pub use loomio::Loomio;
pub use opencollective::OpenCollective;
pub use randomness::Randomness;
pub use testkit::Testkit;

/// Every plugin compiled into this build. A new plugin is one line here.
pub fn available() -> Vec<Arc<dyn Plugin>> {
    vec![
        Arc::new(Randomness::new()),
        Arc::new(crate::vote::VotePlugin::new()),
        Arc::new(Testkit::new()),
        Arc::new(Github::new()),
        Arc::new(Discourse::new()),
        Arc::new(Loomio::new()),
        Arc::new(OpenCollective::new()),
    ]
}

/// A registry holding every built-in plugin loaded by default (tests and embedders).
pub fn all() -> Result<PluginRegistry, RegistryError> {
    let mut r = PluginRegistry::new();
    for p in available().into_iter().filter(|p| p.meta().load_by_default) {
        r.register(p)?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registering checks every schema a plugin publishes, so this covers each plugin's.
    #[test]
    fn every_compiled_in_plugin_registers() {
        let mut r = PluginRegistry::new();
        for p in available() {
            let name = p.meta().name;
            r.register(p)
                .unwrap_or_else(|e| panic!("plugin {name} does not register: {e}"));
        }
    }
}
