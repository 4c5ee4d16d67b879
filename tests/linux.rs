//! Linux 6.1 on vmhost: Debian's OpenSBI (`fw_jump.bin`) boots the kernel that
//! scripts/build-linux.sh builds, with its root file system (ext2, BusyBox) on the virtio-blk
//! plugin and its console on the serial plugin. The tests boot linux.toml and linux-smp.toml on a
//! copy of the root image, work at the shell, power off, and look for what the guest wrote in the
//! image. Skips with a reason when the kernel has not been built.

use std::path::{Path, PathBuf};
use vm_tests::*;

const FW_JUMP: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
/// The shell's prompt in / (linux/init's /etc/profile sets `PS1='\w # '`).
const PROMPT: &str = "/ # ";

/// The kernel and pristine root image the script links into target/linux, or `None` with a
/// printed reason.
fn built() -> Option<(PathBuf, PathBuf)> {
    let dir = root().join("target/linux");
    let (image, disk) = (dir.join("Image"), dir.join("rootfs.pristine.img"));
    if !image.exists() || !disk.exists() {
        eprintln!("skipped: no Linux guest in target/linux (scripts/build-linux.sh builds it)");
        return None;
    }
    if !Path::new(FW_JUMP).exists() {
        eprintln!("skipped: Debian's opensbi is not installed (scripts/install-deps.sh)");
        return None;
    }
    Some((image, disk))
}

/// Boots `toml` (linux.toml or linux-smp.toml) on `disk`, or on a fresh copy of the root image in
/// a scratch dir `name`; returns the console at the first prompt, the banner and the disk's path.
fn boot(toml: &str, name: &str, disk: Option<&Path>) -> Option<(Console, String, PathBuf)> {
    let (image, pristine) = built()?;
    let (dir, disk) = match disk {
        Some(d) => (d.parent().unwrap().to_path_buf(), d.to_path_buf()),
        None => {
            let dir = scratch(name);
            let disk = dir.join("rootfs.img");
            std::fs::copy(&pristine, &disk).expect("copy the root image");
            (dir, disk)
        }
    };
    let text = std::fs::read_to_string(root().join(toml)).unwrap();
    for path in ["\"target/linux/Image\"", "\"target/linux/rootfs.img\""] {
        assert!(text.contains(path), "{toml} does not name {path}");
    }
    let text = text
        .replace("\"target/linux/Image\"", &format!("{:?}", image.display().to_string()))
        .replace("\"target/linux/rootfs.img\"", &format!("{:?}", disk.display().to_string()));
    let vm = dir.join("vm.toml");
    std::fs::write(&vm, text).unwrap();

    let mut c = Console::vmhost(&vm);
    let early = c.wait_for("Run /sbin/init as init process");
    for line in
        ["OpenSBI v", "Linux version 6.1", "virtio_blk virtio0: [vda]", "VFS: Mounted root (ext2 filesystem)"]
    {
        assert!(early.contains(line), "no {line:?} in the boot log:\n{early}");
    }
    let banner = c.wait_for("'poweroff -f' to stop");
    c.wait_for(PROMPT);
    Some((c, banner, disk))
}

/// Fails if the kernel log has an oops, a panic, a warning or a BUG splat.
fn check_dmesg(c: &mut Console) {
    let log = c.command("dmesg", PROMPT);
    assert!(log.contains("Run /sbin/init as init process"), "not the kernel log:\n{log}");
    for splat in ["Oops", "panic", "WARNING:", "BUG:"] {
        assert!(!log.contains(splat), "{splat:?} in the kernel log:\n{log}");
    }
}

