#!/bin/sh
# make demo: the OpenSTLinux OTA story on a simulated STM32MP257F-EV1 (SD card):
#   1. a signing PKI, and the factory board (bank A) in the simulator
#   2. a signed v2 bundle (fip, bootfs, vendorfs, rootfs), shown by abota info
#      and accepted by the real rauc
#   3. abota-server starts on loopback; the bundle is uploaded and assigned to
#      the board through hawkBit's Management API; abotad on the board polls
#      (DDI), streams the update into bank B and asks for a reboot
#   4. the simulated reboot boots B in trial ("Boot B"); the health check
#      passes, mark-good accepts B, and the server shows the action finished
#   5. a broken v3 (its kernel is missing) is deployed the same way: three
#      trial boots fail, TF-A falls back to B, abota reports the rollback and
#      the server shows the action failed, with the reason
#   6. a tampered bundle is refused before anything is written
#   7. power is lost in the middle of the v4 update: the board keeps booting
#      the accepted bank, abota status shows the interrupted install, and the
#      same install resumes after its last proven checkpoint
# Each step checks its outcome and the demo fails loudly if one misbehaves.
# Everything happens in a temporary directory that is removed at the end;
# with SERVE=1 the server (and its web UI) keeps running until Ctrl-C.
set -eu
build=${1:-build}
abota="$build/src/abota/abota"
sim="$build/src/abota-sim/abota-sim"
server="$build/src/abota-server/abota-server"
abotad="$build/src/abotad/abotad"
for b in "$abota" "$sim" "$server" "$abotad"; do
    [ -x "$b" ] || { echo "demo: $b not built (run make)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/abota-demo.XXXXXX")
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
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
# hawkBit's Management API of abota-server, as an operator's script uses it
mgmt() { # METHOD PATH [JSON]
    curl -sS --fail-with-body -u "admin:demo-password" -X "$1" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$server_url/rest/v1$2"
}
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# publish BUNDLE VERSION: software module + artifact + distribution set; prints the set's id
publish() {
    sm=$(mgmt POST /softwaremodules "[{\"name\":\"stm32mpu\",\"version\":\"$2\",\"type\":\"os\"}]" | json 'd[0]["id"]')
    curl -sS --fail-with-body -u "admin:demo-password" -F "file=@$1;filename=$(basename "$1")" \
        "$server_url/rest/v1/softwaremodules/$sm/artifacts" >/dev/null
    mgmt POST /distributionsets \
        "[{\"name\":\"stm32mpu\",\"version\":\"$2\",\"type\":\"os\",\"modules\":[{\"id\":$sm}]}]" | json 'd[0]["id"]'
}
assign() { # DS -> action id
    mgmt POST "/distributionsets/$1/assignedTargets" '[{"id":"ev1-board","type":"forced"}]' |
        json 'd["assignedActions"][-1]["id"]'
}
action_status() { mgmt GET "/targets/ev1-board/actions/$1" | json 'd["detailStatus"]'; }
agent() { # one abotad iteration on the board (poll, and what the server asks for)
    "$abotad" -c "$work/hawkbit.conf" -s "$dev/system.conf" -C "keyring:path=$work/ca.pem" \
        --run-once 2>&1 | sed 's/^/  abotad: /' | grep -vE "debug:" || true
}

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
    # TF-A ToC header: name, serial, flags (zero: anti-rollback NV counter 0, docs/fwu.md)
    printf '\001\000\144\252\170\126\064\022\000\000\000\000\000\000\000\000' > "$c/fip.bin"
    head -c 1048560 /dev/urandom >> "$c/fip.bin"
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

step "3. abota-server on loopback; the bundle is assigned to the board; abotad installs it"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_url="http://127.0.0.1:$port"
"$server" --data "$work/server" --listen "127.0.0.1:$port" --keyring "$work/ca.pem" \
    --admin-user admin --admin-password demo-password --polling-time 00:00:01 \
    >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
