//! The root module every plugin exports, and how a plugin declares itself.
//!
//! A plugin is one type implementing [`EnginePlugin`] or [`DevicePlugin`]. [`engine_module`] /
//! [`device_module`] build its root module; [`export_plugin!`](crate::export_plugin) exports one
//! from a `cdylib`. The host reads [`PluginInfo`] and calls the factory with the plugin's config.

use crate::{
    device::{Device, DeviceAdapter, DeviceBox, DeviceContext, FfiDevice_TO},
    engine::{Engine, EngineAdapter, EngineBox, EngineContext, FfiEngine_TO},
    error::{VmError, VmResult},
    lifecycle::Events,
    panic::guard,
};
use abi_stable::{
    StableAbi, declare_root_module_statics, library::RootModule, package_version_strings,
    prefix_type::PrefixTypeTrait, sabi_trait::TD_Opaque, sabi_types::VersionStrings, std_types::RString,
};

/// The plugin-api version this crate is; plugins record the one they were built against.
pub const PLUGIN_API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a plugin provides.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// An execution engine.
    Engine,
    /// A device.
    Device,
}

/// A plugin's self-description.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The name `vm.toml` refers to it by.
    pub name: RString,
    /// What it provides.
    pub kind: PluginKind,
    /// The plugin's own version.
    pub version: RString,
    /// The plugin-api version it was built against.
    pub api_version: RString,
    /// One line about it.
    pub description: RString,
}

/// The root module of a plugin library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Describes the plugin.
    pub info: extern "C" fn() -> PluginInfo,
    /// Builds an engine for one hart (engine plugins).
    pub create_engine: Option<extern "C" fn(&EngineContext<'_>) -> VmResult<EngineBox>>,
    /// Builds a device (device plugins).
    #[sabi(last_prefix_field)]
    pub create_device: Option<extern "C" fn(DeviceContext) -> VmResult<DeviceBox>>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "vmhost_plugin";
    const NAME: &'static str = "vmhost plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The exported symbol holding a plugin library's build profile, which the host reads from the
/// file's symbol table without loading it (see [`build_tag`]).
pub const BUILD_SYMBOL: &str = "VMHOST_PLUGIN_BUILD";

/// The contents of [`BUILD_SYMBOL`]: the profile name (`debug` when the plugin crate was compiled
/// with debug assertions, else `release`), NUL-padded to 16 bytes. A plain byte array, not part of
/// the root module, so adding it changed no layout abi_stable checks.
#[doc(hidden)]
pub const fn build_tag(debug_assertions: bool) -> [u8; 16] {
    if debug_assertions { *b"debug\0\0\0\0\0\0\0\0\0\0\0" } else { *b"release\0\0\0\0\0\0\0\0\0" }
}

/// Static facts about a plugin.
pub trait PluginDescription {
    /// The name `vm.toml` refers to it by.
    const NAME: &'static str;
    /// The plugin's version (usually `env!("CARGO_PKG_VERSION")`).
    const VERSION: &'static str;
    /// One line about it.
    const DESCRIPTION: &'static str;
}

/// An engine plugin: an [`Engine`] with a name and a factory.
pub trait EnginePlugin: Engine + PluginDescription + Sized {
    /// Builds the engine for one hart; `ctx.config` is its TOML table.
    fn create(ctx: &EngineContext<'_>, events: Events) -> Result<Self, VmError>;
}

/// A device plugin: a [`Device`] with a name and a factory.
pub trait DevicePlugin: Device + PluginDescription + Sized {
    /// Builds the device. `ctx.config` is its TOML table.
    fn create(ctx: DeviceContext, events: Events) -> Result<Self, VmError>;
}

fn info<P: PluginDescription>(kind: PluginKind) -> PluginInfo {
    PluginInfo {
        name: P::NAME.into(),
        kind,
        version: P::VERSION.into(),
        api_version: PLUGIN_API_VERSION.into(),
        description: P::DESCRIPTION.into(),
    }
}

extern "C" fn engine_info<P: EnginePlugin>() -> PluginInfo {
    info::<P>(PluginKind::Engine)
}

extern "C" fn device_info<P: DevicePlugin>() -> PluginInfo {
    info::<P>(PluginKind::Device)
}

extern "C" fn create_engine<P: EnginePlugin>(ctx: &EngineContext<'_>) -> VmResult<EngineBox> {
    guard(&format!("engine '{}' create", P::NAME), || {
        let events = Events::default();
        let engine = P::create(ctx, events.clone())?;
        Ok(FfiEngine_TO::from_value(EngineAdapter::new(P::NAME, engine, events), TD_Opaque))
    })
    .into()
}

extern "C" fn create_device<P: DevicePlugin>(ctx: DeviceContext) -> VmResult<DeviceBox> {
    let id = ctx.id.to_string();
    guard(&format!("device '{id}' ({}) create", P::NAME), || {
        let events = Events::default();
        let device = P::create(ctx, events.clone())?;
        Ok(FfiDevice_TO::from_value(DeviceAdapter::new(P::NAME, &id, device, events), TD_Opaque))
    })
    .into()
}

/// The root module of engine plugin `P`.
pub fn engine_module<P: EnginePlugin>() -> PluginModRef {
    PluginMod { info: engine_info::<P>, create_engine: Some(create_engine::<P>), create_device: None }
        .leak_into_prefix()
}

/// The root module of device plugin `P`.
pub fn device_module<P: DevicePlugin>() -> PluginModRef {
    PluginMod { info: device_info::<P>, create_engine: None, create_device: Some(create_device::<P>) }
        .leak_into_prefix()
}

impl PluginModRef {
    /// The plugin's description.
    pub fn plugin_info(self) -> PluginInfo {
        (self.info())()
    }
}

/// Exports a plugin's root module from a `cdylib` crate.
///
/// ```ignore
/// vm_plugin_api::export_plugin!(vm_plugin_api::device_module::<MyDevice>());
/// ```
///
/// Expands to the library header abi_stable's loader looks for; equivalent to
/// `#[abi_stable::export_root_module]`, without requiring the plugin to depend on `abi_stable`.
/// Also exports [`BUILD_SYMBOL`](crate::module::BUILD_SYMBOL), the plugin's build profile, which
/// `vmhost plugins` and the load log show.
#[macro_export]
macro_rules! export_plugin {
    ($module:expr) => {
        #[doc(hidden)]
        pub fn __vmhost_root_module() -> $crate::PluginModRef {
            $module
        }

        // `cfg!` here is evaluated in the plugin crate: the profile is the plugin's own.
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub static VMHOST_PLUGIN_BUILD: [u8; 16] = $crate::module::build_tag(cfg!(debug_assertions));

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(__vmhost_root_module)
            }
            // SAFETY: `erased` returns the root module of type PluginModRef, as the header declares.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::PluginModRef>(
                    erased,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn exported_symbol_is_the_one_abi_stable_loads() {
        assert_eq!(abi_stable::library::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
    }

    #[test]
    fn build_tag_is_the_nul_padded_profile_name() {
        assert_eq!(&super::build_tag(true)[..6], b"debug\0");
        assert_eq!(&super::build_tag(false)[..8], b"release\0");
    }
}
