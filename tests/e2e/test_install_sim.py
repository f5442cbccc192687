"""The A/B cycle end to end on the simulated STM32MP boards: abota install
writes bank B (fip, bootfs, vendorfs, rootfs), the emulated TF-A/U-Boot boot B
in trial, mark-good accepts it, a second update goes back to A; a bank that
fails to boot falls back and abota reports it; mark-bad returns to the
previous bank; bad bundles fail before anything is written; userfs is never
touched."""
import hashlib
import json
import os
import struct
import subprocess

import pytest

from conftest import abota, abota_fails, make_ext4, run
from simhelp import EXTLINUX, FSTAB, Board, gpt_edit, sim

BOARDS = ["stm32mp135f-dk", "stm32mp157f-dk2", "stm32mp157f-ev1", "stm32mp215f-dk",
          "stm32mp257f-dk", "stm32mp257f-ev1-sdcard", "stm32mp257f-ev1-emmc"]

# What ST's bundle recipes put in a bundle (meta-st-ota): fip, bootfs,
# vendorfs, rootfs.  bootfs's extlinux.conf and rootfs's fstab name bank A, as
# a build system produces them; abota's bank fix-ups make them name B.


def make_bundle(pki, d, version, compatible="stm32mpu", broken_bootfs=False, nvctr=0):
    c = os.path.join(d, f"content-{version}-{compatible}-{int(broken_bootfs)}-{nvctr}")
    os.makedirs(c)
    with open(os.path.join(c, "fip.bin"), "wb") as f:
        # a FIP starts with TF-A's ToC header (name 0xAA640001); BL2 checks
        # it.  abota-sim reads the FIP's anti-rollback counter from the
        # platform bits 32-47 of the header flags (docs/fwu.md).
        f.write(struct.pack("<IIIHH", 0xAA640001, 0x12345678, 0, nvctr, 0) + b"\0" * 112)
        f.write(hashlib.sha256(version.encode()).digest() * 32760)  # ~1 MiB
    boot_files = {"uImage": b"kernel " + version.encode() * 1000}
    if not broken_bootfs:
        boot_files["extlinux/extlinux.conf"] = EXTLINUX.encode()
    make_ext4(os.path.join(c, "bootfs.ext4"), 16 * 1024, boot_files)
    make_ext4(os.path.join(c, "vendorfs.ext4"), 8 * 1024, {"lib/firmware/x": b"fw" * 1000})
    make_ext4(os.path.join(c, "rootfs.ext4"), 24 * 1024,
              {"etc/fstab": FSTAB.encode(), "etc/os-release": f"VERSION={version}\n".encode(),
               "usr/bin/app": os.urandom(200_000)})
    with open(os.path.join(c, "manifest.raucm"), "w") as f:
        f.write(f"[update]\ncompatible={compatible}\nversion={version}\n\n"
                "[image.fip]\nfilename=fip.bin\n\n[image.bootfs]\nfilename=bootfs.ext4\n\n"
                "[image.vendorfs]\nfilename=vendorfs.ext4\n\n[image.rootfs]\nfilename=rootfs.ext4\n")
    b = os.path.join(d, f"{version}-{compatible}{'-broken' if broken_bootfs else ''}-{nvctr}.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, b)
    return b


@pytest.fixture(scope="module")
def bundles(pki, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("simbundles"))
    return {"v2": make_bundle(pki, d, "2.0.0"), "v3": make_bundle(pki, d, "3.0.0"),
            "broken": make_bundle(pki, d, "4.0.0", broken_bootfs=True),
            "other": make_bundle(pki, d, "2.0.0", compatible="another-product")}


def dev(board, pki, *args, check=True):
    """abota on the simulated device: its system.conf, our keyring."""
    return abota("-c", os.path.join(board.dir, "system.conf"), "-C",
                 f"keyring:path={pki.keyring}", *args, check=check)


def dev_fails(board, pki, *args, match=None):
    return abota_fails("-c", os.path.join(board.dir, "system.conf"), "-C",
                       f"keyring:path={pki.keyring}", *args, match=match)


def part_sha(board, name, size=None):
    with open(board.disk, "rb") as f:
        p = board.part(name)
        f.seek(p["start"])
        return hashlib.sha256(f.read(size or min(p["size"], 4 << 20))).hexdigest()


def fwu_json(board, pki):
    return json.loads(dev(board, pki, "status", "--output-format=json").stdout)


@pytest.mark.parametrize("name", BOARDS)
def test_update_cycle(tmp_path, pki, bundles, name):
    b = Board(tmp_path / name, board=name)
    assert b.boot(check_rc=0)["bank"] == 0
    userfs = part_sha(b, "userfs")
    a_before = part_sha(b, "rootfs-a")
    p = dev(b, pki, "install", bundles["v2"])
    assert "next boot tries B" in p.stdout
    assert part_sha(b, "rootfs-a") == a_before
    # before the reboot: pending, not a rollback
    st = fwu_json(b, pki)["fwu"]
    assert st["reboot_pending"] and not st["rollback"], st
    assert "Reboot pending: bank B" in dev(b, pki, "status").stdout
    # reboot: TF-A picks bank B in trial, U-Boot "Boot B", kernel sees bank B
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and h["outcome"] == "running", b.console_tail()
    assert "rauc.slot=B" in b.cmdline()
    assert "Boot B" in b.last_console()
    st = fwu_json(b, pki)
    assert st["booted"] == "B" and not st["fwu"]["reboot_pending"]
    dev(b, pki, "status", "mark-good")
    h = b.boot(check_rc=0)
    assert h["bank"] == 1
    active, previous, states = b.md()
    assert (active, previous) == (1, 0) and states[1] == "A", b.md()  # B accepted
    # a second update goes back to A
    dev(b, pki, "install", bundles["v3"])
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and "rauc.slot=A" in b.cmdline(), b.console_tail()
    dev(b, pki, "status", "mark-good")
    assert part_sha(b, "userfs") == userfs


def test_failing_bank_falls_back(tmp_path, pki, bundles):
    b = Board(tmp_path / "fb")
    b.boot(check_rc=0)
    dev(b, pki, "install", bundles["v2"])
    banks = [b.boot("--fail-boot")["bank"] for _ in range(4)]
    assert banks[:3] == [1, 1, 1] and banks[3] == 0, banks
    h = b.boot(check_rc=0)
    assert h["bank"] == 0
    st = fwu_json(b, pki)
    assert st["fwu"]["rollback"] is True, st["fwu"]
    p = dev(b, pki, "status")
    assert "roll" in p.stdout.lower()


def test_broken_bootfs_falls_back(tmp_path, pki, bundles):
    """A bank whose bootfs has no extlinux.conf cannot be fixed up: the
    install fails before the boot switch, and bank A keeps booting."""
    b = Board(tmp_path / "broken")
    b.boot(check_rc=0)
    dev_fails(b, pki, "install", bundles["broken"], match="extlinux")
    h = b.boot(check_rc=0)
    assert h["bank"] == 0


def test_mark_bad_during_trial(tmp_path, pki, bundles):
    b = Board(tmp_path / "mb")
    b.boot(check_rc=0)
    dev(b, pki, "install", bundles["v2"])
    assert b.boot(check_rc=0)["bank"] == 1
    dev(b, pki, "status", "mark-bad")
    assert b.boot(check_rc=0)["bank"] == 0


@pytest.mark.parametrize("case", ["other", "corrupt", "missing-partition", "too-small"])
def test_failures_before_writing(tmp_path, pki, bundles, case):
    b = Board(tmp_path / case)
    b.boot(check_rc=0)
    before = {p: part_sha(b, p) for p in ("fip-b", "bootfs-b", "vendorfs-b", "rootfs-b")}
    md_before = open(b.disk, "rb").read(1)  # touch
    dump_before = b.dump()
    conf = os.path.join(b.dir, "system.conf")
    bundle = bundles["v2"]
    if case == "other":
        dev_fails(b, pki, "install", bundles["other"], match="compatible mismatch")
    elif case == "corrupt":
        data = bytearray(open(bundle, "rb").read())
        data[len(data) // 3] ^= 0x10
        bad = tmp_path / "bad.raucb"
        bad.write_bytes(bytes(data))
        dev_fails(b, pki, "install", str(bad))
    elif case == "missing-partition":
        text = open(conf).read().replace("partition=vendorfs-b", "partition=vendorfs-x")
        open(conf, "w").write(text)
        dev_fails(b, pki, "install", bundle, match="vendorfs-x")
    elif case == "too-small":
        big = tmp_path / "big"
        os.makedirs(big)
        with open(big / "fip.bin", "wb") as f:
            f.write(os.urandom(5 << 20))  # fip-b is 4 MiB
        (big / "manifest.raucm").write_text("[update]\ncompatible=stm32mpu\nversion=9.0.0\n\n"
                                            "[image.fip]\nfilename=fip.bin\n")
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], big,
              tmp_path / "big.raucb")
        dev_fails(b, pki, "install", str(tmp_path / "big.raucb"), match="too small")
    assert {p: part_sha(b, p) for p in before} == before
    assert b.dump() == dump_before
    assert b.boot(check_rc=0)["bank"] == 0
    del md_before


