"""Resuming an interrupted install (issue #5): the resume journal.

A power cut (powercut.h's fault injection: the process "loses power" at a
chosen write point and exits 137) in the middle of writing a 96 MiB rootfs;
the next `abota install` of the same bundle continues after the last
checkpoint the journal records -- it never writes below that offset again --
and the slot ends byte-identical to an uninterrupted install.  Over HTTP the
bytes before the checkpoint are not downloaded again."""
import json
import os
import re
import shutil

import pytest

from conftest import abota, make_ext4, run, sha256_file
from httpservers import Nginx
from test_install import Device

ROOTFS_MIB = 96


@pytest.fixture(scope="module")
def big(tmp_path_factory, pki):
    """v2 and v3 bundles with a 96 MiB rootfs of random data (so that it
    spans several 32 MiB checkpoints), verity format."""
    d = tmp_path_factory.mktemp("resume")
    out = {}
    for ver in ("2.0", "3.0"):
        c = d / f"c{ver}"
        c.mkdir()
        files = {f"data/r{i}": os.urandom(9 << 20) for i in range(9)}
        files["etc/os-release"] = f"VERSION={ver}\n".encode()
        make_ext4(str(c / "rootfs.ext4"), ROOTFS_MIB * 1024, files)
        (c / "fip.img").write_bytes(os.urandom(60000))
        (c / "manifest.raucm").write_text(
            f"[update]\ncompatible=abota-test\nversion={ver}\n\n"
            "[image.rootfs]\nfilename=rootfs.ext4\n\n[image.bootloader]\nfilename=fip.img\n")
        b = d / f"v{ver}.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], str(c), str(b))
        out[ver] = {"bundle": str(b), "rootfs": str(c / "rootfs.ext4"),
                    "fip": str(c / "fip.img")}
    return out


@pytest.fixture
def dev(tmp_path, pki):
    d = Device(str(tmp_path / "dev"), pki)
    for n in ("rootfs-a", "rootfs-b"):
        with open(os.path.join(d.slots, n), "wb") as f:
            f.truncate((ROOTFS_MIB + 8) << 20)
    return d


def write_points(dev, bundle, tmp_path, name="ref"):
    """Enumerates the write points of an uninterrupted install on a copy of
    the device; returns the log lines."""
    ref = str(tmp_path / name)
    shutil.copytree(dev.base, ref)
    conf = os.path.join(ref, "system.conf")
    with open(conf) as f:
        text = f.read().replace(dev.base, ref)
    with open(conf, "w") as f:
        f.write(text)
    log = str(tmp_path / f"{name}.log")
    abota("-c", conf, "install", bundle, env={"ABOTA_POWERCUT_LOG": log})
    return open(log).read().splitlines()


def cut_point(lines, frac):
    """The write point at FRAC of the rootfs writes."""
    rootfs = [int(l.split()[0]) for l in lines if l.split()[1] == "write" and
              l.split()[2] == "rootfs.1"]
    return rootfs[int(len(rootfs) * frac)]


def journal(dev):
    p = os.path.join(dev.base, "data", "install.journal")
    return open(p).read() if os.path.exists(p) else None


def verified(text, slot):
    m = re.search(r"\[slot\.%s\]\n(?:[^\[]*?)verified=(\d+)" % re.escape(slot), text)
    return int(m.group(1))


def slot_matches(dev, slot, image):
    data = open(image, "rb").read()
    return dev.slot_bytes(slot, len(data)) == data


