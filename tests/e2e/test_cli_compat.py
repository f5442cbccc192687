"""RAUC 1.8 command-line options abota accepts (audit items #8 and #9):
global options after the verb (as RAUC's GOption parser takes them), --mount,
the global --intermediate, service --override-boot-slot / --handler-args,
resign/bundle --signing-keyring (the new signature must verify), info
--dump-cert / --dump-recipients and extract --trust-environment.  Where RAUC
does the same thing, the real `rauc` 1.8 runs beside abota and the results
are compared."""
import json
import os
import subprocess

import pytest

from conftest import ABOTA, abota, abota_fails, fixture_system_conf, make_content, run
from test_dbus import Bus, start_service, stop
from test_install import Device


def status_conf(tmp_path, name="system.conf"):
    """A small noop-bootloader system with file-backed slots."""
    slots = tmp_path / "slots"
    slots.mkdir(exist_ok=True)
    for n in ("a", "b"):
        with open(slots / n, "wb") as f:
            f.truncate(1 << 20)
    conf = tmp_path / name
    conf.write_text(f"""[system]
compatible=abota-test
bootloader=noop
data-directory={tmp_path}/data

[slot.rootfs.0]
device={slots}/a
type=ext4
bootname=A

[slot.rootfs.1]
device={slots}/b
type=ext4
bootname=B
""")
    return conf


def only_error_line(p):
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr
    return lines[0]


# ---------------------------------------------------------------- globals after the verb

def test_global_options_after_the_verb(tmp_path):
    conf = status_conf(tmp_path)
    before = abota("-c", conf, "--override-boot-slot=B", "status", "--output-format=json").stdout
    js = json.loads(before)
    assert js["booted"] == "B"
    # every position gives the same answer, long and short forms alike
    for args in (["status", "-c", conf, "--override-boot-slot=B", "--output-format=json"],
                 ["status", "--output-format=json", f"--conf={conf}", "--override-boot-slot",
                  "B"],
                 ["-c", conf, "status", "--override-boot-slot=B", "--output-format=json"]):
        assert abota(*args).stdout == before, args
    # -C after the verb
    p = abota("status", "-c", conf, "-C", "system:variant-name=vv", "--override-boot-slot=A",
              "--output-format=json")
    assert json.loads(p.stdout)["variant"] == "vv"
    assert json.loads(p.stdout)["booted"] == "A"
    # -d after the verb turns on debug logging, as before it
    p = abota("status", "-d", "-c", conf, "--override-boot-slot=A")
    assert "debug:" in p.stderr
    assert "debug:" not in abota("status", "-c", conf, "--override-boot-slot=A").stderr
    # given before and after: the later one wins
    p = abota("-c", tmp_path / "nonexistent.conf", "--override-boot-slot=A", "status", "-c",
              conf, "--override-boot-slot=B", "--output-format=json")
    assert json.loads(p.stdout)["booted"] == "B"
    abota_fails("-c", conf, "status", "-c", tmp_path / "nonexistent.conf",
                match="nonexistent.conf")
    # marking takes them after the sub-command too
    p = abota("status", "mark-good", "-c", conf, "--override-boot-slot=A")
    assert "rootfs.0" in p.stdout


def test_info_global_options_after_verb_as_rauc(fixtures, pki, tmp_path):
    """`rauc info -c FILE` and `rauc info --keyring K` work in RAUC 1.8; abota
    gives the same verdicts at either place."""
    plain = os.path.join(fixtures, "sample-plain.raucb")
    ca = os.path.join(fixtures, "ca.cert.pem")
    conf = fixture_system_conf(tmp_path, ca)
    for args in (["-c", conf, "info", plain], ["info", "-c", conf, plain],
                 ["info", plain, "--conf", conf], ["info", "-d", "--keyring", ca, plain],
                 # --mount alone asks for no system.conf (a build host has none)
                 ["--mount", tmp_path / "m", "info", "--keyring", ca, plain],
                 ["info", "--keyring", ca, plain, "--mount=m"]):
        r = run("rauc", *args)
        a = abota(*args)
        line = "Compatible: \t'example-stm32mp1-ota'"
        assert line in r.stdout and line in a.stdout, args
    # both refuse a bundle their (later) keyring does not trust
    other = pki.other_keyring
    for args in (["info", "-c", conf, "--keyring", other, plain],
                 ["--keyring", ca, "info", "--keyring", other, plain]):
        assert run("rauc", *args, check=False).returncode == 1
        abota_fails(*args, match="unable to get local issuer")


