//! Bad files as kernel or vm.toml: FIFOs, devices, huge sparse files and hostile ELF files are
//! refused at once with a message saying what is wrong (never read whole, never waited on).

use std::path::{Path, PathBuf};
use vm_tests::*;

/// Runs `vmhost run` on a vm.toml booting `kernel`; returns (exit code, stderr, vm.toml path).
fn boot(dir: &Path, kernel: &Path) -> (Option<i32>, String, String) {
    let toml = write_vm_toml(dir, kernel, "interp", UART);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert!(stdout(&out).is_empty(), "the guest must not run: {}", stdout(&out));
    (out.status.code(), stderr(&out).trim_end().to_string(), toml.display().to_string())
}

/// Runs `vmhost run` on `file` as the vm.toml; returns (exit code, stderr).
fn load(file: &Path) -> (Option<i32>, String) {
    let out = run(&vmhost(), &["run", file.to_str().unwrap()], &[]);
    (out.status.code(), stderr(&out).trim_end().to_string())
}

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let ok = std::process::Command::new("mkfifo").arg(&path).status().expect("run mkfifo").success();
    assert!(ok, "mkfifo {}", path.display());
    path
}

fn sparse(dir: &Path, name: &str, size: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().set_len(size).unwrap();
    path
}

/// The position `write_vm_toml` puts the kernel's path at.
const KERNEL_AT: &str = "5:10";

#[test]
fn kernel_that_is_a_fifo_is_refused_without_blocking() {
    let dir = scratch("bad-kernel-fifo");
    let k = fifo(&dir, "kernel.fifo");
    let (code, err, toml) = boot(&dir, &k);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "vmhost: error: {toml}:{KERNEL_AT}: key `boot.kernel`: {} is a FIFO (named pipe), not a regular file",
            k.display()
        )
    );
}

#[test]
fn kernel_that_is_a_device_or_a_directory_is_refused() {
    let dir = scratch("bad-kernel-dev");
    let (code, err, toml) = boot(&dir, Path::new("/dev/zero"));
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "vmhost: error: {toml}:{KERNEL_AT}: key `boot.kernel`: /dev/zero is a character device, not a regular file"
        )
    );
    let (_, err, toml) = boot(&dir, &dir);
    assert_eq!(
        err,
        format!(
            "vmhost: error: {toml}:{KERNEL_AT}: key `boot.kernel`: {} is a directory, not a regular file",
            dir.display()
        )
    );
}

#[test]
fn huge_sparse_kernel_is_refused_before_reading_it() {
    let dir = scratch("bad-kernel-sparse");
    let k = sparse(&dir, "kernel.bin", 4 << 30);
    let (code, err, toml) = boot(&dir, &k);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "vmhost: error: {toml}:{KERNEL_AT}: key `boot.kernel`: {} is 4294967296 bytes, larger than RAM \
             (`machine.memory`, 67108864 bytes)",
            k.display()
        )
    );
}

#[test]
fn vm_toml_that_is_a_fifo_a_device_a_directory_or_huge_is_refused() {
    let dir = scratch("bad-vm-toml");
    let f = fifo(&dir, "vm.toml");
    let big = sparse(&dir, "big.toml", 4 << 30);
    for (file, what) in [
        (f, "the file is a FIFO (named pipe), not a regular file".to_string()),
        (PathBuf::from("/dev/zero"), "the file is a character device, not a regular file".into()),
        (dir.clone(), "the file is a directory, not a regular file".into()),
        (big, "the file is 4294967296 bytes; a vm.toml may be at most 1048576 bytes (1 MiB)".into()),
    ] {
        let (code, err) = load(&file);
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(err, format!("vmhost: error: {}: {what}", file.display()));
    }
}

