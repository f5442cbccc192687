"""abota write-slot: one local image into one slot with the install's
verified writer (RAUC 1.8's `rauc write-slot`, made safe).

File-backed slots and the custom bootloader backend of test_install.py
(RAUC's script protocol; every call logged, its state in files), so the
tests see the bytes of every slot, the central status file, and when the
slot group was marked bad relative to the first byte written.  Refusals
must leave every slot, the status file and the boot backend exactly as
they were.  The interop test runs the real `rauc write-slot` (Debian's
rauc 1.8) beside abota on two identical slots."""
import fcntl
import hashlib
import json
import os
import re
import shutil

import pytest

from conftest import abota, abota_fails, make_content, make_ext4, run, sha256_file
from test_install import Device, cached_bytes, page_cache_drops_in, points_of, slot_state

SLOT_FILL = b"\x5a"  # what a slot holds before the write: not zeros, so zero runs must be written

# Two more slot groups beside test_install.Device's rootfs/bootloader pairs:
# a vfat child slot per bank and a standalone raw slot (no bootable root).
EXTRA_SLOTS = """
[slot.boot.0]
device={slots}/boot-a
type=vfat
parent=rootfs.0

[slot.boot.1]
device={slots}/boot-b
type=vfat
parent=rootfs.1

[slot.appdata.0]
device={slots}/appdata
type=raw
"""

# A central status as an earlier install leaves it (RAUC's format).
SEEDED_STATUS = """[slot.rootfs.0]
bundle.compatible=abota-test
bundle.version=1.0
bundle.hash={h1}
status=ok
sha256={h1}
size=4096
installed.transaction=11111111-1111-4111-8111-111111111111
installed.timestamp=2026-01-01T00:00:00Z
installed.count=1

[slot.rootfs.1]
bundle.compatible=abota-test
bundle.version=0.9
bundle.description=old bundle
bundle.build=20250101
bundle.hash={h2}
status=ok
sha256={h3}
size=8192
installed.transaction=22222222-2222-4222-8222-222222222222
installed.timestamp=2026-01-02T00:00:00Z
installed.count=3
activated.timestamp=2026-01-02T00:00:00Z
activated.count=2
""".format(h1="1" * 64, h2="2" * 64, h3="3" * 64)

# Appended to the custom backend: when a group is marked bad, record what
# the slots and the status file held at that moment.
SNAPSHOT_AT_BAD = """
if [ "$1" = set-state ] && [ "$3" = bad ]; then
  cat "$d/../slots/rootfs-b" "$d/../slots/fip-b" | sha256sum | cut -c1-64 >> "$d/slots-at-bad"
  cp "$d/../data/central.raucs" "$d/status-at-bad" 2>/dev/null || true
fi
"""


def make_device(path, pki, fill=True, seed_status=True):
    dev = Device(str(path), pki)
    with open(dev.conf, "a") as f:
        f.write(EXTRA_SLOTS.format(slots=dev.slots))
    for name in ("boot-a", "boot-b", "appdata"):
        with open(os.path.join(dev.slots, name), "wb") as f:
            f.truncate(1 << 20)
    if fill:
        for name in ("rootfs-b", "fip-b"):
            size = os.path.getsize(os.path.join(dev.slots, name))
            with open(os.path.join(dev.slots, name), "wb") as f:
                f.write(SLOT_FILL * size)
    if seed_status:
        os.makedirs(os.path.join(dev.base, "data"), exist_ok=True)
        with open(os.path.join(dev.base, "data", "central.raucs"), "w") as f:
            f.write(SEEDED_STATUS)
    with open(os.path.join(dev.bl, "backend"), "a") as f:
        f.write(SNAPSHOT_AT_BAD)
    return dev


