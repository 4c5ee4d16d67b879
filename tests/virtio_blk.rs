//! The virtio-blk plugin under real drivers: the project's bare-metal driver (guests/src/virtio_blk.c)
//! writes, flushes and reads back, and the image file is then checked byte for byte; read-only
//! and out-of-range requests; two disks in two slots; the same guest on QEMU's virtio-blk where
//! installed; Debian's U-Boot reading sectors the test wrote; a flushed write surviving SIGKILL;
//! and image locking between two vmhosts.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vm_tests::*;

const SECTOR: usize = 512;
const SLOT0: u64 = 0x1000_1000;
/// Where QEMU's virt puts the first (only) `-device virtio-blk-device`: its last slot.
const QEMU_LAST_SLOT: u64 = 0x1000_8000;

/// Byte `i` of `sector` as guests/src/virtio_blk.c computes it: seed 0 is the background the
/// test puts on a disk, seed `slot + 1` what the guest writes on the disk in that slot.
fn pattern(seed: u32, sector: u64, i: u32) -> u8 {
    let x = (sector as u32).wrapping_mul(0x0100_0193) ^ seed.wrapping_mul(0x7f4a_7c15);
    (x.wrapping_add(i).wrapping_mul(0x9e37_79b1) >> 24) as u8
}

fn sector_of(seed: u32, sector: u64) -> Vec<u8> {
    (0..SECTOR as u32).map(|i| pattern(seed, sector, i)).collect()
}

/// The sectors the guest writes: 1, 8 to 31, and the last.
fn written(sector: u64, capacity: u64) -> bool {
    sector == 1 || (8..32).contains(&sector) || sector == capacity - 1
}

fn slot_of(base: u64) -> u32 {
    ((base - SLOT0) / 0x1000) as u32
}

/// A disk image of `sectors` sectors holding the background pattern.
fn background_image(path: &Path, sectors: u64) {
    let data: Vec<u8> = (0..sectors).flat_map(|s| sector_of(0, s)).collect();
    std::fs::write(path, data).expect("write the disk image");
}

/// Asserts that `path` holds the guest's pattern for the disk at `base` in the sectors it writes
/// (or the background everywhere if `untouched`), the background in every other sector, and has
/// its original length.
fn check_image(path: &Path, base: u64, capacity: u64, untouched: bool) {
    let data = std::fs::read(path).expect("read the disk image");
    assert_eq!(data.len() as u64, capacity * SECTOR as u64, "{}: the image changed size", path.display());
    for s in 0..capacity {
        let guest_wrote = !untouched && written(s, capacity);
        let want = sector_of(if guest_wrote { slot_of(base) + 1 } else { 0 }, s);
        let got = &data[s as usize * SECTOR..(s as usize + 1) * SECTOR];
        if got != want.as_slice() {
            let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
            panic!(
                "{}: sector {s} byte {at} is {:#04x}, want {:#04x} ({})",
                path.display(),
                got[at],
                want[at],
                if guest_wrote { "the guest's pattern" } else { "the background, untouched" }
            );
        }
    }
}

/// The check lines and the summary line the guest prints for a disk that passes.
fn result_lines(base: u64, capacity: u64, read_only: bool) -> Vec<String> {
    let checks: &[&str] = if read_only {
        &[
            "read past the end: IOERR",
            "read crossing the end: IOERR",
            "read at sector 2^64-1: IOERR",
            "request type 0x55: UNSUPP",
            "write to a read-only disk: IOERR",
        ]
    } else {
        &[
            "read past the end: IOERR",
            "read crossing the end: IOERR",
            "read at sector 2^64-1: IOERR",
            "write crossing the end: IOERR",
            "write past the end: IOERR",
            "request type 0x55: UNSUPP",
        ]
    };
    let mut lines: Vec<String> =
        checks.iter().map(|c| format!("virtio-blk: disk at {base:#x}: {c}")).collect();
    let ro = if read_only { " read-only" } else { "" };
    lines.push(format!("virtio-blk: disk at {base:#x} capacity {capacity} sectors{ro}: OK"));
    lines
}

