"""Fixtures of the QEMU boot test: the artifacts every scenario shares (built once per
session) and a fresh disk per test.

ABOTA_BUILD selects the build-machine build (abota bundle, abota-sim create),
ABOTA_CROSS_BUILD the arm64 cross build whose abota runs in the guest (make cross),
ABOTA_CACHE the download cache (default ~/.cache/abota)."""
import fcntl
import json
import os
import shutil
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "e2e"))

import qemuimg  # noqa: E402
from qemuimg import run  # noqa: E402
from qemuvm import VM  # noqa: E402
from pki import PKI  # noqa: E402

BUILD = os.environ.get("ABOTA_BUILD", os.path.join(SRCDIR, "build"))
CROSS_BUILD = os.environ.get("ABOTA_CROSS_BUILD", os.path.join(SRCDIR, "build-arm64"))
HOST_ABOTA = os.path.join(BUILD, "src", "abota", "abota")
HOST_SIM = os.path.join(BUILD, "src", "abota-sim", "abota-sim")
GUEST_ABOTA = os.path.join(CROSS_BUILD, "src", "abota", "abota")

BOOTFS_MIB = 48
ROOTFS_MIB = 8


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (skipped in the ASan pass)")


def _require():
    missing = [p for p in (HOST_ABOTA, HOST_SIM, GUEST_ABOTA, qemuimg.UBOOT_BIN)
               if not os.path.exists(p)]
    for tool in ("qemu-system-aarch64", "mkimage", "mkenvimage", "mkfs.vfat", "mcopy",
                 "aarch64-linux-gnu-readelf", "dpkg-deb", "sfdisk"):
        if not shutil.which(tool):
            missing.append(tool)
    if missing:
        pytest.fail("QEMU test prerequisites missing: " + ", ".join(missing) +
                    " (make cross; scripts/install-deps.sh)")


class World:
    """Everything the scenarios share: kernel, initramfs versions, bank images, bundles,
    boot partitions of both variants."""

    def __init__(self, d):
        t0 = time.monotonic()
        self.dir = d
        self.pki = PKI(os.path.join(d, "pki"))
        self.cert, self.key = self.pki.signer
        self.image, _, self.kernel_release = qemuimg.kernel()
        base = qemuimg.base_initramfs(GUEST_ABOTA, self.pki.keyring)
        self.bootfs, self.rootfs, self.bundles = {}, {}, {}
        for version, panic in (("1.0", False), ("2.0", False), ("3.0-panics", True)):
            initrd = os.path.join(d, f"initrd-{version}.img")
            with open(initrd, "wb") as f:
                f.write(qemuimg.version_overlay(version, panic) + base)
            self.bootfs[version] = qemuimg.vfat_image(
                os.path.join(d, f"bootfs-{version}.vfat"), BOOTFS_MIB,
                {"Image": self.image, "initrd.img": initrd,
                 "VERSION": f"{version}\n".encode()}, "BOOTFS")
            self.rootfs[version] = qemuimg.ext4_image(
                os.path.join(d, f"rootfs-{version}.ext4"), ROOTFS_MIB,
                {"etc/os-release": f"NAME=abota-qemu\nVERSION={version}\n".encode(),
                 "usr/share/abota-qemu/payload": os.urandom(1 << 20)})
        for version in ("2.0", "3.0-panics"):
            self.bundles[version] = self.bundle(version)
        self.data = qemuimg.ext4_image(
            os.path.join(d, "data.ext4"), 96,
            {f"update-{v}.raucb": p for v, p in self.bundles.items()}, "data")
        self.pflash = qemuimg.pflash_env(os.path.join(d, "pflash1.img"))
        self.boot = {}
        env = qemuimg.uboot_env(os.path.join(d, "uboot.env"),
                                {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "0"})
        for variant in ("uboot", "fwu"):
            src = os.path.join(HERE, f"boot-{variant}.cmd")
            if not os.path.exists(src):
                continue
            scr = qemuimg.boot_script(src, os.path.join(d, f"boot-{variant}.scr"))
            self.boot[variant] = qemuimg.vfat_image(
                os.path.join(d, f"boot-{variant}.vfat"), 16,
                {"boot.scr": scr, "uboot.env": env}, "BOOT")
        self.build_seconds = time.monotonic() - t0

    def bundle(self, version):
        content = os.path.join(self.dir, f"content-{version}")
        os.makedirs(content, exist_ok=True)
        shutil.copyfile(self.bootfs[version], os.path.join(content, "bootfs.vfat"))
        shutil.copyfile(self.rootfs[version], os.path.join(content, "rootfs.ext4"))
        with open(os.path.join(content, "manifest.raucm"), "w") as f:
            f.write(f"[update]\ncompatible={qemuimg.COMPATIBLE}\nversion={version}\n"
                    f"description=QEMU test bundle {version}\n\n"
                    "[image.bootfs]\nfilename=bootfs.vfat\n\n"
                    "[image.rootfs]\nfilename=rootfs.ext4\n")
        out = os.path.join(self.dir, f"update-{version}.raucb")
        run(HOST_ABOTA, "bundle", "--cert", self.cert, "--key", self.key, content, out)
        shutil.rmtree(content)
        return out


