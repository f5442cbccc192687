"""Trusting a bundle: exclusive access to plain bundles (RAUC's CVE-2020-25860
fix: writers, FUSE, foreign owners, user-owned block devices), the order
"signature first, then any parser", fail-closed keyrings, several trust
anchors, crypt bundles, and installs that must write nothing.  Each test
names the security case (specs/security-cases.md) it checks."""
import contextlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile

import pytest

import bundlecraft as bc
from conftest import abota, abota_fails, make_content, run
from pki import CA
from test_install import Device, variant_bundle


@pytest.fixture(scope="module")
def bundles(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("trust")
    content = make_content(str(d / "content"), rootfs_kib=2048)
    out = {"content": content, "dir": d}
    for fmt in ("plain", "verity"):
        b = d / f"{fmt}.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], f"--format={fmt}",
              content, b)
        out[fmt] = str(b)
    return out


def fresh_copy(src, dst):
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return str(dst)


def untouched(dev):
    """Nothing was written: slots zero, no boot switch, no state change."""
    assert dev.slot_bytes("rootfs-b", 4096) == b"\0" * 4096
    assert dev.slot_bytes("fip-b", 4096) == b"\0" * 4096
    assert not any(c.startswith("set-") for c in dev.calls()), dev.calls()


# --- exclusive access to plain bundles (section 2.2) ---


def test_bundle_formats_not_allowed(pki, bundles, tmp_path):
    """SC-23: a bundle whose format is not in the system's bundle-formats is refused ("bundle format 'plain' not allowed") before anything is written; the allowed format installs."""
    dev = Device(str(tmp_path / "dev"), pki, extra_system="bundle-formats=-plain\n")
    abota_fails("-c", dev.conf, "install", bundles["plain"],
                match="bundle format 'plain' not allowed")
    untouched(dev)
    abota("-c", dev.conf, "install", bundles["verity"])
    dev2 = Device(str(tmp_path / "dev2"), pki, extra_system="bundle-formats=plain\n")
    abota_fails("-c", dev2.conf, "install", bundles["verity"],
                match="bundle format 'verity' not allowed")
    untouched(dev2)


