"""The D-Bus service (`abota service`, embedded in abotad): RAUC's
de.pengutronix.rauc.Installer on a private dbus-daemon, driven with busctl and
dbus-send as existing tools do, compared member by member with RAUC 1.8's own
service; installs with signals, the one-installer rule, a client that goes
away mid-install, `abota install` through the service, access control (the
service's check and the policy file loaded into a system-type bus)."""
import json
import os
import pwd
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from conftest import ABOTA, SRCDIR, abota, make_content, run
from test_https import servers, tls, www  # noqa: F401 (fixtures)
from test_install import Device
from hawkbithelp import ABOTAD

NAME = "de.pengutronix.rauc"
IFACE = "de.pengutronix.rauc.Installer"
ERR_RAUC = "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code30"


class Bus:
    """A private dbus-daemon on an abstract socket, so unprivileged users
    can reach it too.  kind=system loads data/de.pengutronix.rauc.conf."""

    def __init__(self, tmp, kind="session"):
        self.tmp = tmp
        conf = os.path.join(tmp, f"bus-{kind}.conf")
        sock = f"unix:abstract=/abota-test-{uuid.uuid4().hex}"
        if kind == "session":
            policy = """<policy context="default"><allow user="*"/>
<allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>"""
        else:
            # what a system bus does: deny by default, the service's policy file opens it
            policy = f"""<policy context="default"><allow user="*"/><deny own="*"/>
<deny send_type="method_call"/><allow send_type="signal"/>
<allow send_requested_reply="true" send_type="method_return"/>
<allow send_requested_reply="true" send_type="error"/>
<allow receive_type="method_call"/><allow receive_type="method_return"/>
<allow receive_type="error"/><allow receive_type="signal"/>
<allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
<allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
</policy>
<policy user="root"><allow eavesdrop="true"/></policy>
<include>{SRCDIR}/data/de.pengutronix.rauc.conf</include>"""
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>{kind}</type><listen>{sock}</listen><auth>EXTERNAL</auth>
{policy}</busconfig>
""")
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                                      "--print-address"], stdout=subprocess.PIPE, text=True)
        self.addr = self.proc.stdout.readline().strip()
        assert self.addr, "dbus-daemon did not start"
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.addr,
                        DBUS_SESSION_BUS_ADDRESS=self.addr)

    def busctl(self, *args, check=True, user=None):
        cmd = ["busctl", f"--address={self.addr}", *map(str, args)]
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"busctl {args}: {p.stderr}")
        return p

    def call(self, method, sig="", *args, check=True, user=None):
        p = self.busctl("--json=short", "call", NAME, "/", IFACE if "." not in method else
                        method.rsplit(".", 1)[0], method.rsplit(".", 1)[-1], sig, *args,
                        check=check, user=user)
        if p.returncode != 0:
            return p
        return json.loads(p.stdout) if p.stdout.strip() else {}

    def error_of(self, method, sig="", *args, user=None):
        """(error name, message) of a failing call, read from the bus itself
        (busctl monitor), as any client (GDBus, sd-bus, dbus-python) sees it."""
        path = os.path.join(self.tmp, f"err-{uuid.uuid4().hex}.json")
        with open(path, "w") as f:
            mon = subprocess.Popen(["busctl", f"--address={self.addr}", "--json=short",
                                    "monitor"], stdout=f, stderr=f)
            try:
                wait_monitoring(path)
                iface, _, member = (IFACE + "." + method if "." not in method
                                    else method).rpartition(".")
                p = self.busctl("call", NAME, "/", iface, member, sig, *args, check=False,
                                user=user)
                assert p.returncode != 0, p.stdout
                end = time.time() + 5
                while time.time() < end:
                    errs = [json.loads(l) for l in open(path)
                            if '"type":"error"' in l and l.endswith("\n")]
                    errs = [e for e in errs if e.get("sender") != "org.freedesktop.DBus"
                            or "AccessDenied" in e["error_name"]]
                    if errs:
                        e = errs[-1]
                        return e["error_name"], e["payload"]["data"][0]
                    time.sleep(0.05)
                raise AssertionError(f"no error reply seen: {p.stderr}")
            finally:
                mon.terminate()
                mon.wait()

    def prop(self, name):
        p = self.busctl("--json=short", "get-property", NAME, "/", IFACE, name)
        return json.loads(p.stdout)

    def introspect(self):
        p = self.busctl("introspect", "--xml-interface", NAME, "/")
        return ET.fromstring(p.stdout)

    def wait_name(self, proc, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            p = self.busctl("status", NAME, check=False)
            if p.returncode == 0:
                return
            if proc.poll() is not None:
                raise AssertionError(f"service exited: {proc.stderr.read()}")
            time.sleep(0.05)
        raise AssertionError("service did not take the bus name")

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def wait_monitoring(path, timeout=10):
    """busctl says so once BecomeMonitor succeeded."""
    end = time.time() + timeout
    while time.time() < end:
        if "Monitoring bus message stream" in open(path).read():
            return
        time.sleep(0.02)
    raise AssertionError("busctl monitor did not start")


class Monitor:
    """busctl monitor in JSON: every signal the service sends."""

    def __init__(self, bus):
        self.path = os.path.join(bus.tmp, f"monitor-{uuid.uuid4().hex}.json")
        self.f = open(self.path, "w")
        self.proc = subprocess.Popen(["busctl", f"--address={bus.addr}", "--json=short",
                                      "monitor", NAME], stdout=self.f, stderr=self.f)
        wait_monitoring(self.path)

    def signals(self):
        out = []
        for line in open(self.path):
            # a line busctl is still writing is read again next time
            if line.startswith("{") and line.endswith("\n"):
                m = json.loads(line)
                if m.get("type") == "signal" and m.get("path") == "/":
                    out.append(m)
        return out

    def wait_completed(self, timeout=60):
        """Completed's result, once Operation went back to idle after it."""
        end = time.time() + timeout
        while time.time() < end:
            sigs = self.signals()
            done = [i for i, s in enumerate(sigs) if s["member"] == "Completed"]
            if done and any(s["member"] == "PropertiesChanged" and
                            "Operation" in s["payload"]["data"][1]
                            for s in sigs[done[0]:]):
                return sigs[done[0]]["payload"]["data"][0]
            time.sleep(0.05)
        raise AssertionError("no Completed signal followed by Operation idle")

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.f.close()


