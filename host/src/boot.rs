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

/// Loads `path` into `ram`. The file must be a regular file no larger than RAM (checked before
/// anything is read, so a device or a huge sparse file is refused at once).
pub fn load_kernel(path: &Path, ram: &GuestRam) -> Result<Image, String> {
    let data = crate::config::read_regular_file(path, ram.size, |size| {
        format!(
            "{}: the kernel file is {size} bytes, larger than RAM ({} bytes); give the machine more memory",
            path.display(),
            ram.size
        )
    })?;
    if data.is_empty() {
        return Err(format!("{}: the kernel file is empty", path.display()));
    }
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
    // Before parsing: object reads either byte order, and a big-endian header fails in less
    // obvious ways. RISC-V is little-endian only.
    const EI_DATA: usize = 5;
    if data.get(EI_DATA) == Some(&elf::ELFDATA2MSB.0) {
        return Err("a big-endian ELF file; RISC-V guests are little-endian".into());
    }
    let file = ElfFile64::<object::Endianness>::parse(data)
        .map_err(|e| format!("not a 64-bit ELF file ({e}); vmhost runs 64-bit RISC-V guests"))?;
    let endian = file.endian();
    let header = file.elf_header();
    if header.e_machine(endian) != elf::EM_RISCV {
        return Err(format!("ELF machine is {}, not RISC-V ({})", header.e_machine(endian), elf::EM_RISCV));
    }
    match header.e_type(endian) {
        elf::ET_EXEC | elf::ET_DYN => {}
        elf::ET_REL => {
            return Err("a relocatable object file (ET_REL), not an executable: link it first".into());
        }
        t => return Err(format!("ELF type {t} is not an executable (ET_EXEC)")),
    }
    let end = ram.base + ram.size;
    // Checked in full before anything is copied: (start, end) of each segment so far.
    let mut loaded: Vec<(u64, u64)> = Vec::new();
    let mut segments = Vec::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) != elf::PT_LOAD || ph.p_memsz(endian) == 0 {
            continue;
        }
        let addr = ph.p_paddr(endian);
        let (filesz, memsz) = (ph.p_filesz(endian), ph.p_memsz(endian));
        if filesz > memsz {
            return Err(format!(
                "segment at {addr:#x} is malformed: its size in the file ({filesz:#x} bytes) is larger than \
                 its size in memory ({memsz:#x} bytes)"
            ));
        }
        let bytes =
            ph.data(endian, data).map_err(|_| format!("segment at {addr:#x} extends past the file"))?;
        let seg_end = addr.checked_add(memsz).filter(|&e| addr >= ram.base && e <= end).ok_or_else(|| {
            format!(
                "segment at {addr:#x} ({memsz:#x} bytes) lies outside RAM {:#x}..{end:#x}; \
                 give the machine more memory or link the program for this memory map",
                ram.base
            )
        })?;
        if let Some((s, e)) = loaded.iter().find(|(s, e)| addr < *e && *s < seg_end) {
            return Err(format!(
                "segments at {s:#x}..{e:#x} and {addr:#x}..{seg_end:#x} overlap; each byte of memory must \
                 come from one segment"
            ));
        }
        loaded.push((addr, seg_end));
        segments.push((addr, bytes, memsz));
    }
    if segments.is_empty() {
        return Err("the ELF file has no loadable segments".into());
    }
    for (addr, bytes, memsz) in segments {
        ram.write_bytes(addr, bytes).ok_or("segment copy failed")?;
        let zeros = vec![0u8; (memsz - bytes.len() as u64) as usize];
        ram.write_bytes(addr + bytes.len() as u64, &zeros).ok_or("segment zeroing failed")?;
    }
    let image_end = loaded.iter().map(|&(_, e)| e).max().unwrap_or(ram.base);
    Ok(Image { entry: header.e_entry(endian), end: image_end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::GuestMemory;

    /// The loader's own checks, for a file that changed after vm.toml was validated.
    #[test]
    fn loader_refuses_special_huge_and_empty_files_before_reading() {
        let ram = GuestMemory::new(0x8000_0000, 0x10000).unwrap();
        let dir = std::env::temp_dir().join(format!("vmhost-boot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("k.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = |p: &Path| load_kernel(p, &ram.view()).unwrap_err();
        assert_eq!(err(&fifo), format!("{} is a FIFO (named pipe), not a regular file", fifo.display()));
        assert_eq!(err(Path::new("/dev/zero")), "/dev/zero is a character device, not a regular file");
        let big = dir.join("big.bin");
        std::fs::File::create(&big).unwrap().set_len(0x10001).unwrap();
        assert_eq!(
            err(&big),
            format!(
                "{}: the kernel file is 65537 bytes, larger than RAM (65536 bytes); give the machine more memory",
                big.display()
            )
        );
        let empty = dir.join("empty.bin");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(err(&empty), format!("{}: the kernel file is empty", empty.display()));
        let raw = dir.join("raw.bin");
        std::fs::write(&raw, [0x13, 0, 0, 0]).unwrap();
        assert_eq!(load_kernel(&raw, &ram.view()), Ok(Image { entry: 0x8000_0000, end: 0x8000_0004 }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