def test_plain_bundle_open_for_writing(pki, bundles, tmp_path):
    """SC-31: while another process holds a writable file descriptor on a plain bundle, info and install refuse it (a read lease, F_SETLEASE, is refused with EAGAIN) and nothing is written; once it is closed the bundle is accepted.  A verity bundle is accepted even then: every block read is checked against the signed hash tree."""
    b = fresh_copy(bundles["plain"], tmp_path / "p.raucb")
    v = fresh_copy(bundles["verity"], tmp_path / "v.raucb")
    dev = Device(str(tmp_path / "dev"), pki)
    writer = subprocess.Popen(["/usr/bin/python3", "-c",
                               "import sys; f = open(sys.argv[1], 'r+b'); "
                               "g = open(sys.argv[2], 'r+b'); print('open', flush=True); "
                               "sys.stdin.read()", b, v],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        abota_fails("info", "--keyring", pki.keyring, b,
                    match="unsafe bundle: another process has it open for writing")
        abota_fails("-c", dev.conf, "install", b,
                    match="another process has it open for writing")
        untouched(dev)
        abota("info", "--keyring", pki.keyring, v)
    finally:
        writer.stdin.close()
        writer.wait(timeout=10)
    abota("info", "--keyring", pki.keyring, b)
    abota("-c", dev.conf, "install", b)


@contextlib.contextmanager
def fuse_mirror(src, mnt):
    """src mirrored at mnt through FUSE (bindfs)."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine (the f_type decision is unit-tested in test_bundle.c)")
    os.makedirs(mnt)
    run("bindfs", src, mnt)
    try:
        yield mnt
    finally:
        run("fusermount", "-u", mnt, check=False)


def test_plain_bundle_on_fuse(pki, bundles, tmp_path):
    """SC-32: a plain bundle on FUSE (here bindfs) is refused, by install too, with nothing written; the same verity bundle on FUSE is accepted, since every read of it is authenticated."""
    src = tmp_path / "src"
    src.mkdir()
    fresh_copy(bundles["plain"], src / "p.raucb")
    fresh_copy(bundles["verity"], src / "v.raucb")
    dev = Device(str(tmp_path / "dev"), pki)
    with fuse_mirror(str(src), str(tmp_path / "mnt")) as mnt:
        assert os.statvfs(mnt)  # mounted
        abota_fails("info", "--keyring", pki.keyring, f"{mnt}/p.raucb",
                    match="unsafe bundle: stored on FUSE")
        abota_fails("-c", dev.conf, "install", f"{mnt}/p.raucb", match="stored on FUSE")
        untouched(dev)
        abota("info", "--keyring", pki.keyring, f"{mnt}/v.raucb")
        abota("extract", "--keyring", pki.keyring, f"{mnt}/v.raucb", tmp_path / "x")
    # the same plain bundle outside FUSE is fine
    abota("info", "--keyring", pki.keyring, str(src / "p.raucb"))


def test_plain_bundle_foreign_owner_mode_0666(pki, bundles, tmp_path):
    """SC-33: a plain bundle owned by an unprivileged user with mode 0666 is taken over, as RAUC does: chown to root, write bits of group and others dropped (0644), then verified and installed."""
    if os.geteuid() != 0:
        pytest.skip("taking ownership needs root")
    b = fresh_copy(bundles["plain"], tmp_path / "p.raucb")
    os.chown(b, 65534, 65534)
    os.chmod(b, 0o666)
    dev = Device(str(tmp_path / "dev"), pki)
    abota("-c", dev.conf, "install", b)
    st = os.stat(b)
    assert st.st_uid == 0
    assert stat.S_IMODE(st.st_mode) == 0o644
    # a group-writable bundle of root's: the write bit goes, the rest stays
    os.chmod(b, 0o775)
    p = abota("info", "--keyring", pki.keyring, b, env={"ABOTA_LOG": "info"})
    assert "permissions changed from 0775 to 0644" in p.stderr
    assert stat.S_IMODE(os.stat(b).st_mode) == 0o644


@contextlib.contextmanager
def loop_mount(tmp_path):
    """A fresh ext4 file system on a loop device, mounted."""
    img = tmp_path / "fs.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    run("mkfs.ext4", "-q", "-F", img)
    loop = run("losetup", "--find", "--show", img).stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        run("mount", loop, mnt)
        try:
            yield loop, str(mnt)
        finally:
            run("umount", mnt, check=False)
    finally:
        os.chown(loop, 0, os.stat(loop).st_gid)
        run("losetup", "-d", loop, check=False)


def test_plain_bundle_on_user_owned_block_device(pki, bundles, tmp_path):
    """SC-34: a plain bundle on a file system whose block device (a loop device) is owned by an unprivileged user is refused -- that user could rewrite the file under the kernel -- with nothing written; owned by root again, it is accepted; a verity bundle there is accepted."""
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no loop devices on this machine")
    dev = Device(str(tmp_path / "dev"), pki)
    with loop_mount(tmp_path) as (loop, mnt):
        p = fresh_copy(bundles["plain"], f"{mnt}/p.raucb")
        v = fresh_copy(bundles["verity"], f"{mnt}/v.raucb")
        abota("info", "--keyring", pki.keyring, p)
        os.chown(loop, 65534, os.stat(loop).st_gid)
        abota_fails("info", "--keyring", pki.keyring, p,
                    match=f"unsafe bundle: its file system's device {loop} is owned by uid 65534, not root")
        abota_fails("-c", dev.conf, "install", p, match="is owned by uid 65534")
        untouched(dev)
        abota("info", "--keyring", pki.keyring, v)
        os.chown(loop, 0, os.stat(loop).st_gid)
        abota("info", "--keyring", pki.keyring, p)


CORRUPTER = """#!/usr/bin/python3
# pre-install handler: runs after the bundle was verified, before any slot
# is written; flips a byte in every 4 KiB block of the bundle's payload
import os
path = {path!r}
with open(path, "r+b") as f:
    data = bytearray(f.read())
    sig = int.from_bytes(data[-8:], "big")
    for off in range(100, len(data) - 8 - sig, 4096):
        data[off] ^= 0x5A
    f.seek(0)
    f.write(data)
"""


@pytest.mark.parametrize("fmt", ["plain", "verity"])
def test_bundle_changed_during_install(pki, bundles, tmp_path, fmt):
    """SC-36: the bundle's image data change after verification, before the slot is written (a pre-install handler rewrites the file): the write fails ("bundle changed after its signature was verified" for plain, a dm-verity mismatch for verity), the slot's status is 'failed' and it is not activated."""
    b = fresh_copy(bundles[fmt], tmp_path / f"{fmt}.raucb")
    dev = Device(str(tmp_path / "dev"), pki)
    with open(os.path.join(dev.bl, "pre-install"), "w") as f:
        f.write(CORRUPTER.format(path=b))
    p = abota_fails("-c", dev.conf, "install", b)
    if fmt == "plain":
        assert "bundle changed after its signature was verified" in p.stderr, p.stderr
    else:
        assert "bundle payload is corrupted (verity check failed" in p.stderr, p.stderr
    assert open(b, "rb").read() != open(bundles[fmt], "rb").read()
    st = dev.status()
    assert re.search(r"\[slot\.rootfs\.1\][^\[]*status=failed", st), st
    assert "status=ok" not in st, st
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "A"
    assert not any(c.startswith("set-primary") for c in dev.calls()), dev.calls()


def test_plain_payload_over_2gib(pki, bundles, tmp_path):
    """SC-40: a plain bundle with a payload over 2 GiB (a sparse file, nothing written to disk) is refused before hashing (RAUC >= 1.15.2, CVE-2026-34155)."""
    payload, cms = bc.split(bundles["plain"])
    big = tmp_path / "big.raucb"
    size = (2 << 30) + 4096
    with open(big, "wb") as f:
        f.write(payload[:4096])
        f.truncate(size)
        f.seek(size)
        f.write(cms)
        f.write(len(cms).to_bytes(8, "big"))
    assert os.stat(big).st_blocks * 512 < 1 << 20, "the test file must stay sparse"
    abota_fails("info", "--keyring", pki.keyring, big,
                match="plain bundle payload of 2147487744 bytes is larger than 2 GiB")


# --- names, metadata ---


@pytest.mark.parametrize("name,make,match", [
    ("abs-symlink", lambda d: os.symlink("/etc/passwd", os.path.join(d, "abs")),
     "symlinks to a path containing '/' are not allowed"),
    ("slash-symlink", lambda d: os.symlink("../etc/x", os.path.join(d, "rel")),
     "symlinks to a path containing '/' are not allowed"),
    ("hidden-dir", lambda d: os.makedirs(os.path.join(d, ".git", "objects")),
     "hidden top-level directories are not allowed"),
    ("fifo", lambda d: os.mkfifo(os.path.join(d, "pipe")), "only regular files"),
])
def test_content_rules_on_create(pki, tmp_path, name, make, match):
    """SC-52: bundle content with a symlink whose target has a '/', a hidden top-level directory or a non-regular file is refused by abota bundle (RAUC's content rules); no output file appears."""
    c = make_content(str(tmp_path / "c"), rootfs_kib=2048)
    make(c)
    out = tmp_path / "o.raucb"
    abota_fails("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, out, match=match)
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_content_rules_on_extract(pki, tmp_path):
    """SC-52: a validly signed bundle made by another tool that carries a symlink to a path with '/', a hidden top-level directory or a character device is refused by abota extract, which leaves nothing behind; a symlink to a name in the same directory is fine."""
    fip = bytes(range(256)) * 16
    import hashlib
    manifest = ("[update]\ncompatible=abota-test\nversion=1\n\n[bundle]\nformat=plain\n\n"
                f"[image.bootloader]\nsha256={hashlib.sha256(fip).hexdigest()}\n"
                f"size={len(fip)}\nfilename=fip.img\n")
    cases = {
        "symlink": (lambda w: os.symlink("/etc/shadow", w / "evil"), [],
                    "evil: symlink to a path containing '/' in bundle refused"),
        "hidden": (lambda w: os.makedirs(w / ".hidden"), [],
                   ".hidden: hidden top-level directory in bundle refused"),
        "chardev": (lambda w: None, ["-p", "null c 644 0 0 1 3"],
                    "null: device, FIFO or socket in bundle refused"),
        "ok": (lambda w: os.symlink("fip.img", w / "alias"), [], None),
    }
    for name, (make, extra, match) in cases.items():
        work = tmp_path / f"w-{name}"
        work.mkdir()
        (work / "manifest.raucm").write_text(manifest)
        (work / "fip.img").write_bytes(fip)
        make(work)
        sq = tmp_path / f"{name}.sqfs"
        run("mksquashfs", work, sq, "-noappend", "-all-root", "-no-xattrs", "-quiet",
            "-no-progress", *extra)
        img = sq.read_bytes()
        payload = img + b"\0" * ((-len(img)) % 4096)
        sig = bc.sign(str(tmp_path), pki.signer[0], pki.signer[1], payload, detached=True)
        b = bc.assemble(tmp_path / f"{name}.raucb", payload, sig)
        target = tmp_path / f"x-{name}"
        if match is None:
            abota("extract", "--keyring", pki.keyring, b, target)
            assert os.readlink(target / "alias") == "fip.img"
            continue
        abota_fails("extract", "--keyring", pki.keyring, b, target, match=match)
        assert not target.exists()
        assert not [f for f in os.listdir(tmp_path) if f.startswith(f"x-{name}")]


def test_tar_image_never_writes_outside_the_slot(pki, tmp_path):
    """SC-53: a tar image with member names '..', absolute, overlong and a
    symlink-then-write-through pair: extraction never leaves the slot's file system.
    GNU tar skips the member with '..', strips the leading '/' of the absolute one (it
    lands inside the slot), keeps the symlink a placeholder until the end, so the write
    through it fails, and its errors fail the slot: status failed, no boot switch,
    nothing written outside."""
    c = make_content(str(tmp_path / "c"), rootfs_kib=2048)
    escape = tmp_path / "escaped"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        def add(name, data=b"x", **kw):
            ti = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(ti, k, v)
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
        add("../../../../" + str(escape).lstrip("/"))
        add(str(escape) + "-abs")
        add("n" * 300)
        add("link", type=tarfile.SYMTYPE, linkname=str(tmp_path))
        add("link/escaped-through-link")
    with open(os.path.join(c, "rootfs.tar"), "wb") as f:
        f.write(buf.getvalue())
    m = open(os.path.join(c, "manifest.raucm")).read()
    open(os.path.join(c, "manifest.raucm"), "w").write(
        m.replace("filename=rootfs.ext4", "filename=rootfs.tar"))
    os.unlink(os.path.join(c, "rootfs.ext4"))
    b = tmp_path / "tar.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, b)
    dev = Device(str(tmp_path / "dev"), pki)
    abota_fails("-c", dev.conf, "install", b, match="slot rootfs.1: tar failed with exit code 2")
    assert not os.path.exists(escape)
    assert not os.path.exists(str(escape) + "-abs")
    assert not os.path.exists(tmp_path / "escaped-through-link")
    assert "set-primary B" not in dev.calls()
    assert "status=failed" in dev.status().split("[slot.rootfs.1]")[1].split("\n[")[0]
    # the absolute name, stripped, is inside the slot's new file system; the '..' one
    # nowhere
    slot = os.path.join(dev.slots, "rootfs-b")
    inside = str(escape).lstrip("/")
    assert run("debugfs", "-R", f"cat /{inside}-abs", slot).stdout == "x"
    assert "File not found" in run("debugfs", "-R", f"stat /{inside}", slot).stderr
    assert not os.path.exists(tmp_path / "escaped-through-link")


def test_compatible_trailing_spaces(pki, tmp_path):
    """SC-63: a bundle for 'abota-test   ' (trailing spaces) does not match the system's 'abota-test': the comparison is byte-exact, the install is refused before anything is written."""
    c = make_content(str(tmp_path / "c"), compatible="abota-test   ", rootfs_kib=2048)
    b = tmp_path / "b.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, b)
    info = abota("info", "--keyring", pki.keyring, "--output-format=json", b).stdout
    assert '"compatible":"abota-test   "' in info.replace(" : ", ":").replace(": ", ":"), info
    dev = Device(str(tmp_path / "dev"), pki)
    abota_fails("-c", dev.conf, "install", b, match="compatible mismatch")
    untouched(dev)


# --- signature first (section 2.6) ---


def debug_run(*args):
    return abota(*args, check=False, env={"ABOTA_LOG": "debug"})


PARSERS = ("parsing the manifest", "squashfs: parsing")


def test_signature_error_before_any_parser(pki, bundles, tmp_path):
    """SC-70: bad signature + malformed manifest (verity) or malformed squashfs (plain): the error reported is the signature error, and the debug log shows that no manifest or squashfs parser ran.  For a good bundle the same log shows the signature check first, then the parsers."""
    good = debug_run("info", "--keyring", pki.keyring, bundles["verity"])
    assert good.returncode == 0, good.stderr
    lines = good.stderr.splitlines()
    first = next(i for i, l in enumerate(lines) if "signature verified" in l)
    assert any(PARSERS[0] in l for l in lines[first:]), good.stderr
    assert any(PARSERS[1] in l for l in lines[first:]), good.stderr
    garbage_manifest = b"[update\x00\xff garbage\ncompatible\n" * 20
    garbage_squashfs = b"hsqs" + os.urandom(8188)
    payload, _ = bc.split(bundles["verity"])
    cases = {
        # a signer outside the keyring over a malformed manifest
        "verity-stranger": (payload, bc.sign(str(tmp_path), pki.stranger[0], pki.stranger[1],
                                             garbage_manifest, detached=False),
                            "unable to get local issuer certificate"),
        # a malformed squashfs, detached signature by a stranger
        "plain-stranger": (garbage_squashfs, bc.sign(str(tmp_path), pki.stranger[0],
                                                      pki.stranger[1], garbage_squashfs,
                                                      detached=True),
                           "unable to get local issuer certificate"),
        # a trusted signer, but the signature is over other bytes (the last byte
        # flipped: a fixed replacement matched the random byte one time in 256)
        "plain-mismatch": (garbage_squashfs,
                           bc.sign(str(tmp_path), pki.signer[0], pki.signer[1],
                                   garbage_squashfs[:-1] + bytes([garbage_squashfs[-1] ^ 1]),
                                   detached=True),
                           "CMS verification failed"),
    }
    for name, (pl, cms, msg) in cases.items():
        f = bc.assemble(tmp_path / f"{name}.raucb", pl, cms)
        p = debug_run("info", "--keyring", pki.keyring, f)
        assert p.returncode != 0, name
        assert msg in p.stderr, (name, p.stderr)
        for parser in PARSERS:
            assert parser not in p.stderr, (name, p.stderr)
        assert "signature verified" not in p.stderr


HOOK = """#!/bin/sh
# install-check hook: leaves a mark when run
echo "$1" >> {marker}
exit 0
"""


@pytest.mark.parametrize("fmt", ["verity", "plain"])
def test_install_check_hook_not_run_with_bad_signature(pki, tmp_path, fmt):
    """SC-71: a bundle with an install-check hook whose signature is invalid (signed outside the keyring) is refused and its hook never runs; the same bundle validly signed runs the hook (so the mark would show)."""
    marker = tmp_path / "hook-ran"
    c = make_content(str(tmp_path / "c"), rootfs_kib=2048)
    with open(os.path.join(c, "hook.sh"), "w") as f:
        f.write(HOOK.format(marker=marker))
    os.chmod(os.path.join(c, "hook.sh"), 0o755)
    m = open(os.path.join(c, "manifest.raucm")).read()
    m = m.replace("[image.rootfs]", "[hooks]\nfilename=hook.sh\nhooks=install-check\n\n[image.rootfs]")
    open(os.path.join(c, "manifest.raucm"), "w").write(m)
    bad = tmp_path / "bad.raucb"
    abota("bundle", "--cert", pki.stranger[0], "--key", pki.stranger[1], f"--format={fmt}", c, bad)
    dev = Device(str(tmp_path / "dev"), pki)
    abota_fails("-c", dev.conf, "install", bad, match="unable to get local issuer certificate")
    assert not marker.exists(), "install-check hook ran for an unverified bundle"
    untouched(dev)
    # flipping a payload byte of a validly signed plain bundle: same
    if fmt == "plain":
        good = tmp_path / "good.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], "--format=plain", c,
              good)
        data = bytearray(open(good, "rb").read())
        data[5000] ^= 1
        flipped = tmp_path / "flipped.raucb"
        flipped.write_bytes(bytes(data))
        abota_fails("-c", dev.conf, "install", flipped, match="CMS verification failed")
        assert not marker.exists()
        untouched(dev)
    good = tmp_path / "good2.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], f"--format={fmt}", c, good)
    abota("-c", dev.conf, "install", good)
    assert marker.read_text() == "install-check\n"


def test_missing_image_file_nothing_written(pki, bundles, tmp_path):
    """SC-73: a validly signed manifest naming an image file that is not in the bundle is refused when the bundle is opened -- before anything is written."""
    payload, cms = bc.split(bundles["verity"])
    manifest = bc.cms_content(cms, str(tmp_path)).decode()
    new = manifest.replace("filename=fip.img", "filename=nothere.img")
    assert new != manifest
    sig = bc.sign(str(tmp_path), pki.signer[0], pki.signer[1], new.encode(), detached=False)
    b = bc.assemble(tmp_path / "missing.raucb", payload, sig)
    dev = Device(str(tmp_path / "dev"), pki)
    abota_fails("-c", dev.conf, "install", b,
                match="image 'nothere.img' (slot class bootloader) is missing from the bundle")
    untouched(dev)
    assert "status=" not in dev.status()


def uncompressed_plain_bundle(pki, tmp_path, files):
    """A plain bundle whose squashfs stores every file uncompressed, so
    each file's bytes can be found in the payload."""
    work = tmp_path / "sq"
    work.mkdir()
    for name, data in files.items():
        (work / name).write_bytes(data)
        os.chmod(work / name, 0o755)
    sq = tmp_path / "p.sqfs"
    run("mksquashfs", work, sq, "-noappend", "-all-root", "-no-xattrs", "-noI", "-noD", "-noF",
        "-no-fragments", "-quiet", "-no-progress")
    img = sq.read_bytes()
    payload = img + b"\0" * ((-len(img)) % 4096)
    sig = bc.sign(str(tmp_path), pki.signer[0], pki.signer[1], payload, detached=True)
    return payload, sig


def test_flip_each_byte_of_hook_and_handler(pki, tmp_path):
    """SC-75: each byte of a plain bundle's hook script and handler, flipped one at a time, makes the bundle be refused (the detached signature covers every payload byte); the unmodified bundle is accepted.  (Every byte of the inline-signed manifest of a verity bundle: test_bundle.c test_flip_each_manifest_byte; verity payload bytes: SC-18/SC-19.)"""
    hook = b"#!/bin/sh\nexit 0 # hook\n"
    handler = b"#!/bin/sh\nexit 0 # handler\n"
    fip = bytes(range(256)) * 16
    import hashlib
    manifest = ("[update]\ncompatible=abota-test\nversion=1\n\n[bundle]\nformat=plain\n\n"
                "[hooks]\nfilename=hook.sh\nhooks=install-check;\n\n"
                "[handler]\nfilename=handler.sh\n\n"
                f"[image.bootloader]\nsha256={hashlib.sha256(fip).hexdigest()}\n"
                f"size={len(fip)}\nfilename=fip.img\n").encode()
    payload, sig = uncompressed_plain_bundle(pki, tmp_path, {
        "manifest.raucm": manifest, "hook.sh": hook, "handler.sh": handler, "fip.img": fip})
    b = bc.assemble(tmp_path / "ok.raucb", payload, sig)
    abota("info", "--keyring", pki.keyring, b)
    flipped = tmp_path / "flipped.raucb"
    n = 0
    for blob in (hook, handler):
        pos = payload.find(blob)
        assert pos >= 0 and payload.find(blob, pos + 1) < 0
        for i in range(len(blob)):
            data = bytearray(payload)
            data[pos + i] ^= 0x20
            bc.assemble(flipped, bytes(data), sig)
            abota_fails("info", "--keyring", pki.keyring, flipped, match="CMS verification failed")
            n += 1
    assert n == len(hook) + len(handler)


# --- keyrings and trust anchors ---


def test_no_empty_or_unreadable_keyring(pki, bundles, tmp_path):
    """SC-76: no keyring configured, an empty keyring, a keyring that cannot be read (missing, a directory, not PEM): nothing installs, nothing is written (fail closed)."""
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(os.urandom(300))
    cases = {
        "none": None,
        "empty": str(empty),
        "missing": str(tmp_path / "missing.pem"),
        "directory": str(tmp_path),
        "garbage": str(garbage),
    }
    for name, path in cases.items():
        dev = Device(str(tmp_path / f"dev-{name}"), pki)
        conf = open(dev.conf).read()
        assert f"path={pki.keyring}\n" in conf
        conf = conf.replace(f"[keyring]\npath={pki.keyring}\n",
                            "" if path is None else f"[keyring]\npath={path}\n")
        open(dev.conf, "w").write(conf)
        for fmt in ("verity", "plain"):
            p = abota_fails("-c", dev.conf, "install", bundles[fmt])
            assert "keyring" in p.stderr.lower(), (name, p.stderr)
        untouched(dev)


def test_compatible_mismatch(pki, tmp_path):
    """SC-106 (compatible): a bundle for another compatible is refused before anything is written."""
    dev = Device(str(tmp_path / "dev"), pki)
    other = make_content(str(tmp_path / "other"), compatible="someone-else", rootfs_kib=2048)
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], other, tmp_path / "o.raucb")
    abota_fails("-c", dev.conf, "install", tmp_path / "o.raucb",
                match="compatible mismatch: bundle is for 'someone-else'")
    untouched(dev)


