"""Every row of the boot/update state machine (specs/fwu-metadata.md §4.2),
replayed in the simulator for the three BL2 variants (§2.3): ST TF-A r3
(MAX 4), upstream TF-A (MAX 3) and v1 metadata (MAX 3).  The Linux side is
what ST's meta-st-ota does (update_metadata.sh through `abota fwu create`),
so the rows show ST's behaviour, quirks included.  Each test checks the
metadata, the FWU_INFO register and the booted bank."""
import pytest

from simhelp import ROOTFS_A, ROOTFS_B, VARIANTS, Board, abota, sim


@pytest.fixture(params=list(VARIANTS))
def b(request, tmp_path):
    return Board(tmp_path / "board", variant=request.param)


def MAX(b):
    return b.v["max"]


def exhausted(b):
    """Counter value after the trial budget is used up: r3 stops at 1,
    upstream and v1 count down to 0."""
    return 1 if b.variant == "r3" else 0


def normal(b):
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and b.fwu_info() == (0, MAX(b))
    return h


def pending_b(b):
    """Row 5: post-install: update_metadata.sh 1 0 refuse."""
    b.st_update_metadata(1, 0, "refuse")


def mark_good(b, booted):
    """rauc status mark-good -> get-primary -> update_metadata.sh K K accept."""
    b.st_update_metadata(booted, booted, "accept")


def test_row01_factory_power_on(b):
    before = (b.raw_copy("metadata1"), b.raw_copy("metadata2"))
    assert b.fwu_info() == (0, 0)  # fresh backup domain
    h = normal(b)
    assert not h["uboot_wrote"]
    assert (b.raw_copy("metadata1"), b.raw_copy("metadata2")) == before
    assert b.md() == (0, 1, "AA")
    assert "Boot A" in b.last_console()
    assert f"root=PARTUUID={ROOTFS_A}" in b.cmdline() and "rauc.slot=A" in b.cmdline()


def test_row02_mark_good(b):
    normal(b)
    mark_good(b, 0)
    assert b.md() == (0, 0, "AA")
    normal(b)


def test_row03_04_install_interrupted(b):
    normal(b)
    before = b.raw_copy("metadata1")
    sim("erase", b.dir, "rootfs-b")  # half-written target bank
    b.event("reset")
    normal(b)
    assert b.raw_copy("metadata1") == before and b.md() == (0, 1, "AA")


def test_row05_post_install(b):
    normal(b)
    reg = b.fwu_info()
    pending_b(b)
    assert b.md() == (1, 0, "AV")
    assert b.fwu_info() == reg  # Linux cannot write FWU_INFO


def test_row06_status_cancels_pending_update(b):
    normal(b)
    pending_b(b)
    mark_good(b, 0)  # any `rauc status`: get-primary accepts the booted bank
    assert b.md() == (0, 0, "AA")
    normal(b)


def test_row07_trial_boot(b):
    normal(b)
    pending_b(b)
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b) - 1)
    assert not h["uboot_wrote"]
    assert "Boot B" in b.last_console()
    assert f"root=PARTUUID={ROOTFS_B}" in b.cmdline() and "rauc.slot=B" in b.cmdline()
    assert b.md() == (1, 0, "AV")


@pytest.mark.parametrize("event", ["vbat-loss", "tamper"])
def test_row07b_register_cleared(b, event):
    """SC-146: FWU_INFO = 0 at a trial boot (VBAT loss or a tamper event
    clears the TAMP backup registers): variants A (v1) and C (upstream)
    fall back at once, variant B (ST r3) re-arms the counter to 4 and boots
    the trial bank."""
    normal(b)
    pending_b(b)
    b.event(event)
    assert b.fwu_info() == (0, 0)
    h = b.boot(check_rc=0)
    if b.variant == "r3":
        # "Trial backup register empty : set max boot count", boots the trial bank
        assert h["bank"] == 1 and b.fwu_info() == (1, 4)
        assert "Trial backup register empty" in b.last_console()
        assert b.md() == (1, 0, "AV")
    else:
        # immediate fallback; U-Boot moves active to the booted bank
        assert h["bank"] == 0 and b.fwu_info() == (0, 0)
        assert "Trial FWU fails 3 times" in b.last_console()
        assert h["uboot_wrote"] and b.md() == (0, 1, "AV")
        normal(b)


def test_row08_failed_trial_boots(b):
    normal(b)
    pending_b(b)
    for k in range(1, 4):
        h = b.boot("--fail-boot", check_rc=3)
        assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b) - k)
        assert h["outcome"] == "failed"


@pytest.mark.parametrize("uboot", ["st", "upstream"])
def test_row09_10_rollback_and_reaccept(b, uboot, tmp_path):
    if uboot == "upstream":
        b = Board(tmp_path / "up", variant=b.variant, uboot="upstream")
    normal(b)
    pending_b(b)
    for _ in range(3):
        assert b.boot("--fail-boot")["bank"] == 1
    h = b.boot(check_rc=0)  # 4th boot since the install
    assert h["bank"] == 0 and b.fwu_info() == (0, exhausted(b))
    con = b.last_console()
    assert "Trial FWU fails 3 times" in con
    assert "Boot idx 0 is not matching active idx 1, changing active_idx" in con
    assert "Boot A" in con and "rauc.slot=A" in b.cmdline()
    assert h["uboot_wrote"]
    failed = "I" if uboot == "upstream" and b.v["md_version"] == 2 else "V"
    assert b.md() == (0, 1, "A" + failed)
    # row 10: mark-good on the rolled-back bank re-accepts the failed one (ST)
    mark_good(b, 0)
    assert b.md() == (0, 0, "AA")
    normal(b)


