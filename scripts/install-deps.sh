#!/bin/sh
# Installs every Debian package that abota's build, tests, demo and benchmarks need.
# Idempotent: a second run with everything present does nothing but check.
set -eu

PKGS="
build-essential pkg-config meson ninja-build clang libclang-rt-14-dev cppcheck clang-tidy
libssl-dev libsquashfs-dev libdeflate-dev libzstd-dev liblzma-dev zlib1g-dev liblz4-dev
libcmocka-dev libjson-c-dev libfdisk-dev libblkid-dev libext2fs-dev libubootenv-dev
libsystemd-dev libcurl4-openssl-dev libmicrohttpd-dev libsqlite3-dev
python3 python3-pytest python3-jsonschema
openssl rauc squashfs-tools cryptsetup-bin e2fsprogs dbus systemd util-linux nginx tar xz-utils
libubootenv-tool grub-common
swupdate chromium wrk
bindfs
help2man man-db
gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
qemu-system-arm u-boot-qemu u-boot-tools dosfstools mtools fdisk lz4 python3-pytest-xdist
libssl-dev:arm64 libsquashfs-dev:arm64 libdeflate-dev:arm64 libzstd-dev:arm64
liblzma-dev:arm64 zlib1g-dev:arm64 liblz4-dev:arm64 libcmocka-dev:arm64 libjson-c-dev:arm64
libfdisk-dev:arm64 libblkid-dev:arm64 libext2fs2:arm64 comerr-dev:arm64 libubootenv-dev:arm64
libsystemd-dev:arm64 libcurl4-openssl-dev:arm64 libmicrohttpd-dev:arm64 libsqlite3-dev:arm64
"
# The :arm64 packages are for `make cross` / `make qemu-test` (multiarch; README "Cross
# builds"); libext2fs-dev is not Multi-Arch in Debian 12, so only its runtime
# libext2fs2:arm64 is installed (cross/pkgconfig-arm64/ext2fs.pc).

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# abota-server's browser test drives chromium with Playwright from npm; a
# Node.js that already brings npm (e.g. NodeSource's) is kept as it is.
if ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
