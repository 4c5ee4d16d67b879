//! The in-tree plugins linked into the host, so a fresh checkout runs with no `.so` files.
//!
//! This registry is the host's only dependency on plugin crates. A `.so` of the same name found on
//! the search path wins over the built-in.

use std::sync::OnceLock;
use vm_plugin_api::{PluginInfo, PluginModRef};

/// One built-in plugin: a function returning its root module.
pub struct Builtin {
    /// Builds the root module (called once).
    pub module: fn() -> PluginModRef,
}

inventory::collect!(Builtin);

inventory::submit! { Builtin { module: vm_interp::module } }
inventory::submit! { Builtin { module: vm_serial::module } }
inventory::submit! { Builtin { module: vm_virtio_blk::module } }

/// Every built-in plugin with its description.
pub fn all() -> &'static [(PluginInfo, PluginModRef)] {
    static ALL: OnceLock<Vec<(PluginInfo, PluginModRef)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<_> = inventory::iter::<Builtin>
            .into_iter()
            .map(|b| {
                let m = (b.module)();
                (m.plugin_info(), m)
            })
            .collect();
        v.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        v
    })
}

/// The built-in plugin called `name`.
pub fn find(name: &str) -> Option<(PluginInfo, PluginModRef)> {
    all().iter().find(|(i, _)| i.name.as_str() == name).cloned()
}
