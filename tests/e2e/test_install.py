"""abota install on file-backed slots with the custom bootloader backend
(RAUC's script protocol), so every bootloader call is visible: order of
operations, slot status, failures before anything is written."""
import hashlib
import json
import os
import re
import stat

import pytest

from conftest import abota, abota_fails, make_content, make_ext4, run, sha256_file

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


def cached_bytes(path):
    """Bytes of the file in the page cache (util-linux fincore)."""
    out = run("fincore", "--bytes", "--noheadings", "--output", "RES", path).stdout
    return int(out.split()[0])


def page_cache_drops_in(d):
    """Whether a file's clean pages can be dropped here (not on tmpfs)."""
    p = os.path.join(d, "scratch")
    with open(p, "wb") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    n = cached_bytes(p)
    os.unlink(p)
    return n == 0


@pytest.mark.parametrize("fmt", ["plain", "verity"])
def test_install_leaves_page_cache_alone(tmp_path, pki, fmt):
    """An install reads the bundle twice (signature, then images) and
    reads every slot back: none of it may stay in the page cache in place
    of the running system's own files (it all did: bundle and image)."""
    if not page_cache_drops_in(str(tmp_path)):
        pytest.skip("page cache pages cannot be dropped on this file system")
    content = make_content(str(tmp_path / "c"), version="2.0", fmt=fmt)
    make_ext4(os.path.join(content, "rootfs.ext4"), 15 << 10,
              {"usr/lib/blob": os.urandom(8 << 20)})
    bundle = str(tmp_path / "b.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, bundle)
    dev = Device(str(tmp_path / "dev"), pki)
    run("sync")
    with open(bundle, "rb") as f:  # cached, as a download just written would be
        while f.read(1 << 20):
            pass
    size = os.path.getsize(bundle)
    assert size > 8 << 20 and cached_bytes(bundle) >= size
    abota("-c", dev.conf, "install", bundle)
    # what may stay: metadata, a large folio at the end of a range
    assert cached_bytes(bundle) < 1 << 20
    assert cached_bytes(os.path.join(dev.slots, "rootfs-b")) < 4 << 20
    img = open(os.path.join(content, "rootfs.ext4"), "rb").read()
    assert dev.slot_bytes("rootfs-b", len(img)) == img


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


def test_medium_that_stores_a_wrong_byte_is_caught(device, bundles):
    """The read-back check: a slot medium that stores one bit wrongly and
    reports success (the simulator's ABOTA_FAULT_BADMEDIUM) fails the install
    with the place named; the slot is recorded as failed, the boot is not
    switched.  The same install on a good medium then succeeds."""
    off = 5_000_000  # inside the 8 MiB rootfs image, not in the first segment's first write
    p = abota("-c", device.conf, "install", bundles["v2"], check=False,
              env={"ABOTA_FAULT_BADMEDIUM": f"rootfs.1:{off}"})
    assert p.returncode != 0, p.stdout
    assert "read-back check failed" in p.stderr and "slot rootfs.1" in p.stderr, p.stderr
    assert "differ from what was written" in p.stderr, p.stderr
    calls = device.calls()
    assert "set-state B bad" in calls and "set-primary B" not in calls, calls
    st = device.status()
    sec = st.split("[slot.rootfs.1]")[1].split("[slot.")[0]
    assert "status=failed" in sec and "sha256=" not in sec, st
    img = open(os.path.join(bundles["v2-content"], "rootfs.ext4"), "rb").read()
    got = device.slot_bytes("rootfs-b", len(img))
    assert got[off] == img[off] ^ 1 and got[:off] == img[:off]
    abota("-c", device.conf, "install", bundles["v2"])
    assert device.slot_bytes("rootfs-b", len(img)) == img
    assert "set-primary B" in device.calls()


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


# --- version policy and anti-rollback (security cases SC-100..SC-102) -------

def boot_into(device, bootname):
    """The device rebooted into `bootname` (the custom backend's get-current)."""
    with open(os.path.join(device.bl, "current"), "w") as f:
        f.write(bootname + "\n")


def floor_file(device):
    p = os.path.join(device.base, "data", "version-floor")
    return open(p).read() if os.path.exists(p) else None


def test_min_bundle_version(tmp_path, pki, bundles):
    """SC-100: a bundle whose version is below system.conf's [system]
    min-bundle-version (RAUC's key, rauc-compat §3.1, checked after the
    compatible check, §5.1) is refused before anything is written, unless
    --ignore-version-limit (RAUC's ignore-version-limit) overrides it."""
    dev = Device(str(tmp_path / "min"), pki, extra_system="min-bundle-version=1.5.0\n")
    abota_fails("-c", dev.conf, "install", bundles["v1"],
                match="older than min-bundle-version 1.5.0")
    untouched(dev)
    abota_fails("-c", dev.conf, "install", bundles["old"],
                match="bundle version 0.5 is older than min-bundle-version 1.5.0")
    untouched(dev)
    abota("-c", dev.conf, "install", "--ignore-version-limit", bundles["v1"])
    assert "bundle.version=1.0" in dev.status()
    abota("-c", dev.conf, "install", bundles["v2"])


def test_event_log_records_installs_and_marks(device, bundles):
    """RAUC's [log.<name>] event loggers: a JSON log of everything and a short log of
    installs only.  A rejected install (other compatible), a successful one (with its
    slots written), mark-good and mark-active are recorded with RAUC's MESSAGE_IDs and
    fields; the short log holds the install events alone, one line each."""
    with open(device.conf, "a") as f:
        f.write("\n[log.all]\nfilename=events.json\nformat=json\n"
                "\n[log.installs]\nfilename=/%s/installs.log\nevents=install\nformat=short\n"
                % device.base.strip("/"))
    abota_fails("-c", device.conf, "install", bundles["other"], match="compatible")
    p = abota("-c", device.conf, "install", "--transaction-id",
              "0123abcd-0000-4000-8000-000000000000", bundles["v2"])
    boot_into(device, "B")
    abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-good")
    abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-active", "other")
    events = [json.loads(l) for l in open(os.path.join(device.base, "data", "events.json"))]
    msgs = [e["MESSAGE"] for e in events]
    assert msgs[0].endswith(" started") and msgs[1].startswith("Installation ")
    assert " rejected: " in msgs[1] and "compatible" in msgs[1], msgs
    assert events[1]["MESSAGE_ID"] == "60bea7e4fea549ccad68af457308b13a"
    assert events[1]["BUNDLE_VERSION"] == "3.0"
    assert msgs[2] == "Installation 0123abcd started"
    assert events[2]["TRANSACTION_ID"] == "0123abcd-0000-4000-8000-000000000000"
    written = [m for m in msgs[3:] if m.startswith("Updating slot ")]
    assert sorted(written) == ["Updating slot bootloader.1", "Updating slot rootfs.1"], msgs
    done = next(e for e in events if e["MESSAGE"] == "Installation 0123abcd succeeded")
    assert done["MESSAGE_ID"] == "0163db5468ac4237b090d28490c301ed"
    assert done["BUNDLE_VERSION"] == "2.0" and len(done["BUNDLE_HASH"]) == 64
    good = next(e for e in events if e["MESSAGE"] == "Marked slot rootfs.1 as good")
    assert good["MESSAGE_ID"] == "3304e15a7a9a447885eb208ba7ae3a05"
    assert good["SLOT_BOOTNAME"] == "B" and good["BUNDLE_HASH"] == done["BUNDLE_HASH"]
    assert good["RAUC_EVENT_TYPE"] == "mark"
    assert msgs[-1] == "Marked slot rootfs.0 as active"
    assert all(e["TS"].endswith("Z") for e in events)
    short = open(os.path.join(device.base, "installs.log")).read().splitlines()
    assert len(short) == 4, short
    assert short[3].endswith(": Installation 0123abcd succeeded"), short
    assert not any("Marked" in l or "Updating" in l for l in short)


def variant_bundle(pki, tmp_path, variant):
    c = make_content(str(tmp_path / f"c-{variant}"), rootfs_kib=2048)
    m = open(os.path.join(c, "manifest.raucm")).read()
    open(os.path.join(c, "manifest.raucm"), "w").write(
        m.replace("[image.rootfs]", f"[image.rootfs.{variant}]"))
    b = tmp_path / f"{variant}.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, b)
    return b


def handler_env(dev, name="pre-install"):
    lines = open(os.path.join(dev.bl, f"{name}.env")).read().splitlines()
    return dict(l.split("=", 1) for l in lines)


def test_variant_file_and_system_info_handler(pki, tmp_path):
    """The system's variant comes from variant-file, or from the [handlers] system-info
    program's RAUC_SYSTEM_VARIANT (which overrides variant-name), as in RAUC: it picks the
    [image.rootfs.<variant>] image, and every RAUC_* variable of system-info reaches the
    handlers.  A failing system-info program stops the install before anything is written."""
    b = variant_bundle(pki, tmp_path, "board-b")
    dev = Device(str(tmp_path / "file"), pki,
                 extra_system=f"variant-file={tmp_path}/variant\n")
    (tmp_path / "variant").write_text("board-b\n")
    abota("-c", dev.conf, "install", b)
    assert handler_env(dev)["RAUC_SYSTEM_VARIANT"] == "board-b"
    assert dev.slot_bytes("rootfs-b", 4096) != b"\0" * 4096

    dev = Device(str(tmp_path / "info"), pki, extra_system="variant-name=board-a\n")
    info = tmp_path / "info.sh"
    info.write_text("#!/bin/sh\necho probing the board >&2\necho RAUC_SYSTEM_SERIAL=SN42\n"
                    "echo RAUC_SYSTEM_VARIANT=board-b\necho RAUC_FACTORY_LINE=3\n")
    info.chmod(0o755)
    conf = open(dev.conf).read().replace("[handlers]\n", f"[handlers]\nsystem-info={info}\n")
    open(dev.conf, "w").write(conf)
    abota("-c", dev.conf, "install", b)
    env = handler_env(dev, "post-install")
    assert env["RAUC_SYSTEM_VARIANT"] == "board-b"
    assert env["RAUC_SYSTEM_SERIAL"] == "SN42" and env["RAUC_FACTORY_LINE"] == "3"
    p = abota("-c", dev.conf, "status", "--output-format=json")
    assert json.loads(p.stdout)["variant"] == "board-b"

    info.write_text("#!/bin/sh\necho RAUC_SYSTEM_VARIANT=board-b\nexit 4\n")
    dev = Device(str(tmp_path / "broken"), pki)
    conf = open(dev.conf).read().replace("[handlers]\n", f"[handlers]\nsystem-info={info}\n")
    open(dev.conf, "w").write(conf)
    abota_fails("-c", dev.conf, "install", b, match="failed (exit code 4)")
    assert dev.slot_bytes("rootfs-b", 4096) == b"\0" * 4096
    assert not any(c.startswith("set-") for c in dev.calls())


def test_rauc_system_conf_keys(device, bundles, pki, tmp_path):
    """Keys RAUC 1.8 accepts: boot-attempts with a custom bootloader (unused there) and an
    empty [handlers] group work; statusfile=per-slot, which abota cannot honour, is refused
    by name; activate-installed=false writes the slots, leaves the boot alone, and says so."""
    dev = Device(str(tmp_path / "att"), pki, extra_system="boot-attempts=3\n"
                 "boot-attempts-primary=5\nactivate-installed=false\n")
    p = abota("-c", dev.conf, "install", bundles["v1"])
    assert "B not activated (activate-installed=false" in p.stdout, p.stdout
    assert "next boot tries" not in p.stdout
    assert not any(c.startswith("set-primary") for c in dev.calls()), dev.calls()
    conf = open(device.conf).read()
    open(device.conf, "w").write(conf.replace("[system]\n", "[system]\nstatusfile=per-slot\n"))
    abota_fails("-c", device.conf, "status", match="statusfile")
    abota_fails("-c", device.conf, "status", match="per-slot status files are not supported")
    bare = tmp_path / "bare.conf"
    bare.write_text(f"[system]\ncompatible=x\nbootloader=noop\n[handlers]\n"
                    f"[slot.rootfs.0]\ndevice={tmp_path}/s\ntype=ext4\nbootname=A\n")
    abota("-c", bare, "--override-boot-slot=A", "status")
    # a failing custom backend is named with all its arguments
    failing = Device(str(tmp_path / "fail"), pki)
    with open(os.path.join(failing.bl, "backend"), "a") as f:
        f.write('[ "$1" = set-state ] && exit 3\n')
    abota_fails("-c", failing.conf, "--override-boot-slot=A", "status", "mark-good",
                match="backend set-state A good' failed with exit status 3")


def test_replayed_older_bundle_refused(device, bundles, tmp_path):
    """SC-101: a validly signed older bundle (replay of an earlier release)
    is refused once the device accepted a newer one -- also when the slot
    it then runs still holds the old release, when the slot status file is
    gone, and in every later process (the floor is a file in the data
    directory, written durably); --ignore-version-limit overrides."""
    abota("-c", device.conf, "install", bundles["v2"])
    boot_into(device, "B")
    assert floor_file(device) is None  # installing is not accepting
    abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-good")
    assert floor_file(device) == "2.0\n"
    # go back to A (it has no recorded version): the running-version check
    # alone would let the replay in
    abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-active", "other")
    boot_into(device, "A")
    before = device.slot_bytes("rootfs-b", 1 << 20)
    calls = len(device.calls())
    abota_fails("-c", device.conf, "--override-boot-slot=A", "install", bundles["v1"],
                match="bundle version 1.0 is older than version 2.0, which this device "
                      "accepted before")
    os.unlink(os.path.join(device.base, "data", "central.raucs"))
    abota_fails("-c", device.conf, "--override-boot-slot=A", "install", bundles["old"],
                match="older than version 2.0")
    assert device.slot_bytes("rootfs-b", 1 << 20) == before
    assert not any(c.startswith("set-") for c in device.calls()[calls:])
    # accepting an older slot never lowers the floor
    abota("-c", device.conf, "--override-boot-slot=A", "install", "--ignore-version-limit",
          bundles["v1"])
    boot_into(device, "B")
    abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-good")
    assert floor_file(device) == "2.0\n"
    # the same or a newer version installs
    abota("-c", device.conf, "--override-boot-slot=B", "install", "--ignore-version-limit",
          bundles["v2"])
    abota("-c", device.conf, "--override-boot-slot=B", "install", bundles["other"],
          "--ignore-compatible")


def test_version_floor_survives_power_cuts(device, bundles):
    """SC-101 (power loss): a cut at every write point of the mark-good that
    raises the floor leaves the old floor or the new one, never a damaged
    file; the next mark-good (as on every boot) completes it."""
    abota("-c", device.conf, "install", bundles["v2"])
    boot_into(device, "B")
    log = os.path.join(device.base, "points.log")
    data = os.path.join(device.base, "data")
    saved = {n: open(os.path.join(data, n), "rb").read() for n in os.listdir(data)
             if os.path.isfile(os.path.join(data, n))}
    abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-good",
          env={"ABOTA_POWERCUT_LOG": log})
    points = [l.split() for l in open(log)]
    floor_points = [int(p[0]) for p in points if "version-floor" in p[2]]
    assert len(floor_points) >= 3, points  # data, sync, rename
    for n in [int(p[0]) for p in points]:
        os.unlink(os.path.join(data, "version-floor"))
        for name, content in saved.items():
            open(os.path.join(data, name), "wb").write(content)
        p = abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-good",
                  check=False, env={"ABOTA_POWERCUT": str(n)})
        assert p.returncode == 137, (n, p.stderr)
        assert floor_file(device) in (None, "2.0\n"), (n, floor_file(device))
        abota("-c", device.conf, "--override-boot-slot=B", "status", "mark-good")
        assert floor_file(device) == "2.0\n"


