"""bootloader=fwu against the board simulator: abota status / mark-* drive the
FWU metadata exactly as TF-A BL2 and U-Boot (emulated by abota-sim) read it
(specs/fwu-metadata.md §4.5)."""
import hashlib
import json
import os

import pytest

from simhelp import abota, sim

BOARDS = ["stm32mp135f-dk", "stm32mp157f-dk2", "stm32mp157f-ev1", "stm32mp215f-dk",
          "stm32mp257f-dk", "stm32mp257f-ev1-sdcard", "stm32mp257f-ev1-emmc"]


def make(tmp_path, board="stm32mp157f-dk2", *extra):
    d = tmp_path / "board"
    sim("create", board, d, "--full", *extra)
    boot(d)
    return d


def boot(d, *opts, expect=0):
    p = sim("boot", d, "--quiet", *opts, check=False)
    assert p.returncode == expect, p.out + p.err
    return p


def st(d):
    return json.loads(abota("-c", d / "system.conf", "status", "--output-format=json").out)


def mark(d, verb, what="booted", check=True):
    return abota("-c", d / "system.conf", "status", verb, what, check=check)


def cmdline(d):
    return (d / "cmdline").read_text()


def states(s):
    return [b["state"] for b in s["fwu"]["banks"]]


def digest(path):
    """SHA-256 over the data extents of a sparse disk image and their
    offsets (reading all 5 GiB of zeros took minutes on a loaded machine)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        off = 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break  # no data after off
            end = os.lseek(fd, start, os.SEEK_HOLE)
            h.update(start.to_bytes(8, "little") + end.to_bytes(8, "little"))
            f.seek(start)
            left = end - start
            while left:
                chunk = f.read(min(left, 1 << 20))
                h.update(chunk)
                left -= len(chunk)
            off = end
    return h.hexdigest()


@pytest.mark.parametrize("board", BOARDS)
def test_status_every_board(tmp_path, board):
    d = make(tmp_path, board)
    s = st(d)
    assert s["booted"] == "A"
    assert s["boot_primary"] == "rootfs.0"
    f = s["fwu"]
    assert f["active_index"] == 0 and f["previous_active_index"] == 1
    assert states(s) == ["accepted", "accepted"]
    assert f["fwu_info"]["boot_index"] == 0
    assert f["trial_boots_left"] == 3 and f["trial_boots_max"] == 3
    assert f["rollback"] is False
    out = abota("-c", d / "system.conf", "status").out
    assert "bank 0 (A): accepted" in out and "FWU_INFO: 0x" in out


def test_status_never_writes(tmp_path):
    d = make(tmp_path)
    mark(d, "mark-active", "other")
    before = digest(d / "disk.img")
    for fmt in ("readable", "json", "shell"):
        abota("-c", d / "system.conf", "status", f"--output-format={fmt}")
    assert digest(d / "disk.img") == before


def test_trial_accept_keeps_other_bank(tmp_path):
    d = make(tmp_path)
    assert "activated slot rootfs.1" in mark(d, "mark-active", "other").out
    s = st(d)
    assert s["boot_primary"] == "rootfs.1"
    assert states(s) == ["accepted", "valid"]
    boot(d)
    assert "rauc.slot=B" in cmdline(d)
    s = st(d)
    assert s["booted"] == "B" and s["fwu"]["fwu_info"]["boot_index"] == 1
    # only the booted bank can be accepted
    p = mark(d, "mark-good", "other", check=False)
    assert p.returncode == 1 and "only the booted bank" in p.err
    assert "marked slot(s) rootfs.1 as good" in mark(d, "mark-good").out
    s = st(d)
    assert s["fwu"]["active_index"] == 1 and s["fwu"]["previous_active_index"] == 0
    assert states(s) == ["accepted", "accepted"]  # A keeps its real state
    # accepted from Linux: the counter is re-armed only by the next plain boot
    assert s["fwu"]["trial_boots_left"] == 2
    boot(d)
    assert "rauc.slot=B" in cmdline(d)
    assert st(d)["fwu"]["trial_boots_left"] == 3


def test_mark_bad_during_trial_returns_to_previous(tmp_path):
    d = make(tmp_path)
    mark(d, "mark-active", "other")
    boot(d)
    assert "rauc.slot=B" in cmdline(d)
    assert "marked slot(s) rootfs.1 as bad" in mark(d, "mark-bad").out
    s = st(d)
    assert s["fwu"]["active_index"] == 0 and states(s) == ["accepted", "invalid"]
    boot(d)
    assert "rauc.slot=A" in cmdline(d)
    s = st(d)
    assert s["booted"] == "A" and s["fwu"]["rollback"] is True
    assert s["fwu"]["failed_bank"] == 1


@pytest.mark.parametrize("tfa,uboot", [("r3", "st"), ("upstream", "st"), ("r3", "upstream")])
def test_three_failed_boots_fall_back(tmp_path, tfa, uboot):
    d = make(tmp_path, "stm32mp157f-dk2", f"--tfa={tfa}", f"--uboot={uboot}")
    mark(d, "mark-active", "other")
    for _ in range(3):
        boot(d, "--fail-boot", expect=3)
    boot(d)
    assert "rauc.slot=A" in cmdline(d)
    s = st(d)
    f = s["fwu"]
    assert s["booted"] == "A" and f["active_index"] == 0
    assert f["rollback"] is True and f["failed_bank"] == 1, f
    assert states(s)[1] == ("valid" if uboot == "st" else "invalid")
    out = abota("-c", d / "system.conf", "status").out
    assert "Rollback: " in out
    # the failed bank cannot be accepted; the running one can, keeping B's state
    mark(d, "mark-good")
    assert st(d)["fwu"]["banks"][1]["state"] == states(s)[1]


def test_budget_exhausted_by_repeated_updates(tmp_path):
    """ST's README limitation: consecutive updates without a plain reboot
    eat the TF-A trial counter; abota status shows what is left."""
    d = make(tmp_path)
    expect_left = [2, 1, 0]
    for i, left in enumerate(expect_left):
        mark(d, "mark-active", "other")
        boot(d)
        booted = "B" if i % 2 == 0 else "A"
        assert f"rauc.slot={booted}" in cmdline(d)
        mark(d, "mark-good")
        assert st(d)["fwu"]["trial_boots_left"] == left
    s = abota("-c", d / "system.conf", "status", "--output-format=shell").out
    assert "ABOTA_FWU_TRIAL_BOOTS_LEFT='0'" in s


def test_v1_metadata(tmp_path):
    d = make(tmp_path, "stm32mp157f-dk2", "--tfa=v1")
    s = st(d)
    assert s["fwu"]["metadata_version"] == 1 and s["fwu"]["tfa"] == "v1"
    mark(d, "mark-active", "other")
    boot(d)
    assert "rauc.slot=B" in cmdline(d)
    assert st(d)["fwu"]["trial_boots_left"] == 2
    mark(d, "mark-good")
    assert states(st(d)) == ["accepted", "accepted"]


def test_status_query_during_trial_and_pending_never_writes(tmp_path):
    """SC-144: status queries (`abota status` in every format, which asks
    the backend for the primary and every slot's state, as D-Bus
    GetPrimary/GetSlotStatus do) with an update pending and during the
    trial boot change neither the metadata nor FWU_INFO: unlike ST's
    backend they neither cancel the pending update nor accept the trial."""
    d = make(tmp_path)
    mark(d, "mark-active", "other")  # pending: B VALID, not booted yet

    def query():
        for fmt in ("readable", "json", "shell"):
            abota("-c", d / "system.conf", "status", f"--output-format={fmt}")
        abota("-c", d / "system.conf", "status", "--detailed", check=False)

    before = (digest(d / "disk.img"), (d / "fwu_info").read_bytes())
    query()
    assert (digest(d / "disk.img"), (d / "fwu_info").read_bytes()) == before
    s = st(d)
    assert s["boot_primary"] == "rootfs.1" and states(s) == ["accepted", "valid"]
    boot(d)  # trial of B
    assert "rauc.slot=B" in cmdline(d)
    before = (digest(d / "disk.img"), (d / "fwu_info").read_bytes())
    query()
    assert (digest(d / "disk.img"), (d / "fwu_info").read_bytes()) == before
    s = st(d)
    assert s["booted"] == "B" and states(s) == ["accepted", "valid"]  # still a trial
    left = s["fwu"]["trial_boots_left"]
    boot(d)  # the next power-on is another trial boot: nothing accepted it
    assert st(d)["fwu"]["trial_boots_left"] == left - 1
