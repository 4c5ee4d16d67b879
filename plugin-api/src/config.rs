//! Helpers for a plugin's own configuration table (the TOML under its entry in `vm.toml`).

use crate::error::VmError;
use serde::de::DeserializeOwned;

/// Parses a plugin's TOML table into `T`, with an error that names the offending key.
///
/// Use `#[serde(deny_unknown_fields)]` on `T` so misspelt keys are refused.
pub fn parse<T: DeserializeOwned>(toml_text: &str) -> Result<T, VmError> {
    toml::from_str(toml_text).map_err(|e| VmError::config(e.message().to_string()))
}

/// Accepts only an empty table: for plugins that take no configuration.
pub fn expect_no_keys(toml_text: &str) -> Result<(), VmError> {
    let table: toml::Table =
        toml::from_str(toml_text).map_err(|e| VmError::config(e.message().to_string()))?;
    match table.keys().next() {
        None => Ok(()),
        Some(k) => Err(VmError::config(format!("unknown key `{k}`: this plugin takes no configuration"))),
    }
}