def test_malformed_versions_refused(tmp_path, pki, bundles):
    """SC-102: malformed and overlong version strings in the comparison
    (min-bundle-version, the accepted-version floor) are refused with one
    clear message, nothing written, no crash (also under ASan)."""
    d = tmp_path / "bad"
    out = {}
    for name, version in (("space", "2.0 beta"), ("ctl", "2.0-rc\x01"),
                          ("long", "1." + "9" * 300), ("fields", "1.2.3.4.5.6.7.8.9"),
                          ("huge", "99999999999999999999999.0"), ("empty-pre", "3.0-")):
        content = make_content(str(d / f"c-{name}"), version=version, rootfs_kib=1024)
        b = d / f"{name}.raucb"
        p = abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, b,
                  check=False)
        if p.returncode == 0:
            out[name] = str(b)
        else:  # the manifest parser refused it already: also a clear error
            assert p.stderr.count("\n") <= 2 and "version" in p.stderr, p.stderr
    assert {"space", "long", "fields", "huge", "empty-pre"} <= set(out), out
    dev = Device(str(tmp_path / "min"), pki, extra_system="min-bundle-version=1.0.0\n")
    for name, b in out.items():
        p = abota_fails("-c", dev.conf, "install", b, match="cannot be compared with "
                        "min-bundle-version '1.0.0'")
        assert len(p.stderr) < 600, p.stderr
        untouched(dev)
    # against the floor
    dev2 = Device(str(tmp_path / "floor"), pki)
    abota("-c", dev2.conf, "install", bundles["v2"])
    boot_into(dev2, "B")
    abota("-c", dev2.conf, "--override-boot-slot=B", "status", "mark-good")
    for name, b in out.items():
        abota_fails("-c", dev2.conf, "--override-boot-slot=B", "install", b,
                    match="cannot be compared with the accepted version 2.0")
    # a damaged floor file: one error naming it, nothing installed
    with open(os.path.join(dev2.base, "data", "version-floor"), "w") as f:
        f.write("2.0\x00garbage")
    abota_fails("-c", dev2.conf, "--override-boot-slot=B", "install", bundles["v2"],
                match="version-floor: not a version")


