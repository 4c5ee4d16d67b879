//! The table `vmhost plugins` prints: every plugin found, where, how it was built (profile and the
//! file's modification time, to spot a stale library), and whether it can be used.

use crate::loader::{self, SearchPath, Source};
use std::fmt::Write;

/// The listing for `search`, one row per plugin (refusals and name mismatches with a line saying
/// why), then the search path.
pub fn table(search: &SearchPath) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<7} {:<9} {:<11} {:<11} {:<8} {:<20} SOURCE",
        "NAME", "KIND", "VERSION", "PLUGIN-API", "STATUS", "PROFILE", "MODIFIED"
    );
    for l in loader::discover(search) {
        let name = l.name();
        let modified = match &l.source {
            Source::File(f) => {
                std::fs::metadata(f).and_then(|m| m.modified()).map_or("?".into(), loader::timestamp)
            }
            Source::Builtin => "-".into(),
        };
        match &l.plugin {
            Ok(p) => {
                let mismatch = l.mismatch();
                let _ = writeln!(
                    out,
                    "{name:<12} {:<7} {:<9} {:<11} {:<11} {:<8} {modified:<20} {}",
                    format!("{:?}", p.info.kind).to_lowercase(),
                    p.info.version,
                    p.info.api_version,
                    if mismatch.is_some() { "mismatch" } else { "compatible" },
                    p.build.profile_name(),
                    l.source
                );
                if let Some(e) = mismatch {
                    let _ = writeln!(out, "    {e}");
                }
            }
            Err(e) => {
                let api = e.plugin_api().unwrap_or("?");
                let _ = writeln!(
                    out,
                    "{name:<12} {:<7} {:<9} {api:<11} {:<11} {:<8} {modified:<20} {}\n    {e}",
                    "?", "?", "refused", "?", l.source
                );
            }
        }
    }
    let dirs: Vec<String> = search.dirs.iter().map(|d| d.display().to_string()).collect();
    let _ = writeln!(out, "search path: {}", dirs.join(":"));
    out
}