def start_service(bus, conf, *extra, cmd=None):
    cmd = cmd or [ABOTA, "-c", conf, "--override-boot-slot=A", "service",
                  f"--dbus={bus.addr}", *extra]
    p = subprocess.Popen(cmd, env=bus.env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    bus.wait_name(p)
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return p.stderr.read() if p.stderr else ""


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("dbus-bundles")
    out = {}
    for name, kw in (("v2", {"version": "2.0"}),
                     ("other", {"compatible": "someone-else", "version": "3.0"})):
        content = make_content(str(d / f"c-{name}"), rootfs_kib=4096, **kw)
        b = d / f"{name}.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, b)
        out[name] = str(b)
        out[name + "-content"] = content
    # RAUC 1.8 mounts verity bundles with device-mapper; plain ones need loop only
    out["v2-plain"] = str(d / "v2-plain.raucb")
    abota("bundle", "--format", "plain", "--cert", pki.signer[0], "--key", pki.signer[1],
          out["v2-content"], out["v2-plain"])
    return out


@pytest.fixture
def env(tmp_path, pki):
    """A device, a private bus and abota's service on it."""
    dev = Device(str(tmp_path / "dev"), pki)
    bus = Bus(str(tmp_path))
    try:
        svc = start_service(bus, dev.conf)
        yield dev, bus, svc
        log = stop(svc)
    finally:
        bus.close()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log


def slow_preinstall(dev, seconds):
    """Makes installs take a while (the pre-install handler sleeps)."""
    p = os.path.join(dev.bl, "pre-install")
    with open(p, "a") as f:
        f.write(f"sleep {seconds}\n")


def end_of_install(sigs):
    """The last two signals of an install, values only."""
    out = []
    for s in sigs[-2:]:
        d = s["payload"]["data"]
        out.append((s["member"], {k: v["data"] for k, v in d[1].items()}
                    if s["member"] == "PropertiesChanged" else d))
    return out


def start_of_install(sigs):
    """What the PropertiesChanged signals before the first step say."""
    seen = {}
    for s in sigs:
        if s["member"] != "PropertiesChanged":
            break
        for k, v in s["payload"]["data"][1].items():
            if k == "Progress" and "Progress" in seen:
                return seen
            seen[k] = v["data"]
    return seen


def members(root, iface):
    node = root.find(f"interface[@name='{iface}']")
    assert node is not None, f"{iface} not exported"
    out = {}
    for m in node:
        args = [(a.get("name"), a.get("type"), a.get("direction")) for a in m.findall("arg")]
        out[m.get("name")] = (m.tag, m.get("type"), m.get("access"), args)
    return out


def slot_shapes(reply):
    """GetSlotStatus as {slot: {key: D-Bus type}}."""
    assert reply["type"] == "a(sa{sv})"
    return {name: {k: v["type"] for k, v in d.items()} for name, d in reply["data"][0]}


# --------------------------------------------------------------------------

def test_same_api_as_rauc_service(tmp_path, pki, bundles):
    """Every member of RAUC 1.8's Installer interface exists in abota's with the
    same kind, signature, argument names and access; properties and
    GetSlotStatus have the same values and value types on the same device."""
    dev = Device(str(tmp_path / "dev"), pki)
    os.makedirs(tmp_path / "r")
    rbus, abus = Bus(str(tmp_path / "r")), Bus(str(tmp_path))
    rsvc = asvc = None
    try:
        rsvc = start_service(rbus, dev.conf, cmd=["rauc", "service", f"--conf={dev.conf}",
                                                   f"--mount={tmp_path}/mnt",
                                                   "--override-boot-slot=A"])
        asvc = start_service(abus, dev.conf)
        rauc, ours = members(rbus.introspect(), IFACE), members(abus.introspect(), IFACE)
        assert set(rauc) <= set(ours)
        for name, shape in rauc.items():
            assert ours[name] == shape, name
        # 1.9+ members RAUC 1.8 lacks
        assert ours["InspectBundle"][3] == [("source", "s", "in"), ("args", "a{sv}", "in"),
                                            ("info", "a{sv}", "out")]
        for p in ("Operation", "LastError", "Progress", "Compatible", "Variant", "BootSlot"):
            assert abus.prop(p) == rbus.prop(p), p
        assert abus.call("GetPrimary") == rbus.call("GetPrimary") == \
            {"type": "s", "data": ["rootfs.0"]}
        # the same keys with the same types per slot, before and after mark-active
        assert slot_shapes(abus.call("GetSlotStatus")) == slot_shapes(rbus.call("GetSlotStatus"))
        r = rbus.call("Mark", "ss", "active", "rootfs.1")
        a = abus.call("Mark", "ss", "active", "rootfs.1")
        assert a == r == {"type": "ss", "data": ["rootfs.1", "activated slot rootfs.1"]}
        assert slot_shapes(abus.call("GetSlotStatus")) == slot_shapes(rbus.call("GetSlotStatus"))
        assert slot_shapes(abus.call("GetSlotStatus"))["rootfs.1"]["activated.count"] == "u"
        # errors: the same D-Bus error name as RAUC's GDBus service
        for args in (("bogus", "booted"), ("good", "nope")):
            rn, _ = rbus.error_of("Mark", "ss", *args)
            an, _ = abus.error_of("Mark", "ss", *args)
            assert rn == an == ERR_RAUC
        rn, rm = rbus.error_of("InstallBundle", "sa{sv}", "/x.raucb", 1, "foo", "i", 1)
        an, am = abus.error_of("InstallBundle", "sa{sv}", "/x.raucb", 1, "foo", "i", 1)
        assert (rn, rm) == (an, am) == (ERR_RAUC, "Unsupported key: foo")
        # an install: the same signals at the start and at the end (a plain
        # bundle: RAUC 1.8 mounts verity ones with device-mapper)
        seqs = []
        for bus in (rbus, abus):
            mon = Monitor(bus)
            bus.call("InstallBundle", "sa{sv}", bundles["v2-plain"], 0)
            assert mon.wait_completed() == 0, bus.prop("LastError")
            mon.close()
            seqs.append(mon.signals())
        assert start_of_install(seqs[0]) == start_of_install(seqs[1]) == \
            {"Operation": "installing", "LastError": "", "Progress": [0, "Installing", 1]}
        assert end_of_install(seqs[0]) == end_of_install(seqs[1]) == \
            [("Completed", [0]), ("PropertiesChanged", {"Operation": "idle"})]
    finally:
        for svc in (rsvc, asvc):
            if svc:
                stop(svc)
        rbus.close()
        abus.close()


def test_read_only_methods(env, bundles, fixtures):
    dev, bus, _ = env
    assert bus.prop("Compatible") == {"type": "s", "data": "abota-test"}
    assert bus.prop("BootSlot") == {"type": "s", "data": "A"}
    assert bus.prop("Operation") == {"type": "s", "data": "idle"}
    assert bus.prop("Progress") == {"type": "(isi)", "data": [0, "", 0]}
    st = dict(bus.call("GetSlotStatus")["data"][0])
    assert list(st) == ["rootfs.0", "rootfs.1", "bootloader.0", "bootloader.1"]
    assert st["rootfs.0"]["state"]["data"] == "booted"
    assert st["bootloader.0"]["state"]["data"] == "active"
    assert st["bootloader.1"]["parent"]["data"] == "rootfs.1"
    assert st["rootfs.1"]["boot-status"]["data"] == "good"
    assert "boot-status" not in st["bootloader.1"]
    # Info and InspectBundle verify with the service's keyring
    assert bus.call("Info", "s", bundles["v2"])["data"] == ["abota-test", "2.0"]
    info = bus.call("InspectBundle", "sa{sv}", bundles["v2"], 0)["data"][0]
    assert info["update"]["data"]["version"]["data"] == "2.0"
    assert info["bundle"]["data"]["format"]["data"] == "verity"
    assert info["bundle"]["data"]["verity-size"]["type"] == "t"
    imgs = info["images"]["data"]
    assert [i["slot-class"]["data"] for i in imgs] == ["rootfs", "bootloader"]
    assert imgs[0]["size"]["type"] == "t" and imgs[0]["type"]["data"] == "ext4"
    assert len(info["manifest-hash"]["data"]) == 64
    # a bundle from an untrusted signer (RAUC's fixture) is refused
    name, msg = bus.error_of("Info", "s", f"{fixtures}/sample-plain.raucb")
    assert name == ERR_RAUC and ("signature" in msg.lower() or "certificate" in msg.lower()), msg
    name, msg = bus.error_of("InspectBundle", "sa{sv}", "relative.raucb", 0)
    assert "absolute path" in msg
    # abota's own interface
    hist = dict(bus.call("org.abota.Device1.GetBankHistory")["data"][0])
    assert list(hist) == ["rootfs.0", "rootfs.1"]
    assert hist["rootfs.0"]["booted"]["data"] is True
    assert hist["rootfs.0"]["primary"]["data"] is True
    assert bus.call("org.abota.Device1.GetInterruptedInstall")["data"] == [{}]
    p = bus.call("org.abota.Device1.GetFwuStatus", check=False)
    assert p.returncode != 0 and "not fwu" in p.stderr


def test_install_bundle_signals_and_status(env, bundles):
    dev, bus, _ = env
    mon = Monitor(bus)
    tx = str(uuid.uuid4())
    bus.call("InstallBundle", "sa{sv}", bundles["v2"], 3, "transaction-id", "s", tx,
             "ignore-compatible", "b", "false", "http-headers", "as", 1, "X-Test: 1")
    assert mon.wait_completed() == 0
    mon.close()
    sigs = mon.signals()
    changed = [s["payload"]["data"][1] for s in sigs if s["member"] == "PropertiesChanged"]
    ops = [c["Operation"]["data"] for c in changed if "Operation" in c]
    assert ops == ["installing", "idle"]
    prog = [c["Progress"]["data"] for c in changed if "Progress" in c]
    pcts = [p[0] for p in prog]
    assert pcts[0] == 0 and pcts[-1] == 100 and pcts == sorted(pcts), prog
    assert any("Installing done" in p[1] for p in prog)
    # RAUC's order at the end: Completed, then Operation back to idle
    assert end_of_install(sigs) == [("Completed", [0]), ("PropertiesChanged", {"Operation": "idle"})]
    # the install did what `abota install` does
    content = bundles["v2-content"]
    img = open(os.path.join(content, "rootfs.ext4"), "rb").read()
    assert dev.slot_bytes("rootfs-b", len(img)) == img
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
    st = dict(bus.call("GetSlotStatus")["data"][0])["rootfs.1"]
    assert st["status"]["data"] == "ok"
    assert st["installed.transaction"]["data"] == tx
    assert st["bundle.version"]["data"] == "2.0"
    assert st["size"]["type"] == "t" and st["installed.count"]["type"] == "u"
    assert bus.prop("LastError")["data"] == ""
    assert bus.prop("Operation")["data"] == "idle"


def test_failed_install_sets_last_error(env, bundles):
    dev, bus, _ = env
    mon = Monitor(bus)
    bus.call("Install", "s", bundles["other"])  # the deprecated one-argument method
    assert mon.wait_completed() == 1
    mon.close()
    err = bus.prop("LastError")["data"]
    assert "compatible" in err and "someone-else" in err, err
    assert bus.prop("Progress")["data"] == [100, "Installing failed.", 1]
    assert dev.slot_bytes("rootfs-b", 4096) == b"\0" * 4096
    # the next install clears LastError
    mon = Monitor(bus)
    bus.call("InstallBundle", "sa{sv}", bundles["v2"], 0)
    assert mon.wait_completed() == 0
    mon.close()
    assert bus.prop("LastError")["data"] == ""


def test_second_install_refused_while_busy(env, bundles):
    dev, bus, _ = env
    slow_preinstall(dev, 2)
    mon = Monitor(bus)
    bus.call("InstallBundle", "sa{sv}", bundles["v2"], 0)
    assert bus.prop("Operation")["data"] == "installing"
    name, msg = bus.error_of("InstallBundle", "sa{sv}", bundles["v2"], 0)
    assert (name, msg) == (ERR_RAUC, "already processing a different method")
    name, msg = bus.error_of("Mark", "ss", "good", "booted")
    assert msg == "already processing a different method"
    # reading stays possible while installing (RAUC refuses GetSlotStatus then)
    assert bus.call("GetSlotStatus")["type"] == "a(sa{sv})"
    p = run(ABOTA, "install", bundles["v2"], check=False, env=bus.env)
    assert p.returncode == 1 and "already processing" in p.stderr
    assert mon.wait_completed() == 0
    mon.close()
    assert len([s for s in mon.signals() if s["member"] == "Completed"]) == 1


def test_abota_install_through_service(env, bundles):
    """`abota install` without a local configuration uses the running service
    ($DBUS_SYSTEM_BUS_ADDRESS), forwards its progress and its result."""
    dev, bus, svc = env
    p = run(ABOTA, "install", "--progress", bundles["v2"], env=bus.env)
    assert "through the D-Bus service" in p.stdout
    lines = [l for l in p.stdout.splitlines() if "%" in l]
    pcts = [int(l.split("%")[0]) for l in lines]
    assert pcts[0] == 0 and pcts[-1] == 100 and pcts == sorted(pcts)
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
    p = run(ABOTA, "install", bundles["other"], check=False, env=bus.env)
    assert p.returncode == 1
    assert "Installing" in p.stderr and "compatible" in p.stderr
    # a relative path is sent as an absolute one
    p = run("sh", "-c", f"cd {os.path.dirname(bundles['v2'])} && {ABOTA} install v2.raucb",
            env=bus.env)
    assert "succeeded" in p.stdout
    # local setup options and --dbus do not mix
    p = run(ABOTA, "-c", dev.conf, "install", f"--dbus={bus.addr}", bundles["v2"],
            check=False, env=bus.env)
    assert p.returncode == 2 and "own configuration" in p.stderr


def test_abota_install_standalone_without_service(tmp_path, pki, bundles):
    """No service on the bus: abota install works on its own (with -c, as
    always), and without -c it tries the local default configuration."""
    dev = Device(str(tmp_path / "dev"), pki)
    bus = Bus(str(tmp_path))
    try:
        p = run(ABOTA, "-c", dev.conf, "install", bundles["v2"], env=bus.env)
        assert "next boot tries B" in p.stdout
        p = run(ABOTA, "install", f"--dbus={bus.addr}", bundles["v2"], check=False,
                env=bus.env)
        assert p.returncode == 1 and "through the D-Bus service" not in p.stdout
    finally:
        bus.close()


def test_client_disconnect_does_not_stop_install(env, bundles):
    dev, bus, _ = env
    slow_preinstall(dev, 1)
    mon = Monitor(bus)
    client = subprocess.Popen([ABOTA, "install", "--progress", bundles["v2"]], env=bus.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = client.stdout.readline()
    assert "%" in first, first + client.stderr.read()
    client.kill()
    client.wait()
    assert mon.wait_completed() == 0
    mon.close()
    st = dict(bus.call("GetSlotStatus")["data"][0])["rootfs.1"]
    assert st["status"]["data"] == "ok"
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"


def test_mark(env):
    dev, bus, _ = env
    assert bus.call("Mark", "ss", "bad", "other")["data"] == \
        ["rootfs.1", "marked slot(s) rootfs.1 as bad"]
    assert os.path.exists(os.path.join(dev.bl, "bad-B"))
    assert bus.call("Mark", "ss", "good", "rootfs.1")["data"] == \
        ["rootfs.1", "marked slot(s) rootfs.1 as good"]
    assert not os.path.exists(os.path.join(dev.bl, "bad-B"))
    assert bus.call("Mark", "ss", "good", "booted")["data"][0] == "rootfs.0"
    assert bus.call("Mark", "ss", "active", "other")["data"] == \
        ["rootfs.1", "activated slot rootfs.1"]
    assert bus.call("GetPrimary")["data"] == ["rootfs.1"]
    assert "set-primary B" in dev.calls()
    name, msg = bus.error_of("Mark", "ss", "active", "bootloader.1")
    assert name == ERR_RAUC and "no bootname" in msg
    name, msg = bus.error_of("Mark", "ss", "maybe", "booted")
    assert "unknown state 'maybe'" in msg


def test_service_event_log(tmp_path, pki):
    """The service logs RAUC's boot event once per boot (not again when it restarts
    within the boot), "Service started" each time, and marks made through D-Bus."""
    dev = Device(str(tmp_path / "dev"), pki)
    with open(dev.conf, "a") as f:
        f.write("\n[log.history]\nfilename=history.log\n")
    bus = Bus(str(tmp_path))
    try:
        for _ in range(2):
            svc = start_service(bus, dev.conf)
            bus.call("Mark", "ss", "good", "booted")
            log = stop(svc)
            assert "AddressSanitizer" not in log and "runtime error" not in log, log
    finally:
        bus.close()
    text = open(os.path.join(dev.base, "data", "history.log")).read()
    boot_id = open("/proc/sys/kernel/random/boot_id").read().strip()
    assert text.count(": Booted into rootfs.0 (A)\n") == 1, text
    assert f"boot ID: {boot_id}" in text
    assert text.count(": Service started\n") == 2, text
    assert text.count(": Marked slot rootfs.0 as good\n") == 2, text
    assert "                      bootname: A\n" in text


def test_unprivileged_caller(env, bundles):
    """The service itself lets only root (or --install-group) change the
    device; anyone may read."""
    dev, bus, _ = env
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    os.chmod(os.path.dirname(bundles["v2"]), 0o755)
    assert bus.call("GetPrimary", user=nobody)["data"] == ["rootfs.0"]
    assert bus.prop("Operation")["data"] == "idle"
    for method, args in (("InstallBundle", ("sa{sv}", bundles["v2"], 0)),
                         ("Install", ("s", bundles["v2"])),
                         ("Mark", ("ss", "good", "booted"))):
        name, msg = bus.error_of(method, *args, user=nobody)
        assert name == "org.freedesktop.DBus.Error.AccessDenied", (method, name)
        assert "may not change the device" in msg
    assert dev.calls().count("set-state A good") == 0


def test_install_group(tmp_path, pki):
    dev = Device(str(tmp_path / "dev"), pki)
    bus = Bus(str(tmp_path))
    nogroup = "nogroup"
    gid = subprocess.run(["getent", "group", nogroup], capture_output=True,
                         text=True).stdout.split(":")[2]
    svc = start_service(bus, dev.conf, f"--install-group={nogroup}")
    try:
        nobody = pwd.getpwnam("nobody").pw_uid
        p = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={gid}", "--clear-groups",
                            "busctl", f"--address={bus.addr}", "call", NAME, "/", IFACE, "Mark",
                            "ss", "good", "booted"], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert "set-state A good" in dev.calls()
    finally:
        stop(svc)
        bus.close()
    p = run(ABOTA, "-c", dev.conf, "service", "--install-group=no-such-group-x",
            f"--dbus={bus.addr}", check=False)
    assert p.returncode == 1 and "install group 'no-such-group-x' does not exist" in p.stderr


def test_policy_file_on_system_bus(tmp_path, pki, bundles):
    """data/de.pengutronix.rauc.conf in a deny-by-default system bus: only
    root may own the name; others may read but not install or mark."""
    dev = Device(str(tmp_path / "dev"), pki)
    bus = Bus(str(tmp_path), kind="system")
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    try:
        # an unprivileged process cannot take the name
        p = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
                            "dbus-send", "--session", "--print-reply",
                            "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus.RequestName", f"string:{NAME}", "uint32:0"],
                           capture_output=True, text=True, env=bus.env, timeout=20)
        assert p.returncode != 0 and "AccessDenied" in p.stderr, p.stderr
        svc = start_service(bus, dev.conf)
        try:
            assert bus.call("GetPrimary", user=nobody)["data"] == ["rootfs.0"]
            p = bus.busctl("get-property", NAME, "/", IFACE, "Operation", user=nobody)
            assert '"idle"' in p.stdout
            for method, args in (("InstallBundle", ("sa{sv}", bundles["v2"], 0)),
                                 ("Mark", ("ss", "good", "booted"))):
                p = bus.busctl("call", NAME, "/", IFACE, method, *args, user=nobody,
                               check=False)
                assert p.returncode != 0 and "Access denied" in p.stderr or \
                    "rejected" in p.stderr, p.stderr
            # root may
            assert bus.call("Mark", "ss", "good", "booted")["data"][0] == "rootfs.0"
        finally:
            stop(svc)
    finally:
        bus.close()


