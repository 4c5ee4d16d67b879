//! Loads the guest program into RAM: an ELF's loadable segments at their physical addresses, or a
//! raw image at the start of RAM.

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use std::path::Path;
use vm_plugin_api::GuestRam;

/// A program loaded into RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    /// Where execution starts.
    pub entry: u64,
    /// One past the highest byte loaded.
    pub end: u64,
}

/// Loads `path` into `ram`.
pub fn load_kernel(path: &Path, ram: &GuestRam) -> Result<Image, String> {
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
        Ok(Image { entry: ram.base, end: ram.base + data.len() as u64 })
    }
}

/// Copies the device tree blob near the top of RAM, as QEMU does (2 MiB aligned when RAM allows,
/// else 8-byte aligned), above the loaded image. Returns its guest address.
pub fn place_dtb(ram: &GuestRam, image_end: u64, dtb: &[u8]) -> Result<u64, String> {
    let top = ram.base + ram.size;
    let size = dtb.len() as u64;
    let at = top
        .checked_sub(size)
        .map(|a| if a & !0x1f_ffff >= image_end { a & !0x1f_ffff } else { a & !7 })
        .filter(|&a| a >= image_end)
        .ok_or_else(|| {
            format!(
                "{} bytes of RAM leave no room for the {size}-byte device tree above the guest image",
                ram.size
            )
        })?;
    ram.write_bytes(at, dtb).ok_or("device tree copy failed")?;
    Ok(at)
}

fn load_elf(data: &[u8], ram: &GuestRam) -> Result<Image, String> {
    let file = ElfFile64::<object::Endianness>::parse(data)
        .map_err(|e| format!("not a 64-bit ELF file ({e}); vmhost runs 64-bit RISC-V guests"))?;
    let endian = file.endian();
    let header = file.elf_header();
    if header.e_machine(endian) != elf::EM_RISCV {
        return Err(format!("ELF machine is {}, not RISC-V ({})", header.e_machine(endian), elf::EM_RISCV));
    }
    let end = ram.base + ram.size;
    let mut image_end = None;
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
        image_end = image_end.max(Some(addr + memsz));
    }
    let end = image_end.ok_or("the ELF file has no loadable segments")?;
    Ok(Image { entry: header.e_entry(endian), end })
}
