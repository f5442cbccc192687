#!/bin/sh
# make demo: the main job end to end, as far as the project goes today.
#  1. make a throw-away signing PKI (openssl)
#  2. generate a rootfs image (ext4) and a firmware blob
#  3. build and sign a verity bundle with abota
#  4. show it with abota info, check it with the real rauc, extract it
# Everything happens in a temporary directory that is removed at the end.
set -eu
build=${1:-build}
abota="$build/src/abota/abota"
[ -x "$abota" ] || { echo "demo: $abota not built (run make)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/abota-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A signing PKI (root CA and a signer)"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key" 2>/dev/null
openssl req -new -x509 -key "$work/ca.key" -days 30 -subj "/O=abota demo/CN=demo CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/ca.pem"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/signer.key" 2>/dev/null
openssl req -new -key "$work/signer.key" -subj "/O=abota demo/CN=demo signer" -out "$work/signer.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > "$work/leaf.ext"
openssl x509 -req -in "$work/signer.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 30 -extfile "$work/leaf.ext" -out "$work/signer.pem" 2>/dev/null
echo "CA: $work/ca.pem, signer: $work/signer.pem"

step "2. Images: a 64 MiB ext4 rootfs and a firmware (fip) blob"
mkdir -p "$work/content" "$work/tree/etc" "$work/tree/usr/bin"
echo "VERSION=2.0" > "$work/tree/etc/os-release"
cp /usr/bin/openssl /usr/bin/ls "$work/tree/usr/bin/"
truncate -s 64M "$work/content/rootfs.ext4"
mkfs.ext4 -q -F -L rootfs -d "$work/tree" "$work/content/rootfs.ext4"
head -c 1048576 /dev/urandom > "$work/content/fip.bin"
cat > "$work/content/manifest.raucm" <<EOT
[update]
compatible=stm32mp257f-ev1-sdcard
version=2.0
description=abota demo update

[image.rootfs]
filename=rootfs.ext4
adaptive=block-hash-index

[image.fip]
filename=fip.bin
EOT
ls -l "$work/content"

step "3. abota bundle (verity, zstd)"
"$abota" bundle --cert "$work/signer.pem" --key "$work/signer.key" "$work/content" "$work/update.raucb"
ls -l "$work/update.raucb"

step "4. abota info"
"$abota" info --keyring "$work/ca.pem" "$work/update.raucb"

if command -v rauc >/dev/null 2>&1; then
    step "5. The real rauc accepts it"
    rauc info --keyring="$work/ca.pem" "$work/update.raucb" 2>&1 | grep -E "Verified|Compatible|Bundle Format"
fi

step "6. abota extract: images come out byte-identical"
"$abota" extract --keyring "$work/ca.pem" "$work/update.raucb" "$work/out"
for f in rootfs.ext4 fip.bin; do
    a=$(sha256sum < "$work/content/$f"); b=$(sha256sum < "$work/out/$f")
    [ "$a" = "$b" ] || { echo "demo: $f differs after extract" >&2; exit 1; }
    echo "$f: identical"
done

step "7. A tampered bundle is refused"
cp "$work/update.raucb" "$work/tampered.raucb"
printf 'X' | dd of="$work/tampered.raucb" bs=1 seek=100000 conv=notrunc status=none
if "$abota" extract --keyring "$work/ca.pem" "$work/tampered.raucb" "$work/bad" 2>"$work/err"; then
    echo "demo: tampered bundle was accepted" >&2; exit 1
fi
cat "$work/err"
echo "\ndemo: all steps passed"
