//! `vm.toml`: the machine description, parsed and validated.
//!
//! Every error names the file, the line and column, the key, and what was expected. Paths in the
//! file are relative to the file's own directory.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A `vm.toml` that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A parsed, validated machine description.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// Guest RAM size in bytes (non-zero, a multiple of 4 KiB).
    pub memory: u64,
    /// The program to boot (ELF, or a raw image loaded at the start of RAM).
    pub kernel: PathBuf,
    /// The engine plugin: a name or a path.
    pub engine: PluginRef,
    /// The engine's own configuration table, as TOML text.
    pub engine_config: String,
    /// Where `[engine] plugin` is, for errors found when loading it.
    pub engine_position: (usize, usize),
    /// Extra plugin search directories from `[plugins] path`.
    pub plugin_path: Vec<PathBuf>,
    /// Devices, in file order (which is their start order).
    pub devices: Vec<DeviceConfig>,
    /// Instructions an engine runs before returning to the host's loop.
    pub slice: u64,
}

/// How a plugin is named in `vm.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// Resolved through the search path, e.g. `serial`.
    Name(String),
    /// A file, e.g. `./plugins/libmydev.so`.
    Path(PathBuf),
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRef::Name(n) => f.write_str(n),
            PluginRef::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One `[[device]]` entry.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Unique id.
    pub id: String,
    /// The device plugin.
    pub plugin: PluginRef,
    /// Base guest physical address.
    pub base: u64,
    /// Interrupt line, if any.
    pub irq: Option<u32>,
    /// The device's own configuration table, as TOML text.
    pub config: String,
    /// Where the entry's `base` key is, for errors found later (overlaps, alignment).
    pub base_position: (usize, usize),
    /// Where the entry's `plugin` key is, for errors found when loading it.
    pub plugin_position: (usize, usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    machine: Spanned<RawMachine>,
    boot: Spanned<RawBoot>,
    engine: Spanned<RawEngine>,
    #[serde(default)]
    plugins: RawPlugins,
    #[serde(default, rename = "device")]
    devices: Vec<Spanned<RawDevice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    memory: Spanned<toml::Value>,
    #[serde(default)]
    slice: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoot {
    kernel: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    plugin: Spanned<String>,
    #[serde(default)]
    config: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    #[serde(default)]
    path: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: Spanned<String>,
    plugin: Spanned<String>,
    base: Spanned<u64>,
    #[serde(default)]
    irq: Option<Spanned<u32>>,
    #[serde(default)]
    config: Option<toml::Table>,
}

/// Largest guest RAM accepted: the `virt` layout puts RAM at 2 GiB, and 64 GiB is far beyond what
/// this host is meant to give a guest.
const MAX_MEMORY: u64 = 64 << 30;
/// Default `[machine] slice`.
const DEFAULT_SLICE: u64 = 1 << 22;

impl VmConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<VmConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<VmConfig, ConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| ConfigError {
            file: path.to_path_buf(),
            position: Some(line_col(text, span.start)),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: e.span().map(|s| line_col(text, s.start)),
            message: explain(e.message()),
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| if Path::new(p).is_absolute() { PathBuf::from(p) } else { dir.join(p) };

        let machine = raw.machine.into_inner();
        let mem_span = machine.memory.span();
        let memory = parse_size(machine.memory.get_ref())
            .map_err(|m| at(mem_span.clone(), format!("key `machine.memory`: {m}")))?;
        if memory == 0 {
            return Err(at(mem_span, "key `machine.memory`: must be greater than 0".into()));
        }
        if memory % 4096 != 0 {
            return Err(at(
                mem_span,
                format!("key `machine.memory`: {memory} bytes is not a multiple of the 4 KiB page size"),
            ));
        }
        if memory > MAX_MEMORY {
            return Err(at(mem_span, format!("key `machine.memory`: at most {} GiB", MAX_MEMORY >> 30)));
        }
        let slice = match machine.slice {
            Some(s) if *s.get_ref() == 0 => {
                return Err(at(s.span(), "key `machine.slice`: must be greater than 0".into()));
            }
            Some(s) => s.into_inner(),
            None => DEFAULT_SLICE,
        };

        let boot = raw.boot.into_inner();
        let kernel = resolve(boot.kernel.get_ref());
        if let Err(e) = std::fs::metadata(&kernel) {
            return Err(at(
                boot.kernel.span(),
                format!("key `boot.kernel`: cannot read {}: {e}", kernel.display()),
            ));
        }

        let engine = raw.engine.into_inner();
        let engine_ref = plugin_ref(engine.plugin.get_ref(), &resolve)
            .map_err(|m| at(engine.plugin.span(), format!("key `engine.plugin`: {m}")))?;

        let mut devices: Vec<DeviceConfig> = Vec::new();
        for d in raw.devices {
            let d = d.into_inner();
            let id = d.id.get_ref().clone();
            if id.is_empty() {
                return Err(at(d.id.span(), "key `device.id`: must not be empty".into()));
            }
            if devices.iter().any(|o| o.id == id) {
                return Err(at(d.id.span(), format!("key `device.id`: duplicate device id `{id}`")));
            }
            let plugin = plugin_ref(d.plugin.get_ref(), &resolve)
                .map_err(|m| at(d.plugin.span(), format!("key `device.plugin`: {m}")))?;
            if let Some(irq) = &d.irq
                && *irq.get_ref() >= crate::irq::MAX_LINES
            {
                let max = crate::irq::MAX_LINES - 1;
                return Err(at(
                    irq.span(),
                    format!("key `device.irq`: {} is above the highest line, {max}", irq.get_ref()),
                ));
            }
            devices.push(DeviceConfig {
                id,
                plugin,
                base: *d.base.get_ref(),
                irq: d.irq.map(Spanned::into_inner),
                config: table_text(d.config),
                base_position: line_col(text, d.base.span().start),
                plugin_position: line_col(text, d.plugin.span().start),
            });
        }

        Ok(VmConfig {
            file: path.to_path_buf(),
            memory,
            kernel,
            engine: engine_ref,
            engine_config: table_text(engine.config),
            engine_position: line_col(text, engine.plugin.span().start),
            plugin_path: raw.plugins.path.iter().map(|p| resolve(p.get_ref())).collect(),
            devices,
            slice,
        })
    }

    /// An error about this file at `position`.
    pub fn error_at(&self, position: (usize, usize), message: String) -> ConfigError {
        ConfigError { file: self.file.clone(), position: Some(position), message }
    }

    /// An error about this file with no particular position.
    pub fn error(&self, message: String) -> ConfigError {
        ConfigError { file: self.file.clone(), position: None, message }
    }
}

