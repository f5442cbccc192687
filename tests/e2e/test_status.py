"""`abota status` and `abota status mark-*` with file-backed slots and the noop,
custom, grub and uboot backends; uboot cross-checked with Debian's
fw_printenv/fw_setenv, grub with grub-editenv, and the JSON/shell field names
compared with the real `rauc status` (RAUC 1.8 on a private D-Bus)."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import abota, run

SLOTS = """
[slot.rootfs.0]
device={d}/slots/rootfs-a
type=ext4
bootname=A

[slot.rootfs.1]
device={d}/slots/rootfs-b
type=ext4
bootname=B

[slot.bootloader.0]
device={d}/slots/fip-a
parent=rootfs.0

[slot.bootloader.1]
device={d}/slots/fip-b
parent=rootfs.1
"""

STATUS = """[slot.rootfs.1]
bundle.compatible=abota-test
bundle.version=1.0
bundle.description=desc
bundle.build=b1
status=ok
sha256=ee3ab147de5374968661a29487928c610e09d094270cc604d90aa1d7649ab039
size=262144
installed.timestamp=2026-11-25T12:46:06Z
installed.count=2
activated.timestamp=2026-11-25T12:46:06Z
activated.count=2
"""


def setup_system(d, bootloader, system_extra="", extra="", cmdline="quiet rauc.slot=A"):
    d = str(d)
    os.makedirs(f"{d}/slots", exist_ok=True)
    os.makedirs(f"{d}/data", exist_ok=True)
    for n in ("rootfs-a", "rootfs-b", "fip-a", "fip-b"):
        with open(f"{d}/slots/{n}", "wb") as f:
            f.truncate(1 << 20)
    with open(f"{d}/cmdline", "w") as f:
        f.write(cmdline + "\n")
    with open(f"{d}/data/central.raucs", "w") as f:
        f.write(STATUS)
    conf = f"{d}/system.conf"
    with open(conf, "w") as f:
        f.write(f"[system]\ncompatible=abota-test\nbootloader={bootloader}\n"
                f"data-directory={d}/data\nmountprefix={d}/mnt\ncmdline-file={d}/cmdline\n"
                f"{system_extra}\n{extra}\n" + SLOTS.format(d=d))
    return conf


CUSTOM = """#!/bin/sh
d={d}
echo "$@" >> $d/calls
case "$1" in
get-primary) cat $d/primary;;
set-primary) echo $2 > $d/primary;;
get-state) cat $d/$2.state 2>/dev/null || echo bad;;
set-state) echo $3 > $d/$2.state;;
get-current) echo A;;
*) exit 1;;
esac
"""


def custom_system(d, **kw):
    script = d / "backend.sh"
    script.write_text(CUSTOM.format(d=d))
    script.chmod(0o755)
    (d / "primary").write_text("B\n")
    (d / "A.state").write_text("good\n")
    (d / "B.state").write_text("bad\n")
    return setup_system(d, "custom",
                        extra=f"[handlers]\nbootloader-custom-backend={script}\n", **kw)


def status_json(conf, *extra):
    p = abota("-c", conf, *extra, "status", "--detailed", "--output-format=json")
    return json.loads(p.stdout)


def slots_of(js):
    out = {}
    for item in js["slots"]:
        assert len(item) == 1
        out.update(item)
    return out


def test_status_custom_json_shell_readable(tmp_path):
    conf = custom_system(tmp_path)
    js = status_json(conf)
    assert js["compatible"] == "abota-test"
    assert js["booted"] == "A"
    assert js["boot_primary"] == "rootfs.1"
    s = slots_of(js)
    assert list(s) == ["rootfs.0", "rootfs.1", "bootloader.0", "bootloader.1"]
    assert s["rootfs.0"]["state"] == "booted"
    assert s["bootloader.0"]["state"] == "active"
    assert s["rootfs.1"]["state"] == "inactive"
    assert s["rootfs.0"]["boot_status"] == "good"
    assert s["rootfs.1"]["boot_status"] == "bad"
    assert s["bootloader.1"]["boot_status"] is None
    assert s["bootloader.1"]["parent"] == "rootfs.1"
    st = s["rootfs.1"]["slot_status"]
    assert st["bundle"]["version"] == "1.0"
    assert st["checksum"]["size"] == 262144
    assert st["installed"]["count"] == 2
    assert st["status"] == "ok"
    assert s["rootfs.0"]["slot_status"] == {"bundle": {"compatible": None}}
    # pretty is the same data
    p = abota("-c", conf, "status", "--detailed", "--output-format=json-pretty")
    assert json.loads(p.stdout) == js
    # shell
    p = abota("-c", conf, "status", "--detailed", "--output-format=shell")
    env = dict(line.split("=", 1) for line in p.stdout.splitlines())
    assert env["RAUC_SYSTEM_BOOTED_BOOTNAME"] == "'A'"
    assert env["RAUC_BOOT_PRIMARY"] == "'rootfs.1'"
    assert env["RAUC_SLOTS"] == "'1 2 3 4'"
    assert env["RAUC_SLOT_STATE_1"] == "'booted'"
    assert env["RAUC_SLOT_STATUS_CHECKSUM_SIZE_2"] == "'262144'"
    out = run("sh", "-c", f"eval \"$({p.args[0]} -c {conf} status --output-format=shell)\"; "
              "echo $RAUC_SLOT_BOOT_STATUS_2")
    assert out.stdout.strip() == "bad"
    # readable
    p = abota("-c", conf, "status")
    assert "Booted from: rootfs.0 (A)" in p.stdout
    assert "Activated: rootfs.1 (B)" in p.stdout
    assert "[bootloader.1] (" in p.stdout
    # get-current is not asked when the command line names the slot
    assert "get-current" not in (tmp_path / "calls").read_text()


def test_booted_detection(tmp_path):
    conf = custom_system(tmp_path, cmdline="root=/dev/sda1")
    # no rauc.slot=: custom get-current (A) before root=
    assert status_json(conf)["booted"] == "A"
    # root= by device path
    (tmp_path / "cmdline").write_text(f"root={tmp_path}/slots/rootfs-b\n")
    conf2 = setup_system(tmp_path / "n", "noop", cmdline=f"root={tmp_path}/n/slots/rootfs-b")
    js = status_json(conf2)
    assert js["booted"] == f"{tmp_path}/n/slots/rootfs-b"
    assert slots_of(js)["rootfs.1"]["state"] == "booted"
    assert js["boot_primary"] is None
    assert slots_of(js)["rootfs.1"]["boot_status"] == "unknown"
    # override wins
    js = status_json(conf2, "--override-boot-slot=rootfs.0")
    assert slots_of(js)["rootfs.0"]["state"] == "booted"
    # external boot: all inactive
    (tmp_path / "n" / "cmdline").write_text("root=/dev/nfs rw\n")
    js = status_json(conf2)
    assert js["booted"] == "/dev/nfs"
    assert all(v["state"] == "inactive" for v in slots_of(js).values())
    # unknown slot
    (tmp_path / "n" / "cmdline").write_text("rauc.slot=Z\n")
    p = abota("-c", conf2, "status", check=False)
    assert p.returncode == 1
    assert "'Z'" in p.stderr


def test_mark_custom(tmp_path):
    conf = custom_system(tmp_path)
    p = abota("-c", conf, "status", "mark-good", "other")
    assert p.stdout.strip() == "abota status: marked slot(s) rootfs.1 as good"
    assert (tmp_path / "B.state").read_text().strip() == "good"
    p = abota("-c", conf, "status", "mark-bad")
    assert p.stdout.strip() == "abota status: marked slot(s) rootfs.0 as bad"
    assert (tmp_path / "A.state").read_text().strip() == "bad"
    p = abota("-c", conf, "status", "mark-active", "rootfs.0")
    assert p.stdout.strip() == "abota status: activated slot rootfs.0"
    assert (tmp_path / "primary").read_text().strip() == "A"
    status = (tmp_path / "data" / "central.raucs").read_text()
    assert "[slot.rootfs.0]\nactivated.timestamp=" in status
    assert "activated.count=1" in status
    # bad targets
    p = abota("-c", conf, "status", "mark-good", "bootloader.0", check=False)
    assert p.returncode == 1 and "no bootname" in p.stderr
    p = abota("-c", conf, "status", "mark-good", "nope.0", check=False)
    assert p.returncode == 1 and "nope.0" in p.stderr
    p = abota("-c", conf, "status", "mark-wrong", check=False)
    assert p.returncode == 2


def test_mark_other_ambiguous_and_late_fallback(tmp_path):
    conf = setup_system(tmp_path, "grub", system_extra=f"grubenv={tmp_path}/grubenv\n"
                        "prevent-late-fallback=true",
                        extra=f"[slot.rootfs.2]\ndevice={tmp_path}/slots/fip-a\nbootname=C\n")
    p = abota("-c", conf, "status", "mark-good", "other", check=False)
    assert p.returncode == 1 and "ambiguous" in p.stderr
    p = abota("-c", conf, "status", "mark-bad", "other")
    assert "rootfs.2, rootfs.1 as bad" in p.stdout  # config order
    abota("-c", conf, "status", "mark-active", "rootfs.1")
    p = abota("-c", conf, "status", "mark-good")
    assert "marked slot(s) rootfs.0 as good" in p.stdout
    assert "marked slot(s) rootfs.2, rootfs.1 as bad" in p.stdout


def test_grub_backend(tmp_path):
    env = tmp_path / "grubenv"
    conf = setup_system(tmp_path, "grub", system_extra=f"grubenv={env}")
    editenv = shutil.which("grub-editenv")
    if editenv:
        run(editenv, env, "create")
        run(editenv, env, "set", "saved_entry=1")
    abota("-c", conf, "status", "mark-active", "other")
    abota("-c", conf, "status", "mark-good", "booted")
    data = env.read_bytes()
    assert len(data) == 1024 and data.startswith(b"# GRUB Environment Block\n")
    js = status_json(conf)
    assert js["boot_primary"] == "rootfs.1"
    assert slots_of(js)["rootfs.0"]["boot_status"] == "good"
    if not editenv:
        pytest.skip("grub-editenv not installed (grub-common)")
    listed = dict(l.split("=", 1) for l in run(editenv, env, "list").stdout.splitlines())
    assert listed["ORDER"] == "B A"
    assert listed["B_OK"] == "1" and listed["B_TRY"] == "0" and listed["A_OK"] == "1"
    assert listed["saved_entry"] == "1"
    # grub.cfg tried B and it failed: grub-editenv writes, we read
    run(editenv, env, "set", "B_TRY=1")
    js = status_json(conf)
    assert slots_of(js)["rootfs.1"]["boot_status"] == "bad"
    assert js["boot_primary"] == "rootfs.0"
    abota("-c", conf, "status", "mark-bad", "other")
    listed = dict(l.split("=", 1) for l in run(editenv, env, "list").stdout.splitlines())
    assert listed["B_OK"] == "0" and listed["B_TRY"] == "0"


def fw(tool):
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} not installed (libubootenv-tool)")
    return path


def test_uboot_backend_with_fw_tools(tmp_path):
    printenv, setenv = fw("fw_printenv"), fw("fw_setenv")
    envs = [tmp_path / "env1", tmp_path / "env2"]
    for e in envs:
        with open(e, "wb") as f:
            f.truncate(0x4000)
    fwconf = tmp_path / "fw_env.config"
    fwconf.write_text("".join(f"{e} 0x0 0x4000\n" for e in envs))
    defenv = tmp_path / "defenv"
    defenv.write_text("")
    # initialize the redundant environment with the real tool
    run(setenv, "-c", fwconf, "-f", defenv, "bootcmd", "run distro_bootcmd")
    conf = setup_system(tmp_path, "uboot", system_extra=f"fw-env-config={fwconf}\n"
                        "boot-attempts=3\nboot-attempts-primary=10")

    def env():
        out = run(printenv, "-c", fwconf).stdout
        return dict(l.split("=", 1) for l in out.splitlines())

    abota("-c", conf, "status", "mark-active", "booted")
    e = env()
    assert e["BOOT_ORDER"] == "A B" and e["BOOT_A_LEFT"] == "a"  # hex, as RAUC
    assert e["bootcmd"] == "run distro_bootcmd"
    abota("-c", conf, "status", "mark-good", "other")
    assert env()["BOOT_B_LEFT"] == "3"
    abota("-c", conf, "status", "mark-active", "other")
    e = env()
    assert e["BOOT_ORDER"] == "B A"
    js = status_json(conf)
    assert js["boot_primary"] == "rootfs.1"
    # U-Boot counts B down to 0 (written by the real tool): B is bad, A primary
    run(setenv, "-c", fwconf, "BOOT_B_LEFT", "0")
    js = status_json(conf)
    assert slots_of(js)["rootfs.1"]["boot_status"] == "bad"
    assert js["boot_primary"] == "rootfs.0"
    abota("-c", conf, "status", "mark-bad", "other")
    e = env()
    assert e["BOOT_ORDER"] == "A" and e["BOOT_B_LEFT"] == "0"
    # one store per operation on a redundant env: losing the copy just written
    # (power cut) leaves the previous complete state, never a mix
    newest = max(envs, key=lambda e: e.stat().st_mtime_ns)
    with open(newest, "r+b") as f:
        f.write(b"\0" * 8)
    e = env()
    assert (e["BOOT_ORDER"], e["BOOT_B_LEFT"]) in (("A", "0"), ("B A", "0"))


def test_uboot_refuses_invalid_env(tmp_path):
    env = tmp_path / "env"
    with open(env, "wb") as f:
        f.truncate(0x4000)
    fwconf = tmp_path / "fw_env.config"
    fwconf.write_text(f"{env} 0x0 0x4000\n")
    conf = setup_system(tmp_path, "uboot", system_extra=f"fw-env-config={fwconf}")
    p = abota("-c", conf, "status", "mark-active", check=False)
    assert p.returncode == 1 and "no valid copy" in p.stderr
    assert env.read_bytes() == b"\0" * 0x4000


def test_noop_and_unsupported(tmp_path):
    conf = setup_system(tmp_path / "a", "noop")
    p = abota("-c", conf, "status", "mark-good")
    assert "rootfs.0 as good" in p.stdout
    conf = setup_system(tmp_path / "b", "efi")
    js = status_json(conf)  # status still works, boot state unknown
    assert slots_of(js)["rootfs.0"]["boot_status"] == "unknown"
    p = abota("-c", conf, "status", "mark-good", check=False)
    assert p.returncode == 1 and "not supported" in p.stderr


def test_config_errors(tmp_path):
    conf = setup_system(tmp_path, "noop", system_extra="foo=bar")
    p = abota("-c", conf, "status", check=False)
    assert p.returncode == 1
    assert "system.conf:7: invalid key 'foo' in group [system]" in p.stderr
    conf = setup_system(tmp_path, "noop")
    p = abota("-c", conf, "-C", "system:compatible=other", "status", "--output-format=json")
    assert json.loads(p.stdout)["compatible"] == "other"
    p = abota("-c", conf, "-C", "slot.rootfs.0:type=jffs2", "status", check=False)
    assert "Unsupported slot type 'jffs2'" in p.stderr


def rauc_status(tmp_path, conf, *args):
    dbus_conf = tmp_path / "session.conf"
    dbus_conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={tmp_path}/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>
""")
    daemon = subprocess.Popen(["dbus-daemon", f"--config-file={dbus_conf}", "--nofork",
                               "--print-address"], stdout=subprocess.PIPE, text=True)
    addr = daemon.stdout.readline().strip()
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr, DBUS_SESSION_BUS_ADDRESS=addr)
    service = subprocess.Popen(["rauc", "service", f"--conf={conf}", "--override-boot-slot=A"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        outs = []
        for _ in range(100):
            if subprocess.run(["rauc", "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        for a in args:
            p = subprocess.run(["rauc", "status", *a], env=env, capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            outs.append(p.stdout)
        return outs
    finally:
        service.terminate()
        service.wait()
        daemon.terminate()
        daemon.wait()


def test_fields_match_real_rauc(tmp_path):
    if not shutil.which("rauc") or not shutil.which("dbus-daemon"):
        pytest.skip("rauc/dbus-daemon not installed")
    conf = custom_system(tmp_path)
    # RAUC rejects abota's additions (cmdline-file), so it gets a copy without them
    rconf = tmp_path / "rauc.conf"
    rconf.write_text("".join(l for l in open(conf).readlines()
                             if not l.startswith("cmdline-file=")))
    rj, rs = rauc_status(tmp_path, rconf, ["--detailed", "--output-format=json"],
                         ["--detailed", "--output-format=shell"])
    rj = json.loads(rj)
    aj = status_json(conf, "--override-boot-slot=A")
    # same top-level keys and values (slot order differs: RAUC uses hash order)
    assert set(rj) == set(aj)
    for k in ("compatible", "variant", "booted", "boot_primary"):
        assert rj[k] == aj[k], k
    assert slots_of(rj) == slots_of(aj)
    # shell: the same variable names; per-slot values equal after mapping the index
    ash = abota("-c", conf, "--override-boot-slot=A", "status", "--detailed",
                "--output-format=shell").stdout
    def parse(text):
        return dict(l.split("=", 1) for l in text.splitlines() if l)
    r, a = parse(rs), parse(ash)
    # RAUC 1.8 has no bundle hash (added later); everything else must match
    extra = {k for k in a if "BUNDLE_HASH" in k}
    assert set(a) - extra == set(r)
    rnames = r["RAUC_SYSTEM_SLOTS"].strip("'").split()
    anames = a["RAUC_SYSTEM_SLOTS"].strip("'").split()
    assert sorted(rnames) == sorted(anames)
    for k, v in r.items():
        base, _, idx = k.rpartition("_")
        if k.startswith("RAUC_SLOT_") and idx.isdigit():
            name = rnames[int(idx) - 1]
            assert a[f"{base}_{anames.index(name) + 1}"] == v, k
        elif k not in ("RAUC_SYSTEM_SLOTS",):
            assert a[k] == v, k
