//! Finding and loading plugins: by name through a search path, or from an explicit file.
//!
//! Every library is checked before use. Before `dlopen` (which trusts the file: a segment past a
//! truncated file's end kills the process with SIGBUS) the file must be a regular file holding a
//! complete 64-bit little-endian shared library for this host's machine; that pass also reads the
//! plugin's build profile from its symbol table. After `dlopen` its plugin-api version must be
//! semver-compatible with the host's, and abi_stable must find every boundary type laid out as the
//! host expects. Refusals say which file, what is wrong and what to do. Libraries are never
//! unloaded (unloading Rust shared objects is unsound), so loading is cached per file.

use crate::builtins;
use crate::config::PluginRef;
use abi_stable::library::{LibraryError, lib_header_from_path};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use vm_plugin_api::{PLUGIN_API_VERSION, PluginInfo, PluginKind, PluginModRef};

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

/// How a plugin was built, for spotting a stale library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// `debug` or `release` as the plugin itself recorded it; `None` for a library built before
    /// plugins recorded it.
    pub profile: Option<String>,
    /// The library file's modification time (`None` for a built-in).
    pub modified: Option<SystemTime>,
}

impl Build {
    /// The host's own build: what a built-in plugin was compiled as.
    pub fn host() -> Build {
        let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
        Build { profile: Some(profile.to_string()), modified: None }
    }

    /// The profile name, or `unknown`.
    pub fn profile_name(&self) -> &str {
        self.profile.as_deref().unwrap_or("unknown")
    }
}

impl fmt::Display for Build {
    /// `release build, modified 2026-12-01 07:50:12 UTC (3 min ago)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.profile {
            Some(p) => write!(f, "{p} build")?,
            None => f.write_str("profile unknown")?,
        }
        if let Some(m) = self.modified {
            write!(f, ", modified {} ({})", timestamp(m, " ", " UTC"), age(m, SystemTime::now()))?;
        }
        Ok(())
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

