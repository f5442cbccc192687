#!/usr/bin/env python3
"""Benchmark (issue #5): how long an interrupted 512 MiB install takes to
finish after a power cut at 90% of its rootfs writes, against a full install
(what starting over costs), in one run.

The cut is powercut.h's fault injection (ABOTA_POWERCUT=N: the process loses
"power" at write point N, exits 137, nothing after it reaches the slot); the
point is the rootfs write at 90% of a reference run's write-point log.  The
resumed install is the same `abota install` command run again.  Page cache
dropped before every timed run.

    bench/resume.py BUILD_DIR [--runs N] [--out FILE]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (WORK, content_dir, drop_caches, make_signer, parse_args, report,
                      rootfs_image, sh, write_system_conf)


def run(args, env=None, expect=0):
    e = dict(os.environ)
    e.update(env or {})
    t = time.monotonic()
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=e)
    dt = time.monotonic() - t
    if p.returncode != expect:
        raise RuntimeError(f"{args}: exit {p.returncode}, expected {expect}: {p.stderr}")
    return dt, p


def main():
    a = parse_args(__doc__)
    image = rootfs_image()
    tmp = tempfile.mkdtemp(prefix="abota-rbench-", dir=WORK)
    try:
        cert, key = make_signer(tmp)
        content = content_dir(os.path.join(tmp, "content"), image,
                              "[update]\ncompatible=bench\nversion=1\n\n[image.rootfs]\n"
                              "filename=rootfs.ext4\n")
        bundle = os.path.join(tmp, "b.raucb")
        sh(a.abota, "bundle", "--cert", cert, "--key", key, content, bundle)
        slots = os.path.join(tmp, "slots")
        os.makedirs(slots)
        for n in ("a", "b"):
            sh("fallocate", "-l", str(600 << 20), os.path.join(slots, n))
        data = os.path.join(tmp, "data")
        conf = os.path.join(tmp, "system.conf")
        write_system_conf(conf, data, cert, f"{slots}/a", f"{slots}/b")
        install = [a.abota, "-c", conf, "--override-boot-slot=A", "install", bundle]
        log = os.path.join(tmp, "points.log")
        run(install, env={"ABOTA_POWERCUT_LOG": log})
        writes = [l.split() for l in open(log)]
        rootfs = [int(w[0]) for w in writes if w[1] == "write" and w[2] == "rootfs.1"]
        cut = rootfs[int(len(rootfs) * 0.9)]
        res = {"full": [], "resumed": []}
        resumed_bytes = 0
        for i in range(a.runs):
            drop_caches()
            dt, _ = run(install)
            res["full"].append(dt)
            run(install, env={"ABOTA_POWERCUT": str(cut)}, expect=137)
            drop_caches()
            dt, p = run(install)
            res["resumed"].append(dt)
            resumed_bytes = int(p.stdout.split("resumed after an interruption, ")[1].split()[0])
            print(f"run {i + 1}: full {res['full'][-1]:.2f} s, resumed {dt:.2f} s",
                  file=sys.stderr)
        med = {k: statistics.median(v) for k, v in res.items()}
        size = os.path.getsize(image)
        text = "\n".join([
            "| what | median wall time |",
            "|---|---|",
            f"| full install of the 512 MiB rootfs (= starting over after a cut) | {med['full']:.2f} s |",
            f"| resumed install after a cut at 90% of the rootfs writes | {med['resumed']:.2f} s |",
            "",
            f"Ratio resumed / full: **{med['resumed'] / med['full']:.3f}** (target <= 0.2); "
            f"the resumed run kept {resumed_bytes / 1048576:.0f} MiB of {size / 1048576:.0f} MiB "
            f"({100 * resumed_bytes / size:.0f}%) ({a.runs} runs, abota's default bundle, "
            "page cache dropped before each timed run, slot = preallocated file).",
        ])
        report(text, a.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
