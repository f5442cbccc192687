"""Per-slot bundle hooks (RAUC's [image.*] hooks=pre-install;post-install
and hooks=install): order, environment, the slot mounted for
slot-post-install, and an install hook that writes the slot itself from the
verified image it reads through RAUC_IMAGE_NAME."""
import os
import subprocess

import pytest

from conftest import abota, abota_fails, make_content
from test_install import Device

HOOK = r"""#!/bin/sh
log="$(dirname "$RAUC_SYSTEM_CONFIG")/hooks.log"
case "$1" in
slot-pre-install)
    echo "pre $RAUC_SLOT_NAME class=$RAUC_SLOT_CLASS image=$RAUC_IMAGE_CLASS boot=$RAUC_SLOT_BOOTNAME mp=$RAUC_SLOT_MOUNT_POINT" >> "$log"
    [ -n "$FAIL_PRE" ] && exit 1
    exit 0 ;;
slot-post-install)
    echo "post $RAUC_SLOT_NAME $(cat "$RAUC_SLOT_MOUNT_POINT/etc/os-release")" >> "$log"
    echo hooked > "$RAUC_SLOT_MOUNT_POINT/hook-was-here"
    grep " $RAUC_SLOT_MOUNT_POINT " /proc/self/mountinfo > "$log.mount"
    exit 0 ;;
slot-install)
    echo "install $RAUC_SLOT_NAME size=$RAUC_IMAGE_SIZE digest=$RAUC_IMAGE_DIGEST parent=$RAUC_SLOT_PARENT" >> "$log"
    [ -n "$SKIP_READ" ] && exit 0
    dd if="$RAUC_IMAGE_NAME" of="$RAUC_SLOT_DEVICE" bs=64k conv=notrunc status=none || exit 3
    exit 0 ;;
esac
exit 0
"""


