#!/usr/bin/env python3
"""Two (or more) builds side by side on bench/adaptive.py's installs (local file, full
streaming, adaptive), alternating in one setup, so a change is measured
against the build before it under the same conditions.

    bench/adaptive_ab.py RUNS BUILD_A BUILD_B [BUILD_C ...]   (KINDS="stream adaptive" to pick)

Prints, per install and build: median time, each run's time, nginx's
requests and bytes of the last run, median peak RSS (/usr/bin/time %M).
The bundles are made by the last build.
"""
import os, sys, shutil, statistics, subprocess, tempfile, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
import adaptive as A
from benchlib import WORK, drop_caches, make_signer, sh, write_system_conf
from httpservers import Nginx
if len(sys.argv) < 4:
    sys.exit(__doc__)
runs = int(sys.argv[1])
bins = [os.path.join(b, "src", "abota", "abota") for b in sys.argv[2:]]
v1, v2 = A.images()
tmp = tempfile.mkdtemp(prefix="abota-ab-", dir=WORK)
cert, key = make_signer(tmp)
www = os.path.join(tmp, "www"); os.makedirs(www)
for name, adaptive in (("full", False), ("adaptive", True)):
    c = os.path.join(tmp, name); os.makedirs(c)
    os.link(v2, os.path.join(c, "rootfs.ext4"))
    open(os.path.join(c, "manifest.raucm"), "w").write(
        "[update]\ncompatible=bench\nversion=2\n\n[image.rootfs]\nfilename=rootfs.ext4\n"
        + ("adaptive=block-hash-index\n" if adaptive else ""))
    sh(bins[-1], "bundle", "--cert", cert, "--key", key, c, os.path.join(www, f"{name}.raucb"))
slots = os.path.join(tmp, "slots"); os.makedirs(slots)
sa, sb = os.path.join(slots, "a"), os.path.join(slots, "b")
shutil.copyfile(v1, sa); sh("fallocate", "-l", str(600 << 20), sb)
conf = os.path.join(tmp, "system.conf")
write_system_conf(conf, f"{tmp}/data", cert, sa, sb)
ngx = Nginx(os.path.join(tmp, "nginx"), www)
def install(b, src):
    drop_caches(); open(ngx.access_log, "w").close()
    sh("dd", "if=/dev/zero", f"of={sb}", "bs=1M", "count=600", "conv=notrunc")
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", b, "-c", conf, "--override-boot-slot=A", "install", src], capture_output=True, text=True)
    dt = time.monotonic() - t
    assert p.returncode == 0, p.stderr
    rss = int(p.stderr.strip().split("\n")[-1])
    return dt, A.served(ngx), rss
res = {}
try:
    for i in range(runs):
        for b in bins:
            for kind, src in [k for k in (("local", os.path.join(www, "full.raucb")), ("stream", ngx.url("full.raucb")), ("adaptive", ngx.url("adaptive.raucb"))) if k[0] in os.environ.get("KINDS", "local stream adaptive")]:
                dt, net, rss = install(b, src)
                res.setdefault((b, kind), []).append((dt, net, rss))
    for (b, kind), v in sorted(res.items(), key=lambda x: (x[0][1], x[0][0])):
        print(f"{kind:9s} {b:45s} median {statistics.median(x[0] for x in v):.3f} s  times {' '.join('%.2f' % x[0] for x in v)}  net {v[-1][1]}  rss {statistics.median(x[2] for x in v)} kB")
finally:
    ngx.stop() if hasattr(ngx, "stop") else None
    shutil.rmtree(tmp, ignore_errors=True)
