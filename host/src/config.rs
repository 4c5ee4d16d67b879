//! `vm.toml`: the machine description, parsed and validated.
//!
//! Every error names the file, the line and column, the key, and what was expected. Paths in the
//! file are relative to the file's own directory.

use crate::files::{not_regular, read_regular_file};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

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
    /// What to boot: `[boot]`.
    pub boot: BootConfig,
    /// The engine plugin: a name or a path.
    pub engine: PluginRef,
    /// The engine's own configuration table, as TOML text.
    pub engine_config: String,
    /// Where `[engine] plugin` is, for errors found when loading it.
    pub engine_position: (usize, usize),
    /// Where the keys of `[engine.config]` are, for the engine's errors about them.
    pub engine_config_keys: KeyPositions,
    /// Extra plugin search directories from `[plugins] path`.
    pub plugin_path: Vec<PathBuf>,
    /// Devices, in file order (which is their start order).
    pub devices: Vec<DeviceConfig>,
    /// Instructions an engine runs before returning to the host's loop.
    pub slice: u64,
    /// What `mtime` counts.
    pub clock: ClockConfig,
    /// Harts (`[machine] harts`, 1 to [`MAX_HARTS`]).
    pub harts: u32,
}

/// Most harts a machine may have (the PLIC's 15872 contexts and the CLINT's 4095 harts allow
/// more; this bounds host threads).
pub const MAX_HARTS: u32 = 64;

/// `[machine] clock`: what drives the guest's `mtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockConfig {
    /// 10 MHz from the host's monotonic clock (the default, as QEMU).
    #[default]
    Host,
    /// From instructions retired (and time skipped while the hart waits for its timer), so the
    /// same guest with the same input gives the same run, as QEMU's `-icount`.
    Instructions,
}

/// `[boot]`: the images and boot arguments, as QEMU's `-bios`, `-kernel`, `-initrd`, `-append`
/// and `-dtb` give them. At least one of `firmware` and `kernel` is there.
#[derive(Debug, Clone, Default)]
pub struct BootConfig {
    /// M-mode firmware (ELF or raw, at RAM base); the hart starts there.
    pub firmware: Option<BootFile>,
    /// The next stage after the firmware, or without firmware the program started in M-mode.
    pub kernel: Option<BootFile>,
    /// An initial ramdisk, copied raw; only with a kernel.
    pub initrd: Option<BootFile>,
    /// The kernel command line (`/chosen/bootargs`); only with a kernel.
    pub cmdline: Option<String>,
    /// A device tree blob used instead of the generated one.
    pub dtb: Option<BootFile>,
}

/// A file named in `[boot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    /// The file, resolved against the vm.toml's directory.
    pub path: PathBuf,
    /// Where its value is in vm.toml, for errors found when it is loaded.
    pub position: Position,
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
    /// Where the keys of its `config` table are, for the plugin's errors about them.
    pub config_keys: KeyPositions,
}

/// A 1-based (line, column) in the file.
pub type Position = (usize, usize);

/// Where each key of a plugin's table is in the file: (dotted path inside the table, position of
/// the key, position of its value). A plugin's configuration errors name the key they are about
/// (see `vm_plugin_api::config`); this finds it in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPositions(pub Vec<(String, Position, Position)>);

impl KeyPositions {
    /// The place a plugin's configuration error is about: the key for an unknown key, else the
    /// value. `None` when the message names no key of the table.
    pub fn locate(&self, message: &str) -> Option<Position> {
        let key = vm_plugin_api::config::key_of_message(message)?;
        let (_, name, value) = self.0.iter().find(|(k, ..)| k == key)?;
        Some(if message.starts_with("unknown key") { *name } else { *value })
    }

    fn collect(text: &str, table: Option<&Spanned<DeValue<'_>>>) -> KeyPositions {
        let mut keys = KeyPositions::default();
        if let Some(t) = table {
            keys.add(text, "", t.get_ref());
        }
        keys
    }

