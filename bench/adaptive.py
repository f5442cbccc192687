#!/usr/bin/env python3
"""Benchmark (issue #6): streaming and adaptive installs over HTTP, in one run.

Two 512 MiB ext4 rootfs images made from one copy of the same tree
(`mkrootfs.sh --pair`): v2 = v1 with ~25 binaries changed by a few bytes and
one 6 MB file added, as a package upgrade does.  The floor is the number of
4 KiB blocks of v2 that appear nowhere in v1.  A device whose active slot
holds v1 is updated to v2 over HTTP from nginx (127.0.0.1):

  (a) full streaming install: abota's default bundle of v2, nothing reused;
      compared with installing the same bundle from a local file;
  (b) adaptive install: the v2 bundle with adaptive=block-hash-index;
  (c) the same on a device whose slots both have their block index kept in
      the data directory (A and B hold v1, written by abota): no slot is
      read to index it.

Bytes and requests are nginx's (access log: body bytes sent, one line per
request).  Page cache dropped before each timed run.

    bench/adaptive.py BUILD_DIR [--runs N] [--out FILE]
"""
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (HERE, WORK, drop_caches, make_signer, parse_args, report, sh,
                      write_system_conf)

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from httpservers import Nginx  # noqa: E402


def images():
    v1 = os.path.join(WORK, "adaptive-v1.ext4")
    v2 = os.path.join(WORK, "adaptive-v2.ext4")
    if not (os.path.exists(v1) and os.path.exists(v2)):
        os.makedirs(WORK, exist_ok=True)
        sh("sh", os.path.join(HERE, "mkrootfs.sh"), "--pair", v1, v2)
    return v1, v2


def block_hashes(path):
    with open(path, "rb") as f:
        while True:
            b = f.read(4096)
            if not b:
                return
            yield hashlib.sha256(b).digest()


def floor_blocks(v1, v2):
    old = set(block_hashes(v1))
    return sum(1 for h in block_hashes(v2) if h not in old)


def served(ngx):
    reqs = ngx.requests()
    return len(reqs), sum(int(l.split('"')[2].split()[1]) for l in reqs)


