"""Bundles: abota reads RAUC's, RAUC reads abota's (real rauc 1.8, openssl,
veritysetup, unsquashfs from Debian)."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import abota, abota_fails, fixture_system_conf, make_content, run, sha256_file

FIXTURE_IMAGES = {
    "rootfs.ext4": "9b0a2133ed27521dc0b815266bf4c6e1503866e8f9d75408a8757e237450e6f9",
    "fip.img": "7831d6ad8def664e6e4e9719f8c9eb2516ebc815f86b581a830f88c8658f0065",
}


@pytest.mark.parametrize("name", ["sample-plain.raucb", "sample-verity.raucb"])
def test_fixture_info_and_extract(fixtures, tmp_path, name):
    bundle = os.path.join(fixtures, name)
    ca = os.path.join(fixtures, "ca.cert.pem")
    p = abota("info", "--keyring", ca, "--output-format=json", bundle)
    info = json.loads(p.stdout)
    assert info["compatible"] == "example-stm32mp1-ota"
    assert info["version"] == "2026.11.1"
    assert info["signature"]["verified"] is True
    chain = info["signature"]["chain"]
    assert chain[0]["spki-sha256"].startswith("E3:23:28:8E")
    assert chain[1]["spki-sha256"].startswith("A0:AE:BD:B5")
    images = {list(i.keys())[0]: list(i.values())[0] for i in info["images"]}
    assert images["rootfs"]["checksum"] == FIXTURE_IMAGES["rootfs.ext4"]
    assert images["bootloader"]["size"] == 8192
    if "verity" in name:
        assert info["format"] == "verity"
        assert info["hash"] == "8b5b2ed3550537dd81d9306f00f6f664317d54d14e79dc69fb89cde6bc52b681"
        assert info["bundle"]["verity-size"] == 4096
    else:
        assert info["format"] == "plain"
    out = tmp_path / "x"
    abota("extract", "--keyring", ca, bundle, out)
    for f, digest in FIXTURE_IMAGES.items():
        assert sha256_file(out / f) == digest
    assert (out / "manifest.raucm").exists()
    if "verity" in name:
        assert (out / "rootfs.ext4.block-hash-index").stat().st_size == 2048


def test_fixture_global_keyring_option(fixtures):
    bundle = os.path.join(fixtures, "sample-verity.raucb")
    ca = os.path.join(fixtures, "ca.cert.pem")
    p = abota("--keyring", ca, "info", bundle)
    assert "Compatible: \t'example-stm32mp1-ota'" in p.stdout
    assert "Manifest Hash:\t'8b5b2ed3" in p.stdout


def test_info_extract_resign_take_trust_from_system_conf(fixtures, pki, tmp_path):
    """As `rauc -c system.conf info` does (checked here with real rauc), the verbs that only
    read a bundle take [keyring] and bundle-formats from system.conf: without --keyring the
    config's keyring is trusted, its policy flags apply (allowed-signer-cns), a --keyring
    replaces the keyring file and keeps those flags, and -C overrides work too."""
    plain = os.path.join(fixtures, "sample-plain.raucb")
    verity = os.path.join(fixtures, "sample-verity.raucb")
    ca = os.path.join(fixtures, "ca.cert.pem")
    conf = fixture_system_conf(tmp_path, ca, f"data-directory={tmp_path}/data\n")
    r = run("rauc", "-c", conf, "info", plain)
    assert "Compatible: \t'example-stm32mp1-ota'" in r.stdout
    p = abota("-c", conf, "info", plain)
    assert "Compatible: \t'example-stm32mp1-ota'" in p.stdout
    abota("-c", conf, "extract", verity, tmp_path / "x")
    assert (tmp_path / "x" / "manifest.raucm").exists()
    # the new signature must verify: with --signing-keyring, as with rauc (else the config's)
    abota("-c", conf, "resign", "--cert", pki.signer[0], "--key", pki.signer[1],
          f"--signing-keyring={pki.keyring}", plain, tmp_path / "re.raucb")
    abota("info", "--keyring", pki.keyring, tmp_path / "re.raucb")
    # the config's keyring is the only trust: the resigned bundle is not under it
    abota_fails("-c", conf, "info", tmp_path / "re.raucb", match="unable to get local issuer")
    # bundle-formats applies as for an install
    abota_fails("-c", conf, "-C", "system:bundle-formats=verity", "info", plain,
                match="bundle format 'plain' not allowed")
    abota("-c", conf, "-C", "system:bundle-formats=verity", "info", verity)
    # policy flags stay with --keyring: allowed-signer-cns from the config still applies
    conf.write_text(conf.read_text().replace(f"path={ca}\n",
                                             f"path={ca}\nallowed-signer-cns=nobody-we-know\n"))
    abota_fails("-c", conf, "info", plain, match="signer")
    abota_fails("-c", conf, "--keyring", pki.keyring, "info", tmp_path / "re.raucb",
                match="signer")
    # an invalid system.conf named with -c is an error, not ignored
    bad = tmp_path / "bad.conf"
    bad.write_text("[system]\ncompatible=x\nbootloader=noop\nfoo=bar\n")
    abota_fails("-c", bad, "info", "--keyring", ca, plain, match="foo")


@pytest.mark.parametrize("name", ["sample-plain.raucb", "sample-verity.raucb"])
def test_fixture_rejected_with_other_keyring(fixtures, pki, name):
    bundle = os.path.join(fixtures, name)
    abota_fails("info", "--keyring", pki.keyring, bundle, match="unable to get local issuer")
    abota_fails("info", bundle, match="no keyring configured")


def test_fixture_shell_output(fixtures):
    bundle = os.path.join(fixtures, "sample-plain.raucb")
    ca = os.path.join(fixtures, "ca.cert.pem")
    p = abota("info", "--keyring", ca, "--output-format=shell", bundle)
    env = run("sh", "-c", p.stdout + "\necho \"$RAUC_MF_COMPATIBLE|$RAUC_IMAGE_CLASS_0|"
              "$RAUC_IMAGE_SIZE_1|$RAUC_MF_FORMAT\"").stdout.strip()
    assert env == "example-stm32mp1-ota|rootfs|8192|plain"


def rauc_bundle(pki, content, out, fmt):
    """Builds a bundle with the real rauc (1.8 rewrites the content dir: copy it)."""
    work = str(out) + ".content"
    shutil.copytree(content, work)
    run("rauc", "bundle", f"--cert={pki.signer[0]}", f"--key={pki.signer[1]}",
        f"--keyring={pki.keyring}", work, out)
    return out


@pytest.mark.parametrize("fmt", ["plain", "verity"])
def test_rauc_made_bundle(pki, tmp_path, fmt):
    content = make_content(str(tmp_path / "content"), fmt=fmt, adaptive=(fmt == "verity"))
    bundle = rauc_bundle(pki, content, tmp_path / "b.raucb", fmt)
    info = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                            bundle).stdout)
    assert info["format"] == fmt
    out = tmp_path / "x"
    abota("extract", "--keyring", pki.keyring, bundle, out)
    for f in ("rootfs.ext4", "fip.img"):
        assert sha256_file(out / f) == sha256_file(os.path.join(content, f))


def veritysetup_verify(bundle, info):
    size = os.path.getsize(bundle)
    with open(bundle, "rb") as f:
        f.seek(size - 8)
        s = int.from_bytes(f.read(8), "big")
    payload = size - 8 - s
    d = payload - info["bundle"]["verity-size"]
    run("veritysetup", "verify", "--no-superblock", "--format=1", "--hash=sha256",
        "--data-block-size=4096", "--hash-block-size=4096", f"--data-blocks={d // 4096}",
        f"--hash-offset={d}", f"--salt={info['bundle']['verity-salt']}", bundle, bundle,
        info["bundle"]["verity-hash"])


@pytest.mark.parametrize("fmt", ["verity", "plain"])
@pytest.mark.parametrize("comp", ["zstd", "xz", "gzip", "lz4"])
def test_abota_made_bundle_accepted_by_rauc(pki, tmp_path, fmt, comp):
    content = make_content(str(tmp_path / "content"), adaptive=(fmt == "verity"))
    bundle = tmp_path / "b.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], f"--format={fmt}",
          f"--compression={comp}", content, bundle)
    p = run("rauc", "info", f"--keyring={pki.keyring}", "--output-format=json", bundle)
    rinfo = json.loads(p.stdout)
    assert rinfo["compatible"] == "abota-test"
    images = {list(i.keys())[0]: list(i.values())[0] for i in rinfo["images"]}
    assert images["rootfs"]["checksum"] == sha256_file(os.path.join(content, "rootfs.ext4"))
    info = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                            bundle).stdout)
    assert info["format"] == fmt
    if fmt == "verity":
        veritysetup_verify(str(bundle), info)
        # rauc extract re-checks the verity tree in user space
        run("rauc", "extract", f"--keyring={pki.keyring}", bundle, tmp_path / "rx")
        assert sha256_file(tmp_path / "rx" / "rootfs.ext4") == \
            sha256_file(os.path.join(content, "rootfs.ext4"))
    out = tmp_path / "x"
    abota("extract", "--keyring", pki.keyring, bundle, out)
    for f in ("rootfs.ext4", "fip.img"):
        assert sha256_file(out / f) == sha256_file(os.path.join(content, f))
    # the kernel and unsquashfs read our squashfs
    run("unsquashfs", "-l", "-o", "0", bundle)


def test_bundle_with_intermediate(pki, tmp_path):
    """SC-14: a keyring holding only the intermediate is refused without allow-partial-chain and accepted with it."""
    content = make_content(str(tmp_path / "content"))
    bundle = tmp_path / "b.raucb"
    abota("bundle", "--cert", pki.chained[0], "--key", pki.chained[1], "--intermediate",
          pki.inter.cert, content, bundle)
    info = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                            bundle).stdout)
    assert len(info["signature"]["chain"]) == 3
    run("rauc", "info", f"--keyring={pki.keyring}", bundle)
    # the intermediate alone is not a trust anchor ...
    abota_fails("info", "--keyring", pki.inter_keyring, bundle)
    # ... unless partial chains are allowed (RAUC's allow-partial-chain)
    abota("info", "--keyring", pki.inter_keyring, "--allow-partial-chain", bundle)


def test_bundle_without_intermediate_needs_one_at_verify(pki, tmp_path):
    content = make_content(str(tmp_path / "content"))
    bundle = tmp_path / "b.raucb"
    abota("bundle", "--cert", pki.chained[0], "--key", pki.chained[1], content, bundle)
    abota_fails("info", "--keyring", pki.keyring, bundle, match="unable to get local issuer")
    abota("info", "--keyring", pki.keyring, "--intermediate", pki.inter.cert, bundle)


def test_resign(pki, tmp_path, fixtures):
    for fmt in ("verity", "plain"):
        content = make_content(str(tmp_path / f"content-{fmt}"))
        bundle = tmp_path / f"b-{fmt}.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], f"--format={fmt}",
              content, bundle)
        out = tmp_path / f"resigned-{fmt}.raucb"
        abota("resign", "--keyring", pki.keyring, "--cert", pki.stranger[0], "--key",
              pki.stranger[1], f"--signing-keyring={pki.other_keyring}", bundle, out)
        abota_fails("info", "--keyring", pki.keyring, out)
        a = json.loads(abota("info", "--keyring", pki.other_keyring, "--output-format=json",
                             out).stdout)
        b = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                             bundle).stdout)
        assert a["hash"] == b["hash"]
        run("rauc", "info", f"--keyring={pki.other_keyring}", out)
    # the RAUC fixture re-signed with our key
    out = tmp_path / "fixture-resigned.raucb"
    abota("resign", "--keyring", os.path.join(fixtures, "ca.cert.pem"), "--cert", pki.signer[0],
          "--key", pki.signer[1], f"--signing-keyring={pki.keyring}",
          os.path.join(fixtures, "sample-verity.raucb"), out)
    run("rauc", "info", f"--keyring={pki.keyring}", out)


def test_rauc_installs_abota_plain_bundle(pki, tmp_path):
    """A plain abota bundle installs with the real `rauc install` into file-backed
    slots (private dbus-daemon, rauc service, noop bootloader)."""
    content = make_content(str(tmp_path / "content"), compatible="abota-test")
    bundle = tmp_path / "b.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], "--format=plain",
          content, bundle)
    slots = tmp_path / "slots"
    slots.mkdir()
    for name in ("rootfs-a", "rootfs-b"):
        with open(slots / name, "wb") as f:
            f.truncate(16 << 20)
    for name in ("fip-a", "fip-b"):
        with open(slots / name, "wb") as f:
            f.truncate(1 << 20)
    (tmp_path / "data").mkdir()
    conf = tmp_path / "system.conf"
    conf.write_text(f"""[system]