/// The guest's output without `\r`, split into the features and id lines (which depend on the
/// device's implementation) and the rest (which must not).
fn split_output(out: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut features, mut ids, mut rest) = (vec![], vec![], vec![]);
    for l in out.replace('\r', "").lines() {
        if l.contains(": features ") {
            features.push(l.to_string());
        } else if l.contains(": id \"") {
            ids.push(l.to_string());
        } else {
            rest.push(l.to_string());
        }
    }
    (features, ids, rest)
}

/// What vmhost's plugin must offer for a disk.
fn vmhost_features(base: u64, read_only: bool) -> String {
    let ro = if read_only { " RO" } else { "" };
    format!("virtio-blk: disk at {base:#x}: features VERSION_1 SEG_MAX SIZE_MAX BLK_SIZE FLUSH{ro}")
}

/// One disk of a vm.toml: its slot, image path (as written in the file) and options.
struct Disk<'a> {
    slot: u32,
    path: &'a str,
    read_only: bool,
    cache: &'a str,
}

fn disk_entries(disks: &[Disk]) -> String {
    disks
        .iter()
        .map(|d| {
            format!(
                "\n[[device]]\nid = \"disk{}\"\nplugin = \"virtio-blk\"\nbase = {:#x}\nirq = {}\n[device.config]\n\
                 path = \"{}\"\nread_only = {}\ncache = \"{}\"\n",
                d.slot,
                SLOT0 + d.slot as u64 * 0x1000,
                1 + d.slot,
                d.path,
                d.read_only,
                d.cache
            )
        })
        .collect()
}

/// A vm.toml in `dir` booting guests/bin/`guest_name`.elf with the UART and `disks`.
fn vm_with_disks(dir: &Path, guest_name: &str, disks: &[Disk]) -> PathBuf {
    write_vm_toml(dir, &guest(guest_name), "interp", &format!("{UART}{}", disk_entries(disks)))
}

/// Runs `guest_name` on QEMU with one virtio-blk disk per image (they land in the last slots,
/// the first image in 0x1000_8000); `None` with a printed reason when QEMU is not installed.
fn on_qemu(guest_name: &str, images: &[(&Path, bool)]) -> Option<std::process::Output> {
    let q = qemu()?;
    let mut cmd = Command::new(q);
    cmd.args([
        "-machine",
        "virt",
        "-bios",
        "none",
        "-nographic",
        "-global",
        "virtio-mmio.force-legacy=false",
    ]);
    cmd.arg("-kernel").arg(guest(guest_name));
    for (n, (path, ro)) in images.iter().enumerate() {
        let ro = if *ro { ",readonly=on" } else { "" };
        cmd.arg("-drive").arg(format!("file={},format=raw,if=none,id=d{n}{ro}", path.display()));
        cmd.args(["-device", &format!("virtio-blk-device,drive=d{n}")]);
    }
    let child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start QEMU");
    Some(wait_with_timeout(child, &format!("QEMU running {guest_name}")))
}

/// Runs the driver on one disk of `capacity` sectors on QEMU (where installed: the reference) and
/// on vmhost; both must print the same result lines and leave the same bytes in their image.
fn one_disk(name: &str, capacity: u64, read_only: bool, cache: &str) {
    let dir = scratch(name);
    let qimage = dir.join("qemu.img");
    background_image(&qimage, capacity);
    if let Some(q) = on_qemu("virtio_blk", &[(&qimage, read_only)]) {
        let qtext = stdout(&q);
        let (_, _, qrest) = split_output(&qtext);
        let mut qwant = result_lines(QEMU_LAST_SLOT, capacity, read_only);
        qwant.push("virtio-blk: 1 disk, all OK".into());
        assert_eq!(qrest, qwant, "QEMU's console:\n{qtext}\nstderr:\n{}", stderr(&q));
        assert_eq!(q.status.code(), Some(0), "QEMU: {qtext}");
        check_image(&qimage, QEMU_LAST_SLOT, capacity, read_only);
    }

    let image = dir.join("disk.img");
    background_image(&image, capacity);
    let toml = vm_with_disks(&dir, "virtio_blk", &[Disk { slot: 0, path: "disk.img", read_only, cache }]);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    let text = stdout(&out);
    let (features, ids, rest) = split_output(&text);
    let mut want = result_lines(SLOT0, capacity, read_only);
    want.push("virtio-blk: 1 disk, all OK".into());
    assert_eq!(rest, want, "vmhost's console:\n{text}\nstderr:\n{}", stderr(&out));
    assert_eq!(features, [vmhost_features(SLOT0, read_only)], "{text}");
    assert_eq!(ids.len(), 1, "GET_ID: {text}");
    assert_eq!(out.status.code(), Some(0), "{text}\nstderr:\n{}", stderr(&out));
    check_image(&image, SLOT0, capacity, read_only);
}

