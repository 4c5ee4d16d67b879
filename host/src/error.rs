//! The host's error type: everything that can stop `vmhost` before or while it runs a guest.

use crate::config::ConfigError;
use vm_plugin_api::VmError;

/// Why the host could not build or run the VM.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The machine description is wrong (file, line and column included).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A component failed.
    #[error("{0}")]
    Vm(#[from] VmError),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}
