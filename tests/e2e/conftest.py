"""Shared fixtures of the end-to-end tests: the built binaries, a test PKI,
bundle content directories, and helpers to run commands."""
import hashlib
import os
import shutil
import subprocess

import pytest

from pki import PKI

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("ABOTA_BUILD", os.path.join(SRCDIR, "build"))
FIXTURES = os.environ.get("ABOTA_FIXTURES",
                          os.path.join(os.path.dirname(SRCDIR), "shared", "fixtures"))
ABOTA = os.path.join(BUILD, "src", "abota", "abota")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (skipped in the ASan pass)")


def run(*args, check=True, env=None, input=None):
    """Runs a command, returns CompletedProcess with text output."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=e,
                       input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\nstdout: {p.stdout}\n"
                             f"stderr: {p.stderr}")
    return p


def abota(*args, check=True, env=None):
    return run(ABOTA, *args, check=check, env=env)


def abota_fails(*args, match=None):
    """Runs abota expecting failure: non-zero exit, one clear error line."""
    p = abota(*args, check=False)
    assert p.returncode != 0, f"expected failure: {args}\n{p.stdout}"
    err_lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert err_lines, "no error message"
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    if match:
        assert match in p.stderr, f"{match!r} not in stderr: {p.stderr}"
    return p


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))


def fixture_system_conf(tmp_path, keyring, extra_system=""):
    """A system.conf for the RAUC fixtures' compatible, trusting keyring: enough for
    info/extract/resign and the global options (noop bootloader, one file slot)."""
    conf = tmp_path / "system.conf"
    conf.write_text(f"""[system]
compatible=example-stm32mp1-ota
bootloader=noop
{extra_system}
[keyring]
path={keyring}

[slot.rootfs.0]
device={tmp_path}/a
type=ext4
bootname=A
""")
    return conf


@pytest.fixture(scope="session")
def fixtures():
    d = os.path.join(FIXTURES, "rauc")
    if not os.path.isdir(d):
        pytest.fail(f"RAUC fixtures not found in {d}")
    return d


def make_ext4(path, size_kib, files):
    """A real ext4 image made with mkfs.ext4 -d from a generated tree."""
    tree = str(path) + ".tree"
    os.makedirs(tree, exist_ok=True)
    for name, data in files.items():
        p = os.path.join(tree, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    with open(path, "wb") as f:
        f.truncate(size_kib * 1024)
    run("mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "rootfs", "-E", "root_owner=0:0",
        "-d", tree, path)
    shutil.rmtree(tree)


def make_content(d, compatible="abota-test", version="1.0", adaptive=False, fmt=None,
                 extra_manifest="", rootfs_kib=8192):
    """A content directory: ext4 rootfs, raw fip blob, manifest."""
    os.makedirs(d, exist_ok=True)
    make_ext4(os.path.join(d, "rootfs.ext4"), rootfs_kib,
              {"etc/os-release": f"VERSION={version}\n".encode(),
               "usr/bin/tool": os.urandom(300_000),
               "usr/share/doc": b"hello\n" * 50000})
    with open(os.path.join(d, "fip.img"), "wb") as f:
        f.write(b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(1000)))
    m = f"[update]\ncompatible={compatible}\nversion={version}\n" \
        f"description=test bundle\nbuild=20261125\n\n"
    if fmt:
        m += f"[bundle]\nformat={fmt}\n\n"
    m += "[image.rootfs]\nfilename=rootfs.ext4\n"
    if adaptive:
        m += "adaptive=block-hash-index\n"
    m += "\n[image.bootloader]\nfilename=fip.img\n" + extra_manifest
    with open(os.path.join(d, "manifest.raucm"), "w") as f:
        f.write(m)
    return d
