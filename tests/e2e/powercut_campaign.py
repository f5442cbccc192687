#!/usr/bin/python3
"""Power-cut campaign (issue #5): cut "power" at every write point of the
device-side code during whole update cycles on the simulated STM32MP board,
power the board on again, recover as a device would, and check invariants.

Scenarios (each step is one process: abota or abota-sim):
  A  install v2 -> boot (trial of B) -> status mark-good -> boot
  B  install v2 -> 3 x boot --fail-boot (trial of B fails) -> boot (rollback to A)
  C  install v2 -> boot (trial of B) -> status mark-bad -> boot

Method.  A reference run of the scenario with ABOTA_POWERCUT_LOG enumerates
the write points of every step (each process has its own counter; abota's
points come from include/abota/powercut.h, abota-sim's are U-Boot's metadata
writes, cut with --cut-uboot-write).  A cut "in step k at point N" runs the
steps before k normally and step k with ABOTA_POWERCUT=N[:BYTES] (abota
exits 137) or --cut-uboot-write=N[:BYTES].  Then the board is powered on
(abota-sim event power-loss; boot) and the device recovers: an interrupted
install is run again (the same command: with the resume journal it keeps
the images and checkpoints that were proven before the cut and writes the
rest), an interrupted mark-good/mark-bad is repeated if the booted bank is
still in trial, and the remaining steps of the scenario follow.  At the cut,
writes that were not synced yet are lost (powercut.h's page-cache model).

Invariants, checked after every step and boot (a violation is a string):
  - BL2/U-Boot/kernel boot a bank (no panic, no "no bootable bank");
  - the booted bank's content (fip, bootfs, vendorfs, rootfs) is a complete
    one: the factory content of that bank or the content an uninterrupted
    install leaves there;
  - never both metadata copies invalid;
  - no bank that the metadata lets boot (accepted or valid/trial) has
    incomplete content;
  - userfs untouched (its bytes and its allocated extents);
  - the final state (metadata in effect, both banks' content, the booted
    bank) is identical to the uninterrupted run's;
  - a later update (v3) still installs, boots in trial and is accepted.

Not modelled: reordering of writes by the device, the ext4 writes of the
bank fix-ups (libext2fs, not routed through powercut.h).

CLI:  powercut_campaign.py [--scenario A,B,C] [--variant r3,upstream,v1]
                           [--sample K] [--jobs N] [--workdir DIR] [--no-sync]

--no-sync is the negative test (SC-152): abota runs with
ABOTA_POWERCUT_NOSYNC=1, so its syncs make nothing durable (as a build
without fsync); the campaign must then report violations.
"""
import argparse
import concurrent.futures
import hashlib
import json
import random
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from simhelp import ABOTA, EXTLINUX, FSTAB, SIM, VARIANTS, gpt_parts  # noqa: E402

BOARD = "stm32mp157f-dk2"
BANK_PARTS = ("fip", "bootfs", "vendorfs", "rootfs")
SCENARIOS = ("A", "B", "C")
STATE = {"accepted": "A", "valid": "V", "invalid": "I"}



class CampaignError(Exception):
    pass


def _env(extra=None):
    e = dict(os.environ)
    for k in ("ABOTA_POWERCUT", "ABOTA_POWERCUT_LOG"):
        e.pop(k, None)
    e["E2FSPROGS_FAKE_TIME"] = "1767225600"
    if extra:
        e.update(extra)
    return e


def run(args, env=None, ok=(0,)):
    p = subprocess.run([str(a) for a in args], capture_output=True, env=_env(env))
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if "AddressSanitizer" in err or "runtime error" in err or "LeakSanitizer" in err:
        raise CampaignError(f"sanitizer report from {args}:\n{err}")
    if ok is not None and p.returncode not in ok:
        raise CampaignError(f"{args} exited {p.returncode}:\n{out}\n{err}")
    p.out, p.err = out, err
    return p


# --- bundles ----------------------------------------------------------------

def _ext4(path, size_kib, files):
    tree = path + ".tree"
    for name, data in files.items():
        p = os.path.join(tree, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    with open(path, "wb") as f:
        f.truncate(size_kib * 1024)
    run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "root_owner=0:0", "-U",
         "11111111-2222-3333-4444-555555555555", "-d", tree, path])
    shutil.rmtree(tree)


def make_pki(d):
    """A self-signed signer that is its own keyring."""
    key, cert = os.path.join(d, "signer.key"), os.path.join(d, "signer.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "3650", "-subj",
         "/O=abota test/CN=powercut signer"])
    return cert, key


