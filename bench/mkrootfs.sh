#!/bin/sh
# Makes a realistic 512 MiB ext4 rootfs image (~380 MB of real binaries and
# libraries from this machine) for the benchmarks.  Deterministic for a given
# machine: the same files in the same order.
#   mkrootfs.sh OUT.ext4 [VARIANT]
# VARIANT "v2" modifies ~25 binaries and adds one 6 MB file (a package upgrade).
set -eu
out=$1
variant=${2:-v1}
tree=$(mktemp -d "${TMPDIR:-/tmp}/abota-rootfs.XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/usr/bin" "$tree/usr/lib" "$tree/etc"
cp -a /usr/bin/. "$tree/usr/bin/"
# libraries until about 380 MB in total (sorted for determinism)
budget=$((380 * 1024 * 1024))
used=$(du -sb "$tree" | cut -f1)
find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*' -printf '%s %p\n' | sort -k2 |
while read -r size path; do
    [ $((used + size)) -gt $budget ] && continue
    cp -a "$path" "$tree/usr/lib/"
    used=$((used + size))
done
echo "VERSION=$variant" > "$tree/etc/os-release"
if [ "$variant" = v2 ]; then
    # ~25 changed binaries: a few bytes differ in each, like a rebuilt package
    ls "$tree/usr/bin" | sort | awk 'NR % 20 == 0' | head -n 25 | while read -r f; do
        [ -f "$tree/usr/bin/$f" ] && [ ! -L "$tree/usr/bin/$f" ] || continue
        printf 'abota-v2' | dd of="$tree/usr/bin/$f" bs=1 seek=4096 conv=notrunc status=none
    done
    head -c $((6 * 1024 * 1024)) /dev/urandom > "$tree/usr/lib/new-6mb.bin"
fi
rm -f "$out"
truncate -s 512M "$out"
mkfs.ext4 -q -F -b 4096 -L rootfs -U 2d6b3a1e-5f0a-4c1e-9d2b-6a7e8f9a0b1c \
    -E root_owner=0:0,lazy_itable_init=0 -T default -d "$tree" "$out"
