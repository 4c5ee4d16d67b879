//! Finding and loading plugins: by name through a search path, or from an explicit file.
//!
//! Every library is checked before use: first as a file, before `dlopen` ([`library`]), then its
//! plugin-api version must be semver-compatible with the host's and abi_stable must find every
//! boundary type laid out as the host expects. Refusals say which file, what is wrong and what to
//! do. Libraries are never unloaded (unloading Rust shared objects is unsound), so loading is
//! cached per file and version: a file rebuilt since it was loaded (a live engine swap to a
//! rebuilt plugin) is opened anew from a private copy, as `dlopen` would hand back the library
//! already mapped for that path.

use crate::builtins;
use crate::config::PluginRef;
use abi_stable::library::{LibraryError, lib_header_from_path};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use vm_plugin_api::{PLUGIN_API_VERSION, PluginInfo, PluginKind, PluginModRef};

mod library;

use library::inspect;
pub use library::{Build, timestamp};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Linked into the host.
    Builtin,
    /// Loaded from this file.
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin => f.write_str("built-in"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A loaded, checked plugin.
#[derive(Clone)]
pub struct Plugin {
    /// Its self-description.
    pub info: PluginInfo,
    /// Its root module.
    pub module: PluginModRef,
    /// Where it came from.
    pub source: Source,
    /// How it was built.
    pub build: Build,
}

/// Why a plugin could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file does not exist or cannot be read.
    #[error("plugin file {path} cannot be opened: {reason}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The OS's words.
        reason: String,
    },
    /// The file is not a regular file, or not a complete shared library for this host: `dlopen`
    /// would block, fail or crash on it.
    #[error("{path} cannot be loaded: {reason}")]
    Unloadable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not a vmhost plugin library.
    #[error("{path} is not a vmhost plugin: {reason}")]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// What the loader found.
        reason: String,
    },
    /// Built against a plugin-api this host cannot use.
    #[error(
        "plugin '{name}' ({path}) was built against plugin-api {plugin_api}, but this vmhost uses plugin-api \
         {host_api}, which is not compatible; rebuild the plugin against plugin-api {host_api}"
    )]
    IncompatibleVersion {
        /// The file.
        path: PathBuf,
        /// The plugin's name (from the file name: the plugin was not initialised).
        name: String,
        /// The plugin-api version it was built against.
        plugin_api: String,
        /// The host's plugin-api version.
        host_api: String,
    },
    /// Same version, different type layouts.
    #[error(
        "plugin '{name}' ({path}), built against plugin-api {plugin_api}, does not match the plugin ABI of this \
         vmhost (plugin-api {host_api}): {detail}; rebuild the plugin against plugin-api {host_api}"
    )]
    LayoutMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's name (from the file name).
        name: String,
        /// The plugin-api version it claims.
        plugin_api: String,
        /// The host's plugin-api version.
        host_api: String,
        /// The mismatch as abi_stable reports it (its final `Error:` block).
        detail: String,
    },
    /// The plugin is of another kind than the place that names it.
    #[error("plugin '{name}' ({origin}) is {}, but {} is needed here", kind_phrase(*found), kind_phrase(*wanted))]
    WrongKind {
        /// Plugin name.
        name: String,
        /// Where it came from.
        origin: Source,
        /// Its kind.
        found: PluginKind,
        /// The kind needed.
        wanted: PluginKind,
    },
    /// The library found for a name calls itself by another name.
    #[error(
        "{path} was looked up as plugin '{wanted}', but the plugin in it calls itself '{found}' \
         (its PluginDescription::NAME); rename the file {}, or name the file by path",
        file_name(found)
    )]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The name it was looked up by (the file name's).
        wanted: String,
        /// The name the plugin gives itself.
        found: String,
    },
    /// No plugin of that name anywhere.
    #[error("no plugin named '{name}': not built in, and no {file} in {searched}{hint}")]
    UnknownName {
        /// The name.
        name: String,
        /// The file name looked for.
        file: String,
        /// The directories searched, for the message.
        searched: String,
        /// A suggestion (`; did you mean 'x'?`, a file named without the `libvmhost_` prefix), or empty.
        hint: String,
    },
}

impl LoadError {
    /// The plugin-api version the library declares, when it got far enough to say.
    pub fn plugin_api(&self) -> Option<&str> {
        match self {
            LoadError::IncompatibleVersion { plugin_api, .. }
            | LoadError::LayoutMismatch { plugin_api, .. } => Some(plugin_api),
            _ => None,
        }
    }
}

/// "an engine plugin" / "a device plugin", for messages.
fn kind_phrase(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Engine => "an engine plugin",
        PluginKind::Device => "a device plugin",
    }
}