/// Loads and checks the plugin library at `path` (cached: a file is opened once per process).
pub fn load_file(path: &Path) -> Result<Plugin, LoadError> {
    static CACHE: Mutex<Option<HashMap<PathBuf, Result<Plugin, LoadError>>>> = Mutex::new(None);
    let key = std::fs::canonicalize(path)
        .map_err(|e| LoadError::Missing { path: path.to_path_buf(), reason: e.to_string() })?;
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(r) = cache.get(&key) {
        return r.clone();
    }
    let r = open(path);
    cache.insert(key, r.clone());
    r
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

/// Largest library the host reads to check it; vmhost's own plugins are about 10 MB.
const MAX_LIBRARY_BYTES: u64 = 1 << 30;

/// The ELF machine this host runs: a library for any other cannot be loaded.
#[cfg(target_arch = "x86_64")]
const HOST_MACHINE: elf::Machine = elf::EM_X86_64;
#[cfg(target_arch = "aarch64")]
const HOST_MACHINE: elf::Machine = elf::EM_AARCH64;
#[cfg(target_arch = "riscv64")]
const HOST_MACHINE: elf::Machine = elf::EM_RISCV;

fn machine_name(m: elf::Machine) -> String {
    match m {
        elf::EM_X86_64 => "x86_64".into(),
        elf::EM_386 => "i386".into(),
        elf::EM_AARCH64 => "AArch64".into(),
        elf::EM_ARM => "32-bit Arm".into(),
        elf::EM_RISCV => "RISC-V".into(),
        elf::EM_PPC64 => "PowerPC64".into(),
        elf::EM_S390 => "s390x".into(),
        m => format!("ELF machine {}", m.0),
    }
}

/// Checks, without `dlopen`, that `path` is a regular file holding a complete shared library for
/// this host, and reads how it was built.
fn inspect(path: &Path) -> Result<Build, LoadError> {
    let missing = |e: std::io::Error| LoadError::Missing { path: path.to_path_buf(), reason: e.to_string() };
    let unloadable = |reason: String| LoadError::Unloadable { path: path.to_path_buf(), reason };
    // The type first, from the directory entry: opening a FIFO for reading would block.
    let meta = std::fs::metadata(path).map_err(missing)?;
    if !meta.is_file() {
        return Err(unloadable(format!("it is {}, not a regular file", file_kind(&meta.file_type()))));
    }
    if meta.len() > MAX_LIBRARY_BYTES {
        return Err(unloadable(format!(
            "it is {} bytes, more than the {MAX_LIBRARY_BYTES} bytes a plugin library may have",
            meta.len()
        )));
    }
    // O_NONBLOCK and a second type check: the path may have been replaced since.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(missing)?
    };
    if !file.metadata().map_err(missing)?.is_file() {
        return Err(unloadable("it is not a regular file".into()));
    }
    let mut data = Vec::new();
    file.take(MAX_LIBRARY_BYTES + 1).read_to_end(&mut data).map_err(missing)?;
    if data.len() as u64 > MAX_LIBRARY_BYTES {
        return Err(unloadable(format!(
            "it is more than the {MAX_LIBRARY_BYTES} bytes a plugin library may have"
        )));
    }
    let profile = check_library(&data).map_err(|e| match e {
        Refusal::NotElf => LoadError::NotAPlugin {
            path: path.to_path_buf(),
            reason: "it is not an ELF shared library (its first bytes are not \\x7fELF)".into(),
        },
        Refusal::Bad(reason) => unloadable(reason),
    })?;
    Ok(Build { profile, modified: meta.modified().ok() })
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

enum Refusal {
    NotElf,
    Bad(String),
}

/// The checks `dlopen` does not make before mapping a library: ELF64, little-endian, this host's
/// machine, a shared object, every loadable segment and the dynamic section inside the file.
/// Returns the build profile the plugin recorded, if any.
fn check_library(data: &[u8]) -> Result<Option<String>, Refusal> {
    let bad = |s: String| Refusal::Bad(s);
    let len = data.len() as u64;
    if !data.starts_with(&elf::ELFMAG) {
        return Err(Refusal::NotElf);
    }
    let host = machine_name(HOST_MACHINE);
    match data.get(4..6) {
        Some(&[c, _]) if elf::FileClass(c) != elf::ELFCLASS64 => {
            return Err(bad(format!("it is a 32-bit ELF file; this vmhost ({host}) loads 64-bit libraries")));
        }
        Some(&[_, d]) if elf::DataEncoding(d) != elf::ELFDATA2LSB => {
            return Err(bad(format!(
                "it is a big-endian ELF file; this vmhost ({host}) loads little-endian libraries"
            )));
        }
        _ => {}
    }
    let header = elf::FileHeader64::<object::LittleEndian>::parse(data)
        .map_err(|e| bad(format!("its ELF header is damaged ({e}); the library is truncated or corrupt")))?;
    let endian = object::LittleEndian;
    let machine = header.e_machine(endian);
    if machine != HOST_MACHINE {
        return Err(bad(format!(
            "it is built for {}, but this vmhost runs on {host}",
            machine_name(machine)
        )));
    }
    let kind = header.e_type(endian);
    if kind != elf::ET_DYN {
        let what = match kind {
            elf::ET_REL => "an object file (ET_REL)".to_string(),
            elf::ET_EXEC => "an executable (ET_EXEC)".to_string(),
            elf::ET_CORE => "a core dump (ET_CORE)".to_string(),
            t => format!("of ELF type {}", t.0),
        };
        return Err(bad(format!(
            "it is {what}, not a shared library; build the plugin crate with crate-type = [\"cdylib\"]"
        )));
    }
    let phoff = header.e_phoff(endian);
    let ph_end =
        phoff.saturating_add(u64::from(header.e_phnum(endian)) * u64::from(header.e_phentsize(endian)));
    let segments = header.program_headers(endian, data).map_err(|e| {
        if ph_end > len {
            bad(format!(
                "its program headers (file bytes {phoff:#x}-{ph_end:#x}) lie past the end of the {len}-byte file: \
                 the library is truncated"
            ))
        } else {
            bad(format!("its program headers are damaged ({e})"))
        }
    })?;
    let mut dynamic = false;
    for (i, ph) in segments.iter().enumerate() {
        let kind = ph.p_type(endian);
        if kind != elf::PT_LOAD && kind != elf::PT_DYNAMIC {
            continue;
        }
        dynamic |= kind == elf::PT_DYNAMIC;
        let (start, size) = (ph.p_offset(endian), ph.p_filesz(endian));
        let name = if kind == elf::PT_LOAD { "segment" } else { "dynamic section, segment" };
        match start.checked_add(size) {
            Some(end) if end <= len => {}
            end => {
                let end = end.map_or("beyond 2^64".to_string(), |e| format!("{e:#x}"));
                return Err(bad(format!(
                    "{name} {i} (file bytes {start:#x}-{end}) lies past the end of the {len}-byte file: \
                     the library is truncated"
                )));
            }
        }
    }
    if !dynamic {
        return Err(bad("it has no dynamic section (PT_DYNAMIC), so it is not a shared library".into()));
    }
    Ok(recorded_profile(header, segments, data))
}

/// The profile in the plugin's [`BUILD_SYMBOL`](vm_plugin_api::module::BUILD_SYMBOL), found
/// through the dynamic symbol table; `None` when the library does not have it.
fn recorded_profile(
    header: &elf::FileHeader64<object::LittleEndian>,
    segments: &[elf::ProgramHeader64<object::LittleEndian>],
    data: &[u8],
) -> Option<String> {
    let endian = object::LittleEndian;
    let sections = header.sections(endian, data).ok()?;
    let symbols = sections.symbols(endian, data, elf::SHT_DYNSYM).ok()?;
    let sym = symbols.iter().find(|s| {
        symbols.symbol_name(endian, s).is_ok_and(|n| n == vm_plugin_api::module::BUILD_SYMBOL.as_bytes())
    })?;
    let (addr, size) = (sym.st_value(endian), sym.st_size(endian).min(64));
    // The symbol's address is a virtual one: find the bytes through the segment that maps it.
    let ph = segments.iter().find(|ph| {
        ph.p_type(endian) == elf::PT_LOAD
            && addr >= ph.p_vaddr(endian)
            && addr.saturating_add(size) <= ph.p_vaddr(endian).saturating_add(ph.p_filesz(endian))
    })?;
    let at = usize::try_from(addr - ph.p_vaddr(endian) + ph.p_offset(endian)).ok()?;
    let bytes = data.get(at..at.checked_add(size as usize)?)?;
    let text = bytes.split(|&b| b == 0).next()?;
    (!text.is_empty() && text.iter().all(u8::is_ascii_alphanumeric))
        .then(|| String::from_utf8_lossy(text).into_owned())
}

/// `t` as `2026-12-01<sep>07:50:12<zone>` (UTC).
pub fn timestamp(t: SystemTime, sep: &str, zone: &str) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}{sep}{:02}:{:02}:{:02}{zone}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How long before `now` `t` was, in words: `3 min ago`.
pub fn age(t: SystemTime, now: SystemTime) -> String {
    let Ok(d) = now.duration_since(t) else { return "in the future".into() };
    match d.as_secs() {
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
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
    fn timestamps_are_utc_calendar_dates() {
        let at = |s| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(timestamp(at(0), "T", "Z"), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(at(1_000_000_000), " ", " UTC"), "2001-09-09 01:46:40 UTC");
        assert_eq!(timestamp(at(951_782_400), "T", "Z"), "2000-02-29T00:00:00Z");
        assert_eq!(age(at(0), at(190)), "3 min ago");
        assert_eq!(age(at(0), at(3 * 86_400 + 5)), "3 days ago");
        assert_eq!(age(at(10), at(0)), "in the future");
    }

    /// This test binary is a position-independent executable: an ET_DYN ELF with a dynamic
    /// section, which makes a realistic library to damage.
    fn own_elf() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    fn refusal(data: &[u8]) -> String {
        match check_library(data) {
            Err(Refusal::Bad(s)) => s,
            Err(Refusal::NotElf) => "not an ELF".into(),
            Ok(p) => panic!("accepted, profile {p:?}"),
        }
    }

    #[test]
    fn truncated_and_foreign_libraries_are_refused_before_dlopen() {
        let elf = own_elf();
        assert!(check_library(&elf).is_ok(), "the intact file passes");
        let r = refusal(&elf[..4096]);
        assert!(
            r.starts_with("segment ")
                && r.ends_with("lies past the end of the 4096-byte file: the library is truncated"),
            "{r}"
        );
        assert!(refusal(&elf[..40]).contains("ELF header is damaged"), "{}", refusal(&elf[..40]));
        let patched = |at: usize, bytes: &[u8]| {
            let mut d = elf.clone();
            d[at..at + bytes.len()].copy_from_slice(bytes);
            refusal(&d)
        };
        assert!(patched(4, &[1]).starts_with("it is a 32-bit ELF file"), "{}", patched(4, &[1]));
        assert!(patched(5, &[2]).starts_with("it is a big-endian ELF file"), "{}", patched(5, &[2]));
        assert!(patched(16, &[1, 0]).starts_with("it is an object file (ET_REL), not a shared library"));
        let foreign = if cfg!(target_arch = "aarch64") { elf::EM_X86_64 } else { elf::EM_AARCH64 };
        let r = patched(18, &foreign.0.to_le_bytes());
        assert!(r.starts_with("it is built for ") && r.contains("but this vmhost runs on"), "{r}");
        assert!(refusal(b"\x7fELF").contains("ELF header is damaged"), "{}", refusal(b"\x7fELF"));
        assert_eq!(refusal(b"MZ not an ELF"), "not an ELF");
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
            format!("{} cannot be loaded: it is a FIFO, not a regular file", fifo.display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