/// Writes of one sector, of 24 sectors from three descriptors split off sector boundaries and of
/// the last sector, queued together; FLUSH; read back with other splits; a reset. The host file
/// then holds exactly the guest's pattern in those sectors and the background everywhere else.
#[test]
fn the_driver_writes_flushes_and_reads_back_and_the_file_holds_exactly_that() {
    one_disk("virtio-blk-writeback", 2048, false, "writeback");
}

/// The same with `cache = "none"` (O_DIRECT or O_DSYNC in the plugin).
#[test]
fn the_same_with_cache_none() {
    one_disk("virtio-blk-cache-none", 2048, false, "none");
}

/// A read-only disk offers RO, answers reads, refuses a write with IOERR, and its file is unchanged.
#[test]
fn a_read_only_disk_refuses_writes_and_its_file_is_unchanged() {
    one_disk("virtio-blk-ro", 2048, true, "writeback");
}

/// Requests starting past the end, crossing it, and at sector 2^64-1 (whose byte offset overflows)
/// fail with IOERR on a disk of an odd size; the crossing write changes nothing (the guest reads
/// the last sector back before writing it) and the file does not grow.
#[test]
fn requests_past_or_across_the_end_fail_and_the_file_keeps_its_size() {
    one_disk("virtio-blk-range", 77, false, "writeback");
}

/// Two disks in slots 0 and 1 (irq 1 and 2), of different sizes: both pass, and each file holds
/// its own slot's pattern.
#[test]
fn two_disks_in_two_slots_each_get_their_own_data() {
    let dir = scratch("virtio-blk-two");
    let (a, b) = (dir.join("a.img"), dir.join("b.img"));
    background_image(&a, 2048);
    background_image(&b, 3000);
    let toml = vm_with_disks(
        &dir,
        "virtio_blk",
        &[
            Disk { slot: 0, path: "a.img", read_only: false, cache: "writeback" },
            Disk { slot: 1, path: "b.img", read_only: false, cache: "writeback" },
        ],
    );
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    let text = stdout(&out);
    let (features, _, rest) = split_output(&text);
    let mut want = result_lines(SLOT0, 2048, false);
    want.extend(result_lines(SLOT0 + 0x1000, 3000, false));
    want.push("virtio-blk: 2 disks, all OK".into());
    assert_eq!(rest, want, "{text}\nstderr:\n{}", stderr(&out));
    assert_eq!(features, [vmhost_features(SLOT0, false), vmhost_features(SLOT0 + 0x1000, false)]);
    assert_eq!(out.status.code(), Some(0));
    check_image(&a, SLOT0, 2048, false);
    check_image(&b, SLOT0 + 0x1000, 3000, false);
}

/// A disk whose image does not exist is refused when the VM starts, naming the file; the guest
/// never runs.
#[test]
fn a_missing_image_is_refused_at_start_with_its_path() {
    let dir = scratch("virtio-blk-missing");
    let toml = vm_with_disks(
        &dir,
        "virtio_blk",
        &[Disk { slot: 0, path: "missing.img", read_only: false, cache: "writeback" }],
    );
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("missing.img"), "the error does not name the file:\n{}", stderr(&out));
    assert!(!stdout(&out).contains("virtio-blk:"), "the guest ran: {}", stdout(&out));
}