/// The directories searched for plugins by name, in order.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    /// In priority order.
    pub dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// `[plugins] path` from vm.toml, then `$VMHOST_PLUGIN_PATH` (colon-separated), then the
    /// directory of the vmhost binary.
    pub fn new(config_dirs: &[PathBuf]) -> SearchPath {
        let mut dirs: Vec<PathBuf> = config_dirs.to_vec();
        if let Some(env) = std::env::var_os("VMHOST_PLUGIN_PATH") {
            dirs.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
        }
        if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
            dirs.push(dir);
        }
        SearchPath { dirs }
    }
}

/// The file name a plugin called `name` is built as (`-` becomes `_`, as cargo does).
pub fn file_name(name: &str) -> String {
    format!("libvmhost_{}.so", name.replace('-', "_"))
}

/// The plugin name a file name implies (`libvmhost_foo.so` → `foo`).
pub fn name_from_file(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    stem.strip_prefix("libvmhost_").unwrap_or(&stem).to_string()
}

/// Loads and checks the plugin library at `path`. Cached: a file is opened once per process and
/// version (its size and modification time); a changed file is opened from a copy.
pub fn load_file(path: &Path) -> Result<Plugin, LoadError> {
    /// A file's size and modification time: what tells a rebuilt library from the loaded one.
    type Version = (u64, Option<std::time::SystemTime>);
    type Loaded = (Version, Result<Plugin, LoadError>);
    static CACHE: Mutex<Option<HashMap<PathBuf, Loaded>>> = Mutex::new(None);
    let missing = |e: std::io::Error| LoadError::Missing { path: path.to_path_buf(), reason: e.to_string() };
    let key = std::fs::canonicalize(path).map_err(missing)?;
    let meta = std::fs::metadata(&key).map_err(missing)?;
    let version = (meta.len(), meta.modified().ok());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    let r = match cache.get(&key) {
        Some((v, r)) if *v == version => return r.clone(),
        Some(_) => open_copy(path),
        None => open(path),
    };
    cache.insert(key, (version, r.clone()));
    r
}

/// Opens a rebuilt `path` from a private copy (removed once mapped), reported as `path`.
fn open_copy(path: &Path) -> Result<Plugin, LoadError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COPIES: AtomicU32 = AtomicU32::new(0);
    let n = COPIES.fetch_add(1, Ordering::Relaxed);
    // Same file name in a directory of its own: the name is what the plugin's name is read from.
    let dir = std::env::temp_dir().join(format!("vmhost-{}-reload-{n}", std::process::id()));
    let copy = dir.join(path.file_name().unwrap_or_default());
    let copied = std::fs::create_dir_all(&dir).and_then(|()| std::fs::copy(path, &copy));
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&dir);
        let reason = format!("cannot copy it to {} to load it again: {e}", copy.display());
        return Err(LoadError::Missing { path: path.to_path_buf(), reason });
    }
    let r = open(&copy);
    let _ = std::fs::remove_dir_all(&dir);
    // Messages and listings name the file the user gave.
    let rename = |p: &mut PathBuf| *p = path.to_path_buf();
    match r {
        Ok(mut plugin) => {
            plugin.source = Source::File(path.to_path_buf());
            Ok(plugin)
        }
        Err(mut e) => {
            match &mut e {
                LoadError::Missing { path: p, .. }
                | LoadError::Unloadable { path: p, .. }
                | LoadError::NotAPlugin { path: p, .. }
                | LoadError::IncompatibleVersion { path: p, .. }
                | LoadError::LayoutMismatch { path: p, .. } => rename(p),
                _ => {}
            }
            Err(e)
        }
    }
}

fn open(path: &Path) -> Result<Plugin, LoadError> {
    let build = inspect(path)?;
    let not_a_plugin = |reason: String| LoadError::NotAPlugin { path: path.to_path_buf(), reason };
    let header = lib_header_from_path(path).map_err(|e| not_a_plugin(short_library_error(&e)))?;
    let plugin_api = header.version_strings().version.to_string();
    if !api_compatible(&plugin_api) {
        return Err(LoadError::IncompatibleVersion {
            path: path.to_path_buf(),
            name: name_from_file(path),
            plugin_api,
            host_api: PLUGIN_API_VERSION.to_string(),
        });
    }
    let module = header.init_root_module::<PluginModRef>().map_err(|e| match e {
        LibraryError::AbiInstability(_) => LoadError::LayoutMismatch {
            path: path.to_path_buf(),
            name: name_from_file(path),
            plugin_api: plugin_api.clone(),
            host_api: PLUGIN_API_VERSION.to_string(),
            detail: abi_error_tail(&e.to_string()),
        },
        LibraryError::IncompatibleVersionNumber { .. } => LoadError::IncompatibleVersion {
            path: path.to_path_buf(),
            name: name_from_file(path),
            plugin_api: plugin_api.clone(),
            host_api: PLUGIN_API_VERSION.to_string(),
        },
        other => not_a_plugin(short_library_error(&other)),
    })?;
    Ok(Plugin { info: module.plugin_info(), module, source: Source::File(path.to_path_buf()), build })
}