def make_bundle(d, version, cert, key):
    """Small images (~2.5 MiB in all) so a cut point costs little."""
    c = os.path.join(d, f"content-{version}")
    os.makedirs(c)
    rnd = random.Random(version)
    seed = hashlib.sha256(version.encode()).digest()
    with open(os.path.join(c, "fip.bin"), "wb") as f:
        f.write(struct.pack("<II", 0xAA640001, 0x12345678) + b"\0" * 120)
        f.write(rnd.randbytes(256 << 10))
    _ext4(os.path.join(c, "bootfs.ext4"), 768,
          {"uImage": b"kernel " + version.encode() * 20000,
           "extlinux/extlinux.conf": EXTLINUX.encode()})
    _ext4(os.path.join(c, "vendorfs.ext4"), 256, {"lib/firmware/x": seed * 2000})
    _ext4(os.path.join(c, "rootfs.ext4"), 1536,
          {"etc/fstab": FSTAB.encode(), "etc/os-release": f"VERSION={version}\n".encode(),
           "usr/bin/app": rnd.randbytes(600 << 10)})
    with open(os.path.join(c, "manifest.raucm"), "w") as f:
        f.write(f"[update]\ncompatible=stm32mpu\nversion={version}\n\n"
                "[image.fip]\nfilename=fip.bin\n\n[image.bootfs]\nfilename=bootfs.ext4\n\n"
                "[image.vendorfs]\nfilename=vendorfs.ext4\n\n"
                "[image.rootfs]\nfilename=rootfs.ext4\n")
    b = os.path.join(d, f"{version}.raucb")
    run([ABOTA, "bundle", "--cert", cert, "--key", key, c, b])
    return b


# --- the board ----------------------------------------------------------------

def _data_extents(f, start, size):
    """(offset, length) of the allocated ranges of [start, start+size)."""
    fd = f.fileno()
    end = start + size
    out = []
    pos = start
    while pos < end:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        if d >= end:
            break
        h = min(os.lseek(fd, d, os.SEEK_HOLE), end)
        out.append((d - start, h - d))
        pos = h
    return out


def part_digest(f, part, extents=False):
    """SHA-256 of a partition's content: its non-zero 4 KiB blocks and their
    offsets (holes and zero blocks are equal); extents=True also covers the
    allocated ranges (any write into the partition changes them)."""
    h = hashlib.sha256()
    zero = bytes(4096)
    blocks = []  # partition-relative 4 KiB blocks touching allocated data
    for off, length in _data_extents(f, part["start"], part["size"]):
        if extents:
            h.update(b"X%d:%d" % (off, length))
        first, end = off // 4096, (off + length + 4095) // 4096
        if blocks and blocks[-1][1] >= first:
            blocks[-1][1] = max(blocks[-1][1], end)
        else:
            blocks.append([first, end])
    for first, end in blocks:
        f.seek(part["start"] + first * 4096)
        data = f.read(min(end * 4096, part["size"]) - first * 4096)
        for i in range(0, len(data), 4096):
            blk = data[i:i + 4096]
            if blk != zero[:len(blk)]:
                h.update(b"%d:" % (first * 4096 + i) + blk)
    return h.hexdigest()[:16]