/// Kills `c`'s VM with SIGKILL and checks that it was the kill that ended it.
fn kill(c: Console) {
    let mut child = c.into_child();
    child.kill().expect("SIGKILL vmhost");
    let out = wait_with_timeout(child, "the killed vmhost");
    assert_eq!(out.status.signal(), Some(9), "vmhost ended on its own: {:?}\n{}", out.status, stderr(&out));
}

/// The guest writes, flushes and says so; vmhost is killed with SIGKILL at once, and the file
/// holds everything written before the flush.
fn durable(name: &str, cache: &str) {
    let dir = scratch(name);
    let image = dir.join("disk.img");
    background_image(&image, 2048);
    let toml = vm_with_disks(
        &dir,
        "virtio_blk_durable",
        &[Disk { slot: 0, path: "disk.img", read_only: false, cache }],
    );
    let mut c = Console::vmhost(&toml);
    c.wait_for(&format!("virtio-blk: disk at {SLOT0:#x}: written and flushed\n"));
    kill(c);
    check_image(&image, SLOT0, 2048, false);
}

#[test]
fn a_flushed_write_survives_sigkill() {
    durable("virtio-blk-durable", "writeback");
}

#[test]
fn a_flushed_write_survives_sigkill_with_cache_none() {
    durable("virtio-blk-durable-none", "none");
}