def test_service_bad_config_fails_at_start(tmp_path):
    conf = tmp_path / "system.conf"
    conf.write_text("[system]\ncompatible=x\nbootloader=noop\nbogus=1\n")
    bus = Bus(str(tmp_path))
    try:
        p = run(ABOTA, "-c", conf, "service", f"--dbus={bus.addr}", check=False)
        assert p.returncode == 1 and "bogus" in p.stderr
        assert len([l for l in p.stderr.splitlines() if l.strip()]) == 1
        p = run(ABOTA, "-c", conf, "service", "--dbus=tcp", check=False)
        assert p.returncode == 2 and "not system, session, none or a D-Bus address" in p.stderr
    finally:
        bus.close()


def test_abota_install_through_rauc_service(tmp_path, pki, bundles):
    """abota's client works against RAUC's own service too: `abota install`
    hands an abota-built bundle to `rauc service` 1.8 and reports its result."""
    dev = Device(str(tmp_path / "dev"), pki)
    bus = Bus(str(tmp_path))
    svc = start_service(bus, dev.conf, cmd=["rauc", "service", f"--conf={dev.conf}",
                                            f"--mount={tmp_path}/mnt",
                                            "--override-boot-slot=A"])
    try:
        p = run(ABOTA, "install", "--progress", bundles["v2-plain"], env=bus.env, check=False)
        assert p.returncode == 0, p.stderr
        assert "through the D-Bus service" in p.stdout and "100%" in p.stdout
        img = open(os.path.join(bundles["v2-content"], "rootfs.ext4"), "rb").read()
        assert dev.slot_bytes("rootfs-b", len(img)) == img
        assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
        # a failure: RAUC's LastError is what the client prints
        p = run(ABOTA, "install", bundles["other"], env=bus.env, check=False)
        last = bus.prop("LastError")["data"]
        assert p.returncode == 1 and last and f"abota install: {last}" in p.stderr, p.stderr
    finally:
        stop(svc)
        bus.close()