compatible=abota-test
bootloader=noop
data-directory={tmp_path}/data
mountprefix={tmp_path}/mnt

[keyring]
path={pki.keyring}

[slot.rootfs.0]
device={slots}/rootfs-a
type=ext4
bootname=A

[slot.rootfs.1]
device={slots}/rootfs-b
type=ext4
bootname=B

[slot.bootloader.0]
device={slots}/fip-a
type=raw
parent=rootfs.0

[slot.bootloader.1]
device={slots}/fip-b
type=raw
parent=rootfs.1
""")
    (tmp_path / "mnt").mkdir()
    dbus_conf = tmp_path / "session.conf"
    dbus_conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={tmp_path}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
    daemon = subprocess.Popen(["dbus-daemon", f"--config-file={dbus_conf}", "--nofork",
                               "--print-address"], stdout=subprocess.PIPE, text=True)
    addr = daemon.stdout.readline().strip()
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr, DBUS_SESSION_BUS_ADDRESS=addr)
    service = subprocess.Popen(["rauc", "service", f"--conf={conf}", "--override-boot-slot=A"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        import time
        for _ in range(100):
            p = subprocess.run(["rauc", "status"], env=env, capture_output=True, text=True)
            if p.returncode == 0:
                break
            time.sleep(0.1)
        p = subprocess.run(["rauc", "install", str(bundle)], env=env, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        with open(slots / "rootfs-b", "rb") as f:
            data = f.read(os.path.getsize(os.path.join(content, "rootfs.ext4")))
        import hashlib
        assert hashlib.sha256(data).hexdigest() == sha256_file(os.path.join(content,
                                                                            "rootfs.ext4"))
        with open(slots / "fip-b", "rb") as f:
            fip = f.read(os.path.getsize(os.path.join(content, "fip.img")))
        assert fip == open(os.path.join(content, "fip.img"), "rb").read()
        status = (tmp_path / "data" / "central.raucs").read_text()
        assert "[slot.rootfs.1]" in status and "status=ok" in status
    finally:
        service.terminate()
        service.wait(timeout=10)
        daemon.terminate()
        daemon.wait(timeout=10)


def test_tiny_verity_bundle_is_padded(pki, tmp_path):
    """A bundle whose squashfs fits in one 4 KiB block (tiny, well
    compressing images): the payload is padded to two blocks, as RAUC needs
    more than one verity data block; rauc and abota both verify it."""
    c = tmp_path / "c"
    c.mkdir()
    (c / "fip.img").write_bytes(b"\0" * 65536)
    (c / "manifest.raucm").write_text(
        "[update]\ncompatible=abota-test\nversion=1\n\n[image.bootloader]\nfilename=fip.img\n")
    b = tmp_path / "tiny.raucb"
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], str(c), str(b))
    # two 4 KiB data blocks + one hash tree block + CMS + trailer
    assert os.path.getsize(b) > 3 * 4096
    run("rauc", "info", f"--keyring={pki.keyring}", str(b))
    abota("--keyring", pki.keyring, "extract", str(b), str(tmp_path / "x"))
    assert (tmp_path / "x" / "fip.img").read_bytes() == b"\0" * 65536
