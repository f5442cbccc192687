"""Adaptive updates (issue #6): adaptive=block-hash-index bundles, blocks
reused from the active slot (and the target's old content), only the rest
read from the bundle -- over HTTP, only the rest downloaded."""
import os
import shutil

import pytest

from conftest import abota, make_ext4, run
from httpservers import Nginx
from test_install import Device, cached_bytes, page_cache_drops_in

MIB = 1 << 20


@pytest.fixture(scope="module")
def pair(tmp_path_factory, pki):
    """v1 and v2 of a 48 MiB rootfs: v2 changes 8 bytes of one file and adds
    a 1 MiB file; both as adaptive bundles."""
    d = tmp_path_factory.mktemp("adaptive")
    files = {f"data/f{i}": os.urandom(3 * MIB) for i in range(10)}
    out = {}
    for v in ("1", "2"):
        if v == "2":
            f3 = files["data/f3"]
            files["data/f3"] = f3[:8192] + b"changed!" + f3[8200:]
            files["data/new"] = os.urandom(MIB)
        c = d / f"c{v}"
        c.mkdir()
        make_ext4(str(c / "rootfs.ext4"), 48 * 1024, files)
        (c / "fip.img").write_bytes(b"fip" * 20000)
        (c / "manifest.raucm").write_text(
            f"[update]\ncompatible=abota-test\nversion={v}.0\n\n"
            "[image.rootfs]\nfilename=rootfs.ext4\nadaptive=block-hash-index\n\n"
            "[image.bootloader]\nfilename=fip.img\n")
        b = d / f"v{v}.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], str(c), str(b))
        out[v] = {"bundle": str(b), "rootfs": str(c / "rootfs.ext4")}
    return out


@pytest.fixture
def dev(tmp_path, pki, pair):
    """A device running v1 from slot A (rootfs-a holds the v1 image)."""
    d = Device(str(tmp_path / "dev"), pki)
    for n in ("rootfs-a", "rootfs-b"):
        with open(os.path.join(d.slots, n), "wb") as f:
            f.truncate(56 * MIB)
    with open(os.path.join(d.slots, "rootfs-a"), "r+b") as f:
        f.write(open(pair["1"]["rootfs"], "rb").read())
    return d


def slot_matches(dev, slot, image):
    data = open(image, "rb").read()
    return dev.slot_bytes(slot, len(data)) == data


def stats(stderr):
    line = next(l for l in stderr.splitlines() if "adaptive: rootfs.ext4:" in l)
    w = line.split()
    return {"active": int(w[4]), "blocks": int(w[6]), "target": int(w[13]),
            "zero": int(w[18]), "stale": int(w[20]), "bundle": int(w[22])}