def test_fwu_status_on_simulated_board(tmp_path):
    """org.abota.Device1.GetFwuStatus on the simulated STM32MP board tells
    what `abota status` tells: banks, trial budget, rollback."""
    from simhelp import Board
    b = Board(tmp_path / "board", full=False)
    b.boot(check_rc=0)
    conf = os.path.join(b.dir, "system.conf")
    bus = Bus(str(tmp_path))
    svc = start_service(bus, conf, cmd=[ABOTA, "-c", conf, "service", f"--dbus={bus.addr}"])
    try:
        st = bus.call("org.abota.Device1.GetFwuStatus")["data"][0]
        ref = json.loads(abota("-c", conf, "status", "--output-format=json").stdout)["fwu"]
        assert st["active-index"]["data"] == ref["active_index"] == 0
        assert st["previous-active-index"]["data"] == ref["previous_active_index"]
        assert st["trial-boots-left"]["data"] == ref["trial_boots_left"]
        assert st["trial-boots-max"]["data"] == ref["trial_boots_max"]
        assert st["rollback"]["data"] is False and st["booted-bank"]["data"] == 0
        banks = st["banks"]["data"]
        assert [(i, n, s) for i, n, s in banks] == \
            [(x["index"], x["bootname"], x["state"]) for x in ref["banks"]]
        assert bus.prop("BootSlot")["data"] == "A"
        hist = dict(bus.call("org.abota.Device1.GetBankHistory")["data"][0])
        assert hist["rootfs.0"]["booted"]["data"] is True
    finally:
        stop(svc)
        bus.close()


