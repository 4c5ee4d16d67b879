#!/usr/bin/env python3
"""Interrupt-cost bench: runs the guests/bin/irq_*.elf guests on vmhost and, where installed, on
qemu-system-riscv64 -machine virt -bios none, several times each; checks each run's output and
exit code against guests/expected/; prints the median wall time per case, the ratio vmhost/QEMU
and whether it meets the target (vmhost within 2x QEMU's time).

Cases: timer (1,000,000 timer interrupts), soft (1,000,000 software interrupts),
wfi (100,000 wfi with the timer pending but masked), uart (200,000 UART IER toggles).

Usage: scripts/bench_irq.py [--runs N] [--engine NAME] [--check] [CASE...]
  --check  exit 1 if any case misses the target (a failed run always exits 1)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "guests")
TARGET = 2.0  # vmhost may take at most this many times QEMU's time

# name on the command line -> (guest, what it does)
CASES = {
    "timer": ("irq_timer", "1,000,000 timer interrupts"),
    "soft": ("irq_soft", "1,000,000 software interrupts"),
    "wfi": ("irq_wfi", "100,000 wfi, timer pending"),
    "uart": ("irq_uart", "200,000 UART IER toggles"),
}


def expected(guest):
    with open(os.path.join(GUESTS, "expected", guest + ".out")) as f:
        out = f.read()
    with open(os.path.join(GUESTS, "expected", guest + ".exit")) as f:
        code = int(f.read())
    return out, code


def timed(cmd, guest, timeout):
    """Wall time of one run; exits the script if the guest's output or exit code is wrong."""
    want_out, want_code = expected(guest)
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.exit(f"bench_irq: {' '.join(cmd)} did not finish within {timeout} s")
    elapsed = time.perf_counter() - start
    got = out.stdout.replace("\r", "")
    if out.returncode != want_code or got != want_out:
        sys.exit(f"bench_irq: {' '.join(cmd)} failed (exit {out.returncode}, want {want_code}):\n"
                 f"{got}\n{out.stderr}")
    return elapsed


def median_time(name, runner, cmd, guest, runs, timeout):
    times = []
    for i in range(runs):
        times.append(timed(cmd, guest, timeout))
        # Progress on stderr: the slow cases take a while.
        print(f"  {name} on {runner}: run {i + 1}/{runs} {times[-1]:.3f} s", file=sys.stderr)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engine", default="interp")
    ap.add_argument("--timeout", type=int, default=600, help="seconds allowed for one run (default 600)")
    ap.add_argument("--check", action="store_true", help="exit 1 if any case misses the target")
    ap.add_argument("cases", nargs="*", metavar="CASE", help=f"some of {', '.join(CASES)} (default all)")
    args = ap.parse_args()
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case {', '.join(unknown)} (choose from {', '.join(CASES)})")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    cases = args.cases or list(CASES)

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "vm-host"], cwd=ROOT, check=True)
    vmhost = os.path.join(ROOT, "target/release/vmhost")
    qemu = shutil.which("qemu-system-riscv64")
    if not qemu:
        print("qemu-system-riscv64 not installed (scripts/install-deps.sh --with-qemu): vmhost only\n", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in cases:
            guest, _ = CASES[name]
            elf = os.path.join(GUESTS, "bin", guest + ".elf")
            toml = os.path.join(tmp, guest + ".toml")
            with open(toml, "w") as f:
                f.write(f'[machine]\nmemory = "128M"\n[boot]\nkernel = "{elf}"\n'
                        f'[engine]\nplugin = "{args.engine}"\n'
                        '[[device]]\nid = "uart0"\nplugin = "serial"\nbase = 0x1000_0000\nirq = 10\n')
            vm_t = median_time(name, "vmhost", [vmhost, "run", toml], guest, args.runs, args.timeout)
            qemu_t = None
            if qemu:
                cmd = [qemu, "-machine", "virt", "-bios", "none", "-nographic", "-kernel", elf]
                qemu_t = median_time(name, "QEMU", cmd, guest, args.runs, args.timeout)
            rows.append((name, vm_t, qemu_t))

    against = " vs qemu-system-riscv64 (TCG)" if qemu else ""
    print(f"\ninterrupt cost, vmhost ({args.engine}){against}, median of {args.runs} runs\n")
    print(f"{'case':<6} {'work':<31} {'vmhost s':>9} {'QEMU s':>9} {'vmhost/QEMU':>12} {'target':>7} {'met':>4}")
    missed = 0
    for name, vm_t, qemu_t in rows:
        if qemu_t:
            ratio = vm_t / qemu_t
            met = "yes" if ratio <= TARGET else "no"
            missed += ratio > TARGET
            q, r = f"{qemu_t:.3f}", f"{ratio:.2f}x"
        else:
            q, r, met = "-", "-", "-"
        print(f"{name:<6} {CASES[name][1]:<31} {vm_t:>9.3f} {q:>9} {r:>12} {'<=' + f'{TARGET:g}x':>7} {met:>4}")
    if qemu:
        print(f"\n{len(rows) - missed} of {len(rows)} cases within {TARGET:g}x QEMU's time")
    if args.check and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