fn table_text(t: Option<toml::Table>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

/// A plugin reference: anything with a `/` or ending in `.so` is a path.
fn plugin_ref(s: &str, resolve: &dyn Fn(&str) -> PathBuf) -> Result<PluginRef, String> {
    if s.is_empty() {
        return Err("must name a plugin or a plugin file".into());
    }
    if s.contains('/') || s.ends_with(".so") {
        Ok(PluginRef::Path(resolve(s)))
    } else if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(PluginRef::Name(s.to_string()))
    } else {
        Err(format!("`{s}` is neither a plugin name (letters, digits, - and _) nor a path to a .so file"))
    }
}

/// Accepts a byte count or a string like `"128M"`, `"1G"`, `"64K"`, `"4096"`.
fn parse_size(v: &toml::Value) -> Result<u64, String> {
    const EXPECTED: &str = "expected a size in bytes or a string such as \"128M\" or \"1G\"";
    match v {
        toml::Value::Integer(i) => u64::try_from(*i).map_err(|_| format!("{i} is negative; {EXPECTED}")),
        toml::Value::String(s) => {
            let t = s.trim();
            let (digits, shift) = match t.char_indices().last() {
                Some((i, 'K' | 'k')) => (&t[..i], 10),
                Some((i, 'M' | 'm')) => (&t[..i], 20),
                Some((i, 'G' | 'g')) => (&t[..i], 30),
                _ => (t, 0),
            };
            let n: u64 = digits.trim().parse().map_err(|_| format!("`{s}` is not a size; {EXPECTED}"))?;
            n.checked_mul(1 << shift).ok_or_else(|| format!("`{s}` is too large"))
        }
        other => Err(format!("found a {}; {EXPECTED}", other.type_str())),
    }
}

