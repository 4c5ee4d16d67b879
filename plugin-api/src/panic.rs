//! Keeps a plugin's panics on the plugin's side of the boundary.
//!
//! abi_stable aborts the process when a panic unwinds out of a trait-object method, so every call the
//! plugin-api adapters forward to plugin code goes through [`guard`], which turns a panic into a
//! [`VmError`] of kind [`ErrorKind::Panic`].

use crate::error::{ErrorKind, VmError};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, turning a panic into an error that names `what` and the panic message.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, VmError>) -> Result<T, VmError> {
    guard_named(|| what.to_string(), f)
}

/// [`guard`], naming the call only if it panics: the name costs an allocation, and guest
/// accesses to a device go through here.
pub(crate) fn guard_named<T>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<T, VmError>,
) -> Result<T, VmError> {
    // AssertUnwindSafe: after a panic the plugin object is marked failed by the caller's error path;
    // the host never relies on invariants of an object that panicked.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "non-string panic payload".to_string()
            };
            Err(VmError::new(ErrorKind::Panic, format!("{} panicked: {msg}", what())))
        }
    }
}
