#!/usr/bin/env python3
"""Disk throughput: runs guests/bin/virtio_blk_bench.elf (sequential 4 KiB and 64 KiB writes, then
reads, 64 MiB each, up to 8 requests in flight, timed by the guest with rdtime) on vmhost's
virtio-blk plugin and, where installed, on qemu-system-riscv64's virtio-blk-device, on the same
disk file (recreated before every run); prints the median MiB/s of each side by side.

Usage: scripts/bench_blk.py [--runs N] [--engine NAME] [--cache writeback|none] [--disk-mib N]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELF = os.path.join(ROOT, "guests/bin/virtio_blk_bench.elf")
LINE = re.compile(r"^bench: (\w+ \w+): .* ([\d.]+) MiB/s$", re.M)


def run(cmd, disk, mib):
    # A fresh file each run, so every runner starts from the same (sparse, zero) disk.
    with open(disk, "wb") as f:
        f.truncate(mib << 20)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    text = out.stdout.replace("\r", "")
    if out.returncode != 0 or "bench: OK" not in text:
        sys.exit(f"bench_blk: {' '.join(cmd)} failed (exit {out.returncode}):\n{text}\n{out.stderr}")
    return {name: float(v) for name, v in LINE.findall(text)}


def medians(results):
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engine", default="interp")
    ap.add_argument("--cache", choices=["writeback", "none"], default="writeback")
    ap.add_argument("--disk-mib", type=int, default=64)
    args = ap.parse_args()

    # The default members: vmhost and the in-tree plugin libraries next to it.
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    vmhost = os.path.join(ROOT, "target/release/vmhost")
    # Not /tmp: it may be a tmpfs, which has no O_DIRECT for cache = "none".
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "target")) as tmp:
        disk = os.path.join(tmp, "disk.img")
        toml = os.path.join(tmp, "vm.toml")
        with open(toml, "w") as f:
            f.write(f'[machine]\nmemory = "128M"\n[boot]\nkernel = "{ELF}"\n[engine]\nplugin = "{args.engine}"\n'
                    '[[device]]\nid = "uart0"\nplugin = "serial"\nbase = 0x1000_0000\nirq = 10\n'
                    '[[device]]\nid = "disk0"\nplugin = "virtio-blk"\nbase = 0x1000_1000\nirq = 1\n'
                    f'[device.config]\npath = "disk.img"\ncache = "{args.cache}"\n')
        rows = {"vmhost": medians([run([vmhost, "run", toml], disk, args.disk_mib) for _ in range(args.runs)])}
        qemu = shutil.which("qemu-system-riscv64")
        if qemu:
            cmd = [qemu, "-machine", "virt", "-m", "128M", "-bios", "none", "-nographic",
                   "-global", "virtio-mmio.force-legacy=false", "-kernel", ELF,
                   "-drive", f"file={disk},format=raw,if=none,id=d0,cache={args.cache}",
                   "-device", "virtio-blk-device,drive=d0"]
            rows["qemu"] = medians([run(cmd, disk, args.disk_mib) for _ in range(args.runs)])
        else:
            print("qemu-system-riscv64 not installed (scripts/install-deps.sh --with-qemu): vmhost only\n")

    print(f"guest: {os.path.relpath(ELF, ROOT)}, 64 MiB per test on a {args.disk_mib} MiB disk, "
          f"cache {args.cache}, engine {args.engine}, median of {args.runs} runs\n")
    print(f"{'test':<12} {'vmhost MiB/s':>13} {'QEMU MiB/s':>11} {'vmhost/QEMU':>12}")
    for name, v in rows["vmhost"].items():
        q = rows.get("qemu", {}).get(name)
        qtext, ratio = (f"{q:>11.1f}", f"{v / q:>11.2f}x") if q else (f"{'-':>11}", f"{'-':>12}")
        print(f"{name:<12} {v:>13.1f} {qtext} {ratio}")


if __name__ == "__main__":
    main()
