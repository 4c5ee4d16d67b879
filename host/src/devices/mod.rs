//! Devices the host provides itself (the `virt` board's fixed parts) and the bus adapter for
//! device plugins.

pub mod clint;
pub mod plugin;
pub mod syscon;