def test_trial_budget_exhausted_needs_force(tmp_path, pki, bundles):
    """SC-145: the FWU_INFO trial counter is below MAX at install start
    (repeated updates without a plain reboot use up the counter, the
    reference demo's weakness): abota warns that fewer trial boots remain,
    refuses with an explanation ("reboot first") below min-trial-boots, and
    --force overrides."""
    b = Board(tmp_path / "budget")
    b.boot(check_rc=0)
    dev(b, pki, "install", bundles["v2"])
    b.boot(check_rc=0)  # trial 1 of B
    b.boot(check_rc=0)  # trial 2 of B: the counter is not re-armed
    full = ("-C", "fwu:min-trial-boots=3")
    p = dev(b, pki, *full, "install", bundles["v3"], check=False)
    if p.returncode == 0:
        pytest.fail("install with a short trial budget was accepted:\n" + p.stdout)
    assert "trial boot(s) left" in p.stderr and "--force" in p.stderr, p.stderr
    # accepted and rebooted plainly: the budget is full again
    dev(b, pki, "status", "mark-good")
    b.boot(check_rc=0)
    dev(b, pki, *full, "install", bundles["v3"])
    # and --force overrides the check
    b2 = Board(tmp_path / "budget2")
    b2.boot(check_rc=0)
    dev(b2, pki, "install", bundles["v2"])
    b2.boot(check_rc=0)
    b2.boot(check_rc=0)
    # at the default min-trial-boots=1: installs, with a warning
    p = dev(b2, pki, "install", bundles["v3"])
    assert "trial boot(s) instead of" in p.stderr, p.stderr
    dev(b2, pki, *full, "install", "--force", bundles["v3"])


