#!/bin/sh
# Runs guests and compares their UART output and exit code with expected/<name>.out and .exit.
#   ./check.sh [name...]            default: every bin/*.elf, on QEMU
#   RUN="vmhost run ..." ./check.sh runs "$RUN bin/<name>.elf" instead (another VM, same checks)
# Output is compared after dropping '\r' and replacing the host-dependent counter values
# (instret=, cycles=, time=) with N.
set -u
cd "$(dirname "$0")"
RUN=${RUN:-qemu-system-riscv64 -machine virt -bios none -nographic -kernel}
TIMEOUT=${TIMEOUT:-30}
[ $# -gt 0 ] || set -- $(for f in bin/*.elf; do basename "$f" .elf; done)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
for name in "$@"; do
    timeout "$TIMEOUT" $RUN "bin/$name.elf" </dev/null >"$tmp/raw"
    code=$?
    tr -d '\r' <"$tmp/raw" | sed -E 's/^(instret|cycles|time)=[0-9]+$/\1=N/' >"$tmp/out"
    want=$(cat "expected/$name.exit")
    if [ "$code" = "$want" ] && cmp -s "expected/$name.out" "$tmp/out"; then
        echo "PASS $name"
    else
        echo "FAIL $name: exit code $code (want $want)"
        diff -u "expected/$name.out" "$tmp/out"
        failed=1
    fi
done
exit $failed