def test_https_args(env, servers, tls):
    """rauc-hawkbit-updater's way: an https URL with tls-ca, a client
    certificate (tls-cert/tls-key) and http-headers (Authorization)."""
    dev, bus, _ = env
    url = servers["token"].url("b.raucb")
    name, msg = bus.error_of("InspectBundle", "sa{sv}", url, 1, "tls-ca", "s", tls["ca.pem"])
    assert name == ERR_RAUC and "401" in msg
    info = bus.call("InspectBundle", "sa{sv}", url, 2, "tls-ca", "s", tls["ca.pem"],
                    "http-headers", "as", 1, "Authorization: TargetToken s3cret")
    assert info["data"][0]["update"]["data"]["version"]["data"] == "2.0"
    name, msg = bus.error_of("InspectBundle", "sa{sv}", url, 1, "http-headers", "as", 1,
                             "X: a\r\nInjected: 1")
    assert "is not 'Name: value'" in msg
    name, msg = bus.error_of("InstallBundle", "sa{sv}", url, 1, "tls-key", "s", tls["cli.key"])
    assert msg == "tls-cert and tls-key must be given together"
    mon = Monitor(bus)
    bus.call("InstallBundle", "sa{sv}", servers["mtls"].url("b.raucb"), 3,
             "tls-ca", "s", tls["ca.pem"], "tls-cert", "s", tls["cli.pem"],
             "tls-key", "s", tls["cli.key"])
    assert mon.wait_completed() == 0, bus.prop("LastError")
    mon.close()
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"


