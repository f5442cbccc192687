#!/usr/bin/env python3
"""Benchmark: a streamed install (http:// URL, nginx on 127.0.0.1) of a
~100 MiB verity bundle (one raw image of random bytes) into a file-backed
slot, as root.  Since the streaming sandbox (sandbox_source.h) the HTTP
client runs in a child as [streaming] sandbox-user; give a second build
directory (--base, e.g. one built from before the sandbox) to time both,
alternating, in one run.

    bench/stream.py BUILD_DIR [--base OTHER_BUILD_DIR] [--runs N] [--out FILE]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import WORK, make_signer, report, sh

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "e2e"))
from httpservers import Nginx  # noqa: E402

SIZE = 100 << 20


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("build")
    ap.add_argument("--base")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    builds = [("this build", a.build)] + ([("base", a.base)] if a.base else [])
    os.makedirs(WORK, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="abota-sbench-", dir=WORK)
    ngx = None
    try:
        cert, key = make_signer(tmp)
        content = os.path.join(tmp, "content")
        os.makedirs(content)
        with open(os.path.join(content, "image.bin"), "wb") as f:
            f.write(os.urandom(SIZE))
        with open(os.path.join(content, "manifest.raucm"), "w") as f:
            f.write("[update]\ncompatible=bench\nversion=1\n\n"
                    "[image.rootfs]\nfilename=image.bin\n")
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        abota = os.path.join(a.build, "src", "abota", "abota")
        sh(abota, "bundle", "--cert", cert, "--key", key, content,
           os.path.join(www, "b.raucb"))
        ngx = Nginx(os.path.join(tmp, "nginx"), www)
        slots = os.path.join(tmp, "slots")
        os.makedirs(slots)
        for n in ("a", "b"):
            sh("fallocate", "-l", str(SIZE + (8 << 20)), os.path.join(slots, n))
        conf = os.path.join(tmp, "system.conf")
        with open(conf, "w") as f:
            f.write(f"""[system]
compatible=bench
bootloader=noop
data-directory={tmp}/data

[keyring]
path={cert}

[slot.rootfs.0]
device={slots}/a
type=raw
bootname=A

[slot.rootfs.1]
device={slots}/b
type=raw
bootname=B
""")
        times = {name: [] for name, _ in builds}
        for _ in range(a.runs):
            for name, b in builds:
                exe = os.path.join(b, "src", "abota", "abota")
                t = time.monotonic()
                p = subprocess.run([exe, "-c", conf, "--override-boot-slot=A", "install",
                                    ngx.url("b.raucb")], capture_output=True, text=True)
                dt = time.monotonic() - t
                if p.returncode != 0:
                    raise RuntimeError(f"{exe} failed: {p.stdout}{p.stderr}")
                times[name].append(dt)
        size = os.path.getsize(os.path.join(www, "b.raucb"))
        lines = [f"Streamed install of a {size / (1 << 20):.1f} MiB bundle over http://127.0.0.1 "
                 f"(nginx), as root, median of {a.runs}:", "",
                 "| build | median s | runs |", "|---|---|---|"]
        for name, b in builds:
            ts = times[name]
            lines.append(f"| {name} ({b}) | {statistics.median(ts):.2f} | "
                         + " ".join(f"{t:.2f}" for t in ts) + " |")
        report("\n".join(lines), a.out)
    finally:
        if ngx:
            ngx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