def test_board_profile_fixup_rules(tmp_path, pki):
    """A board profile's [fixup.*] groups replace the default bank fix-up
    rules: here the defaults plus a vendorfs file that names the bank."""
    b = Board(tmp_path / "board")
    assert b.boot(check_rc=0)["bank"] == 0
    with open(os.path.join(b.dir, "board.conf"), "a") as f:
        f.write("\n[fixup.cmdline]\nclass=bootfs\npath=/extlinux/extlinux.conf\nkind=cmdline\n"
                "required=true\n\n[fixup.mounts]\nclass=rootfs\npath=/etc/fstab\nkind=mounts\n\n"
                "[fixup.vendor]\nclass=vendorfs\npath=/etc/bank.conf\nkind=cmdline\n")
    c = tmp_path / "c"
    c.mkdir()
    with open(c / "fip.bin", "wb") as f:
        f.write(struct.pack("<II", 0xAA640001, 0x12345678) + b"\0" * 4088)
    make_ext4(str(c / "bootfs.ext4"), 16 * 1024, {"uImage": b"kernel",
                                                  "extlinux/extlinux.conf": EXTLINUX.encode()})
    make_ext4(str(c / "vendorfs.ext4"), 8 * 1024,
              {"etc/bank.conf": b"console=ttySTM0 rauc.slot=A\n"})
    make_ext4(str(c / "rootfs.ext4"), 24 * 1024, {"etc/fstab": FSTAB.encode()})
    (c / "manifest.raucm").write_text(
        "[update]\ncompatible=stm32mpu\nversion=2.0.0\n\n[image.fip]\nfilename=fip.bin\n\n"
        "[image.bootfs]\nfilename=bootfs.ext4\n\n[image.vendorfs]\nfilename=vendorfs.ext4\n\n"
        "[image.rootfs]\nfilename=rootfs.ext4\n")
    bundle = str(tmp_path / "v2.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], str(c), bundle)
    dev(b, pki, "install", bundle)
    p = b.part("vendorfs-b")
    img = str(tmp_path / "vendorfs-b.img")
    with open(b.disk, "rb") as src, open(img, "wb") as dst:
        src.seek(p["start"])
        dst.write(src.read(8 << 20))
    out = subprocess.run(["debugfs", "-R", "cat /etc/bank.conf", img], capture_output=True,
                         text=True).stdout
    assert out == "console=ttySTM0 rauc.slot=B\n", out
    h = b.boot(check_rc=0)
    assert h["bank"] == 1, b.console_tail()


def otp(board):
    return board.status()["otp"]["nv_counter"]


@pytest.mark.parametrize("variant", ["r3", "upstream"])
def test_version_jump_trial_fails_keeps_otp_counter(tmp_path, pki, variant):
    """SC-103: a fast-forward -- version 999999.0.0 whose FIP carries the
    last anti-rollback value of the OTP budget (32) -- whose trial boots
    fail: BL2 does not advance the OTP counter during the trial, the board
    falls back to bank A (whose FIP would be refused with a burnt counter),
    no fuse is used, and abota's version floor is not raised, so the real
    next release still installs.  Accepting that release advances the
    counter on the next boot, and from then on the older bank A is refused
    by BL2 (anti-rollback works)."""
    b = Board(tmp_path / "b", variant=variant)
    d = str(tmp_path / "bundles")
    os.makedirs(d)
    jump = make_bundle(pki, d, "999999.0.0", nvctr=32)
    real = make_bundle(pki, d, "2.0.0", nvctr=1)
    assert b.boot(check_rc=0)["bank"] == 0 and otp(b) == 0
    dev(b, pki, "install", jump)
    banks = []
    for _ in range(6):
        h = b.boot("--fail-boot")
        banks.append(h["bank"])
        assert h["otp_nvctr"] == 0 and otp(b) == 0, h  # trial: counter kept
        if h["bank"] == 0:
            break
    assert banks[0] == 1 and banks[-1] == 0, banks
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and otp(b) == 0
    assert not os.path.exists(os.path.join(b.dir, "data", "version-floor"))
    # the real release installs (not locked out by the failed jump)
    dev(b, pki, "install", real)
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and otp(b) == 0  # in trial: not yet
    dev(b, pki, "status", "mark-good")
    assert otp(b) == 0  # accepted from Linux; BL2 burns on the next boot
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and otp(b) == 1 and h["otp_nvctr"] == 1
    assert "anti-rollback counter 0 -> 1" in b.last_console()
    with open(os.path.join(b.dir, "data", "version-floor")) as f:
        assert f.read() == "2.0.0\n"
    # bank A (FIP counter 0) is a rollback for BL2 now
    dev(b, pki, "status", "mark-active", "other")
    h = b.boot()
    assert h["outcome"] == "panic" and "below the OTP counter" in h["reason"], h
    for _ in range(5):
        h = b.boot()
        if h["outcome"] == "running":
            break
    assert h["bank"] == 1 and otp(b) == 1, h


LINUX_DATA = "0fc63daf-8483-4772-8e79-3d69d8477de4"


@pytest.mark.parametrize("case", ["blank", "missing", "one-missing"])
def test_metadata_missing_or_blank_refused(tmp_path, pki, bundles, case):
    """SC-143: with both FWU metadata copies blank (erased), or the metadata
    partitions missing from the GPT, abota refuses to install: BL2 would
    panic ("CRC check failed on FWU metadata ... PANIC") on the next power-on
    whatever was written.  Nothing is written to bank B or the metadata."""
    b = Board(tmp_path / case)
    b.boot(check_rc=0)
    parts = ("fip-b", "bootfs-b", "vendorfs-b", "rootfs-b", "metadata1", "metadata2")
    before = {p: part_sha(b, p) for p in parts}  # (b.part caches the layout)
    if case == "blank":
        sim("erase", b.dir, "metadata1")
        sim("erase", b.dir, "metadata2")
        match = "no valid metadata copy"
    else:
        names = ["metadata1", "metadata2"] if case == "missing" else ["metadata2"]
        for i, n in enumerate(names):
            gpt_edit(b.disk, n, new_name=f"data{i}", new_type=LINUX_DATA)
        match = "metadata partitions"
    if case == "blank":
        before["metadata1"] = part_sha(b, "metadata1")
        before["metadata2"] = part_sha(b, "metadata2")
    p = dev_fails(b, pki, "install", bundles["v2"], match=match)
    assert len(p.stderr.strip().splitlines()) <= 2, p.stderr
    assert {k: part_sha(b, k) for k in before} == before
    # and BL2 indeed cannot boot such a disk
    h = b.boot()
    assert h["outcome"] == "panic", h


def test_mounted_target_slot_is_refused(tmp_path, pki, bundles):
    """RAUC refuses to write a mounted slot unless allow-mounted=true.  Bank B's rootfs
    partition of the board's disk image attached to a loop device (`losetup --offset
    --sizelimit`) and mounted -- someone inspecting it: the install refuses before
    anything changes.  Bank A's rootfs mounted the same way does not stop it (not a
    target's storage)."""
    b = Board(tmp_path / "mnt")
    b.boot(check_rc=0)
    md_before = b.md()
    b_before = part_sha(b, "rootfs-b")
    mnt = tmp_path / "inspect"
    mnt.mkdir()

    def mount(name):
        p = b.part(name)
        loop = run("losetup", "-f", "--show", "-o", p["start"], "--sizelimit", p["size"],
                   b.disk).stdout.strip()
        r = run("mount", "-o", "ro", loop, mnt, check=False)
        if r.returncode != 0:
            run("losetup", "-d", loop)
            raise AssertionError(r.stderr)
        return loop

    def unmount(loop):
        run("umount", mnt)
        run("losetup", "-d", loop)

    loop = mount("rootfs-b")
    try:
        dev_fails(b, pki, "install", bundles["v2"],
                  match=f"slot rootfs.1 is mounted at {mnt} (block device ")
    finally:
        unmount(loop)
    assert b.md() == md_before and part_sha(b, "rootfs-b") == b_before
    loop = mount("rootfs-a")
    try:
        dev(b, pki, "install", bundles["v2"])
    finally:
        unmount(loop)
    assert part_sha(b, "rootfs-b") != b_before
    assert b.boot(check_rc=0)["bank"] == 1