i=0
until curl -s -o /dev/null "$server_url/"; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "abota-server did not start: $(cat "$work/server.log")"
    sleep 0.1
done
echo "abota-server: $server_url (web UI at $server_url/)"
mgmt POST /targets '[{"controllerId":"ev1-board","name":"STM32MP257F-EV1","securityToken":"ev1-board-token"}]' >/dev/null
ds2=$(publish "$work/v2.raucb" 2.0.0)
a2=$(assign "$ds2")
echo "operator: distribution set $ds2 (v2.0.0) assigned to ev1-board, action $a2"
cat > "$work/hawkbit.conf" <<EOT
[client]
hawkbit_server=${server_url#http://}
ssl=false
tenant_id=DEFAULT
target_name=ev1-board
auth_token=ev1-board-token
bundle_download_location=$work/download.raucb
stream_bundle=true
post_update_reboot=true
reboot_command=touch $work/reboot-requested
boot_id_file=$dev/boot_id
retry_wait=1
timeout=20

[device]
product=STM32MP257F-EV1
serial=demo-0001
EOT
agent
[ -e "$work/reboot-requested" ] || fail "abotad did not install v2 and ask for a reboot"
rm -f "$work/reboot-requested"
[ "$(action_status "$a2")" != finished ] || fail "the action was closed before the new bank booted"
echo "server: action $a2 is $(action_status "$a2") (installed, waiting for the new bank)"

step "4. Reboot into the trial of bank B; the health check passes; mark-good; the server shows success"
boot
[ "$(booted_bank)" = B ] || fail "bank B did not boot after the update"
on_device status | sed -n '1,12p'
echo "(health check passed: boot-complete.target reached)"
on_device status mark-good
agent
[ "$(action_status "$a2")" = finished ] || fail "the server does not show action $a2 finished"
echo "server: action $a2 is finished"
boot
[ "$(booted_bank)" = B ] || fail "accepted bank B did not stay booted"

step "5. A broken v3 (kernel missing from its bootfs) is deployed: the trial fails, TF-A falls back"
make_content "$work/v3" 3.0.0 Image-missing
"$abota" bundle --cert "$work/signer.pem" --key "$work/signer.key" "$work/v3" "$work/v3.raucb" >/dev/null
a3=$(assign "$(publish "$work/v3.raucb" 3.0.0)")
echo "operator: v3.0.0 assigned, action $a3"
agent
rm -f "$work/reboot-requested"
for i in 1 2 3 4; do
    echo "-- power-on $i after the v3 update"
    boot
done
[ "$(booted_bank)" = B ] || fail "the board did not fall back to bank B"
on_device status | grep -iE "roll|fell|fallback" || fail "abota did not report the rollback"
agent
[ "$(action_status "$a3")" = error ] || fail "the server does not show action $a3 failed"
echo "server: action $a3 is error: $(mgmt GET "/targets/ev1-board/actions/$a3/status?offset=0&limit=1&sort=id:DESC" | json '" ".join(d["content"][0].get("messages", []))')"

step "6. A tampered bundle is refused before anything is written"
echo "(a plain reboot first: TF-A re-arms its trial counter when it boots an accepted bank)"
boot
cp "$work/v2.raucb" "$work/tampered.raucb"
printf 'X' | dd of="$work/tampered.raucb" bs=1 seek=300000 conv=notrunc status=none
if on_device install "$work/tampered.raucb" 2>"$work/err"; then
    fail "tampered bundle was accepted"
fi
cat "$work/err"
grep -q "corrupted" "$work/err" || fail "the tampered bundle was refused for another reason"

step "7. A power cut in the middle of the v4 update; the install resumes"
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
if [ "${SERVE:-0}" = 1 ]; then
    printf '\nabota-server keeps running (make demo SERVE=1): %s/\n' "$server_url"
    printf 'log in as admin / demo-password; Ctrl-C stops it and removes %s\n' "$work"
    trap 'exit 0' INT TERM
    wait "$server_pid"
fi
