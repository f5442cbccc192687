"""Builds what the QEMU test boots: Debian's arm64 kernel and busybox (downloaded once
into the cache), an initramfs with the cross-built abota and its shared libraries, the
bootfs/rootfs images of each version, signed bundles, and the GPT disk image (made by
`abota-sim create` from board.conf, then filled).

Nothing here needs root, a loop device or a mount: file systems are made as files with
mkfs.vfat/mtools and mkfs.ext4 -d and copied into the disk image at the partition's
offset; the initramfs is a newc cpio written by this module.
"""
import contextlib
import fcntl
import glob
import json
import os
import re
import shutil
import stat
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
UBOOT_BIN = "/usr/lib/u-boot/qemu_arm64/u-boot.bin"
ARM64_LIBDIRS = ["/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu"]
# modules the guest loads, in this order (Debian builds these as modules)
MODULES = ["virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk",
           "fat", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859-1",
           "crc16", "crc32c_generic", "mbcache", "jbd2", "ext4"]
COMPATIBLE = "abota-qemu-arm64"
# mtools: partitions inside a disk image have no DOS boot-sector geometry to check
os.environ.setdefault("MTOOLS_SKIP_CHECK", "1")
ENV_SIZE = 0x4000


class BuildError(Exception):
    pass


def run(*args, cwd=None, input=None):
    p = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, input=input)
    if p.returncode != 0:
        raise BuildError(f"{' '.join(map(str, args))} failed ({p.returncode}): "
                         f"{p.stderr.decode(errors='replace').strip()}")
    return p.stdout


