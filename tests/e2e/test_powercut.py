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