def test_variant_mismatch_is_install_error(pki, tmp_path):
    """SC-106 (variant): a bundle whose only rootfs image is for another variant is an install error, nothing written; an image for the system's variant installs."""
    dev = Device(str(tmp_path / "dev"), pki, extra_system="variant-name=board-a\n")
    for variant, ok in (("board-a", True), ("board-b", False)):
        b = variant_bundle(pki, tmp_path, variant)
        if ok:
            abota("-c", dev.conf, "install", b)
            dev = Device(str(tmp_path / "dev2"), pki, extra_system="variant-name=board-a\n")
        else:
            abota_fails("-c", dev.conf, "install", b,
                        match="no image for slot class 'rootfs' matches the system variant 'board-a'")
            untouched(dev)


def test_two_anchors_one_revoked(pki, tmp_path):
    """SC-107: a keyring with two trust anchors (two CAs under an offline root, CRLs for all three, check-crl): bundles signed under either anchor are accepted; after the root revokes one anchor, bundles under it are refused ("certificate revoked") and those under the other still accepted."""
    base = str(tmp_path / "pki")
    os.makedirs(base)
    root = CA(base, "offline-root")
    anchors = [CA(base, f"anchor-{i}", parent=root) for i in (1, 2)]
    bundles = []
    content = make_content(str(tmp_path / "c"), rootfs_kib=2048)
    for i, a in enumerate(anchors):
        cert, key = a.issue(f"release-signer-{i + 1}")
        b = tmp_path / f"under-anchor-{i + 1}.raucb"
        abota("bundle", "--cert", cert, "--key", key, "--intermediate", a.cert, content, b)
        bundles.append(str(b))

    def keyring(name):
        k = tmp_path / name
        with open(k, "w") as f:
            f.write(open(root.cert).read())
            for ca in [root] + anchors:
                f.write(open(ca.crl(os.path.join(base, f"{name}-{os.path.basename(ca.dir)}.crl"))).read())
        return str(k)

    before = keyring("before.pem")
    for b in bundles:
        abota("info", "--keyring", before, "--check-crl", b)
    root.revoke(anchors[1].cert)
    after = keyring("after.pem")
    abota("info", "--keyring", after, "--check-crl", bundles[0])
    abota_fails("info", "--keyring", after, "--check-crl", bundles[1],
                match="certificate revoked")
    # and through install with [keyring] check-crl=true
    dev = Device(str(tmp_path / "dev"), pki)
    conf = open(dev.conf).read().replace(f"[keyring]\npath={pki.keyring}\n",
                                         f"[keyring]\npath={after}\ncheck-crl=true\n")
    open(dev.conf, "w").write(conf)
    abota_fails("-c", dev.conf, "install", bundles[1], match="certificate revoked")
    untouched(dev)
    abota("-c", dev.conf, "install", bundles[0])