@pytest.fixture(scope="module")
def hooked(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("hooked")
    c = make_content(str(d / "c"), version="2.0", rootfs_kib=8192)
    with open(os.path.join(c, "hook.sh"), "w") as f:
        f.write(HOOK)
    os.chmod(os.path.join(c, "hook.sh"), 0o755)
    m = open(os.path.join(c, "manifest.raucm")).read()
    m = m.replace("[image.rootfs]\n", "[hooks]\nfilename=hook.sh\n\n[image.rootfs]\nhooks=pre-install;post-install;\n")
    m = m.replace("[image.bootloader]\n", "[image.bootloader]\nhooks=install;\n")
    open(os.path.join(c, "manifest.raucm"), "w").write(m)
    b = d / "hooked.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, str(b))
    return {"bundle": str(b), "content": c}


def hook_log(dev):
    p = os.path.join(dev.base, "hooks.log")
    return open(p).read().splitlines() if os.path.exists(p) else []


def ext4_cat(image, path):
    p = subprocess.run(["debugfs", "-R", f"cat {path}", image], capture_output=True, text=True)
    return p.stdout


def test_slot_hooks_order_env_mount(tmp_path, pki, hooked):
    dev = Device(str(tmp_path / "dev"), pki)
    p = abota("-c", dev.conf, "install", hooked["bundle"])
    assert "succeeded" in p.stdout, p.stderr
    log = hook_log(dev)
    assert [l.split()[0] for l in log] == ["pre", "post", "install"], log
    assert log[0] == "pre rootfs.1 class=rootfs image=rootfs boot=B mp=", log
    # post-install saw the new image mounted, and its change is in the slot
    assert log[1] == "post rootfs.1 VERSION=2.0", log
    assert ext4_cat(os.path.join(dev.slots, "rootfs-b"), "/hook-was-here") == "hooked\n"
    # the install hook wrote the bootloader slot from the verified image
    fip = open(os.path.join(hooked["content"], "fip.img"), "rb").read()
    assert f"size={len(fip)}" in log[2] and "parent=rootfs.1" in log[2]
    assert dev.slot_bytes("fip-b", len(fip)) == fip
    st = dev.status()
    assert "[slot.bootloader.1]" in st and "status=ok" in st
    # nothing left mounted, no mount point left behind (RAUC's default
    # mount prefix: the Device has no mountprefix= key)
    assert " /mnt/rauc/rootfs.1 " not in open("/proc/mounts").read()
    assert not os.path.exists("/mnt/rauc/rootfs.1")
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"


def test_extra_mount_opts(tmp_path, pki, hooked):
    """extra-mount-opts (RAUC passes them to mount -o): generic ones become mount flags,
    the rest the file system's options; the slot stays nosuid,nodev.  Options that
    would lift that are refused when system.conf is read, naming file, line and key."""
    dev = Device(str(tmp_path / "dev"), pki)
    conf = open(dev.conf).read()
    open(dev.conf, "w").write(conf.replace(
        "[slot.rootfs.1]\n", "[slot.rootfs.1]\nextra-mount-opts=noatime,errors=remount-ro\n"))
    abota("-c", dev.conf, "install", hooked["bundle"])
    line = open(os.path.join(dev.base, "hooks.log.mount")).read().split()
    opts, sep = line[5].split(","), line.index("-")
    assert {"noatime", "nosuid", "nodev"} <= set(opts), line
    assert "errors=remount-ro" in line[sep + 3].split(","), line
    bad = conf.replace("[slot.rootfs.1]\n", "[slot.rootfs.1]\nextra-mount-opts=noatime,dev\n")
    open(dev.conf, "w").write(bad)
    n = bad.split("\n").index("extra-mount-opts=noatime,dev") + 1
    abota_fails("-c", dev.conf, "install", hooked["bundle"],
                match=f"{dev.conf}:{n}: key 'extra-mount-opts' in group [slot.rootfs.1]: "
                      "'dev' is not allowed for a slot mount")


def test_failing_pre_install_hook_stops_before_writing(tmp_path, pki, hooked):
    dev = Device(str(tmp_path / "dev"), pki)
    p = abota("-c", dev.conf, "install", hooked["bundle"], check=False, env={"FAIL_PRE": "1"})
    assert p.returncode == 1
    assert "slot-pre-install hook for slot rootfs.1 failed with exit code 1" in p.stderr
    assert dev.slot_bytes("rootfs-b", 4096) == b"\0" * 4096
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "A"


def test_install_hook_that_does_not_read(tmp_path, pki, hooked):
    dev = Device(str(tmp_path / "dev"), pki)
    p = abota("-c", dev.conf, "install", hooked["bundle"], env={"SKIP_READ": "1"})
    assert "did not read the image" in p.stderr
    assert dev.slot_bytes("fip-b", 4096) == b"\0" * 4096


def test_hooks_without_hook_file_refused(tmp_path, pki):
    c = make_content(str(tmp_path / "c"), version="2.0")
    m = open(os.path.join(c, "manifest.raucm")).read()
    m = m.replace("[image.rootfs]\n", "[image.rootfs]\nhooks=post-install;\n")
    open(os.path.join(c, "manifest.raucm"), "w").write(m)
    b = tmp_path / "b.raucb"
    r = abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, str(b), check=False)
    if r.returncode != 0:
        # refused when the bundle is built already
        assert "hook" in r.stderr, r.stderr
        return
    dev = Device(str(tmp_path / "dev"), pki)
    abota_fails("-c", dev.conf, "install", str(b), match="names no hook file")


def test_install_hook_without_image_file(tmp_path, pki):
    """hooks=install on an image with no file (the hook makes the slot's content
    itself): installs with a data directory too -- such an image has nothing to
    resume, and its journal entry once made the journal's save crash."""
    c = make_content(str(tmp_path / "c"), version="2.0", rootfs_kib=1024)
    with open(os.path.join(c, "hook.sh"), "w") as f:
        f.write('#!/bin/sh\n[ "$1" = slot-install ] || exit 0\n'
                'printf made-by-hook | dd of="$RAUC_SLOT_DEVICE" conv=notrunc status=none\n')
    os.chmod(os.path.join(c, "hook.sh"), 0o755)
    m = open(os.path.join(c, "manifest.raucm")).read()
    m = m.replace("[image.bootloader]\nfilename=fip.img\n",
                  "[hooks]\nfilename=hook.sh\n\n[image.bootloader]\nhooks=install;\n")
    open(os.path.join(c, "manifest.raucm"), "w").write(m)
    os.unlink(os.path.join(c, "fip.img"))
    b = str(tmp_path / "nofile.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, b)
    dev = Device(str(tmp_path / "dev"), pki)
    abota("-c", dev.conf, "install", b)
    assert dev.slot_bytes("fip-b", 12) == b"made-by-hook"
    assert "set-primary B" in dev.calls()