def test_row11_accept_does_not_rearm(b):
    normal(b)
    pending_b(b)
    b.boot(check_rc=0)
    mark_good(b, 1)
    assert b.md() == (1, 1, "AA")
    assert b.fwu_info() == (1, MAX(b) - 1)


def test_row12_consecutive_updates_eat_the_budget(b):
    """Several OTAs without a plain reboot: after 3 cycles the 4th update
    cannot switch banks (README limitation #2, row 7a)."""
    normal(b)
    cur = 0
    for cycle in range(1, 4):
        new = 1 - cur
        b.st_update_metadata(new, cur, "refuse")
        h = b.boot(check_rc=0)
        assert h["bank"] == new, cycle
        assert b.fwu_info() == (new, MAX(b) - cycle)
        mark_good(b, new)
        cur = new
    new = 1 - cur
    b.st_update_metadata(new, cur, "refuse")
    h = b.boot(check_rc=0)
    # row 7a: budget exhausted -> boots the current bank, U-Boot rewrites
    assert h["bank"] == cur and b.fwu_info() == (cur, exhausted(b))
    assert "Trial FWU fails 3 times" in b.last_console()
    assert b.md()[:2] == (cur, new)
    # a plain boot of the accepted bank re-arms the counter (row 13)
    h = b.boot(check_rc=0)
    assert h["bank"] == cur and b.fwu_info() == (cur, MAX(b))


def test_row13_reboot_after_accept_rearms(b):
    normal(b)
    pending_b(b)
    b.boot(check_rc=0)
    mark_good(b, 1)
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b))
    assert not h["uboot_wrote"]


def test_row14_mark_bad_is_a_noop_but_abota_rejects(b):
    normal(b)
    pending_b(b)
    b.boot(check_rc=0)
    before = b.raw_copy("metadata1")
    # ST's backend: set-state bad is a no-op -> nothing changes
    assert b.raw_copy("metadata1") == before
    # abota's reject: (a=previous, p=booted, booted=INVALID)
    abota("fwu", "reject", *b.md_args())
    assert b.md() == (0, 1, "AI" if b.v["md_version"] == 2 else "AV")
    h = b.boot(check_rc=0)
    assert h["bank"] == 0 and b.fwu_info() == (0, MAX(b))


@pytest.mark.parametrize("event", ["vbat-loss", "tamper"])
def test_row15_register_loss(b, event):
    normal(b)
    b.event(event)
    assert b.fwu_info() == (0, 0)
    assert b.cmdline() == ""
    normal(b)  # accepted bank: re-armed


@pytest.mark.parametrize("supply", ["with-vbat", "without-vbat"])
def test_power_off_during_trial_before_acceptance(b, supply):
    """SC-153: power-off while bank B runs its trial, before anything
    accepted it (abota's own metadata writes: activate = set-active B as
    VALID).  With a VBAT supply the TAMP register survives (`power-loss`):
    the power-on is one more trial boot of B on every variant.  Without one
    (the DK boards have no battery; `vbat-loss`) the register reads 0:
    variant A (v1) and C (upstream) revert to bank A at once (the documented
    "power-off during trial => revert"), variant B (ST r3) re-arms to 4 and
    boots B again.  In every case nothing is lost: B is accepted later, or
    it is still VALID (re-installable) and A runs."""
    normal(b)
    abota("fwu", "set-active", *b.md_args(), "1")  # what abota install's switch writes
    h = b.boot(check_rc=0)
    assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b) - 1)
    b.event("power-loss" if supply == "with-vbat" else "vbat-loss")
    h = b.boot(check_rc=0)
    if supply == "with-vbat":
        assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b) - 2)
        reverted = False
    elif b.variant == "r3":
        assert h["bank"] == 1 and b.fwu_info() == (1, 4)
        assert "Trial backup register empty" in b.last_console()
        reverted = False
    else:
        assert h["bank"] == 0 and b.fwu_info() == (0, 0)
        assert "Trial FWU fails 3 times" in b.last_console()
        assert h["uboot_wrote"]
        reverted = True
    if reverted:
        # A runs; B was never accepted and stays VALID: no bricked bank,
        # the update can simply be activated (or installed) again
        assert b.md() == (0, 1, "AV") if b.v["md_version"] == 2 else b.md()[:2] == (0, 1)
        normal(b)
    else:
        abota("fwu", "accept", *b.md_args())
        assert b.md()[0] == 1 and b.md()[2][1] == "A"
        h = b.boot(check_rc=0)
        assert h["bank"] == 1 and b.fwu_info() == (1, MAX(b))
