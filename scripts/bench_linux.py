#!/usr/bin/env python3
"""Linux boot bench: boots the Linux guest that scripts/build-linux.sh builds (OpenSBI fw_jump →
Linux 6.1 → BusyBox, root on virtio-blk) on vmhost (linux.toml, or linux-smp.toml with
--harts 4) and on qemu-system-riscv64 -machine virt with the same firmware, kernel, command line,
RAM and hart count, each run on a fresh copy of target/linux/rootfs.pristine.img. The runners
take turns; each run is timed from process start to the kernel's "Run /sbin/init" line, to the
first userspace line (the banner linux/init prints) and to the shell's `/ # ` prompt, then
`poweroff -f` is typed and the run must exit 0.

Then one untimed run of each counts guest instructions, over all harts:
  QEMU    a TCG plugin (scripts/qemu-insn-plugin.c, built against the header from Debian's qemu
          source package and cached in ~/.cache/vmhost/qemu-plugin) counts every instruction
          executed: to the first user-mode instruction (exact), and to the exit after poweroff.
  vmhost  the engines' retired-instruction count at exit (the ExecutionCompleted event, logged
          with RUST_LOG=vm_host::events=trace), which compares with QEMU's count to the exit, and
          the first hart's count at its first user-mode instruction (the line "first user-mode
          instruction after instret=N" vmhost logs at info level).
Prints the medians, the ratio to QEMU, and whether the interp meets the target: the prompt within
2x QEMU's time.

Usage: scripts/bench_linux.py [--runs N] [--harts N] [--engine NAME] [--vmhost PATH] [--timeout S]
                              [--no-count] [--check]
  --check  exit 1 if the target is missed (a failed run always exits 1; a missing guest, QEMU or
           firmware, 2)
"""
import argparse
import glob
import hashlib
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINUX = os.path.join(ROOT, "target/linux")
PLUGIN_SRC = os.path.join(ROOT, "scripts/qemu-insn-plugin.c")
CACHE = os.path.join(os.environ.get("VMHOST_CACHE", os.path.expanduser("~/.cache/vmhost")), "qemu-plugin")
TIME_TARGET = 2.0  # vmhost may take at most this many times QEMU's time to the prompt
POWEROFF_WAIT = 30  # seconds a machine may take to exit after `poweroff -f`

# (column, text that marks it): the kernel's last line before it starts /init, the banner's first
# line (the first from userspace), then the prompt of linux/init's shell.
MARKS = [("init", b"Run /sbin/init as init process"), ("userspace", b"vmhost-linux: Linux"), ("prompt", b"/ # ")]


class RunFailed(Exception):
    pass


def log(msg):
    print(f"bench_linux: {msg}", file=sys.stderr)


def type_into(p, text):
    try:
        p.stdin.write(text)
        p.stdin.flush()
    except OSError as e:  # the machine has gone: its console says why
        raise RunFailed(f"cannot type {text!r}: {e}") from None


def boot(cmd, timeout, env=None):
    """One boot to the prompt and `poweroff -f`: seconds to each mark, and the machine's stderr."""
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        # stderr to a file: a chatty log (RUST_LOG=trace) must not fill a pipe nobody reads.
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
        out, times = b"", {}
        fd = p.stdout.fileno()
        try:
            while "prompt" not in times:
                left = start + timeout - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise RunFailed(f"no shell prompt within {timeout:g} s; killed")
                chunk = os.read(fd, 65536)
                now = time.monotonic() - start
                if not chunk:
                    raise RunFailed("the machine ended before the shell prompt")
                out += chunk
                for name, text in MARKS:
                    # The prompt counts only after the banner: nothing earlier prints "/ # ".
                    if name not in times and text in out and (name != "prompt" or "userspace" in times):
                        times[name] = now
            type_into(p, b"poweroff -f\n")
            deadline = time.monotonic() + POWEROFF_WAIT
            while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
                if not os.read(fd, 65536):
                    break
            else:
                raise RunFailed(f"still running {POWEROFF_WAIT:g} s after poweroff -f; killed")
            p.wait()
            err.seek(0)
            text = err.read().decode(errors="replace")
            if p.returncode != 0:
                raise RunFailed(f"exit {p.returncode} after poweroff -f\n{text[-1500:]}")
            return times, text
        except RunFailed as e:
            p.kill()
            p.wait()
            err.seek(0)
            text = err.read().decode(errors="replace")[-1500:]
            tail = out.decode(errors="replace").replace("\r", "")[-1500:]
            raise RunFailed(f"{' '.join(cmd)}: {e}\nconsole (last 1500 characters):\n{tail}\n{text}") from None


