//! Loads the boot images into RAM and places them as QEMU 7.2 places them on `virt`
//! (`hw/riscv/boot.c`, `virt_machine_done` in `hw/riscv/virt.c`): the firmware at the start of
//! RAM, the next stage 2 MiB above the firmware's end, the initrd part-way into RAM, the device
//! tree near the top, and the `fw_dynamic` information OpenSBI reads through `a2` in the boot ROM.
//! An ELF file is loaded at its segments' physical addresses, a raw image at its place.

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use std::path::Path;
use vm_plugin_api::GuestRam;

/// A program loaded into RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    /// The ELF entry point, or the load address of a raw image.
    pub entry: u64,
    /// The lowest byte loaded: where QEMU starts the next stage (see [`place`]).
    pub start: u64,
    /// One past the highest byte loaded.
    pub end: u64,
}

/// Where a boot image goes: the `[boot]` key it came from, its file, and for a raw image, where.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    /// `firmware`, `kernel` or `initrd`: for messages.
    pub key: &'static str,
    /// The file.
    pub path: &'a Path,
    /// Where a raw image is copied.
    pub raw_at: u64,
    /// Whether an ELF file is loaded as ELF (an initrd is always copied raw, as QEMU does).
    pub elf: bool,
}

/// Loads `path` into `ram`, raw at RAM base. The file must be a regular file no larger than RAM
/// (checked before anything is read, so a device or a huge sparse file is refused at once).
pub fn load_kernel(path: &Path, ram: &GuestRam) -> Result<Image, String> {
    load(&Load { key: "kernel", path, raw_at: ram.base, elf: true }, ram)
}

/// Loads one boot image.
pub fn load(what: &Load<'_>, ram: &GuestRam) -> Result<Image, String> {
    let (key, path) = (what.key, what.path);
    let data = crate::files::read_regular_file(path, ram.size, |size| {
        format!(
            "{}: the {key} file is {size} bytes, larger than RAM ({} bytes); give the machine more memory",
            path.display(),
            ram.size
        )
    })?;
    if data.is_empty() {
        return Err(format!("{}: the {key} file is empty", path.display()));
    }
    if what.elf && data.starts_with(&elf::ELFMAG) {
        return load_elf(&data, ram).map_err(|e| format!("{}: {e}", path.display()));
    }
    let (at, len) = (what.raw_at, data.len() as u64);
    let ram_end = ram.base + ram.size;
    if at.checked_add(len).is_none_or(|end| end > ram_end) {
        return Err(format!(
            "{}: the {key} ({len} bytes) placed at {at:#x} would end at {:#x}, past the end of RAM \
             ({ram_end:#x}); give the machine more memory",
            path.display(),
            at.saturating_add(len)
        ));
    }
    ram.write_bytes(at, &data).ok_or("image copy failed")?;
    Ok(Image { entry: at, start: at, end: at + len })
}

/// The boot ROM of QEMU's `virt` board: a reset vector and the `fw_dynamic` information after it.
pub const MROM_BASE: u64 = 0x1000;
/// Its size.
pub const MROM_SIZE: u64 = 0xf000;
/// The ten words of QEMU's reset vector (`riscv_setup_rom_reset_vec`), before the information.
const RESET_VEC_SIZE: u64 = 40;
/// Where the `fw_dynamic` information is: what `a2` holds at the first instruction.
pub const FW_DYNAMIC_INFO_ADDR: u64 = MROM_BASE + RESET_VEC_SIZE;
/// `FW_DYNAMIC_INFO_MAGIC_VALUE` ("OSBI"), version 2 (with `boot_hart`), next mode S.
pub const FW_DYNAMIC_INFO_MAGIC: u64 = 0x4942_534f;
const FW_DYNAMIC_INFO_VERSION: u64 = 2;
const FW_DYNAMIC_INFO_NEXT_MODE_S: u64 = 1;

/// The boot ROM's contents: QEMU's reset vector for RV64 (it loads `a1` and the start address
/// from the two words after it), then `struct fw_dynamic_info` (six 64-bit fields: magic,
/// version, next_addr, next_mode, options, boot_hart). vmhost starts the hart with the registers
/// the vector would set, so the vector is there for a guest that reads or jumps to it.
pub fn boot_rom(start: u64, fdt: u64, next_addr: u64) -> Vec<u8> {
    let vector: [u32; 6] = [
        0x0000_0297, // 1: auipc t0, %pcrel_hi(fw_dyn)
        0x0282_8613, //    addi  a2, t0, %pcrel_lo(1b)
        0xf140_2573, //    csrr  a0, mhartid
        0x0202_b583, //    ld    a1, 32(t0)
        0x0182_b283, //    ld    t0, 24(t0)
        0x0002_8067, //    jr    t0
    ];
    let mut rom: Vec<u8> = vector.iter().flat_map(|w| w.to_le_bytes()).collect();
    let info = [
        start,
        fdt,
        FW_DYNAMIC_INFO_MAGIC,
        FW_DYNAMIC_INFO_VERSION,
        next_addr,
        FW_DYNAMIC_INFO_NEXT_MODE_S,
        0, // options
        0, // boot_hart
    ];
    rom.extend(info.iter().flat_map(|w| w.to_le_bytes()));
    rom
}

/// QEMU 7.2's `riscv_calc_kernel_start_addr` for RV64: the next stage goes at the firmware's
/// end rounded up to 2 MiB (0x8020_0000 after any firmware under 2 MiB).
pub fn kernel_start(firmware_end: u64) -> u64 {
    firmware_end.next_multiple_of(2 << 20)
}