    fn add(&mut self, text: &str, prefix: &str, value: &DeValue<'_>) {
        let children: Vec<(String, &Spanned<DeValue<'_>>, Option<usize>)> = match value {
            DeValue::Table(t) => {
                t.iter().map(|(k, v)| (k.get_ref().to_string(), v, Some(k.span().start))).collect()
            }
            DeValue::Array(a) => a.iter().enumerate().map(|(i, v)| (i.to_string(), v, None)).collect(),
            _ => return,
        };
        for (name, v, key_at) in children {
            let path = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
            let value_at = line_col(text, v.span().start);
            self.0.push((path.clone(), key_at.map_or(value_at, |k| line_col(text, k)), value_at));
            self.add(text, &path, v.get_ref());
        }
    }
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
    #[serde(default)]
    clock: Option<Spanned<String>>,
    #[serde(default)]
    harts: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoot {
    #[serde(default)]
    firmware: Option<Spanned<String>>,
    #[serde(default)]
    kernel: Option<Spanned<String>>,
    #[serde(default)]
    initrd: Option<Spanned<String>>,
    #[serde(default)]
    cmdline: Option<Spanned<String>>,
    #[serde(default)]
    dtb: Option<Spanned<String>>,
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
/// Largest vm.toml read: far above any real machine description.
const MAX_FILE_SIZE: u64 = 1 << 20;
/// Largest `[boot] dtb`: Linux maps at most 2 MiB of device tree (`MAX_FDT_SIZE`).
pub const MAX_DTB_SIZE: u64 = 2 << 20;
/// Default `[machine] slice`.
const DEFAULT_SLICE: u64 = 1 << 22;

impl VmConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<VmConfig, ConfigError> {
        let error = |message| ConfigError { file: path.to_path_buf(), position: None, message };
        let bytes = read_regular_file(path, MAX_FILE_SIZE, |size| {
            format!("the file is {size} bytes; a vm.toml may be at most {MAX_FILE_SIZE} bytes (1 MiB)")
        })
        .map_err(|m| error(m.replacen(&path.display().to_string(), "the file", 1)))?;
        let text = String::from_utf8(bytes).map_err(|e| error(format!("the file is not UTF-8 text: {e}")))?;
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
            message: explain(e.message(), e.span().and_then(|s| text.get(s))),
        })?;
        // The same text again, keeping every key's place, for the plugins' tables.
        let spans = DeTable::parse(text).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: e.span().map(|s| line_col(text, s.start)),
            message: explain(e.message(), None),
        })?;
        let spans = spans.get_ref();
        let plugin_table = |section: &str, index: Option<usize>| {
            let entry = spans.get(section).map(|v| v.get_ref());
            let entry = match index {
                Some(i) => entry.and_then(|a| a.get(i)).map(|v| v.get_ref()),
                None => entry,
            };
            KeyPositions::collect(text, entry.and_then(|e| e.get("config")))
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| if Path::new(p).is_absolute() { PathBuf::from(p) } else { dir.join(p) };

        let machine = raw.machine.into_inner();
        let mem_span = machine.memory.span();
        let memory = parse_size(machine.memory.get_ref())
            .map_err(|m| at(mem_span.clone(), format!("key `machine.memory`: {m}")))?;
        if memory == 0 {
            return Err(at(mem_span, "key `machine.memory`: must be greater than 0".into()));
        }
        if memory > MAX_MEMORY {
            return Err(at(
                mem_span,
                format!(
                    "key `machine.memory`: {memory} bytes is too large; at most {} GiB",
                    MAX_MEMORY >> 30
                ),
            ));
        }
        if memory % 4096 != 0 {
            return Err(at(
                mem_span,
                format!("key `machine.memory`: {memory} bytes is not a multiple of the 4 KiB page size"),
            ));
        }
        let slice = match machine.slice {
            Some(s) if *s.get_ref() == 0 => {
                return Err(at(s.span(), "key `machine.slice`: must be greater than 0".into()));
            }
            Some(s) => s.into_inner(),
            None => DEFAULT_SLICE,
        };
        let machine_clock_span = machine.clock.as_ref().map(|c| c.span());
        let clock = match machine.clock {
            None => ClockConfig::Host,
            Some(c) => match c.get_ref().as_str() {
                "host" => ClockConfig::Host,
                "instructions" => ClockConfig::Instructions,
                other => {
                    return Err(at(
                        c.span(),
                        format!(
                            "key `machine.clock`: `{other}` is not a clock; use \"host\" or \"instructions\""
                        ),
                    ));
                }
            },
        };
        let harts = match machine.harts {
            None => 1,
            Some(h) => match u32::try_from(*h.get_ref()) {
                Ok(n @ 1..=MAX_HARTS) => n,
                _ => {
                    let m = format!("key `machine.harts`: {} harts; use 1 to {MAX_HARTS}", h.get_ref());
                    return Err(at(h.span(), m));
                }
            },
        };
        if harts > 1 && clock == ClockConfig::Instructions {
            let span = machine_clock_span.unwrap_or(0..0);
            return Err(at(
                span,
                format!(
                    "key `machine.clock`: \"instructions\" needs one hart (this machine has {harts}): \
                     with several, mtime would depend on how the host schedules them"
                ),
            ));
        }

        let boot_span = raw.boot.span();
        let raw_boot = raw.boot.into_inner();
        // Type and size from the metadata alone: opening a FIFO would block, reading a device or
        // a huge sparse file would not end. The loader checks the opened file again.
        let file = |key: &str, v: &Option<Spanned<String>>, max: u64, limit: &str| match v {
            None => Ok(None),
            Some(v) => {
                let path = resolve(v.get_ref());
                let problem = match std::fs::metadata(&path) {
                    Err(e) => Some(format!("cannot read {}: {e}", path.display())),
                    Ok(m) => match not_regular(&m) {
                        Some(kind) => Some(format!("{} is {kind}, not a regular file", path.display())),
                        None if m.len() > max => {
                            Some(format!("{} is {} bytes, larger than {limit}", path.display(), m.len()))
                        }
                        None => None,
                    },
                };
                match problem {
                    Some(p) => Err(at(v.span(), format!("key `boot.{key}`: {p}"))),
                    None => Ok(Some(BootFile { path, position: line_col(text, v.span().start) })),
                }
            }
        };
        let ram_limit = format!("RAM (`machine.memory`, {memory} bytes)");
        let dtb_limit = format!("{MAX_DTB_SIZE} bytes (2 MiB, the most Linux maps)");
        let boot = BootConfig {
            firmware: file("firmware", &raw_boot.firmware, memory, &ram_limit)?,
            kernel: file("kernel", &raw_boot.kernel, memory, &ram_limit)?,
            initrd: file("initrd", &raw_boot.initrd, memory, &ram_limit)?,
            cmdline: raw_boot.cmdline.as_ref().map(|c| c.get_ref().clone()),
            dtb: file("dtb", &raw_boot.dtb, MAX_DTB_SIZE, &dtb_limit)?,
        };
        if boot.firmware.is_none() && boot.kernel.is_none() {
            return Err(at(
                boot_span,
                "key `boot`: nothing to boot; give `kernel` (started in M-mode), `firmware`, or both".into(),
            ));
        }
        // As QEMU: "-initrd only allowed with -kernel option", and the same for -append.
        if boot.kernel.is_none() {
            for (key, v) in [("initrd", &raw_boot.initrd), ("cmdline", &raw_boot.cmdline)] {
                if let Some(v) = v {
                    return Err(at(
                        v.span(),
                        format!("key `boot.{key}`: only allowed with `boot.kernel`, the stage it is for"),
                    ));
                }
            }
        }
        if let Some(c) = &raw_boot.cmdline
            && c.get_ref().contains('\0')
        {
            return Err(at(c.span(), "key `boot.cmdline`: must not contain a NUL character".into()));
        }

        let engine = raw.engine.into_inner();
        let engine_ref = plugin_ref(engine.plugin.get_ref(), &resolve)
            .map_err(|m| at(engine.plugin.span(), format!("key `engine.plugin`: {m}")))?;

        let mut devices: Vec<DeviceConfig> = Vec::new();
        for (index, d) in raw.devices.into_iter().enumerate() {
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
            if let Some(irq) = &d.irq {
                let (n, max) = (*irq.get_ref(), crate::devices::plic::NUM_SOURCES - 1);
                let problem = if n == 0 {
                    Some(format!(
                        "line 0 is reserved (on a PLIC, source 0 means no interrupt); use 1 to {max}"
                    ))
                } else if n > max {
                    Some(format!("{n} is above the highest line, {max} (the PLIC has sources 1 to {max})"))
                } else {
                    devices.iter().find(|o| o.irq == Some(n)).map(|o| {
                        format!(
                            "devices '{}' and '{id}' are both on interrupt line {n}; give each device its own line",
                            o.id
                        )
                    })
                };
                if let Some(p) = problem {
                    return Err(at(irq.span(), format!("key `device.irq`: {p}")));
                }
            }
            devices.push(DeviceConfig {
                id,
                plugin,
                base: *d.base.get_ref(),
                irq: d.irq.map(Spanned::into_inner),
                config: table_text(d.config),
                base_position: line_col(text, d.base.span().start),
                plugin_position: line_col(text, d.plugin.span().start),
                config_keys: plugin_table("device", Some(index)),
            });
        }

        Ok(VmConfig {
            file: path.to_path_buf(),
            memory,
            boot,
            engine: engine_ref,
            engine_config: table_text(engine.config),
            engine_position: line_col(text, engine.plugin.span().start),
            engine_config_keys: plugin_table("engine", None),
            plugin_path: raw.plugins.path.iter().map(|p| resolve(p.get_ref())).collect(),
            devices,
            slice,
            clock,
            harts,
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
        other => Err(format!("found {}; {EXPECTED}", with_article(other.type_str()))),
    }
}

/// Rewords the TOML crate's messages so they say which key is meant (`at` is the text the error's
/// span covers: for a duplicate key, the key).
fn explain(msg: &str, at: Option<&str>) -> String {
    let msg = msg.trim_end();
    if msg == "duplicate key"
        && let Some(key) = at
    {
        return format!("duplicate key `{}`", key.trim_matches(['"', '\'']));
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    msg.to_string()
}

/// "a boolean", "an array", "an integer".
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {noun}")
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
    fn boot_keys_resolve_against_the_file_and_keep_their_place() {
        let c = parse(&GOOD.replace(
            "kernel = \"k.elf\"",
            "firmware = \"k.elf\"\nkernel = \"k.elf\"\ninitrd = \"k.elf\"\ncmdline = \"a b\"\ndtb = \"k.elf\"",
        ))
        .unwrap();
        let dir = std::env::temp_dir().join("vmhost-config-test");
        let f = c.boot.firmware.unwrap();
        assert_eq!((f.path, f.position), (dir.join("k.elf"), (4, 12)));
        assert_eq!(c.boot.initrd.unwrap().position, (6, 10));
        assert_eq!(c.boot.dtb.unwrap().position, (8, 7));
        assert_eq!(c.boot.cmdline.as_deref(), Some("a b"));
        let c = parse(&GOOD.replace("kernel = ", "firmware = ")).unwrap();
        assert!(c.boot.kernel.is_none() && c.boot.firmware.is_some());
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
        let e = parse(&GOOD.replace("irq = 10", "irq = 96")).unwrap_err();
        assert_eq!(
            e.message,
            "key `device.irq`: 96 is above the highest line, 95 (the PLIC has sources 1 to 95)"
        );
        assert_eq!(e.position, Some((11, 7)));
        let e = parse(&GOOD.replace("irq = 10", "irq = -1")).unwrap_err();
        assert_eq!(e.position, Some((11, 7)));
    }

    #[test]
    fn irq_zero_and_shared_lines_are_refused() {
        let e = parse(&GOOD.replace("irq = 10", "irq = 0")).unwrap_err();
        assert_eq!(
            e.message,
            "key `device.irq`: line 0 is reserved (on a PLIC, source 0 means no interrupt); use 1 to 95"
        );
        assert_eq!(e.position, Some((11, 7)));
        let two =
            format!("{GOOD}[[device]]\nid = \"uart1\"\nplugin = \"serial\"\nbase = 0x10001000\nirq = 10\n");
        let e = parse(&two).unwrap_err();
        assert_eq!(
            e.message,
            "key `device.irq`: devices 'uart0' and 'uart1' are both on interrupt line 10; give each device its own line"
        );
        assert_eq!(e.position, Some((16, 7)));
        assert!(parse(&two.replace("irq = 10\n", "irq = 11\n").replacen("irq = 11", "irq = 10", 1)).is_ok());
    }

    #[test]
    fn duplicate_keys_are_named() {
        let e = parse(&GOOD.replace("memory = \"64M\"", "memory = \"64M\"\nmemory = 1")).unwrap_err();
        assert_eq!(e.message, "duplicate key `memory`");
        assert_eq!(e.position, Some((3, 1)));
        let e = parse(&GOOD.replace("[boot]", "[machine]\n[boot]")).unwrap_err();
        assert!(e.message.starts_with("duplicate key `machine`"), "{}", e.message);
    }

    #[test]
    fn huge_memory_is_too_large_not_unaligned() {
        let e = parse(&GOOD.replace("\"64M\"", "\"18446744073709551615\"")).unwrap_err();
        assert_eq!(
            e.message,
            "key `machine.memory`: 18446744073709551615 bytes is too large; at most 64 GiB"
        );
        let e = parse(&GOOD.replace("\"64M\"", "[1]")).unwrap_err();
        assert!(e.message.contains("found an array; expected a size"), "{}", e.message);
    }

    #[test]
    fn kernel_must_be_a_regular_file_no_larger_than_ram() {
        let e = parse(&GOOD.replace("k.elf", "/dev/zero")).unwrap_err();
        assert_eq!(e.message, "key `boot.kernel`: /dev/zero is a character device, not a regular file");
        assert_eq!(e.position, Some((4, 10)));
        let e = parse(&GOOD.replace("k.elf", "/")).unwrap_err();
        assert_eq!(e.message, "key `boot.kernel`: / is a directory, not a regular file");
        let dir = std::env::temp_dir().join("vmhost-config-test");
        let big = std::fs::File::create(dir.join("big.bin")).unwrap();
        big.set_len((64 << 20) + 1).unwrap();
        let e = parse(&GOOD.replace("k.elf", "big.bin")).unwrap_err();
        assert!(
            e.message
                .ends_with("big.bin is 67108865 bytes, larger than RAM (`machine.memory`, 67108864 bytes)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn plugin_table_keys_are_located() {
        let text = format!(
            "{GOOD}[device.config]\nseed = 1\nsub = {{ a = [1, {{ b = 2 }}] }}\n\
             [[device]]\nid = \"d1\"\nplugin = \"x\"\nbase = 0\nconfig = {{ n = 3 }}\n"
        );
        let c = parse(&text).unwrap();
        let keys = &c.devices[0].config_keys;
        assert_eq!(keys.locate("unknown key `seed`"), Some((13, 1)));
        assert_eq!(keys.locate("key `seed`: invalid type"), Some((13, 8)));
        assert_eq!(keys.locate("key `sub.a.1.b`: invalid type"), Some((14, 23)));
        assert_eq!(keys.locate("key `nope`: invalid type"), None);
        assert_eq!(keys.locate("missing key `n`"), None);
        assert_eq!(c.devices[1].config_keys.locate("key `n`: bad"), Some((19, 16)));
        assert_eq!(c.devices[0].config, "seed = 1\n\n[sub]\na = [1, { b = 2 }]\n");
        let c = parse(&GOOD.replace("plugin = \"interp\"", "plugin = \"interp\"\nconfig = { async = 1 }"))
            .unwrap();
        assert_eq!(c.engine_config_keys.locate("key `async`: invalid type"), Some((7, 20)));
    }

    #[test]
    fn vm_toml_must_be_a_small_regular_file() {
        let e = VmConfig::load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "/dev/zero: the file is a character device, not a regular file");
        let dir = std::env::temp_dir().join("vmhost-config-test");
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.toml");
        std::fs::File::create(&big).unwrap().set_len(4 << 30).unwrap();
        let e = VmConfig::load(&big).unwrap_err();
        assert_eq!(e.message, "the file is 4294967296 bytes; a vm.toml may be at most 1048576 bytes (1 MiB)");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&toml::Value::String("1G".into())), Ok(1 << 30));
        assert_eq!(parse_size(&toml::Value::String("64k".into())), Ok(64 << 10));
        assert!(parse_size(&toml::Value::Boolean(true)).unwrap_err().contains("found a boolean"));
        assert!(parse_size(&toml::Value::Array(vec![])).unwrap_err().contains("found an array"));
    }
}