/// hello.elf with `patch` applied to its bytes, as `name` in `dir`.
fn patched_elf(dir: &Path, name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut data = std::fs::read(guest("hello")).unwrap();
    patch(&mut data);
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

fn put(data: &mut [u8], at: usize, bytes: &[u8]) {
    data[at..at + bytes.len()].copy_from_slice(bytes);
}

// ELF64 header and program header offsets (hello.elf has one PT_LOAD, at 64).
const E_TYPE: usize = 16;
const E_PHNUM: usize = 56;
const PH: usize = 64;
const PH_SIZE: usize = 56;
const P_FILESZ: usize = 32;

#[test]
fn hostile_elf_files_are_refused_saying_what_is_wrong() {
    let dir = scratch("bad-elf");
    let cases: Vec<(PathBuf, String)> = vec![
        (patched_elf(&dir, "empty.elf", |d| d.clear()), "the kernel file is empty".into()),
        (
            patched_elf(&dir, "big-endian.elf", |d| d[5] = 2),
            "a big-endian ELF file; RISC-V guests are little-endian".into(),
        ),
        (
            patched_elf(&dir, "rel.elf", |d| put(d, E_TYPE, &1u16.to_le_bytes())),
            "a relocatable object file (ET_REL), not an executable: link it first".into(),
        ),
        (
            patched_elf(&dir, "filesz.elf", |d| put(d, PH + P_FILESZ, &0x10b41u64.to_le_bytes())),
            "segment at 0x80000000 is malformed: its size in the file (0x10b41 bytes) is larger than its size \
             in memory (0x10b40 bytes)"
                .into(),
        ),
        (
            // A second PT_LOAD, in the zero padding after the first, over the first one's bytes.
            patched_elf(&dir, "overlap.elf", |d| {
                put(d, E_PHNUM, &2u16.to_le_bytes());
                let second = d[PH..PH + PH_SIZE].to_vec();
                put(d, PH + PH_SIZE, &second);
                put(d, PH + PH_SIZE + 24, &0x8000_0100u64.to_le_bytes()); // p_paddr
                put(d, PH + PH_SIZE + P_FILESZ, &0x10u64.to_le_bytes());
                put(d, PH + PH_SIZE + 40, &0x10u64.to_le_bytes()); // p_memsz
            }),
            "segments at 0x80000000..0x80010b40 and 0x80000100..0x80000110 overlap; each byte of memory must \
             come from one segment"
                .into(),
        ),
    ];
    for (kernel, what) in cases {
        let (code, err, toml) = boot(&dir, &kernel);
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(
            err,
            format!("vmhost: error: {toml}:{KERNEL_AT}: key `boot.kernel`: {}: {what}", kernel.display())
        );
    }
}

/// `[boot] firmware`, `initrd` and `dtb` get the kernel's checks: FIFO, device, directory and a
/// huge sparse file are refused from their metadata, at the key, before anything is opened.
#[test]
fn firmware_initrd_and_dtb_that_are_not_small_regular_files_are_refused() {
    let dir = scratch("bad-boot-files");
    let f = fifo(&dir, "boot.fifo");
    let big = sparse(&dir, "big.img", 4 << 30);
    let hello = guest("hello");
    for (key, file, what) in [
        ("firmware", f.clone(), format!("{} is a FIFO (named pipe), not a regular file", f.display())),
        ("initrd", PathBuf::from("/dev/zero"), "/dev/zero is a character device, not a regular file".into()),
        ("dtb", dir.clone(), format!("{} is a directory, not a regular file", dir.display())),
        (
            "initrd",
            big.clone(),
            format!(
                "{} is 4294967296 bytes, larger than RAM (`machine.memory`, 67108864 bytes)",
                big.display()
            ),
        ),
        (
            "dtb",
            big.clone(),
            format!(
                "{} is 4294967296 bytes, larger than 2097152 bytes (2 MiB, the most Linux maps)",
                big.display()
            ),
        ),
    ] {
        let toml = write_vm_toml(&dir, &hello, "interp", UART);
        let text = std::fs::read_to_string(&toml).unwrap();
        let line = format!("{key} = \"{}\"\n", file.display());
        std::fs::write(&toml, text.replace("[boot]\n", &format!("[boot]\n{line}"))).unwrap();
        let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(1), "{key}");
        assert!(stdout(&out).is_empty());
        let col = key.len() + 4;
        assert_eq!(
            stderr(&out).trim_end(),
            format!("vmhost: error: {}:5:{col}: key `boot.{key}`: {what}", toml.display())
        );
    }
}
