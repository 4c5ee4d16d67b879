//! A plugin library checked before `dlopen`, which trusts the file: a segment past a truncated
//! file's end kills the process with SIGBUS, and a FIFO blocks it. The file must be a regular file
//! holding a complete 64-bit little-endian shared library for this host's machine; the same pass
//! reads the build profile the plugin recorded in its symbol table.

use super::LoadError;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use std::fmt;
use std::path::Path;
use std::time::SystemTime;

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
    /// `release build, modified 2026-12-01T07:50:12Z (3 min ago)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.profile {
            Some(p) => write!(f, "{p} build")?,
            None => f.write_str("profile unknown")?,
        }
        if let Some(m) = self.modified {
            write!(f, ", modified {} ({})", timestamp(m), age(m, SystemTime::now()))?;
        }
        Ok(())
    }
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
pub(super) fn inspect(path: &Path) -> Result<Build, LoadError> {
    let missing = |e: std::io::Error| LoadError::Missing { path: path.to_path_buf(), reason: e.to_string() };
    let unloadable = |reason: String| LoadError::Unloadable { path: path.to_path_buf(), reason };
    // The type first, from the directory entry: opening a FIFO for reading would block.
    let meta = std::fs::metadata(path).map_err(missing)?;
    if let Some(kind) = crate::files::not_regular(&meta) {
        return Err(unloadable(format!("it is {kind}, not a regular file")));
    }
    if meta.len() > MAX_LIBRARY_BYTES {
        return Err(unloadable(format!(
            "it is {} bytes, more than the {MAX_LIBRARY_BYTES} bytes a plugin library may have",
            meta.len()
        )));
    }
    // Opened non-blocking and checked again (the path may have been replaced since), read capped.
    let too_large = |size| {
        format!("it is {size} bytes, more than the {MAX_LIBRARY_BYTES} bytes a plugin library may have")
    };
    let data = crate::files::read_regular_file(path, MAX_LIBRARY_BYTES, too_large).map_err(unloadable)?;
    let profile = check_library(&data).map_err(|e| match e {
        Refusal::NotElf => LoadError::NotAPlugin {
            path: path.to_path_buf(),
            reason: "it is not an ELF shared library (its first bytes are not \\x7fELF)".into(),
        },
        Refusal::Bad(reason) => unloadable(reason),
    })?;
    Ok(Build { profile, modified: meta.modified().ok() })
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

/// `t` in RFC 3339, to the second, in UTC: `2026-12-01T07:50:12Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |s| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(timestamp(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(at(1_000_000_000)), "2001-09-09T01:46:40Z");
        assert_eq!(timestamp(at(951_782_400)), "2000-02-29T00:00:00Z");
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
}
