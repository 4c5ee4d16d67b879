#!/usr/bin/env bash
# Builds the Linux guest that linux.toml and linux-smp.toml boot: a Linux 6.1 Image from Debian's
# linux-source-6.1 (tinyconfig + linux/kernel.config), a static BusyBox from Debian's source
# package (allnoconfig + linux/busybox.config), and an ext2 root image holding BusyBox and
# linux/init. Installs the Debian packages it needs. Everything is built and cached outside the
# repository, under ${VMHOST_CACHE:-~/.cache/vmhost}/linux, keyed by a hash of each step's inputs
# (its fragment and the function below that builds it), so a rerun is instant. It then links the
# outputs into target/linux, where the toml files name them:
#   target/linux/Image               the kernel
#   target/linux/rootfs.pristine.img the root image as built (the tests copy it)
#   target/linux/rootfs.img          a writable copy for `vmhost run linux.toml`; replaced only
#                                    when the pristine image is rebuilt (delete it to reset)
#   target/linux/busybox             the static BusyBox
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${VMHOST_CACHE:-$HOME/.cache/vmhost}/linux
out=$root/target/linux
jobs=${JOBS:-2}
cross=riscv64-linux-gnu-
mkdir -p "$cache" "$out"

log() { echo "build-linux: $*" >&2; }

# --no-upgrade: naming a package that is already installed must not upgrade it (dpkg-dev would
# pull in a newer dpkg).
packages=(linux-source-6.1 gcc-riscv64-linux-gnu libc6-dev-riscv64-cross make flex bison bc
    libssl-dev libelf-dev cpio e2fsprogs dpkg-dev xz-utils)
install_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-upgrade "${missing[@]}" >/dev/null
}

# Runs a noisy command with its output in $cache/last.log, shown only if it fails.
quietly() { "$@" >"$cache/last.log" 2>&1 || { tail -n 40 "$cache/last.log" >&2; return 1; }; }

# A short hash of the files named and the text on stdin.
hash_of() { { cat; cat "$@"; } | sha256sum | cut -c1-16; }

