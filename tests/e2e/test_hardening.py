"""The built programs carry the hardening of issue #11 (docs/security.md "Hardening"):
PIE, full RELRO (GNU_RELRO + BIND_NOW), stack protector, a non-executable stack and,
in optimised builds without sanitizers, _FORTIFY_SOURCE=3.

Checked on the ELF files with readelf (binutils), as checksec does, and on the compile
commands meson recorded, so a flag lost from meson.build fails here."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, SRCDIR

# abota and abota-sim always; the others whenever their source directory is in the tree
PROGRAMS = ["abota", "abota-sim", "abotad", "abota-server"]


def readelf(*args):
    p = subprocess.run(["readelf", "-W", *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def build_option(name):
    with open(os.path.join(BUILD, "meson-info", "intro-buildoptions.json")) as f:
        for o in json.load(f):
            if o["name"] == name:
                return o["value"]
    raise AssertionError(f"meson option {name} not in {BUILD}")


def fortified_build():
    """_FORTIFY_SOURCE is on only with optimisation and without sanitizers (meson.build)."""
    return (build_option("optimization") != "0" and build_option("b_sanitize") == "none"
            and not build_option("fuzz"))


def program_path(name):
    if not os.path.isdir(os.path.join(SRCDIR, "src", name)):
        pytest.skip(f"src/{name} is not in this tree")
    path = os.path.join(BUILD, "src", name, name)
    assert os.path.isfile(path), f"{path} not built"
    return path


@pytest.fixture(scope="module", autouse=True)
def need_readelf():
    if not shutil.which("readelf"):
        pytest.fail("readelf (binutils) not found")


@pytest.mark.parametrize("name", PROGRAMS)
def test_pie(name):
    path = program_path(name)
    header = readelf("-h", path)
    assert re.search(r"Type:\s+DYN", header), f"{name}: not position independent:\n{header}"
    dyn = readelf("-d", path)
    assert re.search(r"FLAGS_1\).*\bPIE\b", dyn), f"{name}: DF_1_PIE missing:\n{dyn}"


@pytest.mark.parametrize("name", PROGRAMS)
def test_full_relro(name):
    path = program_path(name)
    segments = readelf("-l", path)
    assert re.search(r"^\s*GNU_RELRO\s", segments, re.M), f"{name}: no GNU_RELRO segment"
    dyn = readelf("-d", path)
    # -z now: DT_FLAGS BIND_NOW (and DF_1_NOW); without it RELRO leaves the GOT writable
    assert re.search(r"\(FLAGS\)\s+.*\bBIND_NOW\b", dyn) or \
        re.search(r"FLAGS_1\).*\bNOW\b", dyn), f"{name}: not linked with -z now:\n{dyn}"


@pytest.mark.parametrize("name", PROGRAMS)
def test_stack_not_executable(name):
    path = program_path(name)
    m = re.search(r"^\s*GNU_STACK\s.*\s(R?W?E?)\s+0x[0-9a-f]+\s*$", readelf("-l", path), re.M)
    assert m, f"{name}: no GNU_STACK segment (the stack would be executable)"
    assert "E" not in m.group(1), f"{name}: executable stack"


def imported_symbols(path):
    syms = set()
    for line in readelf("--dyn-syms", path).splitlines():
        f = line.split()
        if len(f) >= 8 and f[6] == "UND":
            syms.add(f[7].split("@")[0])
    return syms


@pytest.mark.parametrize("name", PROGRAMS)
def test_stack_protector(name):
    path = program_path(name)
    assert "__stack_chk_fail" in imported_symbols(path), \
        f"{name}: no stack protector (__stack_chk_fail not referenced)"


@pytest.mark.parametrize("name", PROGRAMS)
def test_fortify_source(name):
    path = program_path(name)
    if not fortified_build():
        pytest.skip("_FORTIFY_SOURCE is off in -O0 and sanitizer builds (meson.build)")
    chk = {s for s in imported_symbols(path) if re.fullmatch(r"__\w+_chk", s)}
    chk.discard("__stack_chk_fail")
    # memcpy/snprintf with sizes the compiler can see become their checked variants
    assert {"__memcpy_chk", "__snprintf_chk"} <= chk, f"{name}: not fortified: {sorted(chk)}"


def test_cli_does_not_link_http_client():
    """The abota CLI loads libcurl with dlopen only when a bundle is a URL: a local install
    maps neither libcurl nor what it pulls in (TLS libraries, Kerberos, LDAP) -- ~4 MiB
    less resident memory and no network parser in the process (docs/benchmarks.md).  A verb
    that links the hawkBit agent (lib/hawkbit/agent.c, ddi_client.c) brings it back."""
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", readelf("-d", program_path("abota")))
    assert needed, "no NEEDED entries found"
    assert not [n for n in needed if "curl" in n], needed


def test_compile_flags_recorded():
    """Every C file of lib/ and src/ is compiled with the stack protector and, in a
    fortified build, level 3 (the level the ELF checks above cannot tell apart)."""
    with open(os.path.join(BUILD, "compile_commands.json")) as f:
        commands = json.load(f)
    ours = [c for c in commands
            if re.search(r"(^|/)(lib|src)/", os.path.relpath(
                os.path.join(c["directory"], c["file"]), SRCDIR))]
    assert len(ours) > 40, f"only {len(ours)} lib/src compile commands in {BUILD}"
    for c in ours:
        args = c.get("arguments") or c["command"].split()
        assert "-fstack-protector-strong" in args, f"{c['file']}: no -fstack-protector-strong"
        if fortified_build():
            fort = [a for a in args if a.startswith("-D_FORTIFY_SOURCE")]
            assert fort and fort[-1] == "-D_FORTIFY_SOURCE=3", f"{c['file']}: {fort}"


# --- the service sandbox (systemd/abota-mark-good.service) ---------------------------------

def unit_settings(name):
    """Key -> list of values of the [Service] section of a unit in systemd/."""
    return unit_section(name, "[Service]")


def test_mark_good_unit_is_sandboxed():
    s = unit_settings("abota-mark-good.service")
    assert s.get("CapabilityBoundingSet") == [""], "the bounding set must be empty"
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("RestrictAddressFamilies", "AF_UNIX"),
                       ("SystemCallFilter", "@system-service")]:
        assert value in s.get(key, []), f"{key}={value} missing"


def test_mark_good_needs_no_capability(tmp_path):
    """What CapabilityBoundingSet= (empty) and NoNewPrivileges=yes leave: root without any
    capability still accepts a trial bank on the simulated board (the disk image, like a
    block device node, belongs to root and is not world-writable)."""
    from simhelp import ABOTA, abota, run, sim
    if os.geteuid() != 0:
        pytest.skip("needs root, as the service runs")
    drop = ["setpriv", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all",
            "--ambient-caps=-all", "--"]
    # the drop itself works: no effective capability is left
    status = run(drop + ["cat", "/proc/self/status"]).out
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status

    d = tmp_path / "board"
    sim("create", "stm32mp157f-dk2", d, "--full")
    os.chmod(d / "disk.img", 0o660)
    sim("boot", d, "--quiet")
    abota("-c", d / "system.conf", "status", "mark-active", "other")
    sim("boot", d, "--quiet")
    p = run(drop + [ABOTA, "-c", d / "system.conf", "status", "mark-good", "booted"])
    assert "marked slot(s) rootfs.1 as good" in p.out, p.out + p.err
    s = json.loads(abota("-c", d / "system.conf", "status", "--output-format=json").out)
    assert s["fwu"]["active_index"] == 1
    assert [b["state"] for b in s["fwu"]["banks"]] == ["accepted", "accepted"]


def unit_section(name, section):
    """Key -> list of values of one section of a unit in systemd/."""
    settings, cur = {}, None
    with open(os.path.join(SRCDIR, "systemd", name)) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                cur = line
            elif cur == section:
                k, _, v = line.partition("=")
                settings.setdefault(k, []).append(v)
    return settings


def test_agent_unit_is_unprivileged():
    """SC-181: the hawkBit agent (the network-facing parser) runs as its own user without
    any capability and installs through the root service (abota-dbus.service)."""
    s = unit_settings("abotad.service")
    assert s.get("User") == ["abotad"] and s.get("Group") == ["abota"], s.get("User")
    assert s.get("CapabilityBoundingSet") == [""], "the agent needs no capability"
    assert s.get("AmbientCapabilities") == [""]
    assert "--installer=dbus:system" in s["ExecStart"][0]
    assert "--state-dir=/var/lib/abotad" in s["ExecStart"][0]
    assert "--dbus" not in s["ExecStart"][0].replace("--installer=dbus", "")
    assert s.get("StateDirectory") == ["abotad"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"),
                       ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
                       ("SystemCallFilter", "@system-service"),
                       ("SystemCallFilter", "~@privileged @resources"),
                       ("MemoryDenyWriteExecute", "yes")]:
        assert value in s.get(key, []), f"{key}={value} missing"
    u = unit_section("abotad.service", "[Unit]")
    assert "abota-dbus.service" in u.get("Requires", [""])[0].split()
    assert "abota-dbus.service" in u.get("After", [""])[0].split()
    assert "Conflicts" not in u


def test_installer_unit_is_sandboxed():
    """SC-182: the root installer keeps only what it needs: CAP_SYS_ADMIN (slot mounts),
    CAP_SETUID/CAP_SETGID (dropping the streaming download to sandbox-user), CAP_KILL
    (ending it); setuid system calls stay allowed for that drop; group abota may install."""
    s = unit_settings("abota-dbus.service")
    caps = s.get("CapabilityBoundingSet", [""])[0].split()
    assert sorted(caps) == ["CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SYS_ADMIN"], caps
    assert "--install-group=abota" in s["ExecStart"][0]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("SystemCallFilter", "@system-service @mount"),
                       ("SystemCallFilter", "sched_setscheduler"),
                       ("RestrictRealtime", "yes"),
                       ("SystemCallArchitectures", "native")]:
        assert value in s.get(key, []), f"{key}={value} missing"
    assert not any("@privileged" in v or "@setuid" in v for v in s.get("SystemCallFilter", [])), \
        "the sandbox drop needs setresuid/setgroups"
    with open(os.path.join(SRCDIR, "systemd", "abota.sysusers.conf")) as f:
        lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
    assert ["g", "abota", "-"] in lines
    assert any(l[:3] == ["u", "abotad", "-:abota"] for l in lines), lines


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
@pytest.mark.parametrize("unit", ["abotad.service", "abota-dbus.service"])
def test_units_verify_and_score(unit, tmp_path):
    """systemd-analyze verify accepts the unit (with ExecStart pointed into the build tree,
    next to the unit it requires), and systemd-analyze security --offline=yes rates it OK
    (exposure below 4; 9.6 UNSAFE before)."""
    paths = {}
    for u in ("abotad.service", "abota-dbus.service"):
        text = open(os.path.join(SRCDIR, "systemd", u)).read()
        text = text.replace("/usr/sbin/abotad", os.path.join(BUILD, "src", "abotad", "abotad"))
        text = text.replace("/usr/bin/abota ", os.path.join(BUILD, "src", "abota", "abota") + " ")
        paths[u] = tmp_path / u
        paths[u].write_text(text)
    p = subprocess.run(["systemd-analyze", "verify", *map(str, paths.values())],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0 and unit not in p.stderr, p.stderr
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(paths[unit])],
                       capture_output=True, text=True, cwd=tmp_path)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    assert m and float(m.group(1)) < 4.0, p.stdout[-500:]
