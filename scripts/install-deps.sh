#!/usr/bin/env bash
# Installs what building the guests and running every test needs beyond the Rust toolchain:
# Debian's bare-metal RISC-V cross compiler, dtc to check the device tree, cmake (softfloat-sys's
# c99 dependency runs it at build time), and Debian's OpenSBI
# and U-Boot firmware (tests/uboot.rs boots them). With --with-qemu,
# also qemu-system-riscv64, which the tests, the benchmark (scripts/bench.py) and
# `make -C guests check-qemu` compare against.
set -euo pipefail

packages=(gcc-riscv64-unknown-elf make cmake device-tree-compiler opensbi u-boot-qemu)
if [[ "${1:-}" == "--with-qemu" ]]; then
    packages+=(qemu-system-misc)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
echo "install-deps: ${packages[*]} present"
