"""Every row of the power-loss table (specs/fwu-metadata.md §4.3) in the
simulator, for the three BL2 variants: ST's script writes metadata1 then
metadata2 through the page cache, so any subset of the two copies may be old,
new or torn at the cut.  Plus the U-Boot rollback rewrite cut in the middle
and abota's own writer cut at every write point."""
import pytest

from simhelp import ACCEPTED, VALID, VARIANTS, Board, abota, encode_md


@pytest.fixture(params=list(VARIANTS))
def b(request, tmp_path):
    board = Board(tmp_path / "board", variant=request.param)
    h = board.boot(check_rc=0)
    assert h["bank"] == 0
    return board


def md_bytes(b, active, previous, trial_bank=None):
    """What update_metadata.sh writes (v2: states, v1: accepted flags)."""
    if b.v["md_version"] == 1:
        acc = [0 if trial_bank == i else 1 for i in range(2)]
        return encode_md(version=1, active=active, previous=previous, accepted=acc)
    st = [VALID if trial_bank == i else ACCEPTED for i in range(2)]
    return encode_md(active=active, previous=previous, states=st)


def MAX(b):
    return b.v["max"]


def assert_identical_copies(b):
    n = len(md_bytes(b, 0, 0))
    assert b.raw_copy("metadata1")[:n] == b.raw_copy("metadata2")[:n]
    assert b.copies_valid() == [True, True]


def test_cut_before_any_copy_reached_media(b):
    old = b.raw_copy("metadata1")
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and b.raw_copy("metadata1") == old
    assert b.md() == (0, 1, "AA")


def test_metadata1_new_metadata2_old(b):
    new = md_bytes(b, 1, 0, trial_bank=1)
    b.write_copy("metadata1", new)
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b) - 1)  # primary wins in BL2
    con = b.last_console()
    assert "Both FWU metadata copies are valid but do not match" in con
    assert "Restoring the secondary partition from the primary" in con
    assert b.raw_copy("metadata2")[:len(new)] == new  # update proceeds
    assert_identical_copies(b)


def test_metadata1_torn_metadata2_old(b):
    new = md_bytes(b, 1, 0, trial_bank=1)
    old = b.raw_copy("metadata2")[:len(new)]
    # 10 bytes: the new CRC and active index, the old previous index; a cut
    # past the last differing byte would leave a complete new copy
    b.write_copy("metadata1", new, nbytes=10)
    h = b.boot(check_rc=0)
    con = b.last_console()
    assert "loading of FWU-Metadata failed, using Bkup-FWU-Metadata" in con
    assert h["bank"] == 0 and h["bl2_metadata"] == "metadata2"  # update lost
    assert "metadata1 is corrupted, restoring it from metadata2" in con
    assert b.raw_copy("metadata1")[:len(new)] == old
    assert_identical_copies(b)


def test_metadata1_old_metadata2_new(b):
    """Write-back reordering: metadata2 reached the media first (SC-141)."""
    new = md_bytes(b, 1, 0, trial_bank=1)
    old = b.raw_copy("metadata1")[:len(new)]
    b.write_copy("metadata2", new)
    h = b.boot(check_rc=0)
    assert h["bank"] == 0  # primary (old) wins: update lost, safe
    assert "Restoring the secondary partition from the primary" in b.last_console()
    assert b.raw_copy("metadata2")[:len(new)] == old
    assert_identical_copies(b)


def test_both_torn_bricks(b):
    new = md_bytes(b, 1, 0, trial_bank=1)
    b.write_copy("metadata1", new, nbytes=10)
    b.write_copy("metadata2", new, nbytes=6)
    for _ in range(2):  # every power-on: BL2 panics, nothing boots
        h = b.boot(check_rc=4)
        assert h["outcome"] == "panic" and h["bank"] is None
        con = b.last_console()
        assert "loading of Bkup-FWU-Metadata failed" in con and "PANIC" in con
        assert b.cmdline() == ""
    st = b.status()
    assert st["state"] == "panic" and st["metadata"]["in_effect"] is None
    # abota refuses to repair from garbage (SC-132)
    p = abota("fwu", "repair", *b.md_args(), check=False)
    assert p.returncode == 1 and "refusing to write" in p.err or "no valid" in p.err


def test_mark_good_accept_torn(b):
    """Rows 2/10/11 cut: accept lost -> the board stays in trial."""
    b.write_copy("metadata1", md_bytes(b, 1, 0, trial_bank=1))
    b.write_copy("metadata2", md_bytes(b, 1, 0, trial_bank=1))
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b) - 1)
    accept = md_bytes(b, 1, 1)
    b.write_copy("metadata1", accept, nbytes=10)
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and h["bl2_metadata"] == "metadata2"
    assert b.fwu_info() == (1, MAX(b) - 2)  # still counting down
    assert b.md() == (1, 0, "AV")
    assert_identical_copies(b)


@pytest.mark.parametrize("cut,want_copy", [(1, "metadata1"), (2, "metadata1"),
                                           (3, "metadata2"), (4, "metadata1")])
def test_uboot_rollback_rewrite_cut(b, cut, want_copy):
    """Row 9's U-Boot rewrite (secondary first, then primary) cut at each of
    its write points: the next power-on always boots the good bank."""
    b.write_copy("metadata1", md_bytes(b, 1, 0, trial_bank=1))
    b.write_copy("metadata2", md_bytes(b, 1, 0, trial_bank=1))
    for _ in range(3):
        assert b.boot("--fail-boot")["bank"] == 1
    h = b.boot(f"--cut-uboot-write={cut}:5", check_rc=137)
    assert h["outcome"] == "power-cut"
    assert any(b.copies_valid())
    h = b.boot(check_rc=0)
    assert h["bank"] == 0
    assert h["bl2_metadata"] == want_copy
    assert b.md()[:2] == (0, 1)
    assert_identical_copies(b)


def test_torn_write_event_seeded(b, tmp_path):
    """The simulator's torn-write event (seeded garbage) on either copy."""
    b.event("torn-write", "metadata2")
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and h["bl2_metadata"] == "metadata1"
    assert_identical_copies(b)
    b.event("torn-write", "metadata1")
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and h["bl2_metadata"] == "metadata2"
    assert_identical_copies(b)
    # deterministic: the same seed tears the same bytes
    other = Board(tmp_path / "other", variant=b.variant)
    other.boot()
    other.event("torn-write", "metadata2")
    b.event("torn-write", "metadata2")
    hist_a = [e for e in b.history() if e["event"] == "torn-write"]
    hist_b = [e for e in other.history() if e["event"] == "torn-write"]
    assert hist_a[0]["bytes"] == hist_b[0]["bytes"]


def test_abota_writer_cut_at_every_point(b):
    """abota's own two-copy writer (secondary, sync, primary, sync) with a
    power cut at each write point, 0..all bytes of the cut write: the board
    always boots, the old or the new bank."""
    args = b.md_args()
    for n in range(1, 5):
        for nbytes in (0, 1, 9):
            abota("fwu", "create", *args)
            b.set_fwu_info(0, MAX(b))
            p = abota("fwu", "set-active", "B", *args, env={"ABOTA_POWERCUT": f"{n}:{nbytes}"},
                      check=False)
            assert p.returncode == 137
            h = b.boot(check_rc=0)
            # a cut before the primary's sync (n == 4) loses its write
            # (page-cache model): the old primary wins, U-Boot restores
            # the secondary from it
            want = 1 if n == 3 and nbytes else 0
            assert h["bank"] == want, (n, nbytes, h)
            assert_identical_copies(b)