# Kernel: $1 = output directory for Image.
build_kernel() {
    local dest=$1 src=$cache/src/linux-source-6.1
    # Unpacked aside and renamed when complete, so an interrupted run leaves no half tree.
    if [[ ! -d $src ]]; then
        log "unpacking /usr/src/linux-source-6.1.tar.xz"
        rm -rf "$cache/src/linux.tmp"
        mkdir -p "$cache/src/linux.tmp"
        tar -C "$cache/src/linux.tmp" -xf /usr/src/linux-source-6.1.tar.xz
        mv "$cache/src/linux.tmp/linux-source-6.1" "$src"
        rmdir "$cache/src/linux.tmp"
    fi
    local mk=(make -C "$src" ARCH=riscv CROSS_COMPILE=$cross)
    "${mk[@]}" -s tinyconfig
    (cd "$src" && ARCH=riscv scripts/kconfig/merge_config.sh -m .config "$root/linux/kernel.config" >/dev/null)
    "${mk[@]}" -s olddefconfig
    # A symbol Kconfig dropped (a missing dependency) would silently change the kernel.
    local line lost=0
    while read -r line; do
        [[ $line =~ ^(CONFIG_[A-Z0-9_]+=.*|#\ CONFIG_[A-Z0-9_]+\ is\ not\ set)$ ]] || continue
        grep -qxF "$line" "$src/.config" || { log "kernel.config: '$line' did not survive olddefconfig"; lost=1; }
    done <"$root/linux/kernel.config"
    ((lost == 0)) || return 1
    log "make -j$jobs Image (a few minutes)"
    "${mk[@]}" -s -j"$jobs" Image
    mkdir -p "$dest"
    cp "$src/arch/riscv/boot/Image" "$src/.config" "$dest/"
}

# BusyBox from Debian's source package, through an apt configuration of its own (deb-src for
# bookworm in a sources file under the cache), so the system's apt sources stay as they are.
# $1 = output directory for busybox.
build_busybox() {
    local dest=$1 apt=$cache/apt
    mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial" "$cache/src"
    cat >"$apt/sources/debian-src.sources" <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    local aptopts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/sources"
        -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache")
    # As root, apt would hand the download to the _apt user, who cannot write under $HOME.
    [[ $(id -u) -eq 0 ]] && aptopts+=(-o APT::Sandbox::User=root)
    local bb=$cache/src/busybox
    if [[ ! -d $bb ]]; then
        log "fetching Debian's busybox source package"
        local dl=$cache/src/busybox.dl
        rm -rf "$dl" && mkdir -p "$dl"
        apt-get "${aptopts[@]}" -qq update
        (cd "$dl" && apt-get "${aptopts[@]}" -qq source --download-only busybox)
        (cd "$dl" && quietly dpkg-source -x busybox_*.dsc tree)
        mv "$dl/tree" "$bb"
        rm -rf "$dl"
    fi
    # KCONFIG_ALLCONFIG ignores most symbols, so: allnoconfig, set the fragment's lines, and
    # take the defaults for what they expose. `yes` ends with SIGPIPE, hence the `|| :`.
    local mk=(make -C "$bb" -s CROSS_COMPILE=$cross)
    "${mk[@]}" allnoconfig >/dev/null
    local line sym
    while read -r line; do
        [[ $line =~ ^CONFIG_([A-Z0-9_]+)= ]] || continue
        sym=CONFIG_${BASH_REMATCH[1]}
        sed -i -e "/^$sym=/d" -e "/^# $sym is not set/d" "$bb/.config"
        echo "$line" >>"$bb/.config"
    done <"$root/linux/busybox.config"
    { yes "" || :; } | "${mk[@]}" oldconfig >/dev/null
    while read -r line; do
        [[ $line =~ ^CONFIG_ ]] || continue
        grep -qxF "$line" "$bb/.config" || { log "busybox.config: '$line' did not survive oldconfig"; return 1; }
    done <"$root/linux/busybox.config"
    log "make -j$jobs busybox"
    quietly "${mk[@]}" -j"$jobs" busybox busybox.links
    mkdir -p "$dest"
    "${cross}strip" -o "$dest/busybox" "$bb/busybox"
    cp "$bb/busybox.links" "$bb/.config" "$dest/"
}

# The root image: BusyBox with a link per applet, /init (also /sbin/init, which the kernel tries
# first), mount points, and a profile setting the prompt. No root privileges: mke2fs -d takes
# the tree and root_owner makes root own it. $1 = busybox's directory, $2 = output directory.
make_rootfs() {
    local bbdir=$1 dest=$2 tree
    tree=$(mktemp -d "$cache/rootfs.XXXXXX")
    mkdir -p "$tree"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root}
    cp "$bbdir/busybox" "$tree/bin/busybox"
    local link
    while read -r link; do
        [[ $link == /bin/busybox || -z $link ]] && continue
        ln -sf /bin/busybox "$tree$link"
    done <"$bbdir/busybox.links"
    install -m 0755 "$root/linux/init" "$tree/init"
    ln -sf /init "$tree/sbin/init"
    printf '%s\n' "export PS1='\\w # '" "export PATH=/bin:/sbin:/usr/bin:/usr/sbin" >"$tree/etc/profile"
    mkdir -p "$dest"
    quietly mke2fs -q -F -t ext2 -E root_owner=0:0 -L vmhost-root -d "$tree" "$dest/rootfs.img" 32M
    rm -rf "$tree"
}

install_packages

kkey=$(declare -f build_kernel | hash_of "$root/linux/kernel.config" <(dpkg-query -W linux-source-6.1))
kdir=$cache/kernel-$kkey
if [[ -f $kdir/Image ]]; then
    log "kernel cached in $kdir"
else
    t=$SECONDS
    build_kernel "$kdir.tmp"
    rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
    log "kernel built in $((SECONDS - t)) s"
fi

bkey=$(declare -f build_busybox | hash_of "$root/linux/busybox.config")
bdir=$cache/busybox-$bkey
if [[ -f $bdir/busybox ]]; then
    log "busybox cached in $bdir"
else
    build_busybox "$bdir.tmp"
    rm -rf "$bdir" && mv "$bdir.tmp" "$bdir"
fi

rkey=$({ echo "$bkey"; declare -f make_rootfs; } | hash_of "$root/linux/init")
rdir=$cache/rootfs-$rkey
if [[ -f $rdir/rootfs.img ]]; then
    log "root image cached in $rdir"
else
    make_rootfs "$bdir" "$rdir.tmp"
    rm -rf "$rdir" && mv "$rdir.tmp" "$rdir"
fi

ln -sfn "$kdir/Image" "$out/Image"
ln -sfn "$bdir/busybox" "$out/busybox"
ln -sfn "$rdir/rootfs.img" "$out/rootfs.pristine.img"
if [[ ! -f $out/rootfs.img || $rdir/rootfs.img -nt $out/rootfs.img ]]; then
    cp "$rdir/rootfs.img" "$out/rootfs.img"
fi
echo "kernel:     $kdir/Image"
echo "busybox:    $bdir/busybox"
echo "root image: $rdir/rootfs.img"
echo "linked into $out (Image, busybox, rootfs.pristine.img; rootfs.img is a writable copy)"
echo "boot with:  target/release/vmhost run linux.toml (or linux-smp.toml)"