class Board:
    def __init__(self, path, variant):
        self.dir = path
        self.variant = variant
        self.disk = os.path.join(path, "disk.img")
        self.conf = os.path.join(path, "system.conf")
        self._parts = None

    @classmethod
    def prepare(cls, path, variant):
        run([SIM, "create", BOARD, path, f"--tfa={VARIANTS[variant]['tfa']}", "--seed=1",
             "--full", "--force"])
        b = cls(path, variant)
        h = b.boot()
        if h.get("bank") != 0:
            raise CampaignError(f"factory board does not boot bank A: {h}")
        return b

    def copy_to(self, path):
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        for name in os.listdir(self.dir):
            src = os.path.join(self.dir, name)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(path, name))
            elif name == "disk.img":
                subprocess.run(["cp", "--sparse=always", src, os.path.join(path, name)],
                               check=True)
            else:
                shutil.copy2(src, os.path.join(path, name))
        with open(os.path.join(path, "system.conf")) as f:
            text = f.read()
        with open(os.path.join(path, "system.conf"), "w") as f:
            f.write(text.replace(self.dir, path))
        b = Board(path, self.variant)
        b._parts = self._parts
        return b

    def parts(self):
        if self._parts is None:
            self._parts = gpt_parts(self.disk)
        return self._parts

    def bank_content(self, bank):
        s = "ab"[bank]
        with open(self.disk, "rb") as f:
            return tuple(part_digest(f, self.parts()[f"{p}-{s}"]) for p in BANK_PARTS)

    def userfs(self):
        with open(self.disk, "rb") as f:
            return part_digest(f, self.parts()["userfs"], extents=True)

    def dump(self):
        p = run([ABOTA, "fwu", "dump", "--disk", self.disk,
                 f"--md-version={VARIANTS[self.variant]['md_version']}",
                 "--output-format=json"], ok=None)
        return json.loads(p.out)

    def md(self):
        """(copies valid, active, previous, bank states) of the metadata."""
        d = self.dump()
        valid = tuple(c["valid"] for c in d["copies"])
        m = d.get("metadata")
        if not m:
            return valid, None, None, None
        return (valid, m["active_index"], m["previous_active_index"],
                "".join(STATE[b["state"]] for b in m["banks"]))

    def history(self):
        with open(os.path.join(self.dir, "history.log")) as f:
            return [json.loads(l) for l in f if l.strip()]

    def boot(self, *opts, env=None):
        p = run([SIM, "boot", self.dir, "--quiet", *opts], env=env, ok=None)
        if p.returncode not in (0, 3, 4, 137):  # 137: --cut-uboot-write cut
            raise CampaignError(f"abota-sim boot exited {p.returncode}: {p.err}")
        h = self.history()[-1]
        h["rc"] = p.returncode
        return h

    def power_loss(self):
        run([SIM, "event", self.dir, "power-loss"])

    def abota(self, keyring, *args, env=None, ok=(0,)):
        return run([ABOTA, "-c", self.conf, "-C", f"keyring:path={keyring}", *args], env=env,
                   ok=ok)


# --- scenarios ----------------------------------------------------------------

def scenario_steps(name, bundle):
    """[(kind, args)]: kind is "abota" or "boot"."""
    inst = ("abota", ("install", bundle))
    if name == "A":
        return [inst, ("boot", ()), ("abota", ("status", "mark-good")), ("boot", ())]
    if name == "B":
        return [inst] + [("boot", ("--fail-boot",))] * 3 + [("boot", ())]
    if name == "C":
        return [inst, ("boot", ()), ("abota", ("status", "mark-bad")), ("boot", ())]
    raise ValueError(name)