def qemu_plugin_header():
    """include/qemu/qemu-plugin.h from Debian's qemu source package, fetched once through an apt
    configuration of its own (deb-src for bookworm under the cache), so the system's apt sources
    stay as they are."""
    header = os.path.join(CACHE, "qemu-plugin.h")
    if os.path.isfile(header):
        return header
    apt = os.path.join(CACHE, "apt")
    for d in ("sources", "lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "sources/debian-src.sources"), "w") as f:
        f.write("Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    opts = ["-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={apt}/sources",
            "-o", f"Dir::State::Lists={apt}/lists", "-o", f"Dir::Cache={apt}/cache"]
    if os.getuid() == 0:  # as root, apt would hand the download to _apt, who cannot write here
        opts += ["-o", "APT::Sandbox::User=root"]
    log("fetching Debian's qemu source package for qemu-plugin.h (once)")
    with tempfile.TemporaryDirectory(dir=CACHE) as dl:
        subprocess.run(["apt-get", *opts, "-qq", "update"], check=True)
        subprocess.run(["apt-get", *opts, "-qq", "source", "--download-only", "qemu"], cwd=dl, check=True,
                       stdout=subprocess.DEVNULL)
        tarballs = glob.glob(os.path.join(dl, "qemu_*.orig.tar.*"))
        if not tarballs:
            raise SystemExit("bench_linux: no qemu_*.orig.tar.* in Debian's qemu source package")
        subprocess.run(["tar", "-C", dl, "--no-same-owner", "-xf", tarballs[0], "--wildcards",
                        "*/include/qemu/qemu-plugin.h"], check=True)
        found = glob.glob(os.path.join(dl, "*/include/qemu/qemu-plugin.h"))
        if not found:
            raise SystemExit("bench_linux: no include/qemu/qemu-plugin.h in the qemu source")
        os.replace(found[0], header)
    shutil.rmtree(apt)  # the package lists (20 MB) are not needed again
    return header


def qemu_plugin():
    """The instruction-counting plugin, built once per source and header (cached by their hash)."""
    header = qemu_plugin_header()
    with open(PLUGIN_SRC, "rb") as a, open(header, "rb") as b:
        key = hashlib.sha256(a.read() + b.read()).hexdigest()[:16]
    so = os.path.join(CACHE, f"insn-count-{key}.so")
    if not os.path.isfile(so):
        cc = os.environ.get("CC", "cc")
        tmp = so + ".tmp"
        subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-I", os.path.dirname(header),
                        "-o", tmp, PLUGIN_SRC], check=True)
        os.replace(tmp, so)
    return so