def test_cut_then_resume_continues_after_checkpoint(dev, big, tmp_path):
    v2 = big["2.0"]
    n = cut_point(write_points(dev, v2["bundle"], tmp_path), 0.8)
    p = abota("-c", dev.conf, "install", v2["bundle"], check=False,
              env={"ABOTA_POWERCUT": str(n)})
    assert p.returncode == 137, p.stderr
    j = journal(dev)
    assert j and "target=B" in j
    done = verified(j, "rootfs.1")
    # checkpoints are 32 MiB segments proven on the medium
    assert done > 0 and done % (32 << 20) == 0, j
    # an interrupted install never changes which bank boots
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "A"
    # status shows it
    st = abota("-c", dev.conf, "status")
    assert "=== Interrupted install ===" in st.stdout and "target" not in st.stderr
    assert "installing the same bundle again resumes it" in st.stdout
    js = json.loads(abota("-c", dev.conf, "status", "--output-format=json").stdout)
    ii = js["interrupted_install"]
    assert ii["target"] == "B" and ii["slots"]["rootfs.1"]["verified_bytes"] == done
    sh = abota("-c", dev.conf, "status", "--output-format=shell").stdout
    assert "ABOTA_INTERRUPTED_INSTALL_TARGET='B'" in sh

    log = str(tmp_path / "resume.log")
    p = abota("-c", dev.conf, "install", v2["bundle"], env={"ABOTA_POWERCUT_LOG": log})
    assert f"1 resumed after an interruption, {done} bytes not written again" in p.stdout
    # nothing below the checkpoint was written again
    offs = [int(l.split()[3]) for l in open(log) if l.split()[1:3] == ["write", "rootfs.1"]]
    assert offs and min(offs) == done
    assert slot_matches(dev, "rootfs-b", v2["rootfs"])
    assert slot_matches(dev, "fip-b", v2["fip"])
    assert journal(dev) is None
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
    assert "status=ok" in dev.status()
    js = json.loads(abota("-c", dev.conf, "status", "--output-format=json").stdout)
    assert "interrupted_install" not in js
    # no temporary files of the cut writes are left behind
    assert [f for f in os.listdir(os.path.join(dev.base, "data")) if ".tmp-" in f] == []


def test_cut_after_a_slot_completed_keeps_it(dev, big, tmp_path):
    """Cut while writing the second image: the first is not written again."""
    v2 = big["2.0"]
    lines = write_points(dev, v2["bundle"], tmp_path)
    n = next(int(l.split()[0]) for l in lines if l.split()[1:3] == ["write", "bootloader.1"])
    assert abota("-c", dev.conf, "install", v2["bundle"], check=False,
                 env={"ABOTA_POWERCUT": str(n)}).returncode == 137
    assert verified(journal(dev), "rootfs.1") == os.path.getsize(v2["rootfs"])
    log = str(tmp_path / "resume.log")
    abota("-c", dev.conf, "install", v2["bundle"], env={"ABOTA_POWERCUT_LOG": log})
    assert not [l for l in open(log) if " rootfs.1" in l]
    assert slot_matches(dev, "rootfs-b", v2["rootfs"]) and slot_matches(dev, "fip-b", v2["fip"])


def test_cut_after_the_boot_switch_is_idempotent(dev, big, tmp_path):
    """Cut when removing the journal (after the boot switch): running the
    install again writes no image and ends in the same state."""
    v2 = big["2.0"]
    lines = write_points(dev, v2["bundle"], tmp_path)
    n = next(int(l.split()[0]) for l in lines if l.split()[1] == "unlink")
    assert abota("-c", dev.conf, "install", v2["bundle"], check=False,
                 env={"ABOTA_POWERCUT": str(n)}).returncode == 137
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
    log = str(tmp_path / "again.log")
    p = abota("-c", dev.conf, "install", v2["bundle"], env={"ABOTA_POWERCUT_LOG": log})
    assert "2 resumed" in p.stdout
    assert not [l for l in open(log) if l.split()[1] == "write" and "/" not in l.split()[2]]
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
    assert journal(dev) is None


def test_other_bundle_discards_journal(dev, big, tmp_path):
    v2, v3 = big["2.0"], big["3.0"]
    n = cut_point(write_points(dev, v2["bundle"], tmp_path), 0.8)
    assert abota("-c", dev.conf, "install", v2["bundle"], check=False,
                 env={"ABOTA_POWERCUT": str(n)}).returncode == 137
    log = str(tmp_path / "v3.log")
    p = abota("-c", dev.conf, "install", v3["bundle"], env={"ABOTA_POWERCUT_LOG": log})
    assert "discarding the resume journal" in p.stderr and "resumed" not in p.stdout
    offs = [int(l.split()[3]) for l in open(log) if l.split()[1:3] == ["write", "rootfs.1"]]
    assert min(offs) == 0
    assert slot_matches(dev, "rootfs-b", v3["rootfs"])
    assert journal(dev) is None


