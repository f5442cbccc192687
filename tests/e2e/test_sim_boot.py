"""abota-sim: every board profile, the disk layout against the profile, what
U-Boot reads from the bootfs, BL2's reaction to bad metadata, bad input to
the simulator, determinism."""
import json
import os
import time

import pytest

from simhelp import (ACCEPTED, FIP_A, FIP_B, FIP_TYPE, MDATA_TYPE, ROOTFS_A, VALID, Board,
                     abota, decode_header, encode_md, gpt_parts, sim)

BOARDS = ["stm32mp135f-dk", "stm32mp157f-dk2", "stm32mp157f-ev1", "stm32mp215f-dk",
          "stm32mp257f-dk", "stm32mp257f-ev1-sdcard", "stm32mp257f-ev1-emmc"]

# specs/fwu-metadata.md §3.2 (offsets of the partitions the table lists)
LAYOUT_257_SD = {"fsbla1": 0x4400, "metadata1": 0x84400, "metadata2": 0xC4400,
                 "fip-a": 0x104400, "fip-b": 0x504400, "u-boot-env": 0x904400,
                 "bootfs-a": 0x984400, "bootfs-b": 0x4984400, "vendorfs-a": 0x8984400,
                 "vendorfs-b": 0x14084400, "rootfs-a": 0x1F784400, "rootfs-b": 0x5B184400,
                 "userfs": 0x96B84400}
LAYOUT_257_EMMC = {"metadata1": 0x80000, "metadata2": 0x100000, "fip-a": 0x180000,
                   "fip-b": 0x580000, "u-boot-env": 0x980000, "bootfs-a": 0xA00000,
                   "bootfs-b": 0x5B00000, "vendorfs-a": 0xAC00000, "vendorfs-b": 0xE000000,
                   "rootfs-a": 0x12000000, "rootfs-b": 0x49000000, "userfs": 0x80000000}
LAYOUT_157_DK2 = {"metadata1": 0x84400, "metadata2": 0xC4400, "rootfs-a": 0xA984400,
                  "rootfs-b": 0x38984400, "userfs": 0x66984400, "vendorfs-a": 0x8984400,
                  "vendorfs-b": 0x9984400}


def test_boards_listed():
    out = sim("boards").out
    for name in BOARDS:
        assert name in out


@pytest.mark.parametrize("board", BOARDS)
def test_every_board_creates_and_boots(tmp_path, board):
    t0 = time.monotonic()
    b = Board(tmp_path / "b", board=board, full=False)
    created = time.monotonic() - t0
    assert created < 10
    parts = gpt_parts(b.disk)
    want = {"stm32mp257f-ev1-sdcard": LAYOUT_257_SD, "stm32mp257f-ev1-emmc": LAYOUT_257_EMMC,
            "stm32mp157f-dk2": LAYOUT_157_DK2}.get(board, {})
    for name, off in want.items():
        assert parts[name]["start"] == off, name
    # fixed GUIDs of the spec, types, bootable flags
    assert parts["fip-a"]["uuid"] == FIP_A and parts["fip-b"]["uuid"] == FIP_B
    assert parts["fip-a"]["type"] == FIP_TYPE
    assert parts["metadata1"]["uuid"] == "5f91c128-e120-48d7-bb64-9fa9aed4c7e3"
    assert parts["metadata2"]["uuid"] == "f469f981-5985-4206-8fb3-839956035a65"
    assert parts["metadata1"]["type"] == MDATA_TYPE
    assert parts["rootfs-a"]["uuid"] == ROOTFS_A
    assert parts["bootfs-a"]["attrs"] & 4 and parts["bootfs-b"]["attrs"] & 4
    assert list(parts)[0:2] != ["metadata2", "metadata1"]
    # factory metadata = ST's update_metadata.sh 0 1 accept, byte for byte
    assert b.raw_copy("metadata1")[:120] == encode_md()
    assert b.raw_copy("metadata2")[:120] == encode_md()
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and b.fwu_info() == (0, 4)
    assert "rauc.slot=A" in b.cmdline()
    st = b.status()
    assert st["board"] == board and st["state"] == "running" and st["booted_bank"] == 0
    assert st["banks"][0]["fip-a"]["content"] == "fip"
    assert st["banks"][1]["fip-b"]["content"] == "empty"
    # system.conf points at the board's files
    conf = open(os.path.join(b.dir, "system.conf")).read()
    d = os.path.realpath(b.dir)
    for line in (f"boot-disk={d}/disk.img", f"cmdline={d}/cmdline", f"fwu-info={d}/fwu_info",
                 "[slot.rootfs.1]", "partition=rootfs-b", "bootname=B"):
        assert line in conf