def test_verb_keyring_and_unknown_options(fixtures, pki):
    """install/info --keyring stay the verb's own option, with their meaning;
    unknown options are still one usage error with exit 2."""
    plain = os.path.join(fixtures, "sample-plain.raucb")
    ca = os.path.join(fixtures, "ca.cert.pem")
    abota("--keyring", pki.keyring, "info", "--keyring", ca, plain)
    abota_fails("--keyring", ca, "info", "--keyring", pki.keyring, plain,
                match="unable to get local issuer")
    p = abota("status", "--bogus", check=False)
    assert "unrecognized option '--bogus'" in only_error_line(p)
    p = abota("info", "-x", plain, check=False)
    assert "invalid option -- 'x'" in only_error_line(p)
    # a global option's bad value: one message, after the verb as before it
    for args in (["status", "--mount="], ["--mount=", "status"]):
        p = abota(*args, check=False)
        assert only_error_line(p).startswith("abota") and "--mount: empty" in p.stderr
        assert len([line for line in p.stderr.splitlines() if line.strip()]) == 1, p.stderr
    # globals that mean nothing for a verb are refused, not dropped
    p = abota("--intermediate", ca, "status", check=False)
    assert "--intermediate is not used by 'status'" in only_error_line(p)
    p = abota("status", "--intermediate", ca, check=False)
    assert "unrecognized option '--intermediate'" in only_error_line(p)


# ---------------------------------------------------------------- --mount

@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("compat-bundles")
    content = make_content(str(d / "c"), rootfs_kib=4096)
    b = d / "plain.raucb"
    abota("bundle", "--format=plain", "--cert", pki.signer[0], "--key", pki.signer[1],
          content, b)
    return str(b)


def mount_prefix_seen(dev):
    env = open(os.path.join(dev.bl, "pre-install.env")).read()
    return [line.split("=", 1)[1] for line in env.splitlines()
            if line.startswith("RAUC_MOUNT_PREFIX=")][0]


