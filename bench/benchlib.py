"""Shared pieces of the benchmark scripts: running commands, the arguments
every benchmark takes, the 512 MiB rootfs image, and a throw-away signer."""
import argparse
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")


def sh(*args, env=None):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True,
                          env=env)


def parse_args(doc):
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    a.abota = os.path.join(a.build, "src", "abota", "abota")
    return a


def rootfs_image():
    """The benchmark image, made once by mkrootfs.sh and kept in bench/work."""
    os.makedirs(WORK, exist_ok=True)
    image = os.path.join(WORK, "rootfs-v1.ext4")
    if not os.path.exists(image):
        sh("sh", os.path.join(HERE, "mkrootfs.sh"), image)
    return image


def make_signer(d):
    """A self-signed EC signer (it is its own keyring); returns (cert, key)."""
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=bench")
    return cert, key


def drop_caches():
    """Writes dirty pages and drops the page cache (root), so every timed
    run reads from the medium."""
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def write_system_conf(path, data_dir, keyring, slot_a, slot_b, extra=""):
    """An A/B system.conf with two file-backed ext4 slots and the noop
    bootloader (the benchmarks run with --override-boot-slot=A)."""
    with open(path, "w") as f:
        f.write(f"""[system]
compatible=bench
bootloader=noop
data-directory={data_dir}
{extra}
[keyring]
path={keyring}

[slot.rootfs.0]
device={slot_a}
type=ext4
bootname=A

[slot.rootfs.1]
device={slot_b}
type=ext4
bootname=B
""")


def report(text, out=None):
    """Prints a result (markdown) and writes it to OUT for docs/benchmarks.md
    and bench/plot.py."""
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


def content_dir(path, image, manifest):
    """A bundle content directory: the image (hard-linked, no copy) and a
    manifest."""
    os.makedirs(path)
    os.link(image, os.path.join(path, "rootfs.ext4"))
    with open(os.path.join(path, "manifest.raucm"), "w") as f:
        f.write(manifest)
    return path