def test_example_system_conf_per_board():
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for board in BOARDS:
        conf = open(os.path.join(src, "boards", board, "system.conf")).read()
        assert f"board={board}" in conf and "[slot.fip.1]" in conf


def test_status_readable(tmp_path):
    b = Board(tmp_path / "b")
    b.boot()
    out = sim("status", b.dir).out
    assert "state      running, bank A" in out
    assert "FWU_INFO   0x00000040 (TAMP_BKP10R @ 0x5c00a128): boot index 0, trial counter 4" in out
    assert "in effect: metadata1; active A, previous B; A accepted B accepted" in out


def test_image_size(tmp_path):
    b = Board(tmp_path / "b", extra=["--image-size=2GiB"])
    assert os.path.getsize(b.disk) == 2 << 30
    assert b.boot()["bank"] == 0
    p = sim("create", "stm32mp157f-dk2", tmp_path / "small", "--image-size=1GiB", check=False)
    assert p.returncode == 1 and "too small for board stm32mp157f-dk2" in p.err
    assert "needs at least 1721272320 bytes" in p.err
    assert not (tmp_path / "small").exists()
    p = sim("create", "stm32mp157f-dk2", tmp_path / "odd", "--image-size=2147483649", check=False)
    assert p.returncode == 1 and "not a multiple" in p.err


def test_create_bad_input(tmp_path):
    p = sim("create", "no-such-board", tmp_path / "x", check=False)
    assert p.returncode == 1 and "unknown board 'no-such-board'" in p.err
    p = sim("create", "stm32mp157f-dk2", tmp_path / "x", "--tfa=v1", "--md-version=2",
            check=False)
    assert p.returncode == 1 and "does not read metadata v2" in p.err
    # a broken user profile: overlapping partitions
    prof = tmp_path / "bad.conf"
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "boards", "stm32mp157f-dk2", "board.conf")
    text = open(src).read().replace("offset=0x00504400", "offset=0x00404400")
    prof.write_text(text)
    p = sim("create", str(prof), tmp_path / "y", check=False)
    assert p.returncode == 1 and "partitions fip-a" in p.err and "overlap" in p.err
    prof.write_text(open(src).read().replace("offset=0x00504400", "offset=0x00504401"))
    p = sim("create", str(prof), tmp_path / "y", check=False)
    assert p.returncode == 1 and "not aligned" in p.err
    # an existing non-simulator directory is not overwritten
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "keep").write_text("x")
    p = sim("create", "stm32mp157f-dk2", tmp_path / "z", "--force", check=False)
    assert p.returncode == 1 and "not empty" in p.err
    assert (tmp_path / "z" / "keep").exists()


def test_user_board_without_recompiling(tmp_path, monkeypatch):
    """A profile dropped into $ABOTA_BOARDS_DIR is found by name."""
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "boards", "stm32mp157f-dk2", "board.conf")
    d = tmp_path / "boards" / "my-board"
    d.mkdir(parents=True)
    (d / "board.conf").write_text(open(src).read().replace("name=stm32mp157f-dk2",
                                                            "name=my-board"))
    monkeypatch.setenv("ABOTA_BOARDS_DIR", str(tmp_path / "boards"))
    assert "my-board" in sim("boards").out
    b = Board(tmp_path / "sim", board="my-board")
    assert b.boot()["bank"] == 0


def trial_b(b):
    b.st_update_metadata(1, 0, "refuse")


def test_broken_bootfs_fails_then_rolls_back(tmp_path):
    b = Board(tmp_path / "b")
    b.boot()
    sim("erase", b.dir, "bootfs-b")
    trial_b(b)
    for k in range(3):
        h = b.boot(check_rc=3)
        assert h["bank"] == 1 and h["outcome"] == "failed"
        assert "bootfs-b" in h["reason"]
        assert "SCRIPT FAILED" in b.last_console()
        assert b.cmdline() == "" or "rauc.slot=B" not in b.cmdline()
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and "rauc.slot=A" in b.cmdline()


def test_empty_bootfs_and_missing_kernel(tmp_path):
    b = Board(tmp_path / "b")
    b.boot()
    sim("fs", b.dir, "bootfs-b", "rm", "/extlinux/extlinux.conf")
    trial_b(b)
    h = b.boot(check_rc=3)
    assert h["bank"] == 1 and "extlinux.conf" in h["reason"]
    conf = sim("fs", b.dir, "bootfs-a", "get", "/extlinux/extlinux.conf").out
    (tmp_path / "ext").write_text(conf.replace(ROOTFS_A, "087c3ebe-60ca-4517-a55d-c1d7237ead55")
                                  .replace("rauc.slot=A", "rauc.slot=B"))
    sim("fs", b.dir, "bootfs-b", "put", "/extlinux/extlinux.conf", tmp_path / "ext")
    sim("fs", b.dir, "bootfs-b", "rm", "/uImage")
    h = b.boot(check_rc=3)
    assert "kernel /uImage missing" in h["reason"]
    assert "** File not found /uImage **" in b.last_console()