def main():
    a = parse_args(__doc__)
    v1, v2 = images()
    floor = floor_blocks(v1, v2) * 4096
    tmp = tempfile.mkdtemp(prefix="abota-abench-", dir=WORK)
    ngx = None
    try:
        cert, key = make_signer(tmp)
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        for name, adaptive, image in (("full", False, v2), ("adaptive", True, v2),
                                      ("v1-adaptive", True, v1)):
            c = os.path.join(tmp, name)
            os.makedirs(c)
            os.link(image, os.path.join(c, "rootfs.ext4"))
            version = 1 if image == v1 else 2
            open(os.path.join(c, "manifest.raucm"), "w").write(
                f"[update]\ncompatible=bench\nversion={version}\n\n"
                "[image.rootfs]\nfilename=rootfs.ext4\n"
                + ("adaptive=block-hash-index\n" if adaptive else ""))
            sh(a.abota, "bundle", "--cert", cert, "--key", key, c, os.path.join(www, f"{name}.raucb"))
        slots = os.path.join(tmp, "slots")
        os.makedirs(slots)
        sa, sb = os.path.join(slots, "a"), os.path.join(slots, "b")
        shutil.copyfile(v1, sa)  # the running system: v1
        sh("fallocate", "-l", str(600 << 20), sb)
        conf = os.path.join(tmp, "system.conf")
        write_system_conf(conf, f"{tmp}/data", cert, sa, sb)
        # (c)'s device: its own data directory, where both slots' indexes are kept
        conf_c = os.path.join(tmp, "system-c.conf")
        write_system_conf(conf_c, f"{tmp}/data-c", cert, sa, sb)
        ngx = Nginx(os.path.join(tmp, "nginx"), www)

        def install(src, cf=conf, boot="A", wipe=True, timed=True):
            if timed:
                drop_caches()
                open(ngx.access_log, "w").close()
            if wipe:
                # the target is wiped, so nothing of an earlier run is reused
                sh("dd", "if=/dev/zero", f"of={sb}", "bs=1M", "count=600", "conv=notrunc")
            t = time.monotonic()
            p = subprocess.run([a.abota, "-c", cf, f"--override-boot-slot={boot}", "install",
                                "--ignore-version-limit", src],
                               capture_output=True, text=True, env=dict(os.environ, ABOTA_LOG="info"))
            dt = time.monotonic() - t
            if p.returncode != 0:
                raise RuntimeError(f"install {src}: {p.stderr}")
            return dt, served(ngx), p.stderr

        def in_place(stderr):
            line = next(l for l in stderr.splitlines() if "adaptive: rootfs.ext4:" in l)
            return int(line.split(" bytes in place, not written")[0].rsplit(" ", 1)[1])

        def indexed(stderr):
            line = next(l for l in stderr.splitlines() if "adaptive: rootfs.ext4:" in l)
            return line.split("slots indexed from ")[1]

        res = {"local": [], "stream": [], "adaptive": [], "kept": []}
        net = {}
        for i in range(a.runs):
            res["local"].append(install(os.path.join(www, "full.raucb"))[0])
            dt, net["stream"], _ = install(ngx.url("full.raucb"))
            res["stream"].append(dt)
            dt, net["adaptive"], err_b = install(ngx.url("adaptive.raucb"))
            res["adaptive"].append(dt)
            # (c): v1 written by abota into A (running B) and B (running A),
            # untimed; then v2 into B as in (b)
            v1b = os.path.join(www, "v1-adaptive.raucb")
            install(v1b, cf=conf_c, boot="B", wipe=False, timed=False)
            install(v1b, cf=conf_c, boot="A", wipe=False, timed=False)
            dt, net["kept"], err_c = install(ngx.url("adaptive.raucb"), cf=conf_c, wipe=False)
            res["kept"].append(dt)
            how = {"b": indexed(err_b), "c": indexed(err_c)}
            kept_in_place = in_place(err_c)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in res.items()),
                  file=sys.stderr)
        med = {k: statistics.median(v) for k, v in res.items()}
        size = {n: os.path.getsize(os.path.join(www, f"{n}.raucb")) for n in ("full", "adaptive")}
        mib = 1048576
        rq_s, by_s = net["stream"]
        rq_a, by_a = net["adaptive"]
        rq_c, by_c = net["kept"]
        text = "\n".join([
            f"Floor: {floor // 4096} blocks of 4 KiB of v2 appear nowhere in v1 = "
            f"**{floor / mib:.2f} MiB**.",
            "",
            "| install of v2 (512 MiB rootfs) | bundle | downloaded | requests | median time |",
            "|---|---|---|---|---|",
            f"| local file (same bundle as (a)) | {size['full'] / mib:.1f} MiB | — | — | {med['local']:.2f} s |",
            f"| (a) full streaming from nginx | {size['full'] / mib:.1f} MiB | {by_s / mib:.1f} MiB | {rq_s} | {med['stream']:.2f} s |",
            f"| (b) adaptive from nginx, active slot holds v1 | {size['adaptive'] / mib:.1f} MiB | {by_a / mib:.2f} MiB | {rq_a} | {med['adaptive']:.2f} s |",
            f"| (c) as (b), both slots' block indexes kept | {size['adaptive'] / mib:.1f} MiB | {by_c / mib:.2f} MiB | {rq_c} | {med['kept']:.2f} s |",
            "",
            f"Slots indexed in (b): from {how['b']}; in (c): from {how['c']}. "
            f"(c) takes **{med['kept'] / med['adaptive']:.2f}×** the time of (b), and does not "
            f"write the {kept_in_place / mib:.1f} MiB that B holds in place already.",
            "",
            f"(b) downloads **{by_a / floor:.2f}×** the floor (target ≤ 1.5) in **{rq_a}** requests "
            f"(target ≤ 200); (a) reaches **{med['local'] / med['stream']:.2f}×** the throughput "
            f"of the local install (target ≥ 0.8). {a.runs} runs, page cache dropped before "
            "each; the target slot wiped before each but (c)'s, where A and B hold v1 written "
            "by abota.",
        ])
        report(text, a.out)
    finally:
        if ngx:
            ngx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