/// While one vmhost has an image open for writing, a second one asking to write it is refused at
/// start with an error naming the file; once the first is gone, the image can be opened again.
/// Two read-only users share an image.
#[test]
fn a_second_writer_is_refused_and_read_only_users_share() {
    let dir = scratch("virtio-blk-lock");
    let image = dir.join("disk.img");
    background_image(&image, 2048);
    let abs = image.to_str().unwrap();
    let first_dir = dir.join("first");
    let second_dir = dir.join("second");
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();

    let vm = |d: &Path, guest_name: &str, read_only: bool| {
        vm_with_disks(d, guest_name, &[Disk { slot: 0, path: abs, read_only, cache: "writeback" }])
    };
    let first = vm(&first_dir, "virtio_blk_durable", false);
    let mut c = Console::vmhost(&first);
    c.wait_for("virtio-blk: waiting to be killed\n");
    let second = vm(&second_dir, "virtio_blk", false);
    let out = run(&vmhost(), &["run", second.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "a second writer ran:\n{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(abs), "the error does not name {abs}:\n{}", stderr(&out));
    assert!(!stdout(&out).contains("virtio-blk:"), "the guest ran: {}", stdout(&out));
    kill(c);
    check_image(&image, SLOT0, 2048, false);

    // The lock went with the process: a new writer gets the image.
    background_image(&image, 2048);
    let out = run(&vmhost(), &["run", second.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    check_image(&image, SLOT0, 2048, false);

    background_image(&image, 2048);
    let first = vm(&first_dir, "virtio_blk_durable", true);
    let mut c = Console::vmhost(&first);
    c.wait_for("virtio-blk: waiting to be killed\n");
    let second = vm(&second_dir, "virtio_blk", true);
    let out = run(&vmhost(), &["run", second.to_str().unwrap()], &[]);
    assert!(
        stdout(&out).contains(&format!("virtio-blk: disk at {SLOT0:#x} capacity 2048 sectors read-only: OK")),
        "a second reader was not let in:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0));
    kill(c);
    check_image(&image, SLOT0, 2048, true);
}

const FW_JUMP: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
const UBOOT: &str = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin";
const PROMPT: &str = "=> ";
const UBOOT_SECTORS: u64 = 2048;

/// Sector `s` of the U-Boot test's disk: a line of text naming it, then the background pattern.
fn uboot_sector(s: u64) -> Vec<u8> {
    let mut data = sector_of(0, s);
    let text = format!("vmhost virtio-blk test disk, sector {s:04}\n");
    data[..text.len()].copy_from_slice(text.as_bytes());
    data
}

/// The lines `md.b addr 40` prints for the 64 bytes at `bytes`.
fn md_b(addr: u64, bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(k, c)| {
            let hex: Vec<String> = c.iter().map(|b| format!("{b:02x}")).collect();
            let text: String =
                c.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
            format!("{:08x}: {}  {text}\n", addr + 16 * k as u64, hex.join(" "))
        })
        .collect()
}

/// Drives U-Boot on `c` (stopped at autoboot) through the disk: scan, info, reads of sectors the
/// test wrote, dumps of them, a read past the end; then powers off.
fn drive_u_boot(mut c: Console, who: &str) {
    c.wait_for("Hit any key to stop autoboot");
    c.type_line("");
    c.wait_for(PROMPT);
    let scan = c.command("virtio scan", PROMPT);
    assert!(!scan.contains("rror"), "{who}: virtio scan: {scan}");
    let info = c.command("virtio info", PROMPT);
    assert!(
        info.contains("Device 0: ") && info.contains("VirtIO Block Device"),
        "{who}: virtio info: {info}"
    );
    assert!(info.contains("Capacity: 1.0 MB = 0.0 GB (2048 x 512)"), "{who}: virtio info: {info}");

    let read = c.command("virtio read 0x84000000 0 8", PROMPT);
    assert!(read.contains("virtio read: device 0 block # 0, count 8 ... 8 blocks read: OK"), "{who}: {read}");
    let dump = c.command("md.b 0x84000000 40", PROMPT);
    assert_eq!(dump, md_b(0x8400_0000, &uboot_sector(0)[..64]), "{who}: sector 0");
    let dump = c.command("md.b 0x84000e00 40", PROMPT);
    assert_eq!(dump, md_b(0x8400_0e00, &uboot_sector(7)[..64]), "{who}: sector 7 (the 8th of the read)");

    let read = c.command("virtio read 0x85000000 7ff 1", PROMPT);
    assert!(read.contains("1 blocks read: OK"), "{who}: the last sector: {read}");
    let dump = c.command("md.b 0x85000000 40", PROMPT);
    assert_eq!(dump, md_b(0x8500_0000, &uboot_sector(UBOOT_SECTORS - 1)[..64]), "{who}: the last sector");

    let past = c.command("virtio read 0x85000000 800 1", PROMPT);
    assert!(past.contains("blocks read: ERROR"), "{who}: a read past the end: {past}");

    c.type_line("poweroff");
    let out = wait_with_timeout(c.into_child(), &format!("{who} running U-Boot"));
    assert_eq!(out.status.code(), Some(0), "{who}: {}", stderr(&out));
}

/// Debian's OpenSBI and U-Boot (as examples/u-boot.toml boots them) with a disk in slot 0: U-Boot's
/// own virtio-blk driver finds it and reads what the test wrote, on QEMU where installed (which
/// checks the assertions) and on vmhost.
#[test]
fn u_boot_finds_the_disk_and_reads_the_sectors_the_test_wrote() {
    if !Path::new(FW_JUMP).exists() || !Path::new(UBOOT).exists() {
        eprintln!("skipped: Debian's opensbi and u-boot-qemu are not installed (scripts/install-deps.sh)");
        return;
    }
    let dir = scratch("virtio-blk-uboot");
    let image = dir.join("disk.img");
    let data: Vec<u8> = (0..UBOOT_SECTORS).flat_map(uboot_sector).collect();
    std::fs::write(&image, &data).unwrap();

    if let Some(q) = qemu() {
        let mut cmd = Command::new(q);
        cmd.args(["-M", "virt", "-m", "256M", "-nographic", "-bios", FW_JUMP, "-kernel", UBOOT]);
        cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
        cmd.arg("-drive").arg(format!("file={},format=raw,if=none,id=d0", image.display()));
        cmd.args(["-device", "virtio-blk-device,drive=d0"]);
        drive_u_boot(Console::start(cmd), "QEMU");
    }

    let text = std::fs::read_to_string(root().join("examples/u-boot.toml")).unwrap();
    assert!(text.contains(FW_JUMP) && text.contains(UBOOT), "{text}");
    let disk = Disk { slot: 0, path: "disk.img", read_only: false, cache: "writeback" };
    let toml = dir.join("vm.toml");
    std::fs::write(&toml, format!("{text}{}", disk_entries(&[disk]))).unwrap();
    drive_u_boot(Console::vmhost(&toml), "vmhost");
    assert_eq!(std::fs::read(&image).unwrap(), data, "U-Boot's reads changed the image");
}
