#!/bin/sh
# make demo: the OpenSTLinux OTA story on a simulated STM32MP257F-EV1 (SD card),
# as far as the project goes today (see README "What works today"):
#   1. a signing PKI, and the factory board (bank A) in the simulator
#   2. a signed v2 bundle (fip, bootfs, vendorfs, rootfs), shown by abota info
#      and accepted by the real rauc
#   3. abota install writes bank B; the simulated reboot boots B in trial
#      ("Boot B"); the health check passes and mark-good accepts B
#   4. a broken v3 (its kernel is missing) is installed into A: three trial
#      boots fail, TF-A falls back to B, and abota reports the rollback
#   5. a tampered bundle is refused before anything is written
#   6. power is lost in the middle of the v4 update: the board keeps booting
#      the accepted bank, abota status shows the interrupted install, and the
#      same install resumes after its last proven checkpoint
# Each step checks its outcome and the demo fails loudly if one misbehaves.
# Everything happens in a temporary directory that is removed at the end.
set -eu
build=${1:-build}
abota="$build/src/abota/abota"
sim="$build/src/abota-sim/abota-sim"
for b in "$abota" "$sim"; do
    [ -x "$b" ] || { echo "demo: $b not built (run make)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/abota-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
board=stm32mp257f-ev1-sdcard
dev="$work/board"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
on_device() { "$abota" -c "$dev/system.conf" -C "keyring:path=$work/ca.pem" "$@"; }
boot() {
    "$sim" boot "$dev" "$@" --quiet || true
    # the console lines of this power-on only
    awk '/=== abota-sim power-on/ { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' \
        "$dev/console.log" | grep -E "Selecting|Trial|Boot [AB]|Kernel command|boot-complete|fails|fallback|PANIC|File not found|not found" || true
}
booted_bank() { sed -n 's/.*rauc\.slot=\([AB]\).*/\1/p' "$dev/cmdline"; }

step "1. Signing PKI and the factory board ($board, bank A)"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key" 2>/dev/null
openssl req -new -x509 -key "$work/ca.key" -days 30 -subj "/O=abota demo/CN=demo CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/ca.pem"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/signer.key" 2>/dev/null
openssl req -new -key "$work/signer.key" -subj "/O=abota demo/CN=demo signer" -out "$work/signer.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > "$work/leaf.ext"
openssl x509 -req -in "$work/signer.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 30 -extfile "$work/leaf.ext" -out "$work/signer.pem" 2>/dev/null
"$sim" create "$board" "$dev"
boot
[ "$(booted_bank)" = A ] || fail "factory board did not boot bank A"

# make_content DIR VERSION KERNEL: fip, bootfs (extlinux.conf naming bank A, as a
# build system writes it; abota fixes it up for the target bank), vendorfs, rootfs
make_content() {
    c=$1; v=$2; kernel=$3
    mkdir -p "$c" "$c.boot/extlinux" "$c.vendor" "$c.root/etc" "$c.root/usr/bin"
    printf '\001\000\144\252\170\126\064\022' > "$c/fip.bin"   # TF-A ToC header
    head -c 1048568 /dev/urandom >> "$c/fip.bin"
    printf 'DEFAULT OpenSTLinux\nLABEL OpenSTLinux\n    KERNEL /%s\n    APPEND root=PARTUUID=00000000-0000-0000-0000-000000000000 rootwait rw console=ttySTM0,115200 rauc.slot=A\n' \
        "$kernel" > "$c.boot/extlinux/extlinux.conf"
    echo "kernel $v" > "$c.boot/Image"
    echo "firmware $v" > "$c.vendor/fw.bin"
    echo "VERSION=$v" > "$c.root/etc/os-release"
    printf 'PARTLABEL=bootfs-a /boot ext4 defaults 0 0\nPARTLABEL=vendorfs-a /vendor ext4 defaults 0 0\n' > "$c.root/etc/fstab"
    cp /usr/bin/openssl /usr/bin/ls "$c.root/usr/bin/"
    for fs in boot:bootfs:16M vendor:vendorfs:8M root:rootfs:48M; do
        src=${fs%%:*}; rest=${fs#*:}; name=${rest%%:*}; size=${rest#*:}
        truncate -s "$size" "$c/$name.ext4"
        mkfs.ext4 -q -F -L "$name" -E root_owner=0:0 -d "$c.$src" "$c/$name.ext4"
    done
    cat > "$c/manifest.raucm" <<EOT
[update]
compatible=stm32mpu
version=$v
description=abota demo update $v

[image.fip]
filename=fip.bin

[image.bootfs]
filename=bootfs.ext4

[image.vendorfs]
filename=vendorfs.ext4

[image.rootfs]
filename=rootfs.ext4
EOT
}

step "2. Build and sign the v2 bundle"
make_content "$work/v2" 2.0.0 Image
"$abota" bundle --cert "$work/signer.pem" --key "$work/signer.key" "$work/v2" "$work/v2.raucb"
"$abota" info --keyring "$work/ca.pem" "$work/v2.raucb" | sed -n '1,12p'
if command -v rauc >/dev/null 2>&1; then
    rauc info --keyring="$work/ca.pem" "$work/v2.raucb" 2>&1 | grep -E "Verified" ||
        fail "rauc does not accept the bundle"
fi

step "3. Install v2 into bank B, reboot into the trial, accept"
on_device install --progress "$work/v2.raucb"
boot
[ "$(booted_bank)" = B ] || fail "bank B did not boot after the update"
on_device status | sed -n '1,12p'
echo "(health check passed: boot-complete.target reached)"
on_device status mark-good
boot
[ "$(booted_bank)" = B ] || fail "accepted bank B did not stay booted"

step "4. A broken v3 (kernel missing from its bootfs): the trial fails, TF-A falls back"
make_content "$work/v3" 3.0.0 Image-missing
"$abota" bundle --cert "$work/signer.pem" --key "$work/signer.key" "$work/v3" "$work/v3.raucb" >/dev/null
on_device install "$work/v3.raucb"
for i in 1 2 3 4; do
    echo "-- power-on $i after the v3 update"
    boot
done
[ "$(booted_bank)" = B ] || fail "the board did not fall back to bank B"
on_device status | grep -iE "roll|fell|fallback" || fail "abota did not report the rollback"

step "5. A tampered bundle is refused before anything is written"
echo "(a plain reboot first: TF-A re-arms its trial counter when it boots an accepted bank)"
boot
cp "$work/v2.raucb" "$work/tampered.raucb"
printf 'X' | dd of="$work/tampered.raucb" bs=1 seek=300000 conv=notrunc status=none
if on_device install "$work/tampered.raucb" 2>"$work/err"; then
    fail "tampered bundle was accepted"
fi
cat "$work/err"
grep -q "corrupted" "$work/err" || fail "the tampered bundle was refused for another reason"

step "6. A power cut in the middle of the v4 update; the install resumes"
make_content "$work/v4" 4.0.0 Image
"$abota" bundle --cert "$work/signer.pem" --key "$work/signer.key" "$work/v4" "$work/v4.raucb" >/dev/null
# Where to cut: the write points of the same install on a copy of the board
# (powercut.h: ABOTA_POWERCUT_LOG lists them, ABOTA_POWERCUT=N loses power at
# point N, and every write not yet synced is lost with it).
ref="$work/ref"
cp -a --sparse=always "$dev" "$ref"
sed -i "s#$dev#$ref#g" "$ref/system.conf"
ABOTA_POWERCUT_LOG="$work/points.log" "$abota" -c "$ref/system.conf" -C "keyring:path=$work/ca.pem" \
    install "$work/v4.raucb" >/dev/null
cut=$(awk '$2 == "write" && $3 ~ /^rootfs\./ { n[++k] = $1 } END { print n[int(k * 0.9)] }' "$work/points.log")
[ -n "$cut" ] || fail "no rootfs write points found"
echo "power is lost at write point $cut (90% of the rootfs written)"
if ABOTA_POWERCUT=$cut on_device install "$work/v4.raucb" 2>"$work/err"; then
    fail "the cut install did not stop"
fi
tail -n 1 "$work/err"
"$sim" event "$dev" power-loss
boot
[ "$(booted_bank)" = B ] || fail "after the power cut the board did not boot the accepted bank B"
on_device status | sed -n '/=== Interrupted install ===/,/^$/p' | grep . ||
    fail "abota status does not show the interrupted install"
on_device install "$work/v4.raucb" | tee "$work/out"
grep -q "resumed after an interruption" "$work/out" || fail "the install did not resume"
boot
[ "$(booted_bank)" = A ] || fail "bank A (v4) did not boot after the resumed install"
on_device status mark-good
boot
[ "$(booted_bank)" = A ] || fail "accepted bank A did not stay booted"

step "Board at the end"
"$sim" status "$dev" | sed -n '1,24p'
printf '\ndemo: all steps passed\n'
