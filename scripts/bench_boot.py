#!/usr/bin/env python3
"""Boot bench: boots Debian's OpenSBI (fw_jump.bin) and U-Boot (qemu-riscv64_smode) on vmhost
(examples/u-boot.toml) and on qemu-system-riscv64 -M virt with the same files and RAM size,
several times each, taking turns. Each run is timed from process start to the OpenSBI banner, to
U-Boot's banner (the handover) and to the first `=> ` prompt; the autoboot countdown is stopped
with a newline as soon as it starts, so it is not counted. At the prompt the script reads the
process's peak RSS (VmHWM) and types `poweroff`. Prints the medians, the ratio vmhost/QEMU and
whether it meets the targets: boot within 2x QEMU's time, peak RSS at most 0.5x QEMU's.

Usage: scripts/bench_boot.py [--runs N] [--timeout S] [--check]
  --check  exit 1 if a target is missed (a failed run always exits 1; missing QEMU or firmware, 2)
"""
import argparse
import os
import select
import shutil
import statistics
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOML = os.path.join(ROOT, "examples/u-boot.toml")
TIME_TARGET = 2.0  # vmhost may take at most this many times QEMU's time to the prompt
RSS_TARGET = 0.5  # vmhost's peak RSS may be at most this fraction of QEMU's
POWEROFF_WAIT = 10  # seconds a machine may take to exit after `poweroff`

# (column, text that marks it); the prompt only counts once autoboot has been stopped.
MARKS = [("OpenSBI", b"OpenSBI v"), ("U-Boot", b"U-Boot 20"), ("prompt", b"=> ")]
AUTOBOOT = b"Hit any key to stop autoboot"


def vm_hwm_kib(pid):
    """The process's peak resident set so far, or None if /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class RunFailed(Exception):
    pass


def type_into(p, text):
    try:
        p.stdin.write(text)
        p.stdin.flush()
    except OSError as e:  # the machine has gone: its console says why
        raise RunFailed(f"cannot type {text!r}: {e}") from None


def boot(cmd, timeout):
    """One boot to the prompt and poweroff: seconds to each mark and peak RSS in KiB."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, times, hwm, stopped = b"", {}, None, False
    fd = p.stdout.fileno()
    try:
        while "prompt" not in times:
            left = start + timeout - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                raise RunFailed(f"no U-Boot prompt within {timeout:g} s; killed")
            chunk = os.read(fd, 65536)
            now = time.monotonic() - start
            if not chunk:
                raise RunFailed("the machine ended before the U-Boot prompt")
            out += chunk
            if not stopped and AUTOBOOT in out:
                type_into(p, b"\n")
                stopped = True
            for name, text in MARKS:
                if name not in times and text in out and (name != "prompt" or stopped):
                    times[name] = now
        hwm = vm_hwm_kib(p.pid)
        type_into(p, b"poweroff\n")
        # U-Boot powers off through SBI SRST; both machines then exit 0. stderr is read only on
        # failure: neither machine writes enough there to fill the pipe.
        deadline = time.monotonic() + POWEROFF_WAIT
        while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
            if not os.read(fd, 65536):
                break
        else:
            raise RunFailed(f"still running {POWEROFF_WAIT:g} s after poweroff; killed")
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RunFailed(f"exit {p.returncode} after poweroff")
        if hwm is None:
            hwm = usage.ru_maxrss  # KiB on Linux
        return times, hwm
    except RunFailed as e:
        p.kill()
        p.wait()
        err = p.stderr.read().decode(errors="replace")
        tail = out.decode(errors="replace").replace("\r", "")[-1500:]
        raise RunFailed(f"{' '.join(cmd)}: {e}\nconsole (last 1500 characters):\n{tail}\n{err}") from None


def medians(results):
    """Median time to each mark and median peak RSS of a runner's (times, rss) results."""
    times = {name: statistics.median(t[name] for t, _ in results) for name, _ in MARKS}
    return times, statistics.median(rss for _, rss in results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=120, help="seconds allowed for one boot (default 120)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    with open(TOML, "rb") as f:
        vm = tomllib.load(f)
    firmware, kernel, memory = vm["boot"]["firmware"], vm["boot"]["kernel"], vm["machine"]["memory"]
    missing = [path for path in (firmware, kernel) if not os.path.isfile(path)]
    if missing:
        print(f"bench_boot: {', '.join(missing)} not found: install Debian's opensbi and u-boot-qemu "
              "(scripts/install-deps.sh)", file=sys.stderr)
        sys.exit(2)
    qemu = shutil.which("qemu-system-riscv64")
    if not qemu:
        print("bench_boot: qemu-system-riscv64 not installed (scripts/install-deps.sh --with-qemu); "
              "the targets are relative to QEMU", file=sys.stderr)
        sys.exit(2)

    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    vmhost = os.path.join(ROOT, "target/release/vmhost")
    qemu_cmd = [qemu, "-M", "virt", "-m", memory, "-nographic", "-bios", firmware, "-kernel", kernel]
    runners = {"vmhost": [vmhost, "run", TOML], "QEMU": qemu_cmd}
    results = {label: [] for label in runners}
    # The runners take turns, so a change in the machine's load falls on both alike.
    for i in range(args.runs):
        for label, cmd in runners.items():
            try:
                times, rss = boot(cmd, args.timeout)
            except RunFailed as e:
                sys.exit(f"bench_boot: {e}")
            results[label].append((times, rss))
            # Progress on stderr: each run's figures show the spread the medians hide.
            marks = " ".join(f"{name} {times[name] * 1000:.0f}" for name, _ in MARKS)
            print(f"  {label}: run {i + 1}/{args.runs} ms: {marks}; peak RSS {rss / 1024:.1f} MiB",
                  file=sys.stderr)
    vm_t, vm_rss = medians(results["vmhost"])
    q_t, q_rss = medians(results["QEMU"])

    # The load matters on a small shared machine: the figures are wall times.
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nboot to the U-Boot prompt: {firmware} + {kernel}, {memory}\n"
          f"median of {args.runs} runs; load average {load} on {os.cpu_count()} CPUs\n")
    print(f"{'runner':<28}" + "".join(f" {name + ' ms':>11}" for name, _ in MARKS) + f" {'peak RSS MiB':>13}")
    for name, t, rss in [(f"vmhost ({vm['engine']['plugin']})", vm_t, vm_rss),
                         ("qemu-system-riscv64 (TCG)", q_t, q_rss)]:
        print(f"{name:<28}" + "".join(f" {t[m] * 1000:>11.0f}" for m, _ in MARKS) + f" {rss / 1024:>13.1f}")
    print(f"{'vmhost/QEMU':<28}" + "".join(f" {vm_t[m] / q_t[m]:>10.2f}x" for m, _ in MARKS)
          + f" {vm_rss / q_rss:>12.2f}x")

    t_ratio, r_ratio = vm_t["prompt"] / q_t["prompt"], vm_rss / q_rss
    t_met, r_met = t_ratio <= TIME_TARGET, r_ratio <= RSS_TARGET
    print(f"\nboot {t_ratio:.2f}x QEMU's time (target <= {TIME_TARGET:g}x): {'met' if t_met else 'MISSED'}; "
          f"peak RSS {r_ratio:.2f}x QEMU's (target <= {RSS_TARGET:g}x): {'met' if r_met else 'MISSED'}")
    if args.check and not (t_met and r_met):
        sys.exit(1)


if __name__ == "__main__":
    main()