def test_client_exit_code_when_service_vanishes(env, bundles):
    """RAUC's client convention: the service going away mid-install is exit 2."""
    dev, bus, svc = env
    slow_preinstall(dev, 3)
    client = subprocess.Popen([ABOTA, "install", "--progress", bundles["v2"]], env=bus.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "%" in client.stdout.readline()
    svc.kill()
    out, err = client.communicate(timeout=30)
    assert client.returncode == 2, (out, err)
    assert "vanished" in err


def test_abotad_serves_dbus(tmp_path, pki, bundles):
    """abotad --dbus=ADDRESS: the hawkBit agent (here polling a server that is
    not there) serves the same API from its poll loop; an install through
    D-Bus runs while the agent keeps going, and the agent stops cleanly."""
    dev = Device(str(tmp_path / "dev"), pki)
    bus = Bus(str(tmp_path))
    hb = tmp_path / "hawkbit.conf"
    hb.write_text("[client]\nhawkbit_server=127.0.0.1:9\nssl=false\ntenant_id=default\n"
                  "target_name=dev1\nauth_token=x\n"
                  f"bundle_download_location={tmp_path}/dl.raucb\nretry_wait=1\n"
                  f"status_file={tmp_path}/hawkbit.status\n\n[device]\nserial=1\n")
    svc = start_service(bus, dev.conf, cmd=[ABOTAD, "-c", hb, "-s", dev.conf,
                                            f"--dbus={bus.addr}"])
    try:
        assert bus.prop("Compatible")["data"] == "abota-test"
        assert bus.call("GetPrimary")["data"] == ["rootfs.0"]
        mon = Monitor(bus)
        bus.call("InstallBundle", "sa{sv}", bundles["v2"], 0)
        assert mon.wait_completed() == 0
        mon.close()
        assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
        st = dict(bus.call("GetSlotStatus")["data"][0])["rootfs.1"]
        assert st["status"]["data"] == "ok" and st["bundle.version"]["data"] == "2.0"
    finally:
        log = stop(svc)
        bus.close()
    assert svc.returncode == 0, log
    assert "AddressSanitizer" not in log and "runtime error" not in log, log


def libsystemd_path():
    """The file the dynamic loader maps for libsystemd.so.0: abotad links it."""
    for line in run("ldd", ABOTAD).stdout.splitlines():
        if line.strip().startswith("libsystemd.so.0 =>"):
            return os.path.realpath(line.split("=>")[1].split("(")[0].strip())
    raise AssertionError("abotad does not link libsystemd.so.0")


def test_cli_loads_libsystemd_only_for_dbus(env, bundles):
    """The abota CLI does not link libsystemd (sdbus_dl.c): a command that
    speaks no D-Bus never loads it, `abota service` and `abota install`
    through the service load it on their first D-Bus call."""
    dev, bus, svc = env
    needed = run("readelf", "-d", ABOTA).stdout
    assert "libsystemd" not in needed and "libc.so" in needed
    debug = {"LD_DEBUG": "files"}
    p = run(ABOTA, "-c", dev.conf, "--override-boot-slot=A", "status", env=debug)
    assert "libcrypto.so" in p.stderr  # LD_DEBUG reports what is loaded
    assert "libsystemd" not in p.stderr
    p = run(ABOTA, "-c", dev.conf, "--override-boot-slot=A", "install", bundles["v2"],
            env=debug)
    assert "next boot tries B" in p.stdout and "libsystemd" not in p.stderr
    # the running service has it mapped
    maps = open(f"/proc/{svc.pid}/maps").read()
    assert "libsystemd.so.0" in maps
    p = run(ABOTA, "install", bundles["v2"], env=dict(bus.env, **debug))
    assert "through the D-Bus service" in p.stdout
    assert "file=libsystemd.so.0" in p.stderr and "dynamically loaded" in p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a mount namespace (root)")
@pytest.mark.skipif(any(os.path.exists(p) for p in ("/etc/abota/system.conf",
                                                    "/etc/rauc/system.conf")),
                    reason="a system configuration would be used instead of the test's")
def test_cli_without_libsystemd(tmp_path, pki, bundles):
    """With libsystemd.so.0 unloadable (a mount namespace puts an empty file
    over it): `abota service` fails at once saying why, commands without
    D-Bus work, and `abota install` without a local setup says it cannot ask
    a service and installs in this process (from the default configuration,
    here /run/rauc/system.conf on a private /run)."""
    (tmp_path / "cmdline").write_text("root=/dev/sda2 rauc.slot=A\n")
    dev = Device(str(tmp_path / "dev"), pki, extra_system=f"cmdline-file={tmp_path}/cmdline")
    lib = libsystemd_path()
    script = f"""set -e
mount --bind /dev/null {lib}
mount -t tmpfs none /run
mkdir /run/rauc
cp {dev.conf} /run/rauc/system.conf
set +e
{ABOTA} -c {dev.conf} service --dbus=unix:path={tmp_path}/no-bus; echo "service=$?"
{ABOTA} -c {dev.conf} status >/dev/null; echo "status=$?"
{ABOTA} install {bundles['v2']}; echo "install=$?"
"""
    p = run("unshare", "-m", "--propagation", "private", "sh", "-c", script)
    out = p.stdout + p.stderr
    assert "service=1" in p.stdout and "status=0" in p.stdout and "install=0" in p.stdout, out
    assert "abota service: D-Bus needs libsystemd.so.0: " in p.stderr, out
    assert "abota install: D-Bus needs libsystemd.so.0: " in p.stderr, out
    assert "installing in this process" in p.stderr and "next boot tries B" in p.stdout, out
    assert open(os.path.join(dev.bl, "primary")).read().strip() == "B"
    # nothing of it outside the namespace
    assert os.path.getsize(lib) > 0 and not os.path.exists("/run/rauc/system.conf")
