#!/bin/sh
# Installs every Debian package that abota's build, tests, demo and benchmarks need.
# Idempotent: a second run with everything present does nothing but check.
set -eu

PKGS="
build-essential pkg-config meson ninja-build clang libclang-rt-14-dev
libssl-dev libsquashfs-dev libdeflate-dev libzstd-dev liblzma-dev zlib1g-dev liblz4-dev
libcmocka-dev libjson-c-dev libfdisk-dev libblkid-dev libext2fs-dev libubootenv-dev
libsystemd-dev libcurl4-openssl-dev libmicrohttpd-dev libsqlite3-dev
python3 python3-pytest
openssl rauc squashfs-tools cryptsetup-bin e2fsprogs dbus util-linux nginx
libubootenv-tool grub-common
"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

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
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
