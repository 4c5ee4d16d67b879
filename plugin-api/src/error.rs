//! The one error type that crosses the plugin boundary.

use abi_stable::{StableAbi, std_types::RString};
use std::fmt;

/// What kind of failure a [`VmError`] reports.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A configuration value was missing, malformed or out of range.
    Config,
    /// A guest or host memory access could not be completed.
    Memory,
    /// A device could not complete an operation.
    Device,
    /// An execution engine could not continue.
    Engine,
    /// A plugin panicked; the panic was caught at the boundary.
    Panic,
    /// The operation is not supported by this component.
    Unsupported,
    /// An I/O operation on the host failed.
    Io,
    /// A device refuses a guest access (no register there, a bus error): the guest gets an access
    /// fault and the VM goes on.
    BusFault,
    /// Anything else.
    Other,
}

/// An FFI-safe error: a kind and a human-readable message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct VmError {
    /// The category of the failure.
    pub kind: ErrorKind,
    /// What went wrong, written for the person running the VM.
    pub message: RString,
}

impl VmError {
    /// Makes an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        VmError { kind, message: RString::from(message.into()) }
    }
    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// A memory error.
    pub fn memory(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Memory, message)
    }
    /// A device error.
    pub fn device(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Device, message)
    }
    /// An engine error.
    pub fn engine(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Engine, message)
    }
    /// An error of no particular kind; displayed as the bare message.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
    /// A refused guest access: the guest gets an access fault, the VM goes on.
    pub fn bus_fault(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BusFault, message)
    }
    /// An "operation not supported" error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    /// The message as a `&str`.
    pub fn message(&self) -> &str {
        self.message.as_str()
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::Config => "configuration error",
            ErrorKind::Memory => "memory error",
            ErrorKind::Device => "device error",
            ErrorKind::Engine => "engine error",
            ErrorKind::Panic => "plugin panicked",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Io => "I/O error",
            ErrorKind::BusFault => "bus fault",
            ErrorKind::Other => return f.write_str(&self.message),
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for VmError {}

impl From<std::io::Error> for VmError {
    fn from(e: std::io::Error) -> Self {
        VmError::new(ErrorKind::Io, e.to_string())
    }
}

/// The result type used across the boundary.
pub type VmResult<T> = abi_stable::std_types::RResult<T, VmError>;