/// Rewords the TOML crate's messages so they say which key is meant.
fn explain(msg: &str) -> String {
    let msg = msg.trim_end();
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    msg.to_string()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VmConfig, ConfigError> {
        let dir = std::env::temp_dir().join("vmhost-config-test");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("k.elf"), b"x").unwrap();
        VmConfig::parse(&dir.join("vm.toml"), text)
    }

    const GOOD: &str = "[machine]\nmemory = \"64M\"\n[boot]\nkernel = \"k.elf\"\n[engine]\nplugin = \"interp\"\n\
        [[device]]\nid = \"uart0\"\nplugin = \"serial\"\nbase = 0x10000000\nirq = 10\n";

    #[test]
    fn good_file_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.memory, 64 << 20);
        assert_eq!(c.engine, PluginRef::Name("interp".into()));
        assert_eq!(c.devices[0].base, 0x1000_0000);
        assert_eq!(c.devices[0].irq, Some(10));
        assert_eq!(c.devices[0].base_position, (10, 8));
    }

    #[test]
    fn unknown_key_names_key_line_and_alternatives() {
        let e = parse(&GOOD.replace("memory = \"64M\"", "memory = \"64M\"\nmemroy = 1")).unwrap_err();
        assert_eq!(e.position, Some((3, 1)));
        assert!(e.message.contains("unknown key `memroy`"), "{}", e.message);
        assert!(e.message.contains("`memory`"), "{}", e.message);
    }

    #[test]
    fn zero_and_unaligned_memory_are_refused() {
        let e = parse(&GOOD.replace("\"64M\"", "0")).unwrap_err();
        assert_eq!(e.to_string().split_once(": ").unwrap().1, "key `machine.memory`: must be greater than 0");
        assert_eq!(e.position, Some((2, 10)));
        let e = parse(&GOOD.replace("\"64M\"", "5000")).unwrap_err();
        assert!(e.message.contains("not a multiple of the 4 KiB page size"), "{}", e.message);
    }

    #[test]
    fn missing_kernel_is_refused_with_its_path() {
        let e = parse(&GOOD.replace("k.elf", "nope.elf")).unwrap_err();
        assert_eq!(e.position, Some((4, 10)));
        assert!(e.message.starts_with("key `boot.kernel`: cannot read "), "{}", e.message);
        assert!(e.message.contains("nope.elf"), "{}", e.message);
    }

    #[test]
    fn duplicate_device_id_is_refused() {
        let twice = format!("{GOOD}[[device]]\nid = \"uart0\"\nplugin = \"serial\"\nbase = 0x10001000\n");
        let e = parse(&twice).unwrap_err();
        assert_eq!(e.message, "key `device.id`: duplicate device id `uart0`");
        assert_eq!(e.position, Some((13, 6)));
    }

    #[test]
    fn irq_out_of_range_is_refused() {
        let e = parse(&GOOD.replace("irq = 10", "irq = 128")).unwrap_err();
        assert_eq!(e.message, "key `device.irq`: 128 is above the highest line, 127");
        assert_eq!(e.position, Some((11, 7)));
        let e = parse(&GOOD.replace("irq = 10", "irq = -1")).unwrap_err();
        assert_eq!(e.position, Some((11, 7)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&toml::Value::String("1G".into())), Ok(1 << 30));
        assert_eq!(parse_size(&toml::Value::String("64k".into())), Ok(64 << 10));
        assert!(parse_size(&toml::Value::Boolean(true)).unwrap_err().contains("found a boolean"));
    }
}