# --- all-or-nothing, interruptions (SC-105, SC-150, SC-151) -----------------

def points_of(dev, bundle, env_extra=None):
    log = os.path.join(dev.base, "points.log")
    if os.path.exists(log):
        os.unlink(log)
    abota("-c", dev.conf, "install", bundle, env={"ABOTA_POWERCUT_LOG": log})
    return [l.split() for l in open(log)]


def test_partial_bundle_and_interruption_between_slots(tmp_path, pki, bundles):
    """SC-105: a bundle with images for only part of the slot group writes
    only those slots (RAUC), and the target is activated only after every
    image of the bundle succeeded: a cut between the rootfs and the
    bootloader image, or a failing bootloader image, leaves A primary and B
    marked bad; installing again completes and activates."""
    c = make_content(str(tmp_path / "c-part"), version="2.0", rootfs_kib=1024)
    m = open(os.path.join(c, "manifest.raucm")).read()
    open(os.path.join(c, "manifest.raucm"), "w").write(m.split("\n[image.bootloader]")[0])
    part = str(tmp_path / "part.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, part)
    dev = Device(str(tmp_path / "part"), pki)
    abota("-c", dev.conf, "install", part)
    img = open(os.path.join(c, "rootfs.ext4"), "rb").read()
    assert dev.slot_bytes("rootfs-b", len(img)) == img
    assert dev.slot_bytes("fip-b", 4096) == b"\0" * 4096  # not in the bundle: untouched
    assert "set-primary B" in dev.calls()

    # a full bundle, cut between its two images
    dev = Device(str(tmp_path / "cut"), pki)
    ref = Device(str(tmp_path / "ref"), pki)
    pts = points_of(ref, bundles["v2"])
    first_fip = next(int(p[0]) for p in pts if p[2] == "bootloader.1")
    assert any(p[2] == "rootfs.1" for p in pts[:first_fip - 1]), pts  # rootfs first
    p = abota("-c", dev.conf, "install", bundles["v2"], check=False,
              env={"ABOTA_POWERCUT": str(first_fip)})
    assert p.returncode == 137, p.stderr
    assert "set-state B bad" in dev.calls() and "set-primary B" not in dev.calls()
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "A"
    st = dev.status()
    assert "[slot.bootloader.1]" not in st or "status=pending" in st.split(
        "[slot.bootloader.1]")[1].split("[")[0], st
    abota("-c", dev.conf, "install", bundles["v2"])
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
    fip = open(os.path.join(bundles["v2-content"], "fip.img"), "rb").read()
    assert dev.slot_bytes("fip-b", len(fip)) == fip

    # the second image fails (its slot-pre-install hook refuses): no switch
    d = tmp_path / "c-hook"
    c = make_content(str(d), version="2.0", rootfs_kib=1024,
                     extra_manifest="hooks=pre-install\n\n[hooks]\nfilename=hook.sh\n")
    with open(d / "hook.sh", "w") as f:
        f.write("#!/bin/sh\n[ \"$1\" = slot-pre-install ] && exit 1\nexit 0\n")
    os.chmod(d / "hook.sh", 0o755)
    hooked = str(tmp_path / "hook.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, hooked)
    dev = Device(str(tmp_path / "fail"), pki)
    abota_fails("-c", dev.conf, "install", hooked, match="hook")
    img = open(os.path.join(c, "rootfs.ext4"), "rb").read()
    assert dev.slot_bytes("rootfs-b", len(img)) == img  # the first image was written
    assert "set-state B bad" in dev.calls() and "set-primary B" not in dev.calls()
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "A"


def slot_state(dev, slot):
    st = dev.status()
    if f"[slot.{slot}]" not in st:
        return {}
    body = st.split(f"[slot.{slot}]")[1].split("\n[")[0]
    return dict(l.split("=", 1) for l in body.splitlines() if "=" in l)


def check_consistent(dev, bundles, where):
    """No half-written slot marked ok or active: A stays primary until every
    slot is written; a slot whose status is ok holds the bundle's image."""
    content = bundles["v2-content"]
    imgs = {"rootfs.1": ("rootfs-b", "rootfs.ext4"), "bootloader.1": ("fip-b", "fip.img")}
    primary = open(os.path.join(dev.bl, "primary")).read().strip()
    complete = True
    for slot, (dev_name, img_name) in imgs.items():
        img = open(os.path.join(content, img_name), "rb").read()
        ok = dev.slot_bytes(dev_name, len(img)) == img
        complete = complete and ok
        st = slot_state(dev, slot).get("status")
        assert st in (None, "pending", "failed", "ok"), (where, slot, st)
        if st == "ok":
            assert ok, f"{where}: {slot} status ok with incomplete content"
    if primary == "B":
        assert complete, f"{where}: B primary with incomplete content"
    return primary


def test_power_cut_at_every_install_write_point(tmp_path, pki):
    """SC-150: a cut at every write/flush point of the slot writes, the
    status saves and the journal (file-backed slots, custom backend): the
    old slot stays primary until every slot is written, no half-written
    slot is marked ok or active,
    the status shows pending/failed for an interrupted slot, and installing
    again completes (the full board sweep is powercut_campaign.py)."""
    content = make_content(str(tmp_path / "c"), version="2.0", rootfs_kib=2048)
    bundle = str(tmp_path / "small.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, bundle)
    bundles = {"v2": bundle, "v2-content": content}
    ref = Device(str(tmp_path / "ref"), pki)
    pts = points_of(ref, bundles["v2"])
    assert len(pts) >= 10, pts
    pending_seen = False
    for p in pts:
        n = int(p[0])
        dev = Device(str(tmp_path / f"cut{n}"), pki)
        r = abota("-c", dev.conf, "install", bundles["v2"], check=False,
                  env={"ABOTA_POWERCUT": str(n)})
        assert r.returncode == 137, (n, r.stderr)
        where = f"cut {n} ({p[1]} {p[2]})"
        # B only after every slot was written (a cut in the status save
        # that follows the switch); check_consistent checks that
        check_consistent(dev, bundles, where)
        pending_seen = pending_seen or any(
            slot_state(dev, s).get("status") == "pending" for s in ("rootfs.1", "bootloader.1"))
        abota("-c", dev.conf, "install", bundles["v2"])
        assert check_consistent(dev, bundles, where + ", again") == "B"
        import shutil
        shutil.rmtree(dev.base)
    assert pending_seen


@pytest.mark.slow
def test_repeated_kill_9_during_install(tmp_path, pki):
    """SC-151: the installer killed with SIGKILL again and again during an
    install: after every kill the state is consistent (A primary, nothing
    half-written marked ok), the next install is not blocked (the lock
    goes with the process), and the install completes in the end."""
    import random
    import signal
    import subprocess
    import time
    from conftest import ABOTA
    content = make_content(str(tmp_path / "c"), version="2.0", rootfs_kib=96 * 1024)
    # mostly incompressible data, so writing the slot takes a while
    from conftest import make_ext4
    make_ext4(os.path.join(content, "rootfs.ext4"), 96 * 1024,
              {"etc/os-release": b"VERSION=2.0\n", "usr/bin/big": os.urandom(64 << 20)})
    b = str(tmp_path / "big.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, b)
    def big_device(name):
        d = Device(str(tmp_path / name), pki)
        for s in ("rootfs-a", "rootfs-b"):
            with open(os.path.join(d.slots, s), "r+b") as f:
                f.truncate(128 << 20)
        return d
    dev = big_device("dev")
    bundles = {"v2-content": content}
    t0 = time.monotonic()
    abota("-c", big_device("ref").conf, "install", b)
    full = time.monotonic() - t0
    rnd = random.Random(151)
    kills = 0
    for i in range(12):
        p = subprocess.Popen([ABOTA, "-c", dev.conf, "install", b], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        # an interrupted install resumes where it was cut, so every run has less left to
        # do: the first three are cut within a fifth of a full install each (together
        # they cannot finish it), later ones anywhere in the first half
        time.sleep(rnd.uniform(0.02, full * 0.2 if i < 3 else max(0.1, full * 0.5)))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            kills += 1
        p.communicate()
        if p.returncode == 0:
            break
        assert p.returncode == -signal.SIGKILL, p.returncode
        # A stays primary -- unless the kill came after the boot switch (during the
        # post-install handler or the clean-up), when every slot is complete
        # (check_consistent asserts that for a B primary): then it is installed
        if check_consistent(dev, bundles, f"kill {i}") == "B":
            break
    assert kills >= 3, (kills, full)
    abota("-c", dev.conf, "install", b)
    assert check_consistent(dev, bundles, "final") == "B"


def test_handlers_read_the_bundles_files(device, pki, tmp_path):
    """RAUC_BUNDLE_MOUNT_POINT (and its old name RAUC_UPDATE_SOURCE): RAUC's handlers
    read extra files from the mounted bundle.  abota extracts the bundle's files except
    the images (and their block-hash indexes) from the verified bundle into a private
    directory for them, and removes it after the install."""
    content = make_content(str(tmp_path / "c"), version="2.0", adaptive=True)
    os.makedirs(os.path.join(content, "extra"))
    with open(os.path.join(content, "extra", "config.txt"), "w") as f:
        f.write("setting=42\n")
    with open(os.path.join(content, "notes.txt"), "w") as f:
        f.write("release notes\n")
    bundle = str(tmp_path / "extra.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, bundle)
    out = os.path.join(device.bl, "seen")
    for h in ("pre-install", "post-install"):
        with open(os.path.join(device.bl, h), "w") as f:
            f.write(f"""#!/bin/sh
[ "$RAUC_UPDATE_SOURCE" = "$RAUC_BUNDLE_MOUNT_POINT" ] || exit 3
cd "$RAUC_BUNDLE_MOUNT_POINT" || exit 4
{{ echo "dir=$RAUC_BUNDLE_MOUNT_POINT"; find . | sort; cat extra/config.txt; }} > {out}.{h}
stat -c %a "$RAUC_BUNDLE_MOUNT_POINT" >> {out}.{h}
""")
    rundir = tmp_path / "run"
    rundir.mkdir()
    abota("-c", device.conf, "install", bundle, env={**os.environ, "RUNTIME_DIRECTORY": str(rundir)})
    for h in ("pre-install", "post-install"):
        lines = open(f"{out}.{h}").read().splitlines()
        assert lines[1:] == [".", "./extra", "./extra/config.txt", "./manifest.raucm",
                             "./notes.txt", "setting=42", "700"], lines
        mnt = lines[0].split("=", 1)[1]
        assert mnt.startswith(f"{rundir}/abota-bundle-"), mnt
    assert os.listdir(rundir) == []  # removed afterwards
    # Without handlers or hooks nothing is extracted: the install does not even need
    # a place for it (a RUNTIME_DIRECTORY that does not exist fails only with handlers).
    nowhere = {**os.environ, "RUNTIME_DIRECTORY": str(tmp_path / "missing")}
    p = abota("-c", device.conf, "install", "--ignore-version-limit", bundle, env=nowhere,
              check=False)
    assert p.returncode == 1 and "handlers: " in p.stderr, p.stderr
    conf = open(device.conf).read()
    conf = "\n".join(l for l in conf.splitlines() if not l.startswith(("pre-install=", "post-install=")))
    open(device.conf, "w").write(conf + "\n")
    abota("-c", device.conf, "install", "--ignore-version-limit", bundle, env=nowhere)


def block_count(path):
    out = run("dumpe2fs", "-h", path).stdout
    return int(re.search(r"^Block count:\s+(\d+)", out, re.M).group(1)) * \
        int(re.search(r"^Block size:\s+(\d+)", out, re.M).group(1))


def test_resize_grows_ext4_to_the_slot(tmp_path, pki, bundles):
    """resize=true (RAUC): an ext4 image written into an ext4 slot is grown to the slot
    by resize2fs after it was read back; without the key it keeps the image's size.  A
    cut after the resize (at the status save that follows it) makes the next install
    write the slot again instead of keeping a file system resize2fs may have left
    half done."""
    img = os.path.join(bundles["v2-content"], "rootfs.ext4")
    plain = Device(str(tmp_path / "plain"), pki)
    abota("-c", plain.conf, "install", bundles["v2"])
    assert block_count(os.path.join(plain.slots, "rootfs-b")) == os.path.getsize(img)

    dev = Device(str(tmp_path / "rs"), pki)
    conf = open(dev.conf).read().replace("[slot.rootfs.1]\n", "[slot.rootfs.1]\nresize=true\n")
    open(dev.conf, "w").write(conf)
    log = os.path.join(dev.base, "points.log")
    p = abota("-c", dev.conf, "install", bundles["v2"], env={"ABOTA_POWERCUT_LOG": log})
    slot = os.path.join(dev.slots, "rootfs-b")
    assert block_count(slot) == 16 << 20 > os.path.getsize(img)
    run("e2fsck", "-fn", slot)
    assert "Resizing the filesystem" not in p.stdout  # resize2fs talks on stderr
    st = slot_state(dev, "rootfs.1")
    assert st["status"] == "ok" and st["sha256"] == sha256_file(img), st  # the image's hash

    # the cut: at the first status save after the last write of rootfs.1
    pts = [l.split() for l in open(log)]
    last = max(i for i, q in enumerate(pts) if q[2] == "rootfs.1")
    cut = next(int(q[0]) for q in pts[last:] if q[1] == "rename" and q[2].endswith("central.raucs"))
    cutdev = Device(str(tmp_path / "cut"), pki)
    open(cutdev.conf, "w").write(conf.replace(dev.base, cutdev.base))
    r = abota("-c", cutdev.conf, "install", bundles["v2"], check=False,
              env={"ABOTA_POWERCUT": str(cut)})
    assert r.returncode == 137, r.stderr
    assert block_count(os.path.join(cutdev.slots, "rootfs-b")) == 16 << 20  # resized before the cut
    r = abota("-c", cutdev.conf, "install", bundles["v2"], env={"ABOTA_LOG": "info"})
    assert "may have been cut while resized (resize=true): writing it again" in r.stderr, r.stderr
    assert "rootfs.ext4 was written and verified before the interruption: kept" not in r.stderr
    run("e2fsck", "-fn", os.path.join(cutdev.slots, "rootfs-b"))
    assert block_count(os.path.join(cutdev.slots, "rootfs-b")) == 16 << 20
    assert "set-primary B" in cutdev.calls()


def test_require_manifest_hash(device, pki, bundles, tmp_path):
    """--require-manifest-hash: only the bundle whose (signed) manifest has that hash is
    installed; any other, and (as in RAUC >= 1.14) any plain bundle, is refused before
    the device changes."""
    info = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                            bundles["v2"]).stdout)
    want = info["hash"]
    assert re.fullmatch(r"[0-9a-f]{64}", want), info
    other = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                             bundles["v1"]).stdout)["hash"]
    abota_fails("-c", device.conf, "install", "--require-manifest-hash", want, bundles["v1"],
                match=f"manifest hash {other} is not the required {want}")
    plain = str(tmp_path / "plain.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], "--format=plain",
          bundles["v2-content"], plain)
    abota_fails("-c", device.conf, "install", "--require-manifest-hash", want, plain,
                match="--require-manifest-hash needs a verity bundle: this one is plain")
    untouched(device)
    assert not [c for c in device.calls() if c.startswith("set-")]
    abota("-c", device.conf, "install", "--require-manifest-hash", want, bundles["v2"])
    assert "set-primary B" in device.calls()


def make_tar_bundle(pki, d, rootfs_name, build_image, extra_image_keys=""):
    """A bundle whose rootfs image is built by build_image(path) (None: type=emptyfs)."""
    c = os.path.join(d, "c-" + (rootfs_name or "emptyfs"))
    os.makedirs(c)
    m = "[update]\ncompatible=abota-test\nversion=2.0\n\n[image.rootfs]\n"
    if rootfs_name:
        build_image(os.path.join(c, rootfs_name))
        m += f"filename={rootfs_name}\n"
    else:
        m += "type=emptyfs\n"
    m += extra_image_keys
    with open(os.path.join(c, "manifest.raucm"), "w") as f:
        f.write(m)
    b = os.path.join(d, (rootfs_name or "emptyfs") + ".raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, b)
    return b, c


def test_tar_and_emptyfs_images(pki, tmp_path):
    """RAUC's tar image type: the ext4 slot gets a new file system (label = slot name,
    extra-mkfs-opts) filled from the verified archive -- compression from the name,
    owners, modes, symlinks kept; the status records the archive's hash.  emptyfs makes
    an empty file system.  A broken archive fails the slot (status failed, no switch)."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text("VERSION=tar\n")
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "tool").write_bytes(os.urandom(200_000))
    os.chmod(tree / "usr" / "bin" / "tool", 0o4755)
    os.symlink("tool", tree / "usr" / "bin" / "alias")
    os.chown(tree / "etc" / "os-release", 1234, 5678)

    def tarball(flag):
        return lambda path: run("tar", f"-c{flag}f", path, "--numeric-owner", "-C", tree, ".")

    d = str(tmp_path / "b")
    os.makedirs(d)
    for name, flag in (("rootfs.tar.gz", "z"), ("rootfs.tar.xz", "J"), ("rootfs.tar", "")):
        bundle, content = make_tar_bundle(pki, d, name, tarball(flag))
        dev = Device(str(tmp_path / f"dev-{name}"), pki)
        conf = open(dev.conf).read().replace("[slot.rootfs.1]\n",
                                             "[slot.rootfs.1]\nextra-mkfs-opts=-b 1024 -m 0\n")
        open(dev.conf, "w").write(conf)
        abota("-c", dev.conf, "install", bundle)
        slot = os.path.join(dev.slots, "rootfs-b")
        run("e2fsck", "-fn", slot)
        sb = run("dumpe2fs", "-h", slot).stdout
        assert re.search(r"^Filesystem volume name:\s+rootfs\.1$", sb, re.M), sb
        assert re.search(r"^Block size:\s+1024$", sb, re.M), sb
        assert re.search(r"^Reserved block count:\s+0$", sb, re.M), sb
        assert run("debugfs", "-R", "cat /etc/os-release", slot).stdout == "VERSION=tar\n"
        st = run("debugfs", "-R", "stat /usr/bin/tool", slot).stdout
        assert "Mode:  04755" in st and "Size: 200000" in st, st
        assert re.search(r"User:\s+1234\s+Group:\s+5678", run(
            "debugfs", "-R", "stat /etc/os-release", slot).stdout)
        assert "Fast link dest: \"tool\"" in run("debugfs", "-R", "stat /usr/bin/alias", slot).stdout
        s = slot_state(dev, "rootfs.1")
        assert s["status"] == "ok" and s["sha256"] == sha256_file(os.path.join(content, name)), s
        assert "set-primary B" in dev.calls()

    bundle, _ = make_tar_bundle(pki, d, None, None)
    dev = Device(str(tmp_path / "dev-emptyfs"), pki)
    with open(os.path.join(dev.slots, "rootfs-b"), "r+b") as f:
        f.write(b"\xff" * (1 << 20))
    abota("-c", dev.conf, "install", bundle)
    slot = os.path.join(dev.slots, "rootfs-b")
    run("e2fsck", "-fn", slot)
    names = [l.split("/")[5] for l in run("debugfs", "-R", "ls -p /", slot).stdout.splitlines()
             if l.startswith("/")]
    assert sorted(names) == [".", "..", "lost+found"], names
    assert slot_state(dev, "rootfs.1")["status"] == "ok"

    # an archive tar cannot read: the slot fails, the boot is not switched
    def broken(path):
        tarball("z")(path)
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0xff
        open(path, "wb").write(bytes(data))
    bundle, _ = make_tar_bundle(pki, str(tmp_path), "broken.tar.gz", broken)
    dev = Device(str(tmp_path / "dev-broken"), pki)
    abota_fails("-c", dev.conf, "install", bundle, match="tar failed with exit code")
    assert slot_state(dev, "rootfs.1")["status"] == "failed"
    assert "set-primary B" not in dev.calls()
    assert " /mnt/rauc/rootfs.1 " not in open("/proc/mounts").read()
