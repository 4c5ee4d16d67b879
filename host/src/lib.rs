//! vmhost: loads engine and device plugins and runs a RISC-V guest on a QEMU `virt`-like machine.
//!
//! `config` reads `vm.toml`; `loader` and `builtins` find plugins; `machine` assembles RAM, the
//! bus and devices; `vm` runs the guest; `riscv` holds everything that knows the guest ISA.

pub mod activity;
pub mod boot;
pub mod builtins;
pub mod bus;
pub mod code_pages;
pub mod config;
pub mod devices;
pub mod error;
pub mod events;
pub mod fdt;
pub mod files;
pub mod irq;
pub mod listing;
pub mod loader;
pub mod machine;
pub mod memory;
pub mod riscv;
pub mod vm;

pub use config::VmConfig;
pub use error::HostError;
pub use vm::{Outcome, PauseHandle, StopHandle, Vm};
