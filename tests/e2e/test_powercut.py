"""The power-cut campaign (powercut_campaign.py, docs/reliability.md): a
deterministic sample of the cut points of scenarios A, B and C on the three
TF-A variants (the full sweep is `make faults`), and checks that the
campaign's invariant checks do catch the states they are about."""
import os
import shutil

import pytest

import powercut_campaign as pc

# Every SAMPLE-th write point plus every metadata point (and a torn write of
# each metadata write): about 60 s on 2 cores.
SAMPLE = int(os.environ.get("ABOTA_POWERCUT_SAMPLE", "8"))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    return pc.Campaign(str(tmp_path_factory.mktemp("powercut")))


def report(request, line):
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr:
        tr.write_line(line)
    print(line)


def test_write_points_cover_the_install(campaign):
    """The install's durable writes are all write points: slot data and
    syncs of the four images, the status file, both metadata copies."""
    labels = {(p[3], p[2]) for p in campaign.reference("A", "r3")["points"] if p[0] == 0}
    for slot in ("fip.1", "bootfs.1", "vendorfs.1", "rootfs.1"):
        assert (slot, "write") in labels and (slot, "sync") in labels, labels
    for copy in ("metadata1", "metadata2"):
        assert (copy, "write") in labels and (copy, "sync") in labels, labels
    assert any(k == "rename" and l.endswith("central.raucs") for l, k in labels), labels
    assert any(k == "sync" and ".tmp-" in l for l, k in labels), labels


def test_install_cut_exits_137(campaign, tmp_path):
    b = campaign.boards["r3"].copy_to(str(tmp_path / "b"))
    p = b.abota(campaign.keyring, "install", campaign.bundles["2.0.0"],
                env={"ABOTA_POWERCUT": "12"}, ok=None)
    assert p.returncode == 137, (p.returncode, p.err)
    assert "simulated power cut at write point 12" in p.err


@pytest.mark.parametrize("scenario", pc.SCENARIOS)
def test_sampled_campaign(request, campaign, scenario):
    """SC-150: a power cut at the write/flush points of the slot writes, the
    status saves and both metadata copies (every SAMPLE-th point plus every
    metadata point, torn writes included; `make faults` runs every point):
    the board always boots a bank with complete content, no half-written
    bank is bootable (marked good or in trial), and the update completes
    after the power-on."""
    r = campaign.sweep(scenario, sample=SAMPLE)
    report(request, f"powercut: scenario {scenario}: {r['points']} cut points, {r['boots']} "
                    f"boots, {len(r['violations'])} violations (sample 1/{SAMPLE})")
    assert r["points"] >= 30
    assert not r["violations"], "\n".join(r["violations"][:20])


def test_checks_catch_violations(campaign, tmp_path):
    """The invariant checks are not vacuous: an incomplete bank in trial,
    both copies invalid, a touched userfs and a panic are reported."""
    ref = campaign.reference("A", "r3")
    b = campaign.boards["r3"].copy_to(str(tmp_path / "b"))
    assert campaign.check(b, ref, "fresh") == []
    b.abota(campaign.keyring, "install", campaign.bundles["2.0.0"])
    assert campaign.check(b, ref, "installed") == []
    part = b.parts()["rootfs-b"]
    with open(b.disk, "r+b") as f:  # bank B in trial, its rootfs half-written
        f.seek(part["start"] + 4096)
        f.write(os.urandom(8192))
    v = campaign.check(b, ref, "x")
    assert any("bank B is V (bootable) with incomplete content" in x for x in v), v
    h = b.boot()
    v = campaign.check(b, ref, "x", h)
    assert any("booted bank B with incomplete content" in x for x in v), v
    userfs = b.parts()["userfs"]
    with open(b.disk, "r+b") as f:
        f.seek(userfs["start"] + (1 << 30))
        f.write(b"\0" * 4096)  # even zeros: the allocation changes
        for name in ("metadata1", "metadata2"):
            f.seek(b.parts()[name]["start"] + 8)
            f.write(b"\xff" * 16)
    v = campaign.check(b, ref, "x")
    assert any("both metadata copies invalid" in x for x in v), v
    assert any("userfs changed" in x for x in v), v
    h = b.boot()
    v = campaign.check(b, ref, "x", h)
    assert any("x: boot " in x for x in v), (v, h)
    shutil.rmtree(b.dir)


def test_campaign_fails_without_fsync(request, campaign, tmp_path):
    """SC-152: with fsync disabled the power-cut tests must fail.  Under
    ABOTA_POWERCUT_NOSYNC=1 (powercut.h) abota's syncs make nothing durable,
    so a cut loses every write of the install -- the target's "bad" mark in
    the metadata too -- while the torn write reaches the media: the
    campaign must report a bootable bank with incomplete content.  The same
    cut points with syncs are clean, so the failure is the missing fsync."""
    ref = campaign.reference("A", "r3")
    # install step, one cut in the middle of each bank image
    inst = [(n, label) for step, n, kind, label, length in ref["points"]
            if step == 0 and kind == "write" and label in ("rootfs.1", "fip.1")]
    picks = {}
    for n, label in inst:
        picks.setdefault(label, []).append(n)
    cuts = [v[len(v) // 2] for v in picks.values()]
    assert len(cuts) == 2, picks
    for i, n in enumerate(cuts):
        boots, v = campaign.run_cut("A", "r3", 0, str(n), str(tmp_path / f"sync{i}"))
        assert v == [], v
    campaign.abota_env = {"ABOTA_POWERCUT_NOSYNC": "1"}
    try:
        found = []
        for i, n in enumerate(cuts):
            boots, v = campaign.run_cut("A", "r3", 0, str(n), str(tmp_path / f"nosync{i}"))
            found += v
    finally:
        campaign.abota_env = {}
    report(request, f"powercut without fsync: {len(found)} violations at {len(cuts)} cut points")
    assert any("with incomplete content" in x for x in found), found