def test_mount_overrides_mountprefix(tmp_path, pki, plain_bundle):
    """--mount=DIR is system.conf's mountprefix for this run: the handlers see
    it; a relative DIR is taken from the current directory; with -C the later
    of the two wins; a file is refused."""
    dev = Device(str(tmp_path / "dev"), pki)
    common = ["-c", dev.conf, "--override-boot-slot=A"]
    abota(*common, "--mount", tmp_path / "m1", "install", "--dbus=none", plain_bundle)
    assert mount_prefix_seen(dev) == f"{tmp_path}/m1"
    os.makedirs(tmp_path / "cwd")
    p = subprocess.run([ABOTA, *common, "--mount=rel/m2", "install", "--dbus=none", "--force",
                        plain_bundle], cwd=tmp_path / "cwd", capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert mount_prefix_seen(dev) == f"{tmp_path}/cwd/rel/m2"
    abota(*common, f"--mount={tmp_path}/m3", "-C", f"system:mountprefix={tmp_path}/m4",
          "install", "--dbus=none", "--force", plain_bundle)
    assert mount_prefix_seen(dev) == f"{tmp_path}/m4"
    abota(*common, "-C", f"system:mountprefix={tmp_path}/m4", f"--mount={tmp_path}/m5",
          "install", "--dbus=none", "--force", plain_bundle)
    assert mount_prefix_seen(dev) == f"{tmp_path}/m5"
    p = abota(*common, f"--mount={dev.conf}", "install", "--dbus=none", plain_bundle,
              check=False)
    assert "is not a directory" in only_error_line(p)


def test_service_options_as_rauc(tmp_path, pki, plain_bundle):
    """The unit-file line `rauc --mount=DIR service --override-boot-slot=S` works
    with abota (options after the verb too), checked with RAUC 1.8's own client
    against both services: booted slot, and the mount prefix the handlers get
    during an install through D-Bus."""
    dev = Device(str(tmp_path / "dev"), pki)
    os.makedirs(tmp_path / "r")
    results = {}
    for name, cmd in (
            ("rauc", ["rauc", f"--mount={tmp_path}/mnt-rauc", "service", f"--conf={dev.conf}",
                      "--override-boot-slot=B"]),
            ("abota", [ABOTA, f"--mount={tmp_path}/mnt-abota", "service", "-c", dev.conf,
                       "--override-boot-slot=B"])):
        bus = Bus(str(tmp_path / ("r" if name == "rauc" else "")))
        if name == "abota":
            cmd.append(f"--dbus={bus.addr}")
        svc = None
        try:
            svc = start_service(bus, dev.conf, cmd=cmd)
            st = run("rauc", "status", "--output-format=json", env=bus.env)
            booted = json.loads(st.stdout)["booted"]
            run("rauc", "install", plain_bundle, env=bus.env)
            results[name] = (booted, mount_prefix_seen(dev))
        finally:
            if svc:
                stop(svc)
            bus.close()
    assert results["rauc"] == ("B", f"{tmp_path}/mnt-rauc")
    assert results["abota"] == ("B", f"{tmp_path}/mnt-abota")


def test_handler_args_refused(tmp_path):
    conf = status_conf(tmp_path)
    p = abota("-c", conf, "service", "--handler-args=--foo", check=False)
    line = only_error_line(p)
    assert "--handler-args is not supported" in line and "'--foo'" in line


def test_install_takes_global_options_after_the_verb(tmp_path, pki, plain_bundle):
    dev = Device(str(tmp_path / "dev"), pki)
    abota("install", "-c", dev.conf, "--override-boot-slot=A", f"--mount={tmp_path}/mi",
          "--dbus=none", plain_bundle)
    assert mount_prefix_seen(dev) == f"{tmp_path}/mi"
    p = abota("-c", dev.conf, "install", "--handler-args=x", plain_bundle, check=False)
    assert "--handler-args is not supported" in only_error_line(p)


# ---------------------------------------------------------------- --intermediate

def test_global_intermediate(pki, tmp_path):
    """The global --intermediate feeds the verb's own: for bundle it is embedded
    in the signature (RAUC's meaning), for info the extra certificate helps
    verify a bundle that lacks it."""
    content = make_content(str(tmp_path / "content"), rootfs_kib=2048)
    bare = tmp_path / "bare.raucb"
    abota("bundle", "--cert", pki.chained[0], "--key", pki.chained[1], content, bare)
    abota_fails("info", "--keyring", pki.keyring, bare, match="unable to get local issuer")
    abota("--intermediate", pki.inter.cert, "info", "--keyring", pki.keyring, bare)
    abota("--intermediate", pki.inter.cert, "extract", "--keyring", pki.keyring, bare,
          tmp_path / "x")
    with_inter = tmp_path / "inter.raucb"
    abota("--intermediate", pki.inter.cert, "bundle", "--cert", pki.chained[0], "--key",
          pki.chained[1], content, with_inter)
    js = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                          with_inter).stdout)
    assert len(js["signature"]["chain"]) == 3
    run("rauc", "info", f"--keyring={pki.keyring}", with_inter)


# ---------------------------------------------------------------- --signing-keyring

