#!/usr/bin/env python3
"""Runs the CPU-bound guest (guests/bin/bench.elf) on vmhost and, where installed, on
qemu-system-riscv64 -machine virt -bios none, several times each; prints a table of median wall
time, guest MIPS and the time ratio.

Usage: scripts/bench.py [--runs N] [--engine NAME] [ELF]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if out.returncode != 0 or "bench: OK" not in out.stdout:
        sys.exit(f"bench: {' '.join(cmd)} failed (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    return elapsed, out.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--engine", default="interp")
    ap.add_argument("elf", nargs="?", default=os.path.join(ROOT, "guests/bin/bench.elf"))
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "vm-host", "-p", "vm-interp-so"], cwd=ROOT, check=True)
    vmhost = os.path.join(ROOT, "target/release/vmhost")
    with tempfile.TemporaryDirectory() as tmp:
        toml = os.path.join(tmp, "vm.toml")
        with open(toml, "w") as f:
            f.write(f'[machine]\nmemory = "128M"\n[boot]\nkernel = "{os.path.abspath(args.elf)}"\n'
                    f'[engine]\nplugin = "{args.engine}"\n'
                    '[[device]]\nid = "uart0"\nplugin = "serial"\nbase = 0x1000_0000\nirq = 10\n')
        rows = []
        times, text = [], ""
        for _ in range(args.runs):
            t, text = timed([vmhost, "run", toml])
            times.append(t)
        m = re.search(r"instret=(\d+)", text)
        instret = int(m.group(1)) if m else None
        rows.append((f"vmhost ({args.engine})", statistics.median(times), times))

        qemu = shutil.which("qemu-system-riscv64")
        if qemu:
            cmd = [qemu, "-machine", "virt", "-bios", "none", "-nographic", "-kernel", args.elf]
            rows.append(("qemu-system-riscv64 (TCG)", statistics.median([timed(cmd)[0] for _ in range(args.runs)]), None))
        else:
            print("qemu-system-riscv64 not installed (scripts/install-deps.sh --with-qemu): vmhost only\n")

    print(f"guest: {os.path.relpath(args.elf, ROOT)}, {instret:,} instructions, median of {args.runs} runs\n")
    print(f"{'runner':<28} {'median s':>9} {'guest MIPS':>11} {'time vs QEMU':>13}")
    qemu_time = rows[1][1] if len(rows) > 1 else None
    for name, t, _ in rows:
        ratio = f"{t / qemu_time:.2f}x" if qemu_time else "-"
        print(f"{name:<28} {t:>9.3f} {instret / t / 1e6:>11.0f} {ratio:>13}")
    if qemu_time:
        print(f"\nvmhost speed relative to QEMU: {qemu_time / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