def cache_dir():
    d = os.environ.get("ABOTA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                      "abota")
    os.makedirs(d, exist_ok=True)
    return d


@contextlib.contextmanager
def cache_lock():
    """Serialises downloads and extraction between parallel test workers."""
    with open(os.path.join(cache_dir(), ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------- Debian arm64 packages

def _download(pattern, resolve):
    """The newest cached .deb matching pattern, else `apt-get download` of resolve()."""
    debs = os.path.join(cache_dir(), "debs")
    os.makedirs(debs, exist_ok=True)
    hits = sorted(glob.glob(os.path.join(debs, pattern)))
    if hits:
        return hits[-1]
    name = resolve()
    # apt-get download writes into the current directory
    run("apt-get", "download", "-q", name, cwd=debs)
    hits = sorted(glob.glob(os.path.join(debs, pattern)))
    if not hits:
        raise BuildError(f"apt-get download {name}: no {pattern} in {debs}")
    return hits[-1]


def _kernel_package():
    # linux-image-arm64 is the meta package; it depends on the current ABI's image
    out = run("apt-cache", "depends", "linux-image-arm64:arm64").decode()
    m = re.search(r"Depends: (linux-image-[0-9][^\s:]*-arm64)", out)
    if not m:
        raise BuildError("cannot resolve linux-image-arm64:arm64 (dpkg --add-architecture "
                         f"arm64 && apt-get update?):\n{out}")
    return m.group(1) + ":arm64"


def kernel():
    """(Image path, {module: path}, kernel release), extracted once per kernel .deb."""
    with cache_lock():
        return _kernel()


def _kernel():
    deb = _download("linux-image-*-arm64_*_arm64.deb", _kernel_package)
    out = os.path.join(cache_dir(), "kernel", os.path.basename(deb)[:-4])
    done = os.path.join(out, ".done")
    marker = " ".join(MODULES)
    if not os.path.exists(done) or open(done).read() != marker:
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        wanted = ["./boot/vmlinuz-*"] + [f"./lib/modules/*/{m}.ko" for m in MODULES]
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", out, "--wildcards", "--no-anchored", *wanted],
                       stdin=tar.stdout, check=True)
        if tar.wait() != 0:
            raise BuildError(f"dpkg-deb --fsys-tarfile {deb} failed")
        with open(done, "w") as f:
            f.write(marker)
    image = glob.glob(os.path.join(out, "boot", "vmlinuz-*"))
    if len(image) != 1:
        raise BuildError(f"{deb}: expected one /boot/vmlinuz-*, found {image}")
    mods = {}
    for m in MODULES:
        hit = glob.glob(os.path.join(out, "lib", "modules", "*", "**", f"{m}.ko"),
                        recursive=True)
        if len(hit) != 1:
            raise BuildError(f"{deb}: module {m}.ko not found")
        mods[m] = hit[0]
    release = os.path.basename(image[0])[len("vmlinuz-"):]
    return image[0], mods, release


def busybox():
    with cache_lock():
        return _busybox()


def _busybox():
    deb = _download("busybox-static_*_arm64.deb", lambda: "busybox-static:arm64")
    out = os.path.join(cache_dir(), "busybox", os.path.basename(deb)[:-4])
    path = os.path.join(out, "bin", "busybox")
    if not os.path.exists(path):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        run("dpkg-deb", "-x", deb, out)
    return path


# ---------------------------------------------------------------- initramfs

def elf_needed(path):
    out = run("aarch64-linux-gnu-readelf", "-d", "-l", path).decode()
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    interp = re.search(r"Requesting program interpreter: ([^\]]+)\]", out)
    return needed, interp.group(1) if interp else None


def shared_libs(binary):
    """{soname: host path} of every arm64 library binary needs (transitively), and the
    program interpreter.  The libraries come from the multiarch directories where the
    :arm64 -dev packages the cross build links against put them."""
    libs, todo, interp = {}, [binary], None
    while todo:
        needed, ip = elf_needed(todo.pop())
        interp = interp or ip
        for n in needed:
            if n in libs:
                continue
            for d in ARM64_LIBDIRS:
                c = os.path.join(d, n)
                if os.path.exists(c):
                    libs[n] = os.path.realpath(c)
                    todo.append(libs[n])
                    break
            else:
                raise BuildError(f"{binary}: arm64 library {n} not found in "
                                 f"{ARM64_LIBDIRS} (install its :arm64 package)")
    if not interp:
        raise BuildError(f"{binary}: not a dynamically linked arm64 program")
    return libs, interp


class Cpio:
    """A newc ("070701") cpio archive, as the kernel unpacks an initramfs."""

    def __init__(self):
        self.parts, self.ino, self.dirs = [], 1, set()

    def _entry(self, name, mode, data=b""):
        self.ino += 1
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        buf = hdr.encode() + name_b
        buf += b"\0" * (-len(buf) % 4) + data
        buf += b"\0" * (-len(buf) % 4)
        self.parts.append(buf)

    def dir(self, name):
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        self.dir(os.path.dirname(name))
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def raw(self):
        self._entry("TRAILER!!!", 0)
        data = b"".join(self.parts)
        return data + b"\0" * (-len(data) % 512)

    def lz4(self):
        """LZ4 legacy format (lz4 -l), the kernel's fastest initramfs decompressor: under
        TCG the 27 MB archive unpacks in ~0.2 s instead of ~0.6-1.4 s with gzip."""
        p = subprocess.run(["lz4", "-l", "-q", "-c"], input=self.raw(), capture_output=True)
        if p.returncode != 0 or not p.stdout:
            raise BuildError(f"lz4 -l failed: {p.stderr.decode(errors='replace')}")
        return p.stdout


def base_initramfs(abota_bin, ca_pem):
    """The part of the initramfs every version shares (lz4-compressed newc cpio)."""
    _, mods, _ = kernel()
    c = Cpio()
    for d in ("dev", "proc", "sys", "run", "tmp", "boot", "data", "etc/abota", "usr/sbin"):
        c.dir(d)
    c.file("init", open(os.path.join(HERE, "init.sh"), "rb").read(), 0o755)
    c.file("bin/busybox", open(busybox(), "rb").read(), 0o755)
    c.symlink("bin/sh", "busybox")
    for m, path in mods.items():
        c.file(f"lib/modules/{m}.ko", open(path, "rb").read())
    c.file("usr/bin/abota", open(abota_bin, "rb").read(), 0o755)
    libs, interp = shared_libs(abota_bin)
    c.file(interp, open(os.path.realpath(
        os.path.join(ARM64_LIBDIRS[0], os.path.basename(interp))), "rb").read(), 0o755)
    for soname, path in libs.items():
        if soname != os.path.basename(interp):
            c.file(f"lib/aarch64-linux-gnu/{soname}", open(path, "rb").read(), 0o755)
    c.file("etc/fw_env.config", open(os.path.join(HERE, "fw_env.config"), "rb").read())
    for v in ("uboot", "fwu"):
        p = os.path.join(HERE, f"system-{v}.conf")
        if os.path.exists(p):
            c.file(f"etc/abota/system-{v}.conf", open(p, "rb").read())
    c.file("etc/abota/ca.pem", open(ca_pem, "rb").read())
    c.file("etc/abota-qemu/qemu-board.conf",
           open(os.path.join(HERE, "board.conf"), "rb").read())
    return c.lz4()


def version_overlay(version, panic=False):
    """What differs between versions: an uncompressed cpio placed before the compressed
    base archive (the kernel unpacks both, like an early-microcode initramfs; an lz4
    legacy stream has no end marker, so nothing may follow it)."""
    c = Cpio()
    c.file("etc/abota-qemu/version", f"{version}\n".encode())
    if panic:
        c.file("etc/abota-qemu/panic", b"this image panics at boot\n")
    return c.raw()


# ---------------------------------------------------------------- file systems

def vfat_image(path, size_mib, files, label):
    """files: {name in the root: host path or bytes}."""
    if os.path.exists(path):
        os.unlink(path)
    run("mkfs.vfat", "-C", "-n", label, "-i", "0a0b0c0d", path, size_mib * 1024)
    tmp = path + ".d"
    os.makedirs(tmp, exist_ok=True)
    srcs = []
    for name, src in files.items():
        if isinstance(src, bytes):
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(src)
            src = p
        elif os.path.basename(src) != name:
            p = os.path.join(tmp, name)
            shutil.copyfile(src, p)
            src = p
        srcs.append(src)
    if srcs:
        run("mcopy", "-i", path, *srcs, "::")
    shutil.rmtree(tmp)
    return path


def ext4_image(path, size_mib, files, label="rootfs"):
    """files: {path: bytes or host path to copy}."""
    tree = path + ".tree"
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    for name, data in files.items():
        p = os.path.join(tree, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(data, bytes):
            with open(p, "wb") as f:
                f.write(data)
        else:
            shutil.copyfile(data, p)
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    run("mkfs.ext4", "-q", "-F", "-b", "4096", "-L", label, "-E", "root_owner=0:0",
        "-U", "6b1f6e44-5d41-4c2b-9a7e-3f1f0c2d4e5a", "-d", tree, path)
    shutil.rmtree(tree)
    return path


def uboot_env(path, variables):
    """A single-copy U-Boot environment file (CRC-32 + data), as U-Boot's `env export -c`
    and libubootenv write it."""
    txt = path + ".txt"
    with open(txt, "w") as f:
        for k, v in variables.items():
            f.write(f"{k}={v}\n")
    run("mkenvimage", "-s", hex(ENV_SIZE), "-o", path, txt)
    os.unlink(txt)
    return path


def pflash_env(path):
    """QEMU's second flash bank (U-Boot's env location on qemu_arm64) holding U-Boot's
    own default environment, taken from Debian's u-boot.bin, with bootdelay=0 instead of
    2: saves 2 s per boot; the binary itself is unchanged.  None if the default
    environment cannot be found (then U-Boot boots with its defaults and the delay)."""
    blob = open(UBOOT_BIN, "rb").read()
    start = blob.find(b"\0bootcmd=run distro_bootcmd\0bootdelay=")
    if start < 0:
        return None
    end = blob.find(b"\0\0", start + 1)
    env = [e for e in blob[start + 1:end].split(b"\0")]
    env = [b"bootdelay=0" if e.startswith(b"bootdelay=") else e for e in env]
    txt = path + ".txt"
    with open(txt, "wb") as f:
        f.write(b"\n".join(env) + b"\n")
    run("mkenvimage", "-s", "0x40000", "-o", path + ".env", txt)
    with open(path, "wb") as f:
        f.write(open(path + ".env", "rb").read())
        f.truncate(64 << 20)  # QEMU virt flash banks are 64 MiB
    os.unlink(txt)
    os.unlink(path + ".env")
    return path


def boot_script(src, out):
    run("mkimage", "-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n",
        "abota A/B", "-d", src, out)
    return out


# ---------------------------------------------------------------- the disk

class Disk:
    """The GPT disk image: layout and FWU metadata from `abota-sim create`."""

    def __init__(self, abota_sim, workdir, seed=1):
        self.dir = os.path.join(workdir, "sim")
        os.makedirs(workdir, exist_ok=True)
        run(abota_sim, "create", os.path.join(HERE, "board.conf"), self.dir,
            f"--seed={seed}", "--force")
        self.path = os.path.join(self.dir, "disk.img")
        table = json.loads(run("sfdisk", "-J", self.path))["partitiontable"]
        ss = table.get("sectorsize", 512)
        self.parts = {p["name"]: (p["start"] * ss, p["size"] * ss)
                      for p in table["partitions"]}
        self.index = {p["name"]: i + 1 for i, p in enumerate(table["partitions"])}

    def write(self, name, image):
        off, size = self.parts[name]
        data_size = os.path.getsize(image)
        if data_size > size:
            raise BuildError(f"{image} ({data_size} bytes) does not fit into {name}")
        with open(image, "rb") as src, open(self.path, "r+b") as dst:
            dst.seek(off)
            shutil.copyfileobj(src, dst, 1 << 20)

    def read(self, name, length=None):
        off, size = self.parts[name]
        with open(self.path, "rb") as f:
            f.seek(off)
            return f.read(size if length is None else length)

    def vfat_get(self, name, path):
        """A file from a vfat partition (mtools at the partition's offset)."""
        off, _ = self.parts[name]
        p = subprocess.run(["mtype", "-i", f"{self.path}@@{off}", f"::{path}"],
                           capture_output=True)
        return p.stdout if p.returncode == 0 else None

    def vfat_put(self, name, path, data):
        off, _ = self.parts[name]
        tmp = os.path.join(self.dir, ".put")
        with open(tmp, "wb") as f:
            f.write(data)
        run("mcopy", "-o", "-i", f"{self.path}@@{off}", tmp, f"::{path}")
        os.unlink(tmp)