/// Same major version, and for 0.x the same minor version: what cargo's `^` accepts.
fn api_compatible(plugin_api: &str) -> bool {
    let (Ok(host), Ok(plugin)) =
        (semver::Version::parse(PLUGIN_API_VERSION), semver::Version::parse(plugin_api))
    else {
        return false;
    };
    let req = if host.major == 0 { format!("^0.{}", host.minor) } else { format!("^{}", host.major) };
    semver::VersionReq::parse(&req).is_ok_and(|r| r.matches(&plugin))
}

/// abi_stable's layout errors run to hundreds of lines; the useful part is the final `Error:`
/// block (what was expected, what was found).
fn abi_error_tail(full: &str) -> String {
    one_line(full.rfind("Error:").map_or(full, |i| &full[i..]))
}

/// Multi-line library messages as one line, for errors that name a file.
fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn short_library_error(e: &LibraryError) -> String {
    let s = e.to_string();
    if s.contains("_1as_0lib_1header_0root_bmodule_bloader") {
        "it does not export a plugin root module (build it with vm_plugin_api::export_plugin!)".to_string()
    } else {
        one_line(&s)
    }
}

/// Resolves a plugin reference of the given kind: a path is loaded as is; a name is looked up on
/// the search path (a compatible `.so` wins), then among the built-ins.
pub fn resolve(r: &PluginRef, kind: PluginKind, search: &SearchPath) -> Result<Plugin, LoadError> {
    let plugin = match r {
        PluginRef::Path(p) => load_file(p)?,
        PluginRef::Name(name) => find_by_name(name, search)?,
    };
    if plugin.info.kind != kind {
        return Err(LoadError::WrongKind {
            name: plugin.info.name.to_string(),
            origin: plugin.source.clone(),
            found: plugin.info.kind,
            wanted: kind,
        });
    }
    Ok(plugin)
}

fn find_by_name(name: &str, search: &SearchPath) -> Result<Plugin, LoadError> {
    let file = file_name(name);
    let builtin = builtins::find(name);
    let mut ignored = false;
    for dir in &search.dirs {
        let path = dir.join(&file);
        if !path.exists() {
            continue;
        }
        let found = load_file(&path).and_then(|p| {
            if p.info.name.replace('-', "_") == name.replace('-', "_") {
                Ok(p)
            } else {
                Err(LoadError::NameMismatch {
                    path: path.clone(),
                    wanted: name.into(),
                    found: p.info.name.into(),
                })
            }
        });
        match found {
            Ok(p) => return Ok(p),
            // A stale or broken build next to the binary must not stop the built-in from working.
            Err(e) if builtin.is_some() => {
                tracing::warn!("{e}; ignoring it");
                ignored = true;
            }
            Err(e) => return Err(e),
        }
    }
    match builtin {
        Some((info, module)) => {
            if ignored {
                tracing::warn!("plugin '{name}': using the built-in one");
            }
            Ok(Plugin { info, module, source: Source::Builtin, build: Build::host() })
        }
        None => Err(LoadError::UnknownName {
            name: name.to_string(),
            file,
            searched: search.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
            hint: unknown_name_hint(name, search),
        }),
    }
}

/// For an unknown name: a file in a searched folder that looks meant for it but lacks the
/// `libvmhost_` prefix, else the closest name found (built-ins and files on the search path).
fn unknown_name_hint(name: &str, search: &SearchPath) -> String {
    let spelt = name.replace('-', "_");
    for dir in &search.dirs {
        for candidate in
            [format!("lib{name}.so"), format!("lib{spelt}.so"), format!("{name}.so"), format!("{spelt}.so")]
        {
            if dir.join(&candidate).exists() {
                return format!(
                    "; found {candidate} in {}, but plugins are looked up as libvmhost_<name>.so: rename it {}, \
                     or name the file by path",
                    dir.display(),
                    file_name(name)
                );
            }
        }
    }
    let mut names: Vec<String> = builtins::all().iter().map(|(i, _)| i.name.to_string()).collect();
    names.extend(search.dirs.iter().flat_map(|d| plugin_files(d)).map(|f| name_from_file(&f)));
    let limit = name.chars().count().max(3) / 3;
    names
        .into_iter()
        .map(|n| (edit_distance(name, &n), n))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map_or(String::new(), |(_, n)| format!("; did you mean '{n}'?"))
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The `libvmhost_*.so` files in `dir`, sorted.
fn plugin_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.starts_with("libvmhost_") && n.ends_with(".so")
        })
        .collect();
    files.sort();
    files
}