def test_cmdline_naming_the_other_bank(tmp_path):
    """ST's bundle carries bank A's extlinux.conf; without post-install's
    patch, bootfs-b names rootfs-a / rauc.slot=A: the boot fails."""
    b = Board(tmp_path / "b")
    b.boot()
    conf = sim("fs", b.dir, "bootfs-a", "get", "/extlinux/extlinux.conf").out
    (tmp_path / "ext").write_text(conf)
    sim("fs", b.dir, "bootfs-b", "put", "/extlinux/extlinux.conf", tmp_path / "ext")
    trial_b(b)
    h = b.boot(check_rc=3)
    assert h["bank"] == 1 and "another bank's rootfs" in h["reason"]
    # right root, wrong rauc.slot
    (tmp_path / "ext").write_text(conf.replace(ROOTFS_A, "087c3ebe-60ca-4517-a55d-c1d7237ead55"))
    sim("fs", b.dir, "bootfs-b", "put", "/extlinux/extlinux.conf", tmp_path / "ext")
    h = b.boot(check_rc=3)
    assert "rauc.slot=A" in h["reason"]


def test_empty_fip_panics_until_fallback(tmp_path):
    """Bank B never written (no FIP): BL2 picks it, fails to load BL33 and
    panics; the counter was already decremented, so after the trial budget
    BL2 falls back (no brick)."""
    b = Board(tmp_path / "b", full=False)
    b.boot()
    trial_b(b)
    for k in range(3):
        h = b.boot(check_rc=4)
        assert h["outcome"] == "panic" and "FIP" in h["reason"]
        assert "Failed to load image id 5" in b.last_console()
        assert b.fwu_info()[1] == 3 - k
    h = b.boot(check_rc=0)
    assert h["bank"] == 0


def test_bl2_guid_not_in_gpt_panics(tmp_path):
    """SC-139: the active bank's img_guid names no partition."""
    b = Board(tmp_path / "b")
    b.boot()
    bogus = "aaaaaaaa-54ef-463f-a7ef-ae25ff887087"
    md = encode_md(active=1, previous=0, states=(ACCEPTED, VALID),
                   images=[(MDATA_TYPE, FIP_TYPE, [FIP_A, bogus])])
    b.write_copy("metadata1", md)
    b.write_copy("metadata2", md)
    h = b.boot(check_rc=4)
    assert "No partition with the uuid mentioned in metadata" in b.last_console()
    assert h["outcome"] == "panic"


def test_bl2_unknown_image_type_panics(tmp_path):
    """SC-137: an unknown img_type_guid makes the metadata invalid: BL2
    panics, and abota sees no valid copy (it would refuse to install)."""
    b = Board(tmp_path / "b")
    md = encode_md(images=[(MDATA_TYPE, MDATA_TYPE, [FIP_A, FIP_B])])
    b.write_copy("metadata1", md)
    b.write_copy("metadata2", md)
    assert b.copies_valid() == [False, False]
    p = abota("fwu", "dump", *b.md_args(), check=False)
    assert "unknown image type (BL2 panics)" in p.out + p.err
    h = b.boot(check_rc=4)
    assert "Unknown image type 8a7a84a0" in b.last_console()


@pytest.mark.parametrize("field", ["img_entry_size", "bank_info_entry_size"])
def test_entry_sizes_checked(tmp_path, field):
    """SC-135: img_entry_size != 0x50 or bank_info_entry_size != 0x18 (the
    entries themselves unchanged): invalid for upstream TF-A's check -- its
    BL2 rejects both copies and panics -- and for abota (no valid copy).  ST's
    r3 BL2 does not check the sizes and boots (a documented difference)."""
    kw = {"img_entry_size": 72} if field == "img_entry_size" else {"bank_info_entry_size": 16}
    for variant, rc in (("upstream", 4), ("r3", 0)):
        b = Board(tmp_path / variant, variant=variant)
        md = encode_md(**kw)
        b.write_copy("metadata1", md)
        b.write_copy("metadata2", md)
        assert b.copies_valid() == [False, False]
        h = b.boot(check_rc=rc)
        if rc:
            assert h["outcome"] == "panic" and "no valid FWU metadata" in h["reason"], h
            assert "ERROR:   loading of Bkup-FWU-Metadata failed" in b.last_console()
        else:
            assert h["bank"] == 0