def count(pattern, text, what):
    m = re.search(pattern, text)
    if not m:
        raise SystemExit(f"bench_linux: no {what} in the run's log:\n{text[-1500:]}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each machine (default 3)")
    ap.add_argument("--harts", type=int, default=1, help="1 boots linux.toml, more linux-smp.toml (default 1)")
    ap.add_argument("--engine", default="interp", help="vmhost's engine plugin (default interp)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed for one boot (default 300)")
    ap.add_argument("--vmhost", help="this vmhost binary, with its plugins beside it (default: build "
                    "target/release/vmhost)")
    ap.add_argument("--no-count", action="store_true", help="skip the instruction-counting runs")
    ap.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not 1 <= args.harts <= 8:
        ap.error("--harts must be between 1 and 8")

    toml_name = "linux.toml" if args.harts == 1 else "linux-smp.toml"
    with open(os.path.join(ROOT, toml_name)) as f:
        text = f.read()
    if args.harts > 1:
        text = re.sub(r"(?m)^harts = \d+$", f"harts = {args.harts}", text)
    text = re.sub(r'(?m)^plugin = "interp"$', f'plugin = "{args.engine}"', text, count=1)
    vm = tomllib.loads(text)
    firmware, cmdline, memory = vm["boot"]["firmware"], vm["boot"]["cmdline"], vm["machine"]["memory"]
    image, pristine = os.path.join(LINUX, "Image"), os.path.join(LINUX, "rootfs.pristine.img")
    for path, why in [(image, "scripts/build-linux.sh builds it"), (pristine, "scripts/build-linux.sh builds it"),
                      (firmware, "install Debian's opensbi (scripts/install-deps.sh)")]:
        if not os.path.isfile(path):
            print(f"bench_linux: {path} not found: {why}", file=sys.stderr)
            sys.exit(2)
    qemu = shutil.which("qemu-system-riscv64")
    if not qemu:
        print("bench_linux: qemu-system-riscv64 not installed (scripts/install-deps.sh --with-qemu); "
              "the target is relative to QEMU", file=sys.stderr)
        sys.exit(2)

    if args.vmhost:
        vmhost = os.path.abspath(args.vmhost)
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "vm-host", "-p", "vm-interp-so", "-p",
                        "vm-serial-so", "-p", "vm-virtio-blk-so"], cwd=ROOT, check=True)
        vmhost = os.path.join(ROOT, "target/release/vmhost")
    plugin = None if args.no_count else qemu_plugin()

    with tempfile.TemporaryDirectory() as tmp:
        disk = os.path.join(tmp, "rootfs.img")
        toml = os.path.join(tmp, "vm.toml")
        with open(toml, "w") as f:
            f.write(text.replace('"target/linux/Image"', f'"{image}"')
                    .replace('"target/linux/rootfs.img"', f'"{disk}"'))
        qemu_cmd = [qemu, "-machine", "virt", "-m", memory, "-smp", str(args.harts), "-bios", firmware,
                    "-kernel", image, "-append", cmdline, "-global", "virtio-mmio.force-legacy=false",
                    "-drive", f"file={disk},format=raw,if=none,id=d0", "-device", "virtio-blk-device,drive=d0",
                    "-nographic"]
        runners = {"vmhost": [vmhost, "run", toml], "QEMU": qemu_cmd}

        def run(label, cmd, env=None):
            shutil.copyfile(pristine, disk)  # every boot on a fresh disk
            try:
                return boot(cmd, args.timeout, env)
            except RunFailed as e:
                sys.exit(f"bench_linux: {e}")

        results = {label: [] for label in runners}
        loads = []
        # The runners take turns, so a change in the machine's load falls on both alike.
        for i in range(args.runs):
            for label, cmd in runners.items():
                loads.append(os.getloadavg()[0])
                times, _ = run(label, cmd)
                results[label].append(times)
                marks = " ".join(f"{name} {times[name]:.3f}" for name, _ in MARKS)
                log(f"{label}: run {i + 1}/{args.runs} s: {marks}")

        insns = {"vmhost": (None, None), "QEMU": (None, None)}
        if plugin:
            _, err = run("QEMU", qemu_cmd[:1] + ["-plugin", plugin] + qemu_cmd[1:])
            insns["QEMU"] = (count(r"insn-count: first-user (\d+)", err, "first-user count"),
                             count(r"insn-count: total (\d+)", err, "total count"))
            firmware_insns = count(r"insn-count: kernel-entry (\d+)", err, "kernel-entry count")
            env = dict(os.environ, RUST_LOG="info,vm_host::events=trace")
            _, err = run("vmhost", runners["vmhost"], env)
            total = count(r"ExecutionCompleted\(ExecutionStats \{ instructions: (\d+)", err, "ExecutionCompleted event")
            user = re.search(r"first user-mode instruction after instret=(\d+)", err)
            insns["vmhost"] = (int(user.group(1)) if user else None, total)

    med = {label: {name: statistics.median(t[name] for t in results[label]) for name, _ in MARKS}
           for label in runners}
    qemu_version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()

    def m(n):
        return "-" if n is None else f"{n / 1e6:.2f} M"

    print(f"\nLinux boot: {toml_name} with {args.harts} hart{'s' * (args.harts > 1)}, {memory}, "
          f"cmdline {cmdline!r}; {qemu_version}; commit {commit}")
    print(f"median of {args.runs} runs; 1-minute load average {min(loads):.2f}-{max(loads):.2f} during the runs "
          f"on {os.cpu_count()} CPUs\n")
    print(f"{'runner':<28} {'Run /init s':>12} {'userspace s':>12} {'prompt s':>9} {'best prompt s':>14}"
          f" {'insns to user':>14} {'insns to off':>13} {'time vs QEMU':>13}")
    for label, name in [("vmhost", f"vmhost ({args.engine})"), ("QEMU", "qemu-system-riscv64 (TCG)")]:
        t = med[label]
        ratio = t["prompt"] / med["QEMU"]["prompt"]
        # The fastest run too: on a shared machine, the load only ever adds time.
        best = min(r["prompt"] for r in results[label])
        print(f"{name:<28} {t['init']:>12.3f} {t['userspace']:>12.3f} {t['prompt']:>9.3f} {best:>14.3f}"
              f" {m(insns[label][0]):>14} {m(insns[label][1]):>13} {ratio:>12.2f}x")
    if plugin:
        print("\ninsns to user: before the first user-mode instruction (QEMU: TCG plugin, all vCPUs, exact on"
              " one;\n  vmhost: the first hart's instret, where vmhost logs it; '-' where it does not)"
              "\ninsns to off: to the exit after `poweroff -f` typed at the prompt (QEMU: the plugin, every"
              " instruction\n  executed; vmhost: the engines' retired instructions, its ExecutionCompleted event)")
        print(f"QEMU: {m(firmware_insns)} of the instructions to user are the reset ROM and OpenSBI "
              "(to the kernel's entry at 0x8020_0000)")
    ratio = med["vmhost"]["prompt"] / med["QEMU"]["prompt"]
    met = ratio <= TIME_TARGET
    print(f"\nprompt in {ratio:.2f}x QEMU's time (target <= {TIME_TARGET:g}x): {'met' if met else 'MISSED'}")
    if args.check and not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