@pytest.fixture
def dev(tmp_path, pki):
    return make_device(tmp_path / "dev", pki)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A real ext4 image (random file data and zero runs), a raw blob for
    the 64 KiB bootloader slots, and a byte of the random payload in the ext4."""
    d = tmp_path_factory.mktemp("wsimg")
    payload = os.urandom(2 << 20)
    rootfs = str(d / "rootfs.ext4")
    make_ext4(rootfs, 4096, {"etc/os-release": b"VERSION=ws\n", "usr/lib/blob": payload})
    img = open(rootfs, "rb").read()
    # a byte of the payload about 1 MiB into it (not in the image's first write)
    pos = img.find(payload[1 << 20:(1 << 20) + 4096])
    assert pos > 0
    assert b"\0" * 65536 in img  # zero runs the writer must zero, not skip
    fip = str(d / "fip.bin")
    with open(fip, "wb") as f:
        f.write(os.urandom(40000))
    return {"rootfs": rootfs, "fip": fip, "payload_byte": pos + 2048, "dir": str(d)}


def ws(dev, *args, boot="A", env=None, check=True):
    p = abota("-c", dev.conf, f"--override-boot-slot={boot}", "write-slot", *args,
              env=env, check=check)
    # UBSan reports without failing the run (the ASan pass)
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def slot_file(dev, name):
    with open(os.path.join(dev.slots, name), "rb") as f:
        return f.read()


def snapshot(dev):
    """Everything a refused write-slot must leave alone."""
    data = os.path.join(dev.base, "data")
    files = {}
    if os.path.isdir(data):
        for n in sorted(os.listdir(data)):
            p = os.path.join(data, n)
            if os.path.isfile(p) and n != "install.lock":  # the lock file's existence is no state
                files[n] = open(p, "rb").read()
    return {"slots": {n: sha256_file(os.path.join(dev.slots, n))
                      for n in sorted(os.listdir(dev.slots))},
            "data": files,
            "backend-set": [c for c in dev.calls() if c.startswith("set-")],
            "bad": sorted(n for n in os.listdir(dev.bl) if n.startswith("bad-"))}


def detailed(dev, slot, boot="A"):
    js = json.loads(abota("-c", dev.conf, f"--override-boot-slot={boot}", "status",
                          "--detailed", "--output-format=json").stdout)
    return next(s[slot] for s in js["slots"] if slot in s)


# --- success ---------------------------------------------------------------

def test_write_slot_writes_image_and_records_status(dev, images):
    img = open(images["rootfs"], "rb").read()
    digest = hashlib.sha256(img).hexdigest()
    before_a = slot_file(dev, "rootfs-a")
    before_rootfs0 = slot_state(dev, "rootfs.0")
    p = ws(dev, "rootfs.1", images["rootfs"])
    assert f"Slot rootfs.1 written and verified: {len(img)} bytes, sha256 {digest}\n" in p.stdout
    # content: the image, then the slot's old bytes (zero runs written as zeros)
    got = slot_file(dev, "rootfs-b")
    assert len(got) == 16 << 20
    assert got[:len(img)] == img
    assert got[len(img):] == SLOT_FILL * ((16 << 20) - len(img))
    # nothing else written
    assert slot_file(dev, "rootfs-a") == before_a
    assert slot_file(dev, "fip-b") == SLOT_FILL * (64 << 10)
    assert slot_file(dev, "fip-a") == b"\0" * (64 << 10)
    # central status: ok, the image's checksum, count + 1, new transaction, no bundle.*
    st = slot_state(dev, "rootfs.1")
    assert st["status"] == "ok" and st["sha256"] == digest and st["size"] == str(len(img)), st
    assert st["installed.count"] == "4", st
    assert st["installed.transaction"] != "22222222-2222-4222-8222-222222222222"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        st["installed.transaction"]), st
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", st["installed.timestamp"]), st
    assert st["installed.timestamp"] != "2026-01-02T00:00:00Z"
    assert not [k for k in st if k.startswith("bundle.")], st
    assert slot_state(dev, "rootfs.0") == before_rootfs0
    # the same through status --detailed --output-format=json
    ss = detailed(dev, "rootfs.1")["slot_status"]
    assert ss["status"] == "ok"
    assert ss["checksum"] == {"sha256": digest, "size": len(img)}
    assert ss["installed"]["count"] == 4
    assert ss["bundle"].get("compatible") is None and "version" not in ss["bundle"], ss
    # a second write counts again
    ws(dev, "rootfs.1", images["rootfs"])
    assert slot_state(dev, "rootfs.1")["installed.count"] == "5"


def test_write_slot_leaves_page_cache_alone(tmp_path, pki, images):
    """The image is read once and the slot read back once: neither stays
    in the page cache (both did, whole)."""
    if not page_cache_drops_in(str(tmp_path)):
        pytest.skip("page cache pages cannot be dropped on this file system")
    dev = Device(str(tmp_path / "dev"), pki)  # no backend reading the slots
    image = str(tmp_path / "rootfs.ext4")
    shutil.copyfile(images["rootfs"], image)
    size = os.path.getsize(image)
    run("sync")  # dirty pages are written back, not dropped
    assert cached_bytes(image) >= size
    ws(dev, "rootfs.1", image)
    assert cached_bytes(image) < 1 << 20
    assert cached_bytes(os.path.join(dev.slots, "rootfs-b")) < 1 << 20
    assert slot_file(dev, "rootfs-b")[:size] == open(image, "rb").read()


def test_write_slot_progress(dev, images):
    p = ws(dev, "--progress", "rootfs.1", images["rootfs"])
    lines = [l for l in p.stdout.splitlines() if "%" in l]
    assert lines and lines[0].strip().startswith("0%"), p.stdout
    assert any(l.strip().startswith("100%") for l in lines), p.stdout
    pcts = [int(l.split("%")[0]) for l in lines]
    assert pcts == sorted(pcts)
    img = open(images["rootfs"], "rb").read()
    assert slot_file(dev, "rootfs-b")[:len(img)] == img


# --- the boot backend: the group is marked bad before writing ---------------

def test_group_marked_bad_before_first_byte_and_stays_bad(dev, images):
    before = hashlib.sha256(slot_file(dev, "rootfs-b") + slot_file(dev, "fip-b")).hexdigest()
    img = open(images["rootfs"], "rb").read()
    p = ws(dev, "rootfs.1", images["rootfs"])
    calls = [c for c in dev.calls() if c.startswith("set-")]
    assert calls == ["set-state B bad"], calls  # only that: no switch, no "good"
    # at the moment of the mark, the slots still held their old bytes and
    # the status file did not yet claim the new content
    at_bad = open(os.path.join(dev.bl, "slots-at-bad")).read().split()
    assert at_bad == [before], (at_bad, before)
    st_at_bad = open(os.path.join(dev.bl, "status-at-bad")).read()
    assert hashlib.sha256(img).hexdigest() not in st_at_bad, st_at_bad
    # it stays bad; primary unchanged
    assert os.path.exists(os.path.join(dev.bl, "bad-B"))
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "A"
    assert detailed(dev, "rootfs.1")["boot_status"] == "bad"
    follow_hint(dev, p.stdout)


def follow_hint(dev, stdout):
    """The output names the group marked bad and the command that boots it
    again; that command works."""
    hint = [l for l in stdout.splitlines() if "abota status mark-active" in l]
    assert len(hint) == 1 and re.search(r"\bB\b", hint[0]), stdout
    arg = hint[0].split("abota status mark-active", 1)[1].split()[0].strip("`'\".,;)")
    abota("-c", dev.conf, "--override-boot-slot=A", "status", "mark-active", arg)
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"


def test_child_slot_marks_parent_group_bad(dev, images):
    fip = open(images["fip"], "rb").read()
    p = ws(dev, "bootloader.1", images["fip"])
    assert [c for c in dev.calls() if c.startswith("set-")] == ["set-state B bad"]
    got = slot_file(dev, "fip-b")
    assert got[:len(fip)] == fip and got[len(fip):] == SLOT_FILL * ((64 << 10) - len(fip))
    assert slot_file(dev, "rootfs-b") == SLOT_FILL * (16 << 20)
    st = slot_state(dev, "bootloader.1")
    assert st["status"] == "ok" and st["sha256"] == hashlib.sha256(fip).hexdigest()
    assert st["size"] == str(len(fip)) and st["installed.count"] == "1"
    follow_hint(dev, p.stdout)


def test_vfat_image_into_vfat_child_slot(dev, tmp_path):
    vfat = tmp_path / "boot.vfat"
    run("mkfs.vfat", "-C", vfat, "512")
    img = vfat.read_bytes()
    ws(dev, "boot.1", vfat)
    assert slot_file(dev, "boot-b") == img + b"\0" * ((1 << 20) - len(img))
    assert slot_file(dev, "boot-a") == b"\0" * (1 << 20)
    assert [c for c in dev.calls() if c.startswith("set-")] == ["set-state B bad"]
    assert slot_state(dev, "boot.1")["sha256"] == hashlib.sha256(img).hexdigest()


def test_slot_without_bootable_root_leaves_backend_alone(dev, images):
    fip = open(images["fip"], "rb").read()
    p = ws(dev, "appdata.0", images["fip"])
    assert not [c for c in dev.calls() if c.startswith("set-")], dev.calls()
    assert not [n for n in os.listdir(dev.bl) if n.startswith("bad-")]
    assert "mark-active" not in p.stdout, p.stdout
    assert slot_file(dev, "appdata")[:len(fip)] == fip
    assert slot_state(dev, "appdata.0")["status"] == "ok"


# --- refusals: nothing changes ------------------------------------------------

def refused(dev, *args, match, boot="A", code=1):
    before = snapshot(dev)
    p = abota_fails("-c", dev.conf, f"--override-boot-slot={boot}", "write-slot", *args,
                    match=match)
    assert p.returncode == code, (p.returncode, p.stderr)
    assert snapshot(dev) == before, args
    return p


def test_unknown_slot_lists_slots(dev, images):
    refused(dev, "rootfs.7", images["rootfs"],
            match=f"write-slot: no slot named 'rootfs.7' in {dev.conf} (slots: rootfs.0 (ext4), "
                  "rootfs.1 (ext4), bootloader.0 (raw), bootloader.1 (raw), boot.0 (vfat), "
                  "boot.1 (vfat), appdata.0 (raw))")


def test_booted_group_refused(dev, images):
    refused(dev, "rootfs.0", images["rootfs"], match="slot rootfs.0 belongs to the booted slot group A")
    refused(dev, "bootloader.0", images["fip"],
            match="slot bootloader.0 belongs to the booted slot group A")
    # booted B (override): now the B group is refused and A can be written
    refused(dev, "rootfs.1", images["rootfs"], boot="B",
            match="slot rootfs.1 belongs to the booted slot group B")
    refused(dev, "bootloader.1", images["fip"], boot="B",
            match="slot bootloader.1 belongs to the booted slot group B")
    ws(dev, "bootloader.0", images["fip"], boot="B")
    fip = open(images["fip"], "rb").read()
    assert slot_file(dev, "fip-a")[:len(fip)] == fip


def test_booted_group_from_kernel_command_line(tmp_path, pki, images):
    d = make_device(tmp_path / "cmdline", pki)
    (tmp_path / "cmdline.txt").write_text("console=ttySTM0 root=/dev/mmcblk0p8 rauc.slot=B\n")
    conf = open(d.conf).read().replace("[system]\n", f"[system]\ncmdline-file={tmp_path}/cmdline.txt\n")
    open(d.conf, "w").write(conf)
    before = snapshot(d)
    abota_fails("-c", d.conf, "write-slot", "rootfs.1", images["rootfs"],
                match="slot rootfs.1 belongs to the booted slot group B")
    assert snapshot(d) == before
    abota("-c", d.conf, "write-slot", "bootloader.0", images["fip"])
    assert [c for c in d.calls() if c.startswith("set-")] == ["set-state A bad"]


def test_readonly_slot_refused(dev, images):
    conf = open(dev.conf).read().replace("[slot.rootfs.1]\n", "[slot.rootfs.1]\nreadonly=true\n")
    open(dev.conf, "w").write(conf)
    refused(dev, "rootfs.1", images["rootfs"], match="slot rootfs.1 is read-only")


def test_image_larger_than_slot_refused(dev, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom((64 << 10) + 1))
    refused(dev, "bootloader.1", big, match="slot bootloader.1 is too small")
    refused(dev, "bootloader.1", big, match=f"({(64 << 10) + 1} bytes > {64 << 10})")


def test_image_type_from_name_or_option(dev, images, tmp_path):
    odd = tmp_path / "rootfs.foo"
    shutil.copy(images["rootfs"], odd)
    for path in (odd, tmp_path / "rootfs"):
        shutil.copy(images["rootfs"], path)
        p = refused(dev, "rootfs.1", path, match="cannot tell the image type of '")
        # the name as given or its base name
        assert f"of '{path}' from its name (*.img, *.ext4, *.vfat, *.squashfs ...); " \
            "use --image-type" in p.stderr, p.stderr
    ws(dev, "--image-type=ext4", "rootfs.1", odd)
    img = open(images["rootfs"], "rb").read()
    assert slot_file(dev, "rootfs-b")[:len(img)] == img
    assert slot_state(dev, "rootfs.1")["sha256"] == hashlib.sha256(img).hexdigest()


def test_image_type_not_writable_into_slot_type(dev, images, tmp_path):
    tar = tmp_path / "rootfs.tar"
    run("tar", "-cf", tar, "-C", images["dir"], "fip.bin")
    p = refused(dev, "boot.1", tar, match="boot.1")
    assert "tar" in p.stderr and "vfat" in p.stderr, p.stderr
    p = refused(dev, "boot.1", images["rootfs"], match="boot.1")
    assert "ext4" in p.stderr and "vfat" in p.stderr, p.stderr
    p = refused(dev, "--image-type=bogus", "rootfs.1", images["rootfs"], match="bogus")
    # an explicit type is checked the same way
    p = refused(dev, "--image-type=tar", "bootloader.1", images["rootfs"], match="bootloader.1")
    assert "tar" in p.stderr, p.stderr


def test_image_not_a_file_refused(dev, tmp_path):
    d = tmp_path / "dir.img"
    d.mkdir()
    refused(dev, "bootloader.1", d, match="not a regular file or block device")
    chardev = tmp_path / "null.img"
    os.symlink("/dev/null", chardev)
    refused(dev, "bootloader.1", chardev, match="not a regular file or block device")
    missing = tmp_path / "missing.img"
    refused(dev, "bootloader.1", missing, match=f"{missing}: No such file or directory")


def test_install_lock_held_refused(dev, images):
    with open(os.path.join(dev.base, "data", "install.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        refused(dev, "rootfs.1", images["rootfs"], match="another installation is running")
    ws(dev, "rootfs.1", images["rootfs"])
    assert slot_state(dev, "rootfs.1")["status"] == "ok"


@pytest.mark.parametrize("args,match", [
    ([], "abota write-slot: "), (["rootfs.1"], "abota write-slot: "),
    (["rootfs.1", "IMG", "extra"], "abota write-slot: "),
    (["--no-such-option", "rootfs.1", "IMG"], "write-slot: unrecognized option '--no-such-option'"),
    (["--image-type"], "write-slot: option '--image-type' requires an argument")])
def test_usage_errors(dev, images, args, match):
    args = [images["rootfs"] if a == "IMG" else a for a in args]
    p = refused(dev, *args, match=match, code=2)
    assert "unknown verb" not in p.stderr, p.stderr


def test_help():
    p = abota("write-slot", "--help")
    for word in ("SLOTNAME", "IMAGE", "--image-type", "--progress"):
        assert word in p.stdout, p.stdout


# --- the read-back check --------------------------------------------------------

def test_medium_that_stores_a_wrong_byte_is_caught(dev, images):
    img = open(images["rootfs"], "rb").read()
    off = images["payload_byte"]
    p = ws(dev, "rootfs.1", images["rootfs"], check=False,
           env={"ABOTA_FAULT_BADMEDIUM": f"rootfs.1:{off}"})
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "read-back check failed" in p.stderr and "rootfs.1" in p.stderr, p.stderr
    assert "written and verified" not in p.stdout
    got = slot_file(dev, "rootfs-b")
    assert got[off] == img[off] ^ 1  # the fault happened where we asked
    st = slot_state(dev, "rootfs.1")
    assert st["status"] == "failed" and "sha256" not in st, st
    assert [c for c in dev.calls() if c.startswith("set-")] == ["set-state B bad"]
    assert detailed(dev, "rootfs.1")["slot_status"]["status"] == "failed"
    # a good medium: the same command succeeds
    ws(dev, "rootfs.1", images["rootfs"])
    assert slot_file(dev, "rootfs-b")[:len(img)] == img
    assert slot_state(dev, "rootfs.1")["status"] == "ok"


# --- power cuts ---------------------------------------------------------------

def test_power_cut_at_every_write_point(tmp_path, pki, images):
    """A cut anywhere leaves: the group marked bad whenever a slot byte
    changed, the status never claiming the old content for a changed slot
    nor the new one for an incomplete slot; the same command then
    completes."""
    img = open(images["rootfs"], "rb").read()
    digest = hashlib.sha256(img).hexdigest()
    ref = make_device(tmp_path / "ref", pki)
    log = str(tmp_path / "points.log")
    ws(ref, "rootfs.1", images["rootfs"], env={"ABOTA_POWERCUT_LOG": log})
    pts = [l.split() for l in open(log)]
    slot_pts = [i for i, p in enumerate(pts) if p[2] == "rootfs.1"]
    assert slot_pts, pts
    # the status (pending) is saved before the first byte reaches the slot
    assert any(p[1] == "rename" and p[2].endswith("/central.raucs")
               for p in pts[:slot_pts[0]]), pts
    shutil.rmtree(ref.base)
    pending_seen = False
    for p in pts:
        n = int(p[0])
        d = make_device(tmp_path / f"cut{n}", pki)
        r = ws(d, "rootfs.1", images["rootfs"], check=False, env={"ABOTA_POWERCUT": str(n)})
        where = f"cut {n} ({' '.join(p[1:])})"
        assert r.returncode == 137, (where, r.stderr)
        slot = slot_file(d, "rootfs-b")
        changed = slot != SLOT_FILL * (16 << 20)
        st = slot_state(d, "rootfs.1")
        if changed:
            assert os.path.exists(os.path.join(d.bl, "bad-B")), where
            assert st.get("sha256") != "3" * 64, (where, st)
        if st.get("status") == "ok" and st.get("sha256") == digest:
            assert slot[:len(img)] == img, where
        assert st.get("status") in ("ok", "pending", "failed"), (where, st)
        if st.get("status") == "pending":
            pending_seen = True
            assert "sha256" not in st, (where, st)
        assert open(os.path.join(d.bl, "primary")).read().strip() == "A", where
        ws(d, "rootfs.1", images["rootfs"])
        assert slot_file(d, "rootfs-b")[:len(img)] == img, where
        assert slot_state(d, "rootfs.1")["sha256"] == digest, where
        shutil.rmtree(d.base)
    assert pending_seen


# --- the resume journal of an interrupted install ------------------------------

@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("wsbundle")
    content = make_content(str(d / "c"), version="2.0", rootfs_kib=2048)
    b = str(d / "v2.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, b)
    return b


def test_write_slot_removes_resume_journal_naming_the_slot(tmp_path, pki, images, small_bundle):
    ref = Device(str(tmp_path / "ref"), pki)
    pts = points_of(ref, small_bundle)
    n = next(int(p[0]) for p in pts if p[1] in ("write", "zero") and p[2] == "rootfs.1")
    d = make_device(tmp_path / "dev", pki, fill=False, seed_status=False)
    r = abota("-c", d.conf, "install", small_bundle, check=False, env={"ABOTA_POWERCUT": str(n)})
    assert r.returncode == 137, r.stderr
    jp = os.path.join(d.base, "data", "install.journal")
    journal = open(jp).read()
    assert "[slot.rootfs.1]" in journal, journal
    # a slot the journal does not name: the journal stays as it was
    ws(d, "appdata.0", images["fip"])
    assert open(jp).read() == journal
    # the slot it names: removed, with a warning
    p = ws(d, "rootfs.1", images["rootfs"])
    assert not os.path.exists(jp)
    assert "warning" in p.stderr and jp in p.stderr and "rootfs.1" in p.stderr, p.stderr
    js = json.loads(abota("-c", d.conf, "--override-boot-slot=A", "status",
                          "--output-format=json").stdout)
    assert "interrupted_install" not in js
    img = open(images["rootfs"], "rb").read()
    assert slot_file(d, "rootfs-b")[:len(img)] == img


# --- the event log --------------------------------------------------------------

def test_event_log_records_the_write(dev, images):
    with open(dev.conf, "a") as f:
        f.write("\n[log.ws]\nfilename=ws.json\nevents=writeslot\nformat=json\n")
    conf = open(dev.conf).read().replace("[slot.appdata.0]\n", "[slot.appdata.0]\nreadonly=true\n")
    open(dev.conf, "w").write(conf)
    abota_fails("-c", dev.conf, "--override-boot-slot=A", "write-slot", "appdata.0",
                images["fip"], match="read-only")
    assert not os.path.exists(os.path.join(dev.base, "data", "ws.json"))  # refused: no record
    ws(dev, "rootfs.1", images["rootfs"])
    img = open(images["rootfs"], "rb").read()
    events = [json.loads(l) for l in open(os.path.join(dev.base, "data", "ws.json"))]
    wrote = [e for e in events if e["MESSAGE"].startswith("Wrote slot ")]
    assert [e["MESSAGE"] for e in wrote] == [
        f"Wrote slot rootfs.1: {len(img)} bytes, sha256 {hashlib.sha256(img).hexdigest()}"], events
    assert all(e["RAUC_EVENT_TYPE"] == "writeslot" and "rootfs.1" in e["MESSAGE"] and
               e["TS"].endswith("Z") for e in events), events


# --- interop with RAUC 1.8 ---------------------------------------------------------

RAUC_CONF = """[system]
compatible=abota-test
bootloader=noop
data-directory={d}/data-{who}

