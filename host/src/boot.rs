//! Loads the guest program into RAM: an ELF's loadable segments at their physical addresses, or a
//! raw image at the start of RAM.

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use std::path::Path;
use vm_plugin_api::GuestRam;

/// Where execution starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry(pub u64);

/// Loads `path` into `ram`.
pub fn load_kernel(path: &Path, ram: &GuestRam) -> Result<Entry, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if data.starts_with(&elf::ELFMAG) {
        load_elf(&data, ram).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        ram.write_bytes(ram.base, &data).ok_or_else(|| {
            format!(
                "{}: the raw image ({} bytes) is larger than RAM ({} bytes)",
                path.display(),
                data.len(),
                ram.size
            )
        })?;
        Ok(Entry(ram.base))
    }
}

fn load_elf(data: &[u8], ram: &GuestRam) -> Result<Entry, String> {
    let file = ElfFile64::<object::Endianness>::parse(data)
        .map_err(|e| format!("not a 64-bit ELF file ({e}); vmhost runs 64-bit RISC-V guests"))?;
    let endian = file.endian();
    let header = file.elf_header();
    if header.e_machine(endian) != elf::EM_RISCV {
        return Err(format!("ELF machine is {}, not RISC-V ({})", header.e_machine(endian), elf::EM_RISCV));
    }
    let end = ram.base + ram.size;
    let mut loaded = false;
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) != elf::PT_LOAD || ph.p_memsz(endian) == 0 {
            continue;
        }
        let addr = ph.p_paddr(endian);
        let memsz = ph.p_memsz(endian);
        let bytes =
            ph.data(endian, data).map_err(|_| format!("segment at {addr:#x} extends past the file"))?;
        if addr < ram.base || addr.checked_add(memsz).is_none_or(|e| e > end) || (bytes.len() as u64) > memsz
        {
            return Err(format!(
                "segment at {addr:#x} ({memsz:#x} bytes) lies outside RAM {:#x}..{end:#x}; \
                 give the machine more memory or link the program for this memory map",
                ram.base
            ));
        }
        ram.write_bytes(addr, bytes).ok_or("segment copy failed")?;
        let zeros = vec![0u8; (memsz - bytes.len() as u64) as usize];
        ram.write_bytes(addr + bytes.len() as u64, &zeros).ok_or("segment zeroing failed")?;
        loaded = true;
    }
    if !loaded {
        return Err("the ELF file has no loadable segments".into());
    }
    Ok(Entry(header.e_entry(endian)))
}