def test_bundle_has_both_indexes_and_rauc_accepts_it(pair, pki, tmp_path):
    x = tmp_path / "x"
    abota("--keyring", pki.keyring, "extract", pair["2"]["bundle"], str(x))
    size = os.path.getsize(pair["2"]["rootfs"])
    assert os.path.getsize(x / "rootfs.ext4.block-hash-index") == size // 4096 * 32
    assert os.path.getsize(x / "rootfs.ext4.block-hash-index-64") == size // 4096 * 8
    full = open(x / "rootfs.ext4.block-hash-index", "rb").read()
    compact = open(x / "rootfs.ext4.block-hash-index-64", "rb").read()
    assert all(full[i * 32:i * 32 + 8] == compact[i * 8:i * 8 + 8] for i in range(size // 4096))
    p = run("rauc", "info", f"--keyring={pki.keyring}", pair["2"]["bundle"])
    assert "block-hash-index" in p.stdout


def test_adaptive_install_reuses_active_slot(dev, pair):
    run("sync")
    p = abota("-c", dev.conf, "install", pair["2"]["bundle"], env={"ABOTA_LOG": "info"})
    if page_cache_drops_in(dev.base):
        # the running slot was read whole to index it, the target read back:
        # neither stays in the page cache (both did, 48 MiB each)
        assert cached_bytes(os.path.join(dev.slots, "rootfs-a")) < 4 * MIB
        assert cached_bytes(os.path.join(dev.slots, "rootfs-b")) < 4 * MIB
    assert "adaptive:" in p.stdout
    s = stats(p.stderr)
    assert s["blocks"] == 48 * 256
    # nearly everything came from the active slot or is zeros; from the
    # bundle: the new 1 MiB file, the changed block's squashfs block, ext4
    # metadata -- a few MiB at most
    assert s["active"] + s["zero"] > s["blocks"] * 0.9, s
    assert s["bundle"] < 3 * MIB, s
    assert s["stale"] == 0
    assert slot_matches(dev, "rootfs-b", pair["2"]["rootfs"])
    # the running slot was only read
    assert slot_matches(dev, "rootfs-a", pair["1"]["rootfs"])


def test_adaptive_over_http_downloads_only_changes(dev, pair, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(pair["2"]["bundle"], www / "v2.raucb")
    ngx = Nginx(str(tmp_path / "nginx"), str(www))
    try:
        abota("-c", dev.conf, "install", ngx.url("v2.raucb"))
        reqs = ngx.requests()
        got = sum(int(l.split('"')[2].split()[1]) for l in reqs)
        size = os.path.getsize(www / "v2.raucb")
        # the 1 MiB new file is random (incompressible), the rest is reused
        assert got < size * 0.15, (got, size)
        assert len(reqs) < 40, len(reqs)
        assert slot_matches(dev, "rootfs-b", pair["2"]["rootfs"])
    finally:
        ngx.stop()


def test_without_active_slot_uses_target_and_bundle(dev, pair):
    """SC-44 (degraded adaptive input): an unusable source only costs the savings, the result is exact. The active slot is not readable: a warning, the target's old content
    (v2 from an earlier install, status reset) is reused, the rest comes
    from the bundle -- and the result is still exact."""
    abota("-c", dev.conf, "install", pair["2"]["bundle"])
    # forget that B holds v2, and make A unreadable
    shutil.rmtree(os.path.join(dev.base, "data"))
    with open(os.path.join(dev.bl, "primary"), "w") as f:
        f.write("A\n")
    os.unlink(os.path.join(dev.slots, "rootfs-a"))
    p = abota("-c", dev.conf, "install", pair["2"]["bundle"], env={"ABOTA_LOG": "info"})
    assert "active slot rootfs.0 not readable" in p.stderr
    s = stats(p.stderr)
    assert s["target"] + s["zero"] > s["blocks"] * 0.9, s
    assert slot_matches(dev, "rootfs-b", pair["2"]["rootfs"])


def test_adaptive_install_resumes_after_cut(dev, pair, tmp_path):
    log = str(tmp_path / "points.log")
    p = abota("-c", dev.conf, "install", pair["2"]["bundle"], check=False,
              env={"ABOTA_POWERCUT": "30", "ABOTA_POWERCUT_LOG": log})
    assert p.returncode == 137, p.stderr
    p = abota("-c", dev.conf, "install", pair["2"]["bundle"])
    assert "succeeded" in p.stdout
    assert slot_matches(dev, "rootfs-b", pair["2"]["rootfs"])



def kept(dev, slot):
    """{hash dir: {file: size}} of a slot's kept block indexes."""
    d = os.path.join(dev.base, "data", f"slot.{slot}")
    if not os.path.isdir(d):
        return {}
    return {h: {f: os.path.getsize(os.path.join(d, h, f)) for f in os.listdir(os.path.join(d, h))}
            for h in os.listdir(d)}


def indexed(stderr):
    """(slots indexed from a kept index, slots read) of the adaptive line."""
    line = next(l for l in stderr.splitlines() if "adaptive: rootfs.ext4:" in l)
    return int(line.split("kept index: ")[1].split(",")[0]), int(line.rsplit(" ", 1)[1])


def in_place(stderr):
    """Bytes the writer found in place in the target and did not write."""
    line = next(l for l in stderr.splitlines() if "adaptive: rootfs.ext4:" in l)
    return int(line.split(" bytes in place, not written")[0].rsplit(" ", 1)[1])


def sha256_of(path):
    return run("sha256sum", path).stdout.split()[0]


def test_kept_block_index_saves_reading_slots(dev, pair):
    """As RAUC, abota keeps the block index of what a slot holds in the data
    directory (slot.<class>.<idx>/hash-<sha256>/block-hash-index[-64]); an
    update whose slots both have one reads neither to index it, and a slot
    changed behind abota's back fails the sample check and is read."""
    v1, v2 = pair["1"], pair["2"]
    s1, s2 = sha256_of(v1["rootfs"]), sha256_of(v2["rootfs"])
    nblocks = os.path.getsize(v2["rootfs"]) // 4096
    info = {"ABOTA_LOG": "info"}
    # 1. A holds v1 from the factory (no status): both slots read; B then
    # holds v2 and keeps the bundle's compact index
    p = abota("-c", dev.conf, "install", v2["bundle"], env=info)
    assert indexed(p.stderr) == (0, 2)
    assert in_place(p.stderr) == 0  # B held nothing of v2
    assert kept(dev, "rootfs.1") == {f"hash-{s2}": {"block-hash-index-64": nblocks * 8}}
    assert kept(dev, "rootfs.0") == {}
    # 2. running B, v1 goes to A: B's index is kept, A (no status) is read
    boot_b = ["-c", dev.conf, "--override-boot-slot=B"]
    p = abota(*boot_b, "install", "--ignore-version-limit", v1["bundle"], env=info)
    assert indexed(p.stderr) == (1, 1), p.stderr
    assert kept(dev, "rootfs.0") == {f"hash-{s1}": {"block-hash-index-64": nblocks * 8}}
    assert slot_matches(dev, "rootfs-a", v1["rootfs"])
    # 3. running A, v2 to B again: neither slot is read, the result is exact
    p = abota("-c", dev.conf, "install", v2["bundle"], env=info)
    assert indexed(p.stderr) == (2, 0), p.stderr
    s = stats(p.stderr)
    # (B still holds v2: every block is local, nothing read from the bundle)
    assert s["stale"] == 0 and s["bundle"] == 0, s
    assert s["active"] + s["target"] + s["zero"] == s["blocks"], s
    # ... and the blocks B holds at their place are not written again (only
    # those in a squashfs block that also has zero blocks, made up, are)
    assert in_place(p.stderr) > 0.9 * s["target"] * 4096, (in_place(p.stderr), s)
    assert slot_matches(dev, "rootfs-b", v2["rootfs"])
    # 4. B wiped behind abota's back (a reflash): its kept index fails the
    # sample and B is read; the new content's index replaces nothing else
    with open(os.path.join(dev.slots, "rootfs-b"), "r+b") as f:
        f.write(b"\0" * os.path.getsize(v2["rootfs"]))
    p = abota("-c", dev.conf, "install", v2["bundle"], env=info)
    assert "kept block index of slot rootfs.1 does not match what it holds" in p.stderr
    assert indexed(p.stderr) == (1, 1), p.stderr
    assert stats(p.stderr)["stale"] == 0
    assert slot_matches(dev, "rootfs-b", v2["rootfs"])
    # 5. a torn or foreign file (wrong length) is not used; RAUC's own form
    # (32-byte SHA-256 per block, same place) is
    idx = os.path.join(dev.base, "data", "slot.rootfs.0", f"hash-{s1}")
    with open(os.path.join(idx, "block-hash-index-64"), "r+b") as f:
        f.truncate(nblocks * 8 - 8)
    p = abota("-c", dev.conf, "install", v2["bundle"], env=info)
    assert indexed(p.stderr) == (1, 1), p.stderr
    os.unlink(os.path.join(idx, "block-hash-index-64"))
    x = os.path.join(dev.base, "x")
    abota("--keyring", dev_keyring(dev), "extract", v1["bundle"], x)
    shutil.copy(os.path.join(x, "rootfs.ext4.block-hash-index"),
                os.path.join(idx, "block-hash-index"))
    p = abota("-c", dev.conf, "install", v2["bundle"], env=info)
    assert indexed(p.stderr) == (2, 0), p.stderr
    assert slot_matches(dev, "rootfs-b", v2["rootfs"])
    assert slot_matches(dev, "rootfs-a", v1["rootfs"])


def dev_keyring(dev):
    conf = open(dev.conf).read()
    return conf.split("[keyring]\npath=")[1].split("\n")[0]
