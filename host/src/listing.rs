//! The table `vmhost plugins` prints: every plugin found, where, and whether it can be used.

use crate::loader::{self, SearchPath, Source};
use std::fmt::Write;

/// The listing for `search`, one row per plugin (refusals with their reason), then the search path.
pub fn table(search: &SearchPath) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<7} {:<9} {:<11} {:<11} SOURCE",
        "NAME", "KIND", "VERSION", "PLUGIN-API", "STATUS"
    );
    for l in loader::discover(search) {
        match l.plugin {
            Ok(p) => {
                let _ = writeln!(
                    out,
                    "{:<12} {:<7} {:<9} {:<11} {:<11} {}",
                    p.info.name,
                    format!("{:?}", p.info.kind).to_lowercase(),
                    p.info.version,
                    p.info.api_version,
                    "compatible",
                    l.source
                );
            }
            Err(e) => {
                let name = match &l.source {
                    Source::File(f) => loader::name_from_file(f),
                    Source::Builtin => "?".into(),
                };
                let api = e.plugin_api().unwrap_or("?");
                let _ = writeln!(
                    out,
                    "{name:<12} {:<7} {:<9} {api:<11} {:<11} {}\n    {e}",
                    "?", "?", "refused", l.source
                );
            }
        }
    }
    let dirs: Vec<String> = search.dirs.iter().map(|d| d.display().to_string()).collect();
    let _ = writeln!(out, "search path: {}", dirs.join(":"));
    out
}
