#!/usr/bin/env python3
"""Benchmark: installing the same bundle into a file-backed slot with
`abota install` and with `rauc install` (RAUC 1.8 service on a private D-Bus
daemon, loop mount), alternating, in one run.  Also: abota on its own default
bundle format, abota's peak RSS, and `openssl dgst -sha256` over the image as
the floor.  And the I/O floor of any installer that checks what it wrote
on the medium: `dd` writing the image into the slot (O_DIRECT, 4 MiB writes,
fdatasync) plus the floor above for reading it back.  And, untimed, the page
cache each install fills (peak) and leaves behind, for both tools: on a board
whose RAM is the size of the image, that is the running system's own cached
files pushed out.

    bench/install.py BUILD_DIR [--runs N] [--out FILE]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (WORK, drop_caches, make_signer, parse_args, report, rootfs_image, sh,
                      write_system_conf)


def timed(args, env=None):
    t = time.monotonic()
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError(f"{args} failed: {p.stdout}{p.stderr}")
    return dt, p


TIME_FMT = "RSS %M CPU %U %S"


def time_field(p, name):
    return int(p.stderr.split(name + " ")[-1].split()[0])


def time_cpu(p):
    """user + sys seconds from /usr/bin/time's last line."""
    f = p.stderr.split("CPU ")[-1].split()
    return float(f[0]) + float(f[1])