/// QEMU 7.2's `riscv_load_initrd`: `kernel_entry + min(RAM / 2, 128 MiB)`, so the kernel can
/// unpack below it and it stays in low memory on big machines.
pub fn initrd_start(kernel_entry: u64, ram_size: u64) -> u64 {
    kernel_entry + (ram_size / 2).min(128 << 20)
}

/// The size QEMU 7.2 reserves for the device tree when placing it: its own tree is built in a
/// 1 MiB buffer (`FDT_MAX_SIZE`); a `-dtb` file is opened into `(size + 10000) * 2` bytes
/// (`load_device_tree`). `fdt_totalsize` is read before `fdt_pack` in 7.2, so these sizes count.
pub fn fdt_reserve(user_dtb_len: Option<u64>) -> u64 {
    match user_dtb_len {
        None => 1 << 20,
        Some(len) => (len + 10000) * 2,
    }
}

/// QEMU 7.2's `riscv_load_fdt`: the device tree at the 2 MiB-aligned address at least `reserve`
/// bytes below the end of RAM or 3 GiB, whichever is lower (so a 32-bit guest can reach it).
/// `None` if RAM is too small for that.
pub fn fdt_addr(ram_base: u64, ram_size: u64, reserve: u64) -> Option<u64> {
    const LIMIT: u64 = 3 << 30;
    let ram_end = ram_base + ram_size;
    let top = if ram_base < LIMIT { ram_end.min(LIMIT) } else { ram_end };
    let at = top.checked_sub(reserve)? & !((2 << 20) - 1);
    (at >= ram_base).then_some(at)
}

/// What lies where in RAM, for the overlap checks (QEMU refuses overlapping ROM regions).
#[derive(Debug, Default)]
pub struct Placed(Vec<(&'static str, u64, u64)>);

impl Placed {
    /// Records `key`'s bytes `start..end`; `Err` names the image it would overlap.
    pub fn add(&mut self, key: &'static str, start: u64, end: u64) -> Result<(), String> {
        if let Some((other, s, e)) = self.0.iter().find(|(_, s, e)| start < *e && *s < end) {
            return Err(format!(
                "the {key} at {start:#x}..{end:#x} overlaps the {other} at {s:#x}..{e:#x}; \
                 each image needs its own part of RAM"
            ));
        }
        self.0.push((key, start, end));
        Ok(())
    }
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
    let image_start = loaded.iter().map(|&(s, _)| s).min().unwrap_or(ram.base);
    Ok(Image { entry: header.e_entry(endian), start: image_start, end: image_end })
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
        assert_eq!(
            load_kernel(&raw, &ram.view()),
            Ok(Image { entry: 0x8000_0000, start: 0x8000_0000, end: 0x8000_0004 })
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod placement {
    use super::*;

    /// The values QEMU 7.2 gives for a small firmware and a raw kernel (checked against
    /// `qemu-system-riscv64 -machine virt -m M -bios fw.bin -kernel k.bin -initrd rd.bin`).
    #[test]
    fn addresses_match_qemu_7_2() {
        const BASE: u64 = 0x8000_0000;
        assert_eq!(kernel_start(BASE + 0x90), 0x8020_0000);
        assert_eq!(kernel_start(BASE), BASE, "no firmware: the kernel at RAM base, as -bios none");
        assert_eq!(kernel_start(0x8020_0001), 0x8040_0000);
        for (mem, initrd, fdt) in [
            (64u64 << 20, 0x8220_0000, 0x83e0_0000),
            (128 << 20, 0x8420_0000, 0x87e0_0000),
            (256 << 20, 0x8820_0000, 0x8fe0_0000),
            (1 << 30, 0x8820_0000, 0xbfe0_0000),
            (4 << 30, 0x8820_0000, 0xbfe0_0000),
        ] {
            assert_eq!(initrd_start(0x8020_0000, mem), initrd, "initrd at {mem:#x}");
            assert_eq!(fdt_addr(BASE, mem, fdt_reserve(None)), Some(fdt), "fdt at {mem:#x}");
        }
        assert_eq!(fdt_addr(BASE, 1 << 20, fdt_reserve(None)), Some(BASE));
        assert_eq!(fdt_addr(BASE, 512 << 10, fdt_reserve(None)), None);
        assert_eq!(fdt_reserve(Some(214)), 20428);
    }

    #[test]
    fn boot_rom_holds_the_fw_dynamic_info_at_a2() {
        let rom = boot_rom(0x8000_0000, 0x87e0_0000, 0x8020_0000);
        let word = |at: u64| u64::from_le_bytes(rom[at as usize..at as usize + 8].try_into().unwrap());
        let info = FW_DYNAMIC_INFO_ADDR - MROM_BASE;
        assert_eq!(word(24), 0x8000_0000, "start");
        assert_eq!(word(32), 0x87e0_0000, "fdt");
        let fields: Vec<u64> = (0..6).map(|i| word(info + 8 * i)).collect();
        assert_eq!(fields, [0x4942_534f, 2, 0x8020_0000, 1, 0, 0]);
    }

    #[test]
    fn overlaps_are_named() {
        let mut p = Placed::default();
        p.add("firmware", 0x8000_0000, 0x8000_1000).unwrap();
        p.add("kernel", 0x8000_1000, 0x8000_2000).unwrap();
        assert_eq!(
            p.add("initrd", 0x8000_1800, 0x8000_1900).unwrap_err(),
            "the initrd at 0x80001800..0x80001900 overlaps the kernel at 0x80001000..0x80002000; each image \
             needs its own part of RAM"
        );
    }
}