class Campaign:
    def __init__(self, workdir, variants=("r3", "upstream", "v1"), log=print):
        self.work = workdir
        self.variants = variants
        self.log = log
        os.makedirs(workdir, exist_ok=True)
        keys = os.path.join(workdir, "keys")
        os.makedirs(keys, exist_ok=True)
        self.keyring, key = make_pki(keys)
        self.bundles = {v: make_bundle(keys, v, self.keyring, key) for v in ("2.0.0", "3.0.0")}
        self.boards = {v: Board.prepare(os.path.join(workdir, f"board-{v}"), v)
                       for v in variants}
        self.refs = {}
        # extra environment of the abota steps: {"ABOTA_POWERCUT_NOSYNC": "1"}
        # is the negative test (SC-152): a device without fsync must fail
        self.abota_env = {}

    # -- one step
    def _step(self, b, kind, args, cut=None, log=None):
        """Runs one step; cut = "N" or "N:BYTES".  Returns (cut happened, boot
        history entry or None)."""
        env = {"ABOTA_POWERCUT_LOG": log} if log else None
        if kind == "abota":
            if self.abota_env:
                env = dict(env or {}, **self.abota_env)
            if cut:
                env = dict(env or {}, ABOTA_POWERCUT=cut)
            p = b.abota(self.keyring, *args, env=env, ok=(0, 137) if cut else (0,))
            if cut and p.returncode == 0:
                raise CampaignError(f"step {args} with ABOTA_POWERCUT={cut} was not cut")
            return p.returncode == 137, None
        opts = list(args)
        if cut:
            opts.append(f"--cut-uboot-write={cut}")
        h = b.boot(*opts, env=env)
        if cut and h.get("outcome") != "power-cut":
            raise CampaignError(f"boot with --cut-uboot-write={cut} was not cut: {h}")
        return h.get("outcome") == "power-cut", h

    # -- the reference run
    def reference(self, scenario, variant):
        key = (scenario, variant)
        if key in self.refs:
            return self.refs[key]
        d = os.path.join(self.work, f"ref-{scenario}-{variant}")
        b = self.boards[variant].copy_to(d)
        complete = {0: {b.bank_content(0)}, 1: {b.bank_content(1)}}
        points = []  # (step index, n, kind, label, len)
        steps = scenario_steps(scenario, self.bundles["2.0.0"])
        for i, (kind, args) in enumerate(steps):
            log = os.path.join(d, f"points-{i}.log")
            self._step(b, kind, args, log=log)
            if kind == "abota" and args[0] == "install":
                complete[1].add(b.bank_content(1))
            if os.path.exists(log):
                for line in open(log):
                    f = line.split()
                    points.append((i, int(f[0]), f[1], f[2], int(f[4]) if len(f) > 4 else 0))
        final = self.state(b)
        later = self.later_update(b, complete)
        if later:
            raise CampaignError(f"reference run {scenario}/{variant}: {later}")
        ref = dict(points=points, complete=complete, final=final, userfs=b.userfs(),
                   steps=steps)
        self.refs[key] = ref
        shutil.rmtree(d)
        return ref

    def state(self, b):
        h = b.history()[-1]
        return dict(bank=h.get("bank"), md=b.md()[1:], content=(b.bank_content(0),
                                                                 b.bank_content(1)))

    def later_update(self, b, complete):
        """Installs v3 into the other bank, boots it, accepts it."""
        p = b.abota(self.keyring, "install", self.bundles["3.0.0"], ok=None)
        if p.returncode != 0 and "trial boot(s) left" in p.err:
            # the device policy abota asks for: reboot first (re-arms FWU_INFO)
            b.boot()
            p = b.abota(self.keyring, "install", self.bundles["3.0.0"], ok=None)
        if p.returncode != 0:
            return f"later update: install failed: {p.err.strip()}"
        h = b.boot()
        if h.get("outcome") != "running":
            return f"later update: boot {h.get('outcome')}: {h.get('reason')}"
        target = h["bank"]
        complete[target].add(b.bank_content(target))  # (reference run only)
        p = b.abota(self.keyring, "status", "mark-good", ok=None)
        if p.returncode != 0:
            return f"later update: mark-good failed: {p.err.strip()}"
        h2 = b.boot()
        if h2.get("bank") != target or h2.get("outcome") != "running":
            return f"later update: bank {target} not kept after mark-good: {h2}"
        return None

    # -- invariants
    def check(self, b, ref, where, boot=None):
        v = []
        valid, active, previous, states = b.md()
        if not any(valid):
            v.append(f"{where}: both metadata copies invalid")
        if states:
            # banks BL2 may boot: v2: every bank not INVALID; v1 (no states;
            # V = not accepted): the active one, and the previous one when
            # the active one is in trial
            if self.md_version(b) == 1:
                bootable = {active} | ({previous} if states[active] != "A" else set())
            else:
                bootable = {i for i, st in enumerate(states) if st != "I"}
            for bank in sorted(bootable):
                if b.bank_content(bank) not in ref["complete"][bank]:
                    v.append(f"{where}: bank {'AB'[bank]} is {states[bank]} (bootable) "
                             f"with incomplete content")
        if boot is not None:
            if boot.get("outcome") not in ("running", "failed") or boot.get("bank") is None:
                v.append(f"{where}: boot {boot.get('outcome')}: {boot.get('reason')}")
            elif b.bank_content(boot["bank"]) not in ref["complete"][boot["bank"]]:
                v.append(f"{where}: booted bank {'AB'[boot['bank']]} with incomplete content")
        if b.userfs() != ref["userfs"]:
            v.append(f"{where}: userfs changed")
        return v

    @staticmethod
    def md_version(b):
        return VARIANTS[b.variant]["md_version"]

    # -- one cut
    def run_cut(self, scenario, variant, step, cut, workdir):
        """Returns (boots, [violations])."""
        ref = self.reference(scenario, variant)
        steps = ref["steps"]
        b = self.boards[variant].copy_to(workdir)
        boots, viol = 0, []
        try:
            for i in range(step):
                _, h = self._step(b, *steps[i])
                boots += h is not None
            kind, args = steps[step]
            happened, h = self._step(b, kind, args, cut=cut)
            boots += h is not None
            viol += self.check(b, ref, "after the cut")
            # power on: after a cut in abota the board was up (power-loss
            # event); a cut boot is done again with the same options
            if kind == "abota":
                b.power_loss()
                h = b.boot(*self._boot_opts(scenario, b))
            else:
                h = b.boot(*args)
            boots += 1
            viol += self.check(b, ref, "power-on", h)
            nxt = step + 1
            if kind == "abota" and args[0] == "install":
                # Resumed?  Done if the power-on boot tried the new bank with
                # complete content; otherwise install again and go on.
                if not (h.get("bank") == 1 and b.bank_content(1) in ref["complete"][1]):
                    p = b.abota(self.keyring, *args, ok=None)
                    if p.returncode != 0:
                        viol.append(f"install again after the cut failed: {p.err.strip()}")
                        return boots, viol
                    nxt = step + 1
                else:
                    nxt = step + 2
            elif kind == "abota":
                # mark-good/-bad again while the booted bank is still in trial
                # (the power-on boot was the scenario's next boot if not)
                _, active, _, states = b.md()
                if h.get("bank") == 1 and states and states[1] == "V":
                    b.abota(self.keyring, *args)
                    nxt = step + 1
                else:
                    nxt = step + 2
            for i in range(nxt, len(steps)):
                _, h = self._step(b, *steps[i])
                if h is not None:
                    boots += 1
                    viol += self.check(b, ref, f"step {i}", h)
            final = self.state(b)
            if final != ref["final"]:
                viol.append(f"final state differs from the uninterrupted run: {final} != "
                            f"{ref['final']}")
            later = self.later_update(b, {k: set(s) for k, s in ref["complete"].items()})
            boots += 2
            if later:
                viol.append(later)
        except CampaignError as e:
            viol.append(str(e).strip().splitlines()[0][:300])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return boots, viol

    def _boot_opts(self, scenario, b):
        """Scenario B: the new software fails whenever bank B is tried."""
        if scenario != "B":
            return ()
        _, active, _, states = b.md()
        return ("--fail-boot",) if active == 1 and states and states[1] == "V" else ()

    # -- the cut points of a scenario
    def cuts(self, scenario, variant, sample=1):
        """[(step, "N[:BYTES]", label)]: every point (sample=1) or every
        sample-th point plus every metadata point; metadata writes also
        torn at 0 bytes and at all but one byte."""
        ref = self.reference(scenario, variant)
        out = []
        for idx, (step, n, kind, label, length) in enumerate(ref["points"]):
            meta = label.startswith("metadata")
            if sample > 1 and not meta and idx % sample != 0:
                continue
            out.append((step, str(n), f"{label} {kind}"))
            if meta and kind == "write" and length > 1:
                for nb in (0, length - 1) if sample == 1 else (length - 1,):
                    out.append((step, f"{n}:{nb}", f"{label} torn {nb}"))
        return out

    def sweep(self, scenario, sample=1, jobs=None):
        jobs = jobs or os.cpu_count() or 1
        todo = []
        for variant in self.variants:
            for c in self.cuts(scenario, variant, sample):
                todo.append((variant, *c))
        boots, viol = 0, []

        def one(i_item):
            i, (variant, step, cut, label) = i_item
            wd = os.path.join(self.work, f"cut-{scenario}-{i}")
            nb, v = self.run_cut(scenario, variant, step, cut, wd)
            return nb, [f"{scenario}/{variant} step {step} cut {cut} ({label}): {x}" for x in v]

        with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
            for nb, v in ex.map(one, enumerate(todo)):
                boots += nb
                viol += v
        return dict(points=len(todo), boots=boots, violations=viol)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="A,B,C")
    ap.add_argument("--variant", default="r3,upstream,v1")
    ap.add_argument("--sample", type=int, default=1,
                    help="every K-th point plus all metadata points (1: all)")
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--workdir")
    ap.add_argument("--no-sync", action="store_true",
                    help="negative test: abota's syncs make nothing durable "
                         "(ABOTA_POWERCUT_NOSYNC=1); violations are expected")
    o = ap.parse_args(argv)
    t0 = time.monotonic()
    work = o.workdir or tempfile.mkdtemp(prefix="abota-powercut-")
    try:
        c = Campaign(work, variants=o.variant.split(","))
        if o.no_sync:
            c.abota_env = {"ABOTA_POWERCUT_NOSYNC": "1"}
        tot = dict(points=0, boots=0, violations=[])
        for s in o.scenario.split(","):
            r = c.sweep(s, sample=o.sample, jobs=o.jobs or None)
            print(f"powercut: scenario {s}: {r['points']} cut points, {r['boots']} boots, "
                  f"{len(r['violations'])} violations", flush=True)
            for v in r["violations"]:
                print(f"  VIOLATION {v}")
            for k in ("points", "boots"):
                tot[k] += r[k]
            tot["violations"] += r["violations"]
        print(f"powercut: total: {tot['points']} cut points, {tot['boots']} boots, "
              f"{len(tot['violations'])} violations "
              f"({'sample 1/%d' % o.sample if o.sample > 1 else 'full sweep'}, "
              f"variants {o.variant}, {time.monotonic() - t0:.0f} s)")
        return 1 if tot["violations"] else 0
    finally:
        if not o.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
