#!/bin/sh
# Makes a realistic 512 MiB ext4 rootfs image (~380 MB of real binaries and
# libraries from this machine) for the benchmarks.  Deterministic for a given
# machine: the same files in the same order.
#   mkrootfs.sh OUT.ext4 [VARIANT]
#   mkrootfs.sh --pair V1.ext4 V2.ext4
# VARIANT "v2" modifies ~25 binaries and adds one 6 MB file (a package upgrade).
# --pair makes v1 and v2 from one copy of the tree, so they differ only by
# that upgrade even if the machine's files changed since an earlier run.
set -eu
if [ "$1" = --pair ]; then
    pair_v1=$2
    pair_v2=$3
else
    pair_v1=
    out=$1
    variant=${2:-v1}
fi
tree=$(mktemp -d "${TMPDIR:-/tmp}/abota-rootfs.XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/usr/bin" "$tree/usr/lib" "$tree/etc"
# binaries (up to 200 MB; none over 16 MB, such as qemu's static emulators,
# which packages installed later would add) and libraries until about 380 MB
# in total, sorted for determinism
copy_upto() { # DIR BUDGET FIND-ARGS...
    dir=$1 budget=$2
    shift 2
    used=$(du -sb "$tree" | cut -f1)
    find "$@" -printf '%s %p\n' | sort -k2 | while read -r size path; do
        [ "$size" -gt $((16 * 1024 * 1024)) ] && continue
        [ $((used + size)) -gt "$budget" ] && continue
        cp -a "$path" "$tree/$dir/"
        used=$((used + size))
    done
}
copy_upto usr/bin $((200 * 1024 * 1024)) /usr/bin -maxdepth 1 \( -type f -o -type l \)
copy_upto usr/lib $((380 * 1024 * 1024)) /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*'

mkimage() {
    rm -f "$1"
    truncate -s 512M "$1"
    mkfs.ext4 -q -F -b 4096 -L rootfs -U 2d6b3a1e-5f0a-4c1e-9d2b-6a7e8f9a0b1c \
        -E root_owner=0:0,lazy_itable_init=0 -T default -d "$tree" "$1"
}

upgrade() {
    # ~25 changed binaries: a few bytes differ in each, like a rebuilt package
    ls "$tree/usr/bin" | sort | awk 'NR % 20 == 0' | head -n 25 | while read -r f; do
        [ -f "$tree/usr/bin/$f" ] && [ ! -L "$tree/usr/bin/$f" ] || continue
        printf 'abota-v2' | dd of="$tree/usr/bin/$f" bs=1 seek=4096 conv=notrunc status=none
    done
    head -c $((6 * 1024 * 1024)) /dev/urandom > "$tree/usr/lib/new-6mb.bin"
}

if [ -n "$pair_v1" ]; then
    echo "VERSION=v1" > "$tree/etc/os-release"
    mkimage "$pair_v1"
    echo "VERSION=v2" > "$tree/etc/os-release"
    upgrade
    mkimage "$pair_v2"
    exit 0
fi
echo "VERSION=$variant" > "$tree/etc/os-release"
[ "$variant" = v2 ] && upgrade
mkimage "$out"