[slot.rootfs.0]
device={d}/{who}-a
type=ext4
bootname=A

[slot.rootfs.1]
device={d}/{who}-b
type=ext4
bootname=B
"""


@pytest.mark.parametrize("name", ["rootfs.ext4", "rootfs.img"])
def test_same_bytes_as_rauc_write_slot(tmp_path, images, name):
    image = tmp_path / name
    shutil.copy(images["rootfs"], image)
    confs = {}
    for who in ("rauc", "abota"):
        for bank in ("a", "b"):
            with open(tmp_path / f"{who}-{bank}", "wb") as f:
                f.write(SLOT_FILL * (8 << 20))
        confs[who] = tmp_path / f"{who}.conf"
        confs[who].write_text(RAUC_CONF.format(d=tmp_path, who=who))
    r = run("rauc", "-c", confs["rauc"], "write-slot", "rootfs.1", image)
    assert "Slot written successfully" in r.stdout, (r.stdout, r.stderr)
    p = abota("-c", confs["abota"], "--override-boot-slot=A", "write-slot", "rootfs.1", image)
    assert "written and verified" in p.stdout
    rauc_slot = open(tmp_path / "rauc-b", "rb").read()
    abota_slot = open(tmp_path / "abota-b", "rb").read()
    img = image.read_bytes()
    assert rauc_slot[:len(img)] == img
    assert abota_slot == rauc_slot
    assert open(tmp_path / "abota-a", "rb").read() == open(tmp_path / "rauc-a", "rb").read()


def test_fwu_board_bank_invalid_then_mark_active_boots_it(tmp_path):
    """On a simulated STM32MP board (FWU metadata, GPT partitions on the boot
    disk): writing rootfs.1 makes bank B invalid in the FWU metadata before
    anything else, leaves bank A's partitions and userfs alone, and puts the
    image into partition rootfs-b; `status mark-active rootfs.1` (the hint)
    then selects B for a trial boot, which TF-A and U-Boot take."""
    from simhelp import Board
    b = Board(tmp_path / "board")
    assert b.boot(check_rc=0)["bank"] == 0
    conf = os.path.join(b.dir, "system.conf")

    def part(name, size=4 << 20):
        p = b.part(name)
        with open(b.disk, "rb") as f:
            f.seek(p["start"])
            return f.read(min(p["size"], size))

    keep = {n: hashlib.sha256(part(n)).hexdigest() for n in ("rootfs-a", "bootfs-a", "userfs")}
    img = str(tmp_path / "rootfs.ext4")
    make_ext4(img, 24 * 1024, {"etc/os-release": b"VERSION=ws\n", "usr/bin/app": os.urandom(100_000)})
    p = abota("-c", conf, "write-slot", "rootfs.1", img)
    assert "Slot group B is marked bad; `abota status mark-active rootfs.1`" in p.stdout, p.stdout
    active, previous, states = b.md()
    assert (active, previous) == (0, 1) and states[1] == "I", b.md()  # B invalid
    data = open(img, "rb").read()
    assert part("rootfs-b", len(data)) == data
    assert {n: hashlib.sha256(part(n)).hexdigest() for n in keep} == keep
    st = json.loads(abota("-c", conf, "status", "--detailed", "--output-format=json").stdout)
    s1 = next(s for s in st["slots"] if "rootfs.1" in s)["rootfs.1"]
    assert s1["boot_status"] == "bad" and s1["slot_status"]["status"] == "ok", s1
    assert s1["slot_status"]["checksum"] == {"sha256": hashlib.sha256(data).hexdigest(),
                                          "size": len(data)}, s1
    assert "bundle" not in s1["slot_status"] or not any(s1["slot_status"]["bundle"].values()), s1
    # a reboot now stays on A
    assert b.boot(check_rc=0)["bank"] == 0
    abota("-c", conf, "status", "mark-active", "rootfs.1")
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and "rauc.slot=B" in h["cmdline"], b.console_tail()


def test_resize_true_grows_the_file_system_to_the_partition(tmp_path):
    """resize=true on a slot that is a GPT partition of the boot disk: resize2fs runs on
    a loop device bound to exactly that partition, so the ext4 file system fills
    rootfs-b and nothing past it changes."""
    from simhelp import Board
    b = Board(tmp_path / "board")
    b.boot(check_rc=0)
    conf = os.path.join(b.dir, "system.conf")
    text = open(conf).read()
    assert "[slot.rootfs.1]\n" in text
    open(conf, "w").write(text.replace("[slot.rootfs.1]\n", "[slot.rootfs.1]\nresize=true\n"))
    part = b.part("rootfs-b")
    nxt = min((q for q in (b.part(n) for n in ("userfs", "rootfs-a", "vendorfs-b"))
               if q["start"] >= part["start"] + part["size"]), key=lambda q: q["start"])
    with open(b.disk, "rb") as f:
        f.seek(nxt["start"])
        after = f.read(1 << 20)
    img = str(tmp_path / "rootfs.ext4")
    make_ext4(img, 8 * 1024, {"etc/os-release": b"VERSION=rs\n"})
    abota("-c", conf, "write-slot", "rootfs.1", img)
    with open(b.disk, "rb") as f:
        f.seek(nxt["start"])
        assert f.read(1 << 20) == after
    # e2fsprogs open a file system at an offset of a disk image: NAME?offset=N
    fs = f"{b.disk}?offset={part['start']}"
    out = run("dumpe2fs", "-h", fs).stdout
    blocks = int(re.search(r"^Block count:\s+(\d+)", out, re.M).group(1))
    bsize = int(re.search(r"^Block size:\s+(\d+)", out, re.M).group(1))
    assert blocks * bsize == part["size"] > os.path.getsize(img), (blocks, bsize, part)
    assert "VERSION=rs" in run("debugfs", "-R", "cat /etc/os-release", fs).stdout


def test_mounted_slot_refused_unless_allow_mounted(dev, images, tmp_path):
    """A slot whose file is mounted (a loop device over it) is refused, as RAUC refuses
    a mounted slot; allow-mounted=true lifts the refusal."""
    slot = os.path.join(dev.slots, "rootfs-b")
    run("mkfs.ext4", "-q", "-F", slot)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    loop = run("losetup", "-f", "--show", slot).stdout.strip()
    try:
        run("mount", "-o", "ro", loop, mnt)
        try:
            refused(dev, "rootfs.1", images["rootfs"],
                    match=f"slot rootfs.1 is mounted at {mnt} (block device ")
            conf = open(dev.conf).read().replace("[slot.rootfs.1]\n",
                                                 "[slot.rootfs.1]\nallow-mounted=true\n")
            open(dev.conf, "w").write(conf)
            ws(dev, "rootfs.1", images["rootfs"])
        finally:
            run("umount", mnt)
    finally:
        run("losetup", "-d", loop)
    img = open(images["rootfs"], "rb").read()
    assert slot_file(dev, "rootfs-b")[:len(img)] == img


def test_tar_archive_into_ext4_slot(dev, tmp_path):
    """As RAUC's write-slot: a tar archive (compression from its name) is extracted into
    a new ext4 file system in the slot; the status records the archive's hash."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text("VERSION=ws-tar\n")
    archive = tmp_path / "rootfs.tar.gz"
    run("tar", "-czf", archive, "-C", tree, ".")
    p = ws(dev, "rootfs.1", archive)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert f"Slot rootfs.1 written (archive extracted into a new file system): " \
        f"{archive.stat().st_size} bytes, sha256 {digest}" in p.stdout, p.stdout
    slot = os.path.join(dev.slots, "rootfs-b")
    run("e2fsck", "-fn", slot)
    assert run("debugfs", "-R", "cat /etc/os-release", slot).stdout == "VERSION=ws-tar\n"
    assert slot_state(dev, "rootfs.1")["sha256"] == digest
    assert os.path.exists(os.path.join(dev.bl, "bad-B"))