def test_resign_checks_the_new_signature_as_rauc(fixtures, pki, tmp_path):
    """Without --signing-keyring the new signature must verify with the keyring
    (RAUC 1.8 refuses: "unable to get local issuer certificate"), with it
    against that keyring; a refused resign leaves no file behind."""
    ca = os.path.join(fixtures, "ca.cert.pem")
    signer = ["--cert", pki.signer[0], "--key", pki.signer[1]]
    for name in ("sample-verity.raucb", "sample-plain.raucb"):
        src = os.path.join(fixtures, name)
        out_r, out_a = tmp_path / f"r-{name}", tmp_path / f"a-{name}"
        r = run("rauc", f"--keyring={ca}", "resign", *signer, src, out_r, check=False)
        assert r.returncode == 1 and "unable to get local issuer" in r.stderr
        p = abota_fails(f"--keyring={ca}", "resign", *signer, src, out_a,
                        match="unable to get local issuer")
        assert "the new signature does not verify" in p.stderr
        assert "--signing-keyring" in p.stderr
        # a wrong signing keyring is refused the same way
        abota_fails(f"--keyring={ca}", "resign", f"--signing-keyring={pki.other_keyring}",
                    *signer, src, out_a, match="does not verify")
        assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)
        run("rauc", f"--keyring={ca}", "resign", f"--signing-keyring={pki.keyring}", *signer,
            src, out_r)
        abota(f"--keyring={ca}", "resign", f"--signing-keyring={pki.keyring}", *signer, src,
              out_a)
        run("rauc", "info", f"--keyring={pki.keyring}", out_a)
        abota("info", "--keyring", pki.keyring, out_a)
        # an existing output is never replaced
        abota_fails(f"--keyring={ca}", "resign", f"--signing-keyring={pki.keyring}", *signer,
                    src, out_a, match="already exists")
        os.unlink(out_r)
        os.unlink(out_a)
    # no keyring at all (--no-verify, no system.conf): nothing to check, as RAUC
    abota("resign", "--no-verify", *signer, os.path.join(fixtures, "sample-plain.raucb"),
          tmp_path / "nv.raucb")


def test_bundle_signing_keyring(pki, tmp_path):
    """bundle --signing-keyring (and the global --keyring, as in RAUC) verify
    the new bundle; one that does not verify is not written."""
    content = make_content(str(tmp_path / "content"), rootfs_kib=2048)
    signer = ["--cert", pki.signer[0], "--key", pki.signer[1]]
    out = tmp_path / "b.raucb"
    abota_fails("bundle", f"--signing-keyring={pki.other_keyring}", *signer, content, out,
                match="does not verify")
    abota_fails("--keyring", pki.other_keyring, "bundle", *signer, content, out,
                match="does not verify")
    assert sorted(os.listdir(tmp_path)) == ["content"]
    abota("bundle", "--keyring", pki.other_keyring, f"--signing-keyring={pki.keyring}",
          *signer, content, out)
    abota("info", "--keyring", pki.keyring, out)


# ---------------------------------------------------------------- info / extract options

@pytest.mark.parametrize("name", ["sample-plain.raucb", "sample-verity.raucb"])
def test_info_dump_cert_and_recipients_as_rauc(fixtures, name):
    """After the (different) JSON line, rauc and abota print the same
    certificate text and the same recipients note."""
    bundle = os.path.join(fixtures, name)
    ca = os.path.join(fixtures, "ca.cert.pem")
    args = [f"--keyring={ca}", "info", "--output-format=json", "--dump-cert",
            "--dump-recipients", bundle]
    r = run("rauc", *args).stdout
    a = abota(*args).stdout
    assert "Certificate:" in r and "No recipient data to dump" in r
    assert a.split("\n", 1)[1] == r.split("\n", 1)[1]
    # readable: the certificate comes before the chain, as in rauc
    a = abota(f"--keyring={ca}", "info", "--dump-cert", bundle).stdout
    assert a.index("Certificate:\n") < a.index("Certificate Chain:")


def test_extract_trust_environment_as_rauc(fixtures, tmp_path):
    """A plain bundle others may write: extract takes it over (drops the write
    bits), with --trust-environment it is left alone -- as rauc does."""
    ca = os.path.join(fixtures, "ca.cert.pem")
    modes = {}
    for tool in ("rauc", ABOTA):
        for trust in ([], ["--trust-environment"]):
            b = tmp_path / "p.raucb"
            b.write_bytes(open(os.path.join(fixtures, "sample-plain.raucb"), "rb").read())
            os.chmod(b, 0o666)
            out = tmp_path / f"x{len(modes)}"
            run(tool, f"--keyring={ca}", "extract", *trust, b, out)
            assert (out / "manifest.raucm").exists()
            modes[(os.path.basename(tool), bool(trust))] = oct(os.stat(b).st_mode & 0o777)
            os.unlink(b)
    assert modes[("rauc", False)] == modes[("abota", False)] == "0o644"
    assert modes[("rauc", True)] == modes[("abota", True)] == "0o666"
