//! Devices the host provides itself (the `virt` board's fixed parts: syscon, CLINT, PLIC) and the
//! bus adapter for device plugins.

pub mod clint;
pub mod plic;
pub mod plugin;
pub mod services;
pub mod syscon;