def test_broken_journal_starts_over(dev, big):
    v2 = big["2.0"]
    os.makedirs(os.path.join(dev.base, "data"), exist_ok=True)
    with open(os.path.join(dev.base, "data", "install.journal"), "w") as f:
        f.write("[install]\nbundle-hash=zz\nbundle=x\ntarget=B\ntransaction=t\n"
                "started=now\nbogus-key=1\n")
    p = abota("-c", dev.conf, "install", v2["bundle"])
    assert "ignoring the resume journal" in p.stderr and "bogus-key" in p.stderr
    assert slot_matches(dev, "rootfs-b", v2["rootfs"])
    st = abota("-c", dev.conf, "status")
    assert st.returncode == 0


def test_wrong_hash_state_rewrites_slot(dev, big, tmp_path):
    """A journal whose hash state does not describe the slot (tampered, or
    the slot changed behind our back): the end-to-end hash check fails and
    the slot is written again from the start in the same run."""
    v2 = big["2.0"]
    n = cut_point(write_points(dev, v2["bundle"], tmp_path), 0.8)
    assert abota("-c", dev.conf, "install", v2["bundle"], check=False,
                 env={"ABOTA_POWERCUT": str(n)}).returncode == 137
    jp = os.path.join(dev.base, "data", "install.journal")
    text = open(jp).read()
    text = re.sub(r"(hash-state=[0-9a-f]{16}:)([0-9a-f])", lambda m: m.group(1) +
                  ("1" if m.group(2) != "1" else "2"), text)
    open(jp, "w").write(text)
    p = abota("-c", dev.conf, "install", v2["bundle"])
    assert "writing slot rootfs.1 again from the start" in p.stderr
    assert slot_matches(dev, "rootfs-b", v2["rootfs"])
    assert journal(dev) is None


def test_resume_over_http_downloads_only_the_rest(dev, big, tmp_path):
    v2 = big["2.0"]
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(v2["bundle"], root / "v2.raucb")
    ngx = Nginx(str(tmp_path / "nginx"), str(root))
    try:
        url = ngx.url("v2.raucb")
        n = cut_point(write_points(dev, url, tmp_path), 0.9)
        full = sum(int(l.split('"')[2].split()[1]) for l in ngx.requests())
        open(ngx.access_log, "w").close()
        assert abota("-c", dev.conf, "install", url, check=False,
                     env={"ABOTA_POWERCUT": str(n)}).returncode == 137
        open(ngx.access_log, "w").close()
        p = abota("-c", dev.conf, "install", url)
        assert "resumed" in p.stdout
        rest = sum(int(l.split('"')[2].split()[1]) for l in ngx.requests())
        # cut at 90% of the writes, resumed from the last 32 MiB checkpoint
        # proven before it (random data: the bundle is as large as the image)
        assert rest < full * 0.6, (rest, full)
        assert slot_matches(dev, "rootfs-b", v2["rootfs"])
    finally:
        ngx.stop()


def test_cut_loses_unsynced_writes(dev, big, tmp_path):
    """The fault injection models page-cache loss: at the cut, writes not
    yet synced are undone.  Cut at the last write of the rootfs (torn at 0
    bytes): the last 32 MiB segment (written, not synced) is lost, the two
    proven ones stay, and the journal resumes exactly there."""
    v2 = big["2.0"]
    lines = write_points(dev, v2["bundle"], tmp_path)
    last = [int(l.split()[0]) for l in lines if l.split()[1:3] == ["write", "rootfs.1"]][-1]
    assert abota("-c", dev.conf, "install", v2["bundle"], check=False,
                 env={"ABOTA_POWERCUT": f"{last}:0"}).returncode == 137
    seg = 32 << 20
    img = open(v2["rootfs"], "rb").read()
    slot = dev.slot_bytes("rootfs-b", len(img))
    assert slot[:2 * seg] == img[:2 * seg]
    assert slot[2 * seg:] == b"\0" * (len(img) - 2 * seg)
    assert verified(journal(dev), "rootfs.1") == 2 * seg
    abota("-c", dev.conf, "install", v2["bundle"])
    assert slot_matches(dev, "rootfs-b", v2["rootfs"])
