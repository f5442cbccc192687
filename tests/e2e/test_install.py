"""abota install on file-backed slots with the custom bootloader backend
(RAUC's script protocol), so every bootloader call is visible: order of
operations, slot status, failures before anything is written."""
import hashlib
import json
import os
import stat

import pytest

from conftest import abota, abota_fails, make_content, run, sha256_file

BACKEND = """#!/bin/sh
# custom bootloader backend: state in files, every call logged
d=$(dirname "$0")
echo "$*" >> "$d/calls.log"
case "$1" in
  get-primary) cat "$d/primary" ;;
  set-primary) echo "$2" > "$d/primary" ;;
  get-state) if [ -f "$d/bad-$2" ]; then echo bad; else echo good; fi ;;
  set-state) if [ "$3" = bad ]; then touch "$d/bad-$2"; else rm -f "$d/bad-$2"; fi ;;
  get-current) cat "$d/current" ;;
esac
"""

HANDLER = """#!/bin/sh
env | grep -E '^RAUC_' | sort > "$(dirname "$0")/$1.env"
"""


class Device:
    def __init__(self, base, pki, compatible="abota-test", extra_system=""):
        self.base = base
        self.slots = os.path.join(base, "slots")
        os.makedirs(self.slots)
        for name, size in (("rootfs-a", 16 << 20), ("rootfs-b", 16 << 20),
                           ("fip-a", 64 << 10), ("fip-b", 64 << 10)):
            with open(os.path.join(self.slots, name), "wb") as f:
                f.truncate(size)
        self.bl = os.path.join(base, "bl")
        os.makedirs(self.bl)
        with open(os.path.join(self.bl, "backend"), "w") as f:
            f.write(BACKEND)
        os.chmod(os.path.join(self.bl, "backend"), 0o755)
        with open(os.path.join(self.bl, "primary"), "w") as f:
            f.write("A\n")
        with open(os.path.join(self.bl, "current"), "w") as f:
            f.write("A\n")
        for h in ("pre-install", "post-install"):
            p = os.path.join(self.bl, h)
            with open(p, "w") as f:
                f.write(HANDLER.replace("$1", h))
            os.chmod(p, 0o755)
        self.conf = os.path.join(base, "system.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[system]
compatible={compatible}
bootloader=custom
data-directory={base}/data
{extra_system}
[handlers]
bootloader-custom-backend={self.bl}/backend
pre-install={self.bl}/pre-install
post-install={self.bl}/post-install

[keyring]
path={pki.keyring}

[slot.rootfs.0]
device={self.slots}/rootfs-a
type=ext4
bootname=A

[slot.rootfs.1]
device={self.slots}/rootfs-b
type=ext4
bootname=B

[slot.bootloader.0]
device={self.slots}/fip-a
type=raw
parent=rootfs.0

[slot.bootloader.1]
device={self.slots}/fip-b
type=raw
parent=rootfs.1
""")

    def calls(self):
        p = os.path.join(self.bl, "calls.log")
        return open(p).read().splitlines() if os.path.exists(p) else []

    def slot_bytes(self, name, n):
        with open(os.path.join(self.slots, name), "rb") as f:
            return f.read(n)

    def status(self):
        p = os.path.join(self.base, "data", "central.raucs")
        return open(p).read() if os.path.exists(p) else ""


@pytest.fixture
def device(tmp_path, pki):
    return Device(str(tmp_path / "dev"), pki)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("bundles")
    out = {}
    for name, kw in (("v1", {"version": "1.0"}), ("v2", {"version": "2.0"}),
                     ("other", {"compatible": "someone-else", "version": "3.0"}),
                     ("old", {"version": "0.5"})):
        content = make_content(str(d / f"c-{name}"), rootfs_kib=8192, **kw)
        b = d / f"{name}.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, b)
        out[name] = str(b)
        out[name + "-content"] = content
    return out


def test_install_writes_inactive_group(device, bundles):
    p = abota("-c", device.conf, "install", bundles["v2"])
    assert "succeeded" in p.stdout and "next boot tries B" in p.stdout
    content = bundles["v2-content"]
    img = open(os.path.join(content, "rootfs.ext4"), "rb").read()
    assert device.slot_bytes("rootfs-b", len(img)) == img
    fip = open(os.path.join(content, "fip.img"), "rb").read()
    assert device.slot_bytes("fip-b", len(fip)) == fip
    # the booted group is untouched
    assert device.slot_bytes("rootfs-a", 4096) == b"\0" * 4096
    # bootloader: target marked bad before writing, primary after
    calls = device.calls()
    assert "set-state B bad" in calls and "set-primary B" in calls
    assert calls.index("set-state B bad") < calls.index("set-primary B")
    assert open(os.path.join(device.bl, "primary")).read().strip() == "B"
    st = device.status()
    assert "[slot.rootfs.1]" in st and "status=ok" in st
    assert f"sha256={sha256_file(os.path.join(content, 'rootfs.ext4'))}" in st
    assert "bundle.version=2.0" in st and "activated.count=1" in st
    # handlers saw RAUC's environment
    env = open(os.path.join(device.bl, "pre-install.env")).read()
    assert "RAUC_MF_COMPATIBLE=abota-test" in env
    assert "RAUC_CURRENT_BOOTNAME=A" in env
    assert "RAUC_TARGET_SLOTS=" in env and "RAUC_SLOT_NAME_2=rootfs.1" in env
    assert os.path.exists(os.path.join(device.bl, "post-install.env"))


def test_install_progress_lines(device, bundles):
    p = abota("-c", device.conf, "install", "--progress", bundles["v2"])
    lines = [l for l in p.stdout.splitlines() if "%" in l]
    assert lines[0].strip().startswith("0%")
    assert any(l.strip().startswith("100%") for l in lines)
    pcts = [int(l.split("%")[0]) for l in lines]
    assert pcts == sorted(pcts)


def untouched(device):
    assert device.slot_bytes("rootfs-b", 4096) == b"\0" * 4096
    assert device.slot_bytes("fip-b", 4096) == b"\0" * 4096
    assert not any(c.startswith("set-") for c in device.calls()), device.calls()


def test_wrong_compatible_fails_before_writing(device, bundles):
    abota_fails("-c", device.conf, "install", bundles["other"],
                match="compatible mismatch: bundle is for 'someone-else'")
    untouched(device)
    abota("-c", device.conf, "install", "--ignore-compatible", bundles["other"])


def test_corrupted_bundle_fails_before_writing(device, bundles, tmp_path):
    data = bytearray(open(bundles["v2"], "rb").read())
    data[len(data) // 2] ^= 1
    bad = tmp_path / "bad.raucb"
    bad.write_bytes(bytes(data))
    abota_fails("-c", device.conf, "install", bad)
    untouched(device)


def test_slot_too_small_fails_before_writing(tmp_path, pki, bundles):
    """SC-42: an image larger than its target slot is refused at plan time, before anything is written."""
    dev = Device(str(tmp_path / "small"), pki)
    with open(os.path.join(dev.slots, "rootfs-b"), "wb") as f:
        f.truncate(1 << 20)
    abota_fails("-c", dev.conf, "install", bundles["v2"], match="slot rootfs.1 is too small")
    assert not any(c.startswith("set-") for c in dev.calls())


def test_missing_device_fails_before_writing(tmp_path, pki, bundles):
    dev = Device(str(tmp_path / "missing"), pki)
    os.unlink(os.path.join(dev.slots, "fip-b"))
    abota_fails("-c", dev.conf, "install", bundles["v2"], match="fip-b")
    assert dev.slot_bytes("rootfs-b", 4096) == b"\0" * 4096
    assert not any(c.startswith("set-") for c in dev.calls())


def test_untrusted_bundle_refused(device, bundles, pki, tmp_path):
    abota_fails("-c", device.conf, "--keyring", pki.other_keyring, "install", bundles["v2"],
                match="unable to get local issuer")
    untouched(device)


def test_downgrade_refused(device, bundles):
    abota("-c", device.conf, "install", bundles["v2"])
    # now we run B (the new version)
    with open(os.path.join(device.bl, "current"), "w") as f:
        f.write("B\n")
    abota_fails("-c", device.conf, "--override-boot-slot=B", "install", bundles["old"],
                    match="older than the running version 2.0")
    abota("-c", device.conf, "--override-boot-slot=B", "install", "--ignore-version-limit",
          bundles["old"])


def test_min_bundle_version(tmp_path, pki, bundles):
    dev = Device(str(tmp_path / "min"), pki, extra_system="min-bundle-version=1.5.0\n")
    abota_fails("-c", dev.conf, "install", bundles["v1"],
                match="older than min-bundle-version 1.5.0")
    abota("-c", dev.conf, "install", bundles["v2"])


def test_second_update_goes_to_other_bank(device, bundles):
    abota("-c", device.conf, "install", bundles["v1"])
    with open(os.path.join(device.bl, "current"), "w") as f:
        f.write("B\n")
    abota("-c", device.conf, "--override-boot-slot=B", "install", bundles["v2"])
    img = open(os.path.join(bundles["v2-content"], "rootfs.ext4"), "rb").read()
    assert device.slot_bytes("rootfs-a", len(img)) == img
    assert open(os.path.join(device.bl, "primary")).read().strip() == "A"


def test_install_same_false_skips(tmp_path, pki, bundles):
    dev = Device(str(tmp_path / "same"), pki)
    conf = open(dev.conf).read().replace("[slot.bootloader.1]\n",
                                         "[slot.bootloader.1]\ninstall-same=false\n")
    open(dev.conf, "w").write(conf)
    abota("-c", dev.conf, "install", bundles["v2"])
    # scribble on fip-b: with install-same=false and status ok, it is not rewritten
    with open(os.path.join(dev.slots, "fip-b"), "r+b") as f:
        f.write(b"X")
    abota("-c", dev.conf, "install", bundles["v2"])
    assert dev.slot_bytes("fip-b", 1) == b"X"
    st = dev.status()
    assert "installed.count=2" in st


def test_no_keyring_fails_closed(tmp_path, pki, bundles):
    dev = Device(str(tmp_path / "nokey"), pki)
    conf = open(dev.conf).read().replace(f"[keyring]\npath={pki.keyring}\n", "")
    open(dev.conf, "w").write(conf)
    abota_fails("-c", dev.conf, "install", bundles["v2"], match="no keyring")
    assert not any(c.startswith("set-") for c in dev.calls())


def test_one_install_at_a_time(device, bundles):
    """Another process installing (it holds the data directory's lock):
    refused before anything is written."""
    import fcntl
    os.makedirs(os.path.join(device.base, "data"), exist_ok=True)
    with open(os.path.join(device.base, "data", "install.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        abota_fails("-c", device.conf, "install", bundles["v2"],
                    match="another installation is running")
        untouched(device)
    # released: installs again
    abota("-c", device.conf, "install", bundles["v2"])