/// One row of `vmhost plugins`.
pub struct Listing {
    /// The plugin, when it loaded. A library whose plugin calls itself by another name than its
    /// file's is refused with [`LoadError::NameMismatch`] only when looked up by name, so it is
    /// listed as loaded; [`Listing::mismatch`] reports it.
    pub plugin: Result<Plugin, LoadError>,
    /// Where it was found.
    pub source: Source,
}

impl Listing {
    /// The name this row is found by: the file's for a library, the plugin's for a built-in.
    pub fn name(&self) -> String {
        match (&self.source, &self.plugin) {
            (Source::File(f), _) => name_from_file(f),
            (Source::Builtin, Ok(p)) => p.info.name.to_string(),
            (Source::Builtin, Err(_)) => "?".into(),
        }
    }

    /// The refusal looking this library up by its file's name would meet, if the plugin in it
    /// calls itself by another name.
    pub fn mismatch(&self) -> Option<LoadError> {
        match (&self.source, &self.plugin) {
            (Source::File(f), Ok(p)) if p.info.name.replace('-', "_") != name_from_file(f) => {
                Some(LoadError::NameMismatch {
                    path: f.clone(),
                    wanted: name_from_file(f),
                    found: p.info.name.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// Every plugin on the search path and every built-in.
pub fn discover(search: &SearchPath) -> Vec<Listing> {
    let mut out: Vec<Listing> = builtins::all()
        .iter()
        .map(|(info, module)| Listing {
            plugin: Ok(Plugin {
                info: info.clone(),
                module: *module,
                source: Source::Builtin,
                build: Build::host(),
            }),
            source: Source::Builtin,
        })
        .collect();
    for dir in &search.dirs {
        for f in plugin_files(dir) {
            if out.iter().any(|l| l.source == Source::File(f.clone())) {
                continue;
            }
            out.push(Listing { plugin: load_file(&f), source: Source::File(f) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compatibility_follows_cargo_caret() {
        let v = semver::Version::parse(PLUGIN_API_VERSION).unwrap();
        assert!(api_compatible(PLUGIN_API_VERSION));
        assert!(api_compatible(&format!("{}.{}.{}", v.major, v.minor, v.patch + 7)));
        assert!(!api_compatible(&format!("{}.{}.0", v.major, v.minor + 1)));
        assert!(!api_compatible("not a version"));
    }

    #[test]
    fn abi_tail_keeps_the_final_error_block() {
        let full = "lots\nof\nlayout\nError:\n   mismatched type\n   Expected: u64\n   Found: u32\n";
        assert_eq!(abi_error_tail(full), "Error: mismatched type Expected: u64 Found: u32");
    }

    #[test]
    fn missing_and_non_plugin_files_are_refused() {
        let e = load_file(Path::new("/nonexistent/libvmhost_x.so")).err().unwrap();
        assert!(matches!(e, LoadError::Missing { .. }), "{e}");
        let junk = std::env::temp_dir().join("vmhost-loader-junk.so");
        std::fs::write(&junk, b"this is not an ELF file").unwrap();
        let e = load_file(&junk).err().unwrap();
        assert!(e.to_string().starts_with(&format!("{} is not a vmhost plugin: ", junk.display())), "{e}");
    }

    #[test]
    fn builtins_resolve_by_name_with_kind_checked() {
        let s = SearchPath { dirs: vec![] };
        let p = resolve(&PluginRef::Name("interp".into()), PluginKind::Engine, &s).ok().unwrap();
        assert_eq!(p.source, Source::Builtin);
        let e = resolve(&PluginRef::Name("serial".into()), PluginKind::Engine, &s).err().unwrap();
        assert!(matches!(e, LoadError::WrongKind { .. }), "{e}");
        let e = resolve(&PluginRef::Name("nope".into()), PluginKind::Device, &s).err().unwrap();
        assert_eq!(e.to_string(), "no plugin named 'nope': not built in, and no libvmhost_nope.so in ");
        let e = resolve(&PluginRef::Name("serail".into()), PluginKind::Device, &s).err().unwrap();
        assert!(e.to_string().ends_with("; did you mean 'serial'?"), "{e}");
    }

    #[test]
    fn edit_distance_counts_character_edits() {
        assert_eq!(edit_distance("serail", "serial"), 2);
        assert_eq!(edit_distance("intrp", "interp"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn a_fifo_is_refused_without_opening_it() {
        let dir = std::env::temp_dir().join(format!("vmhost-loader-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("libvmhost_fifo.so");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = load_file(&fifo).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!("{} cannot be loaded: it is a FIFO (named pipe), not a regular file", fifo.display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