/// Remounts the root read-only (so ext2 marks it clean) and powers off; vmhost must exit 0.
fn power_off(mut c: Console) {
    c.command("mount -o remount,ro /", PROMPT);
    c.type_line("poweroff -f");
    let out = wait_with_timeout(c.into_child(), "vmhost running Linux");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `e2fsck -fn` finds the image's file system consistent (skips with a reason without e2fsck).
fn check_fs(disk: &Path) {
    let Some(fsck) = which("e2fsck").or_else(|| Some(PathBuf::from("/sbin/e2fsck")).filter(|p| p.exists()))
    else {
        eprintln!("not checked: e2fsck is not installed (e2fsprogs)");
        return;
    };
    let out = std::process::Command::new(fsck).arg("-fn").arg(disk).output().unwrap();
    assert!(out.status.success(), "e2fsck -fn: {}\n{}", stdout(&out), stderr(&out));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn linux_boots_to_a_shell_and_writes_its_virtio_blk_root() {
    let Some((mut c, banner, disk)) = boot("linux.toml", "linux-1", None) else { return };
    assert!(banner.contains("vmhost-linux: Linux (none) 6.1."), "{banner}");
    assert!(banner.contains(" SMP ") && banner.contains(" riscv64\n"), "{banner}");
    assert!(banner.contains("vmhost-linux: 1 CPUs"), "{banner}");

    let mounts = c.command("grep ext2 /proc/mounts", PROMPT);
    assert!(mounts.starts_with("/dev/root / ext2 rw"), "{mounts}");
    // The shell computes the text, so the typed line alone cannot put it on the disk.
    c.command("echo vmhost-linux-$((6 * 7)) > /data.txt; sync", PROMPT);
    assert_eq!(c.command("cat /data.txt", PROMPT), "vmhost-linux-42\n");
    check_dmesg(&mut c);
    power_off(c);

    let bytes = std::fs::read(&disk).unwrap();
    assert!(contains(&bytes, b"vmhost-linux-42\n"), "the file's contents are not in the disk image");
    check_fs(&disk);

    // The next boot on the same disk finds the file.
    let Some((mut c, _, _)) = boot("linux.toml", "linux-1", Some(&disk)) else { return };
    assert_eq!(c.command("cat /data.txt", PROMPT), "vmhost-linux-42\n");
    power_off(c);
}

#[test]
fn linux_boots_on_four_harts_and_runs_four_jobs_in_parallel() {
    let Some((mut c, banner, disk)) = boot("linux-smp.toml", "linux-4", None) else { return };
    assert!(banner.contains("vmhost-linux: 4 CPUs"), "{banner}");
    let cpus = c.command("grep -c ^processor /proc/cpuinfo", PROMPT);
    assert_eq!(cpus, "4\n");
    let harts = c.command("grep ^hart /proc/cpuinfo", PROMPT);
    for h in 0..4 {
        assert!(harts.contains(&format!("hart\t\t: {h}\n")), "no hart {h} in:\n{harts}");
    }

    // 8 MiB of zeros through the disk, then four md5sum at once (the shell's & and wait).
    c.command("dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null; sync", PROMPT);
    c.command("for i in 1 2 3 4; do md5sum /big > /m$i & done; wait", PROMPT);
    let sums = c.command("cat /m1 /m2 /m3 /m4", PROMPT);
    // md5 of 8 MiB of zero bytes.
    let line = "96995b58d4cbf6aaa9041b4f00c7f6ae  /big\n";
    assert_eq!(sums, line.repeat(4), "{sums}");
    check_dmesg(&mut c);
    power_off(c);
    check_fs(&disk);
}

/// Rewrites `[engine] plugin` in `vm` to `plugin`, sends vmhost SIGUSR1 and waits for its report
/// of the `n`th swap, which must name `expect`.
fn swap_to(c: &mut Console, vm: &Path, plugin: &str, n: usize, expect: &str) {
    let text = std::fs::read_to_string(vm).unwrap();
    let (head, tail) = text.split_once("[engine]\nplugin = ").expect("an [engine] table");
    let rest = tail.split_once('\n').map_or("", |(_, r)| r);
    std::fs::write(vm, format!("{head}[engine]\nplugin = {plugin:?}\n{rest}")).unwrap();
    let kill = std::process::Command::new("kill").args(["-USR1", &c.child().id().to_string()]).status();
    assert!(kill.is_ok_and(|s| s.success()), "kill -USR1 vmhost");
    let report = "vmhost: engine swapped: every hart runs on ";
    let mut errors = c.wait_for_stderr(report, n);
    if !errors.rsplit(report).next().unwrap_or_default().contains('\n') {
        // The rest of the report's line is still on its way.
        errors = c.wait_for_stderr("\n", errors.matches('\n').count() + 1);
    }
    let line = errors.split(report).nth(n).unwrap().lines().next().unwrap();
    assert!(line.contains(expect), "swap {n} went to {line:?}, not {expect:?}:\n{errors}");
    assert!(!errors.contains("engine not swapped"), "{errors}");
}

#[test]
fn the_engine_is_swapped_twice_while_linux_runs_and_the_shell_carries_on() {
    let Some((mut c, _, disk)) = boot("linux-smp.toml", "linux-swap", None) else { return };
    let dir = disk.parent().unwrap().to_path_buf();
    let vm = dir.join("vm.toml");
    c.watch_stderr();
    // A second instance of the interp: the same library under another path is another library.
    let second = dir.join("second");
    std::fs::create_dir_all(&second).unwrap();
    let so = second.join("libvmhost_interp.so");
    std::fs::copy(build_dir().join("libvmhost_interp.so"), &so).unwrap();

    // Jobs in flight on every hart across both swaps: four md5sum of 8 MiB.
    c.command("dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null; sync", PROMPT);
    c.command("for i in 1 2 3 4; do md5sum /big > /m$i & done", PROMPT);
    swap_to(&mut c, &vm, so.to_str().unwrap(), 1, so.to_str().unwrap());
    assert_eq!(c.command("echo swapped-$((3 * 4))", PROMPT), "swapped-12\n");
    c.command("echo vmhost-swap-$((6 * 7)) > /swap.txt; sync", PROMPT);
    // And back to the interp the search path finds, next to vmhost.
    let home = build_dir().join("libvmhost_interp.so");
    swap_to(&mut c, &vm, "interp", 2, home.to_str().unwrap());
    c.command("wait", PROMPT);
    let sums = c.command("cat /m1 /m2 /m3 /m4", PROMPT);
    assert_eq!(sums, "96995b58d4cbf6aaa9041b4f00c7f6ae  /big\n".repeat(4), "{sums}");
    assert_eq!(c.command("cat /swap.txt", PROMPT), "vmhost-swap-42\n");
    assert_eq!(c.command("grep -c ^processor /proc/cpuinfo", PROMPT), "4\n");
    check_dmesg(&mut c);
    power_off(c);
    assert!(contains(&std::fs::read(&disk).unwrap(), b"vmhost-swap-42\n"), "the file is not in the image");
    check_fs(&disk);
}