class SharedWorld:
    """The artifacts of a World another test worker built (paths only)."""

    def __init__(self, d):
        with open(os.path.join(d, "world.json")) as f:
            self.__dict__.update(json.load(f))


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Built once per run: with pytest-xdist the first worker builds it under the run's
    common base directory and the others wait for it (flock) and reuse it."""
    _require()
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return World(str(tmp_path_factory.mktemp("qemu-world")))
    root = tmp_path_factory.getbasetemp().parent
    d = os.path.join(root, "qemu-world")
    with open(os.path.join(root, "qemu-world.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(d, "world.json")):
            os.makedirs(d, exist_ok=True)
            w = World(d)
            keep = ("bootfs", "rootfs", "bundles", "data", "pflash", "boot", "image",
                    "kernel_release", "build_seconds")
            with open(os.path.join(d, "world.json.tmp"), "w") as f:
                json.dump({k: getattr(w, k) for k in keep}, f)
            os.rename(os.path.join(d, "world.json.tmp"), os.path.join(d, "world.json"))
    return SharedWorld(d)


class Machine:
    """A fresh board: disk made by abota-sim create from board.conf, bank A = 1.0."""

    def __init__(self, world, d, variant):
        self.world, self.dir, self.variant = world, d, variant
        self.disk = qemuimg.Disk(HOST_SIM, d)
        self.disk.write("boot", world.boot[variant])
        self.disk.write("bootfs-a", world.bootfs["1.0"])
        self.disk.write("rootfs-a", world.rootfs["1.0"])
        self.disk.write("data", world.data)
        self.log = os.path.join(d, "console.log")
        self.vm = None

    def power_on(self):
        self.vm = VM(self.disk.path, self.log, pflash=self.world.pflash)
        return self.vm

    def env(self):
        """The U-Boot environment file as the host's fw_printenv sees it."""
        raw = self.disk.vfat_get("boot", "uboot.env")
        assert raw is not None, "uboot.env missing on the boot partition"
        p = os.path.join(self.dir, "uboot.env.host")
        with open(p, "wb") as f:
            f.write(raw)
        cfg = p + ".config"
        with open(cfg, "w") as f:
            f.write(f"{p} 0x0 {hex(qemuimg.ENV_SIZE)}\n")
        out = run("fw_printenv", "-c", cfg).decode()
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def close(self):
        if self.vm:
            self.vm.close()


@pytest.fixture
def machine(world, tmp_path, request):
    variant = getattr(request, "param", "uboot")
    m = Machine(world, str(tmp_path), variant)
    yield m
    m.close()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(f"console log: {m.log}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
