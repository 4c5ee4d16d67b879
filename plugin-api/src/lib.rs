//! The stable ABI between the vmhost host and its plugins.
//!
//! Everything that crosses a plugin boundary is defined here and derives `StableAbi`, so the host
//! checks a plugin's layout when it loads it. Plugin authors implement [`Engine`] or [`Device`],
//! add [`PluginDescription`] and a factory ([`EnginePlugin`] / [`DevicePlugin`]), and export the
//! root module with [`export_plugin!`]. They write no `unsafe` and no ABI glue; panics in plugin
//! code come back to the host as errors.
#![warn(missing_docs)]
// sabi_trait's generated impls trigger this lint; the code is abi_stable's, not ours.
#![allow(non_local_definitions)]

pub mod config;
pub mod cpu;
pub mod device;
pub mod engine;
pub mod error;
pub mod ir;
pub mod lifecycle;
pub mod memory;
pub mod module;
mod oneshot;
pub mod panic;

pub use abi_stable;
pub use async_ffi;
pub use cpu::{CpuState, TlbAccess, TlbEntry, TlbFast};
pub use device::{
    Device, DeviceBox, DeviceContext, DeviceType, FdtNode, FdtProp, FdtValue, FfiDevice, HostServices,
    HostServicesArc, InterruptLine, InterruptLineArc, IoRegion, RegionKind,
};
pub use engine::{
    AsyncRun, AsyncRunDone, AtomicKind, AtomicReq, Engine, EngineBox, EngineCaps, EngineContext, ExitReason,
    Fetched, FfiEngine, Flow, HelperEntry, HelperFn, HostCalls, HostResult, HotCompilation, HotStats,
    Invalidate,
};
pub use error::{ErrorKind, VmError, VmResult};
pub use ir::{
    At, AtomicOp, BinOp, Cond, Dest, HelperFlags, IrBlock, IrOp, MemAccess, Operand, Terminator, UnOp,
};
pub use lifecycle::{
    AccessKind, Component, ComponentStatus, EventSink, EventSinkBox, Events, ExecutionStats, VmEvent,
    event_sink,
};
pub use memory::{GuestRam, MemoryManager, MemoryManagerArc, MemoryOrder, RamOnly};
pub use module::{
    DevicePlugin, EnginePlugin, PLUGIN_API_VERSION, PluginDescription, PluginInfo, PluginKind, PluginMod,
    PluginModRef, device_module, engine_module,
};
pub use oneshot::spawn_thread;