def test_encrypted_crypt_bundle_fails_closed(pki, tmp_path):
    """SC-108: a real crypt bundle (made with rauc bundle + rauc encrypt) for a recipient whose key abota does not have: refused with a clear message, nothing written."""
    if not shutil.which("rauc"):
        pytest.fail("rauc is needed (scripts/install-deps.sh installs it)")
    c = make_content(str(tmp_path / "c"), rootfs_kib=2048, fmt="crypt")
    plain_crypt = tmp_path / "crypt-unencrypted.raucb"
    run("rauc", "bundle", "--cert", pki.signer[0], "--key", pki.signer[1], c, plain_crypt)
    rk, rc = tmp_path / "recipient.key", tmp_path / "recipient.pem"
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", rk, "-out", rc,
        "-subj", "/CN=recipient", "-days", "30")
    enc = tmp_path / "crypt.raucb"
    run("rauc", "encrypt", "--keyring", pki.keyring, "--to", rc, plain_crypt, enc)
    dev = Device(str(tmp_path / "dev"), pki)
    abota_fails("-c", dev.conf, "install", enc,
                match="the bundle is encrypted (crypt format, CMS EnvelopedData)")
    untouched(dev)
    abota_fails("info", "--keyring", pki.keyring, enc, match="cannot decrypt crypt bundles")