@pytest.mark.parametrize("state", [0xFF, 0x12])
def test_bl2_active_bank_invalid(tmp_path, state):
    """SC-138: active bank INVALID or unknown state -> alternate(), counter 0."""
    b = Board(tmp_path / "b")
    b.boot()
    md = encode_md(active=1, previous=0, states=(ACCEPTED, state))
    b.write_copy("metadata1", md)
    b.write_copy("metadata2", md)
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and b.fwu_info() == (0, 0)
    assert "The active bank(1) of the platform is in Invalid State." in b.last_console()
    # U-Boot moved active to the booted bank (state bytes kept as they were)
    for copy in ("metadata1", "metadata2"):
        hdr = decode_header(b.raw_copy(copy))
        assert (hdr["active"], hdr["previous"], hdr["states"][1]) == (0, 1, state)


@pytest.mark.parametrize("tfa,ok", [("r3", True), ("upstream", False)])
def test_metadata_size_disagreement(tmp_path, tfa, ok):
    """metadata_size 119 with the CRC over 116 bytes: ST r3 BL2 takes it,
    upstream BL2 and U-Boot do not (SC-134)."""
    b = Board(tmp_path / "b", variant=tfa)
    md = encode_md(metadata_size=119, crc_len=120)
    good = encode_md()
    b.write_copy("metadata1", md)
    h = b.boot(check_rc=0)
    assert h["bank"] == 0
    assert h["bl2_metadata"] == ("metadata1" if ok else "metadata2")
    # U-Boot rejects metadata1 (CRC over metadata_size-4) and restores it
    assert b.raw_copy("metadata1")[:120] == good


def test_both_copies_garbage_uboot_resign_hazard(tmp_path):
    """BL2 r3 accepts a copy U-Boot rejects (metadata_size 119, CRC over 116)
    in both copies: U-Boot finds both bad and re-signs the content (hazard
    documented in §1.5); the result is still unusable for it."""
    b = Board(tmp_path / "b", variant="r3")
    md = encode_md(metadata_size=119, crc_len=120)
    b.write_copy("metadata1", md)
    b.write_copy("metadata2", md)
    h = b.boot(check_rc=0)
    assert "Both FWU metadata copies are corrupted" in b.last_console()
    assert any("re-signed" in a for a in h["actions"])
    # now both copies carry a CRC over 115 bytes: r3 BL2 panics next time
    h = b.boot(check_rc=4)
    assert h["outcome"] == "panic"


def test_deterministic(tmp_path):
    """Same seed, same sequence -> same disks, histories and consoles."""
    def run(d):
        b = Board(d, seed=42, full=False)
        b.boot()
        b.st_update_metadata(1, 0, "refuse")
        b.boot()
        b.event("torn-write", "metadata2")
        b.boot()
        st = b.status()
        with open(b.disk, "rb") as f:
            head = f.read(0x984400 + 65536)  # GPT, metadata, fip, bootfs-a start
        return st, head, open(os.path.join(b.dir, "console.log")).read()

    a, b_ = run(tmp_path / "a"), run(tmp_path / "b")
    assert a[1] == b_[1] and a[2] == b_[2]
    strip = lambda s: json.dumps({k: v for k, v in s.items() if k not in ("history",)},
                                 sort_keys=True).replace(str(tmp_path / "a"), "X").replace(
                                     str(tmp_path / "b"), "X")
    assert strip(a[0]) == strip(b_[0])
    c = Board(tmp_path / "c", seed=43, full=False)
    assert gpt_parts(c.disk)["u-boot-env"]["uuid"] != gpt_parts(
        str(tmp_path / "a" / "disk.img"))["u-boot-env"]["uuid"]


def test_boot_time(tmp_path):
    b = Board(tmp_path / "b")
    t0 = time.monotonic()
    for _ in range(10):
        b.boot()
    per_boot = (time.monotonic() - t0) / 10
    assert per_boot < 1.0, per_boot


def test_truncated_disk_image(tmp_path):
    """A disk image of the wrong size: clear errors, no crash, no write."""
    b = Board(tmp_path / "b", full=False)
    os.truncate(b.disk, 1 << 30)
    p = sim("boot", b.dir, check=False)
    assert p.returncode == 1 and "disk.img: disk size 1073741824 is too small" in p.err
    p = sim("status", b.dir, check=False)
    assert p.returncode == 1
    from simhelp import abota
    p = abota("fwu", "dump", "--disk", b.disk, check=False)
    assert p.returncode == 1 and "no GPT" in p.err
