#!/usr/bin/env python3
"""Benchmark: `abota bundle` (defaults) against `rauc bundle` (its defaults:
mksquashfs gzip, 128 KiB blocks, all cores) on the same 512 MiB ext4 rootfs,
alternating, in the same run.  Prints a markdown table with the median wall
time of each, the ratio, and both bundle sizes.

    bench/bundle_create.py BUILD_DIR [--runs N] [--out FILE]
"""
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchlib import WORK, make_signer, parse_args, report, rootfs_image, sh


def timed(args):
    t = time.monotonic()
    sh(*args)
    return time.monotonic() - t


def main():
    a = parse_args(__doc__)
    abota = a.abota
    image = rootfs_image()
    tmp = tempfile.mkdtemp(prefix="abota-bench-", dir=WORK)
    try:
        cert, key = make_signer(tmp)
        content = os.path.join(tmp, "content")
        os.makedirs(content)
        os.link(image, os.path.join(content, "rootfs.ext4"))
        manifest = ("[update]\ncompatible=bench\nversion=1\n\n"
                    "[image.rootfs]\nfilename=rootfs.ext4\n")
        with open(os.path.join(content, "manifest.raucm"), "w") as f:
            f.write(manifest)
        t_abota, t_rauc = [], []
        size_abota = size_rauc = 0
        for i in range(a.runs):
            out = os.path.join(tmp, f"abota-{i}.raucb")
            t_abota.append(timed([abota, "bundle", "--cert", cert, "--key", key, content, out]))
            size_abota = os.path.getsize(out)
            os.unlink(out)
            # rauc 1.8 rewrites the content directory: give it a fresh copy
            # (hard link for the image, so no copy time is measured)
            rc = os.path.join(tmp, f"rauc-content-{i}")
            os.makedirs(rc)
            os.link(image, os.path.join(rc, "rootfs.ext4"))
            with open(os.path.join(rc, "manifest.raucm"), "w") as f:
                f.write(manifest)
            out = os.path.join(tmp, f"rauc-{i}.raucb")
            t_rauc.append(timed(["rauc", "bundle", f"--cert={cert}", f"--key={key}", rc, out]))
            size_rauc = os.path.getsize(out)
            os.unlink(out)
            shutil.rmtree(rc)
            print(f"run {i + 1}: abota {t_abota[-1]:.2f} s, rauc {t_rauc[-1]:.2f} s",
                  file=sys.stderr)
        ma, mr = statistics.median(t_abota), statistics.median(t_rauc)
        lines = [
            "| tool | median wall time | bundle size |",
            "|---|---|---|",
            f"| `abota bundle` (default: verity, zstd) | {ma:.2f} s | {size_abota / 1e6:.1f} MB |",
            f"| `rauc bundle` 1.8 (plain, mksquashfs gzip) | {mr:.2f} s | {size_rauc / 1e6:.1f} MB |",
            "",
            f"Ratio abota/rauc: time **{ma / mr:.3f}**, size **{size_abota / size_rauc:.3f}** "
            f"({a.runs} alternating runs each, image {os.path.getsize(image) >> 20} MiB).",
        ]
        text = "\n".join(lines)
        report(text, a.out)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