def proc_cpu(pid):
    """user + sys seconds a process has used so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_split(args):
    """Runs ARGS once, sampling /proc/PID/status every 2 ms: at the sample
    with the largest VmRSS, its file-backed and anonymous parts (KiB).  The
    file part is the pages of the binary and its libraries the kernel has
    mapped (with fault-around: up to 64 KiB per fault), shared with every
    other process using them; the anonymous part is the process's own."""
    p = subprocess.Popen([str(x) for x in args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    best = (0, 0, 0)
    while p.poll() is None:
        try:
            f = dict(line.split(":", 1) for line in open(f"/proc/{p.pid}/status"))
            cur = tuple(int(f[k].split()[0]) for k in ("VmRSS", "RssFile", "RssAnon"))
        except (OSError, KeyError, ValueError):
            cur = (0, 0, 0)
        best = max(best, cur)
        time.sleep(0.002)
    if p.returncode != 0:
        raise RuntimeError(f"{args} failed")
    return best


def meminfo_cached():
    """Page cache (KiB): Cached + Buffers (a loop device's pages count under Buffers)."""
    f = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    return int(f["Cached"].split()[0]) + int(f["Buffers"].split()[0])


def page_cache(args, env=None):
    """Runs ARGS once after dropping the caches, sampling /proc/meminfo every
    10 ms: the page cache's peak growth during the run, and its growth left a
    second after it (KiB).  Machine-wide, so a service's work counts too."""
    drop_caches()
    base = meminfo_cached()
    p = subprocess.Popen([str(x) for x in args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while p.poll() is None:
        peak = max(peak, meminfo_cached() - base)
        time.sleep(0.01)
    if p.returncode != 0:
        raise RuntimeError(f"{args} failed")
    time.sleep(1)
    left = meminfo_cached() - base
    return max(peak, left), left


def main():
    a = parse_args(__doc__)
    abota = a.abota
    image = rootfs_image()
    tmp = tempfile.mkdtemp(prefix="abota-ibench-", dir=WORK)
    daemon = service = None
    try:
        cert, key = make_signer(tmp)
        manifest = "[update]\ncompatible=bench\nversion=1\n\n[image.rootfs]\nfilename=rootfs.ext4\n"
        # RAUC-built plain bundle (mksquashfs defaults: gzip, 128 KiB)
        rc = os.path.join(tmp, "rauc-content")
        os.makedirs(rc)
        os.link(image, os.path.join(rc, "rootfs.ext4"))
        open(os.path.join(rc, "manifest.raucm"), "w").write(manifest)
        rauc_bundle = os.path.join(tmp, "rauc.raucb")
        sh("rauc", "bundle", f"--cert={cert}", f"--key={key}", rc, rauc_bundle)
        # abota's own default bundle
        ac = os.path.join(tmp, "abota-content")
        os.makedirs(ac)
        os.link(image, os.path.join(ac, "rootfs.ext4"))
        open(os.path.join(ac, "manifest.raucm"), "w").write(manifest)
        abota_bundle = os.path.join(tmp, "abota.raucb")
        sh(abota, "bundle", "--cert", cert, "--key", key, ac, abota_bundle)
        # slots: preallocated files (an overwrite, as a partition would be)
        slots = os.path.join(tmp, "slots")
        os.makedirs(slots)
        for n in ("a", "b"):
            with open(os.path.join(slots, n), "wb") as f:
                f.truncate(600 << 20)
            sh("fallocate", "-l", str(600 << 20), os.path.join(slots, n))
        os.makedirs(os.path.join(tmp, "data"))
        os.makedirs(os.path.join(tmp, "mnt"))
        conf = os.path.join(tmp, "system.conf")
        write_system_conf(conf, f"{tmp}/data", cert, f"{slots}/a", f"{slots}/b",
                          extra=f"mountprefix={tmp}/mnt\n")
        bus = os.path.join(tmp, "session.conf")
        open(bus, "w").write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={tmp}/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>
""")
        daemon = subprocess.Popen(["dbus-daemon", f"--config-file={bus}", "--nofork",
                                   "--print-address"], stdout=subprocess.PIPE, text=True)
        addr = daemon.stdout.readline().strip()
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr, DBUS_SESSION_BUS_ADDRESS=addr)
        service = subprocess.Popen(["rauc", "service", f"--conf={conf}",
                                    "--override-boot-slot=A"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["rauc", "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        res = {"abota": [], "rauc": [], "abota-own": [], "floor": [], "write+read": []}
        cpu = {"abota": [], "rauc": [], "abota-own": []}
        rss = rss_own = 0
        for i in range(a.runs):
            drop_caches()
            dt, p = timed(["/usr/bin/time", "-f", TIME_FMT, abota, "-c", conf,
                           "--override-boot-slot=A", "install", rauc_bundle])
            res["abota"].append(dt)
            rss = max(rss, time_field(p, "RSS"))
            cpu["abota"].append(time_cpu(p))
            drop_caches()
            before = proc_cpu(service.pid)
            dt, _ = timed(["rauc", "install", rauc_bundle], env=env)
            res["rauc"].append(dt)
            cpu["rauc"].append(proc_cpu(service.pid) - before)
            drop_caches()
            dt, p = timed(["/usr/bin/time", "-f", TIME_FMT, abota, "-c", conf,
                           "--override-boot-slot=A", "install", abota_bundle])
            res["abota-own"].append(dt)
            cpu["abota-own"].append(time_cpu(p))
            rss_own = max(rss_own, time_field(p, "RSS"))
            drop_caches()
            dt, _ = timed(["openssl", "dgst", "-sha256", image])
            res["floor"].append(dt)
            drop_caches()
            # O_DIRECT: buffered dd varies 0.6-3 s on this VM's disk (writeback throttling)
            dt_w, _ = timed(["dd", f"if={image}", f"of={slots}/b", "bs=4M", "oflag=direct",
                             "conv=fdatasync,notrunc"])
            dt_r = res["floor"][-1]  # reading it back costs what reading the image does
            res["write+read"].append(dt_w + dt_r)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in res.items()),
                  file=sys.stderr)
        # the peer's peak: the RAUC service's high-water mark over all its installs
        rauc_hwm = 0
        with open(f"/proc/{service.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rauc_hwm = int(line.split()[1])
        # untimed: where the peak RSS is (sampling costs CPU)
        drop_caches()
        _, rss_file, rss_anon = rss_split([abota, "-c", conf, "--override-boot-slot=A",
                                            "install", rauc_bundle])
        # untimed: the page cache each install fills and leaves behind
        pc = {
            "abota": page_cache([abota, "-c", conf, "--override-boot-slot=A", "install",
                                 rauc_bundle]),
            "rauc": page_cache(["rauc", "install", rauc_bundle], env=env),
            "abota-own": page_cache([abota, "-c", conf, "--override-boot-slot=A", "install",
                                     abota_bundle]),
        }
        med = {k: statistics.median(v) for k, v in res.items()}
        # each abota run and the rauc run right after it share the machine's
        # state (this VM's disk speed drifts between runs): their ratios
        pairs = sorted(x / y for x, y in zip(res["abota"], res["rauc"]))
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        lines = [
            "| what | median wall time |",
            "|---|---|",
            f"| `abota install` of the RAUC-built plain bundle (gzip) | {med['abota']:.2f} s |",
            f"| `rauc install` 1.8 of the same bundle | {med['rauc']:.2f} s |",
            f"| `abota install` of abota's default bundle (verity, zstd) | {med['abota-own']:.2f} s |",
            f"| floor: `openssl dgst -sha256` over the image | {med['floor']:.2f} s |",
            f"| I/O floor of a read-back-verified write: `dd oflag=direct` of the image "
            f"into the slot, plus the floor to read it back | {med['write+read']:.2f} s |",
            "",
            f"Ratios: abota/rauc **{med['abota'] / med['rauc']:.3f}** (same bundle); "
            f"abota own format / floor **{med['abota-own'] / med['floor']:.2f}** "
            f"(/ write+read-back floor **{med['abota-own'] / med['write+read']:.2f}**); "
            f"per-run ratios (each abota run / the rauc run after it): median "
            f"{statistics.median(pairs):.3f}, range {pairs[0]:.3f}-{pairs[-1]:.3f}; "
            f"abota peak RSS **{rss / 1024:.1f} MiB** (an untimed run's peak: "
            f"{rss_file / 1024:.1f} MiB file pages of the binary and its libraries, "
            f"{rss_anon / 1024:.1f} MiB anonymous: heap, stacks; on its own format "
            f"{rss_own / 1024:.1f} MiB: 1 MiB squashfs blocks in the ring) "
            f"(the RAUC service's peak: {rauc_hwm / 1024:.1f} MiB) ({a.runs} alternating "
            "runs, page cache dropped before each, image 512 MiB, slot = preallocated file).",
            "",
            f"CPU time (user + sys; the disk's speed does not move it): abota "
            f"{mcpu['abota']:.2f} s, the RAUC service {mcpu['rauc']:.2f} s "
            f"(ratio **{mcpu['abota'] / mcpu['rauc']:.3f}**; the service's own, from "
            f"/proc/PID/stat: the kernel's squashfs reads count, its loop device's "
            f"kworkers do not), abota own format {mcpu['abota-own']:.2f} s.",
            "",
            f"Page cache (untimed runs after dropping the caches; /proc/meminfo Cached + "
            f"Buffers, machine-wide; bundle {os.path.getsize(rauc_bundle) / 2**20:.0f} MiB, "
            f"image 512 MiB): abota fills at most **{pc['abota'][0] / 1024:.0f} MiB** and "
            f"leaves **{pc['abota'][1] / 1024:.0f} MiB** behind; the RAUC service "
            f"{pc['rauc'][0] / 1024:.0f} MiB and {pc['rauc'][1] / 1024:.0f} MiB; abota "
            f"on its own format {pc['abota-own'][0] / 1024:.0f} MiB and "
            f"{pc['abota-own'][1] / 1024:.0f} MiB.",
        ]
        text = "\n".join(lines)
        report(text, a.out)
    finally:
        if service:
            service.terminate()
            service.wait()
        if daemon:
            daemon.terminate()
            daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
