"""Privilege separation of the network code (docs/security.md, "Service
sandbox"): a streamed install as root runs its HTTP client in a child that
dropped to [streaming] sandbox-user (lib/source/sandbox_source.c).

The server below answers range requests itself and, while a request is
open, looks the client's port up in /proc/net/tcp: its uid column is the
uid that owns the client's socket, i.e. who runs the HTTP client."""
import grp
import http.server
import os
import signal
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import ABOTA, abota, abota_fails, make_content
from test_https import servers, tls, www  # noqa: F401 (fixtures)
from test_install import Device

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (drops privileges)")

NOBODY = 65534


def socket_owner(local_port, remote_port):
    """uid owning the 127.0.0.1 TCP socket local_port -> remote_port."""
    want_l = f"0100007F:{local_port:04X}"
    want_r = f"0100007F:{remote_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[1] == want_l and p[2] == want_r:
                return int(p[7])
    return None


class RangeServer:
    """Serves files of root with single-range GETs (HTTP/1.1, keep-alive);
    records the uid owning each client socket.  delay: seconds to sleep per
    64 KiB sent (a slow link).  release: an Event; a response of more than
    64 KiB (image data: the signature, manifest and verity reads before it
    are smaller) stops after its first 64 KiB until it is set, so a client
    is known to be in the middle of a transfer."""

    def __init__(self, root, delay=0.0, release=None):
        self.uids = []
        self.requests = 0
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.requests += 1
                srv.uids.append(socket_owner(self.client_address[1],
                                             self.server.server_address[1]))
                path = os.path.join(root, self.path.lstrip("/"))
                if not os.path.isfile(path):
                    self.send_error(404)
                    return
                size = os.path.getsize(path)
                rng = self.headers.get("Range", "")
                if not rng.startswith("bytes="):
                    self.send_error(400)
                    return
                a, _, b = rng[6:].partition("-")
                a, b = int(a), min(int(b), size - 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
                self.send_header("Content-Length", str(b - a + 1))
                self.send_header("ETag", '"fixed"')
                self.end_headers()
                with open(path, "rb") as f:
                    f.seek(a)
                    left = b - a + 1
                    held = release is None or left <= 65536
                    while left:
                        d = f.read(min(left, 65536))
                        self.wfile.write(d)
                        left -= len(d)
                        if delay:
                            time.sleep(delay)
                        if not held:
                            self.wfile.flush()
                            release.wait(60)
                            held = True

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def served(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("sbx")
    root = d / "root"
    root.mkdir()
    content = make_content(str(d / "content"), version="2.0", rootfs_kib=16384)
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content,
          root / "verity.raucb")
    fast = RangeServer(str(root))
    yield {"root": root, "content": content, "fast": fast}
    fast.stop()


def test_streamed_install_runs_http_client_as_sandbox_user(served, pki, tmp_path):
    """SC-182: the streaming download process runs unprivileged: a streamed
    install as root succeeds, and every TCP connection to the server is
    owned by the sandbox user (nobody), none by root.
    SC-181: so the HTTP/TLS parsing happens only in that unprivileged
    process; the root installer only reads the helper's fixed-size replies."""
    srv = served["fast"]
    dev = Device(str(tmp_path / "dev"), pki)
    before = len(srv.uids)
    abota("-c", dev.conf, "install", srv.url("verity.raucb"))
    img = open(os.path.join(served["content"], "rootfs.ext4"), "rb").read()
    assert dev.slot_bytes("rootfs-b", len(img)) == img
    assert "set-primary B" in dev.calls()
    uids = srv.uids[before:]
    assert uids and all(u == NOBODY for u in uids), uids


def test_sandbox_user_from_config(served, pki, tmp_path):
    """[streaming] sandbox-user names the user: another one is used."""
    srv = served["fast"]
    dev = Device(str(tmp_path / "dev"), pki)
    before = len(srv.uids)
    abota("-c", dev.conf, "-C", "streaming:sandbox-user=daemon", "install",
          srv.url("verity.raucb"))
    uids = srv.uids[before:]
    assert uids and all(u == 1 for u in uids), uids  # daemon is uid 1 on Debian


def test_info_as_root_is_sandboxed(served, pki):
    """abota info over http as root: the HTTP client runs as nobody too."""
    srv = served["fast"]
    before = len(srv.uids)
    abota("info", "--keyring", pki.keyring, srv.url("verity.raucb"))
    uids = srv.uids[before:]
    assert uids and all(u == NOBODY for u in uids), uids


def test_missing_sandbox_user_is_a_clear_error(served, pki, tmp_path):
    """SC-182: a sandbox user that does not exist: one error naming the
    key, no connection made, nothing written or activated."""
    srv = served["fast"]
    dev = Device(str(tmp_path / "dev"), pki)
    before = srv.requests
    abota_fails("-c", dev.conf, "-C", "streaming:sandbox-user=abota-no-such-user", "install",
                srv.url("verity.raucb"),
                match="[streaming] sandbox-user: user 'abota-no-such-user' does not exist")
    assert srv.requests == before
    assert not any(c.startswith("set-") for c in dev.calls()), dev.calls()


def test_root_only_client_key_over_https(servers, tls, pki, tmp_path):
    """SC-182: the TLS client key may be readable by root only (mode 0600 in a
    0700 directory): the download process reads the CA, certificate and key
    before it drops to nobody and hands them to libcurl in memory; the mutual
    TLS install over nginx succeeds, and nobody could not have opened the key."""
    keydir = tmp_path / "keys"
    keydir.mkdir(mode=0o700)
    for name in ("ca.pem", "cli.pem", "cli.key"):
        dst = keydir / name
        dst.write_bytes(open(tls[name], "rb").read())
        os.chmod(dst, 0o600)
    probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "cat", str(keydir / "cli.key")], capture_output=True)
    assert probe.returncode != 0, "nobody can read the key: the test proves nothing"
    dev = Device(str(tmp_path / "dev"), pki)
    p = abota("-c", dev.conf, "install", "--tls-ca", keydir / "ca.pem", "--tls-cert",
              keydir / "cli.pem", "--tls-key", keydir / "cli.key",
              servers["mtls"].url("b.raucb"))
    assert "succeeded" in p.stdout


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append((int(d), os.stat(f"/proc/{d}").st_uid))
        except (OSError, ValueError, IndexError):
            pass
    return out


def test_helper_killed_mid_transfer_fails_cleanly(served, pki, tmp_path):
    """SC-182: the download process is unprivileged (uids, gids, groups,
    capabilities, no_new_privs and its open descriptors read from /proc
    while it works), and when it dies mid-transfer (killed) the install
    fails with one message naming the helper and the signal, and nothing is
    activated (the old slot stays primary)."""
    # the image data stops after its first 64 KiB until the helper is
    # killed: the kill lands mid-transfer however fast the install is
    release = threading.Event()
    slow = RangeServer(str(served["root"]), delay=0.004, release=release)
    try:
        dev = Device(str(tmp_path / "dev"), pki)
        p = subprocess.Popen([ABOTA, "-c", dev.conf, "install", slow.url("verity.raucb")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        helper = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and helper is None:
            # wait until image data flows (the slot write has begun)
            if "set-state B bad" in dev.calls():
                kids = [k for k in children_of(p.pid) if k[1] == NOBODY]
                if kids:
                    helper = kids[0][0]
            time.sleep(0.02)
        assert helper, f"no helper seen: {dev.calls()}"
        # what the helper gave up: root (all four uids), groups, capabilities,
        # new privileges; no descriptor of the installer
        with open(f"/proc/{helper}/status") as f:
            st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        assert st["Uid"].split() == [str(NOBODY)] * 4, st["Uid"]
        assert st["Gid"].split() == ["65534"] * 4, st["Gid"]
        assert st["Groups"].strip() == "", st["Groups"]
        assert st["CapEff"] == st["CapPrm"] == "0" * 16, st
        assert st["NoNewPrivs"] == "1"
        fds = {int(x): os.readlink(f"/proc/{helper}/fd/{x}")
               for x in os.listdir(f"/proc/{helper}/fd")}
        assert fds[0] == fds[1] == "/dev/null", fds
        assert fds[3].startswith("socket:") and fds[4].startswith("socket:"), fds
        # beyond them only what libcurl opened itself (its TCP connections,
        # pipes): no file, slot or lock of the installer
        assert all(not v.startswith("/") for n, v in fds.items() if n > 2), fds
        os.kill(helper, signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        assert p.returncode != 0, out
        assert "was killed by signal 9" in err, err
        assert len([l for l in err.splitlines() if l.startswith("abota install:")]) == 1, err
        assert "AddressSanitizer" not in err and "runtime error" not in err, err
        assert "set-primary B" not in dev.calls(), dev.calls()
        assert open(os.path.join(dev.bl, "primary")).read().strip() == "A"
    finally:
        release.set()
        slow.stop()


# --- SC-181: the hawkBit agent unprivileged, the root service installs --------

from ddiserver import DDIServer  # noqa: E402
from hawkbithelp import ABOTAD, Device as AgentDevice, details, executions  # noqa: E402
from test_dbus import Bus  # noqa: E402
from test_install_sim import make_bundle  # noqa: E402


class SplitDevice(AgentDevice):
    """The simulated board with abotad as user nobody, group abota (no
    supplementary groups) and its installer the D-Bus service on bus; the
    agent's files (download, status, state) in a directory nobody owns."""

    def __init__(self, base, server, pki, bus, stream=False):
        os.chmod(base, 0o755)
        super().__init__(os.path.join(base, "dev"), server, pki, stream=stream)
        self.bus = bus
        self.state_dir = os.path.join(self.dir, "agent-state")
        os.makedirs(self.state_dir)
        gid = grp.getgrnam("abota").gr_gid
        for d in (self.dir, self.state_dir):
            os.chown(d, NOBODY, gid)

    @property
    def state_path(self):
        return os.path.join(self.state_dir, "hawkbit.state")

    def args(self):
        # the keyring stays the service's business: the agent verifies nothing
        return ["setpriv", "--reuid=nobody", "--regid=abota", "--clear-groups", ABOTAD,
                "-c", self.conf, "-s", self.system_conf, f"--installer=dbus:{self.bus.addr}",
                f"--state-dir={self.state_dir}"]


@pytest.fixture(scope="module")
def abota_group():
    """Group abota, as systemd/abota.sysusers.conf creates it on a device.
    Created here if missing (-f: no error when a parallel test worker was
    first) and left in place, as a package would: another worker may be
    using it."""
    subprocess.run(["groupadd", "-f", "--system", "abota"], check=True)
    return grp.getgrnam("abota").gr_gid


@pytest.fixture
def split(tmp_path, pki, abota_group):
    """A private bus with the system bus policy (deny by default, then
    data/de.pengutronix.rauc.conf), `abota service` as root on it letting
    group abota install (--install-group), a DDI server, and the device."""
    import tempfile
    base = tempfile.mkdtemp(prefix="abota-split-")
    bus = Bus(str(tmp_path), kind="system")
    server = DDIServer()
    dev = SplitDevice(base, server, pki, bus, stream=False)
    svc = subprocess.Popen([ABOTA, "-c", dev.system_conf, "-C", f"keyring:path={pki.keyring}",
                            "service", f"--dbus={bus.addr}", "--install-group=abota"],
                           env=bus.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    bus.wait_name(svc)
    yield dev, server, bus, svc
    svc.terminate()
    err = svc.communicate(timeout=30)[1]
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    server.close()
    bus.close()
    assert not server.violations, server.violations
    import shutil
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def hb_bundle(pki, tmp_path_factory):
    return make_bundle(pki, str(tmp_path_factory.mktemp("sbxhb")), "2.0.0")


def proc_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


def test_agent_unprivileged_installs_through_the_service(split, hb_bundle):
    """SC-181: the hawkBit agent (network, HTTP, JSON parsing) runs as
    nobody with no capability; the root installer (`abota service`) never
    talks to the hawkBit server: it installs the bundle the agent downloaded
    when asked over D-Bus.  The deployment goes through the whole cycle:
    install -> reboot -> trial -> mark-good -> closed/success."""
    dev, server, bus, svc = split
    with open(hb_bundle, "rb") as f:
        server.add_artifact("update.raucb", f.read())
    a = server.assign("update.raucb", kind="forced", version="2.0.0")
    p = subprocess.Popen(dev.args(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from hawkbithelp import wait_for
        assert wait_for(lambda: os.path.exists(dev.reboot_flag), timeout=60), dev.state()
        uid = proc_uid(p.pid)
        assert uid and all(u == NOBODY for u in uid), uid
        with open(f"/proc/{p.pid}/status") as f:
            caps = {l.split(":")[0]: l.split()[1] for l in f if l.startswith("Cap")}
        assert caps["CapEff"] == "0" * 16 and caps["CapPrm"] == "0" * 16, caps
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    assert "D-Bus installer" in err, err
    assert "Installed 2.0.0 into B; rebooting" in details(server.feedback_of(a.id))[-1]
    assert os.path.exists(dev.reboot_flag)
    # the agent's state belongs to it; the service wrote the slot status
    assert os.stat(dev.state_path).st_uid == NOBODY
    # power cycle: B boots in trial; the agent (as nobody) sees it over D-Bus
    assert dev.reboot()["bank"] == 1
    dev.once()
    assert a.status == "running"
    assert "Booted B in trial" in details(server.feedback_of(a.id))[-1]
    # the health check accepts the bank through the service's Mark
    bus.busctl("call", "de.pengutronix.rauc", "/", "de.pengutronix.rauc.Installer", "Mark",
               "ss", "good", "booted")
    dev.once()
    assert a.status == "finished", executions(server.feedback_of(a.id))
    last = server.feedback_of(a.id)[-1]["status"]
    assert (last["execution"], last["result"]["finished"]) == ("closed", "success")
    assert dev.phase() == "idle"


def test_agent_streams_through_the_sandboxed_service(split, hb_bundle):
    """SC-181/SC-182 together: stream_bundle=true with the D-Bus installer:
    the agent hands the URL and its token header to the root service, whose
    HTTP client runs as the sandbox user; the artifact's range requests
    carry the token."""
    dev, server, bus, svc = split
    dev.write_conf(stream=True)
    with open(hb_bundle, "rb") as f:
        server.add_artifact("update.raucb", f.read())
    a = server.assign("update.raucb", kind="forced", version="2.0.0")
    dev.once()
    assert dev.phase() == "installed", dev.state()
    reqs = server.requests_to("/artifacts/")
    assert reqs and all(r["range"] for r in reqs), reqs
    assert all(r["auth"] == f"TargetToken {server.token}" for r in reqs)
    assert not os.path.exists(dev.download)
    assert a.status == "running"


def test_agent_install_failure_reports_last_error(split, tmp_path):
    """The service's LastError reaches the hawkBit server: a bundle signed
    by nobody we trust fails, the action closes with failure and the
    service's reason, nothing is activated."""
    dev, server, bus, svc = split
    server.add_artifact("update.raucb", b"this is not a bundle" * 100)
    a = server.assign("update.raucb", kind="forced", version="2.0.0")
    dev.once(expect_rc=None)
    last = server.feedback_of(a.id)[-1]["status"]
    assert (last["execution"], last["result"]["finished"]) == ("closed", "failure"), last
    text = " ".join(last["details"])
    assert "Installation failed" in text and "exceeds bundle size" in text, text
    assert dev.board.boot()["bank"] == 0


def test_agent_group_is_needed(split, hb_bundle):
    """The policy and the service let group abota install, nobody else: the
    same agent as nobody:nogroup is refused (by the bus policy) and says so;
    nothing is installed."""
    dev, server, bus, svc = split
    with open(hb_bundle, "rb") as f:
        server.add_artifact("update.raucb", f.read())
    a = server.assign("update.raucb", kind="forced", version="2.0.0")
    args = [x if x != "--regid=abota" else "--regid=nogroup" for x in dev.args()]
    p = subprocess.run(args + ["--run-once"], capture_output=True, text=True, timeout=120)
    assert "the install service refused the install: Rejected send message" in p.stderr, \
        p.stderr
    last = server.feedback_of(a.id)[-1]["status"]
    assert (last["execution"], last["result"]["finished"]) == ("closed", "failure"), last
    assert dev.board.boot()["bank"] == 0


@pytest.mark.parametrize("args,msg", [
    (["--installer=bogus"], "--installer: 'bogus' is not in-process or dbus[:BUS]"),
    (["--installer=dbus:"], "--installer=dbus: missing bus after ':'"),
    (["--installer=dbus", "--dbus=session"], "use one or the other"),
    (["--state-dir=relative/dir"], "--state-dir: 'relative/dir' is not an absolute path"),
])
def test_abotad_installer_options(args, msg):
    """Bad --installer / --state-dir: one usage error, exit code 2."""
    p = subprocess.run([ABOTAD, *args], capture_output=True, text=True)
    assert p.returncode == 2 and msg in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_service_reads_only_tls_files_the_caller_could_read(split, tmp_path):
    """The root service opens the TLS files a call names before its download
    process drops privileges; a caller other than root may only name files it
    could read itself, else the service would present root's client key to a
    server of the caller's choosing (a confused deputy). Checked for
    InstallBundle (group abota) and InspectBundle (anybody): a root-only key
    is refused naming the key and the caller, a file the caller owns passes
    the check (the install then fails on the unreachable URL, not on it)."""
    dev, server, bus, svc = split
    secret = tmp_path / "root-only"
    secret.mkdir(mode=0o700)
    for name in ("cert.pem", "key.pem"):
        (secret / name).write_text("-----BEGIN PRIVATE KEY-----\n")
        os.chmod(secret / name, 0o600)
    # readable by mode, but behind a directory the caller cannot search
    os.chmod(secret / "cert.pem", 0o644)
    import pathlib
    import shutil
    import tempfile
    # pytest's directories are root's (0700): the caller's files go where it can reach them
    mine = pathlib.Path(tempfile.mkdtemp(prefix="abota-tls-"))
    os.chmod(mine, 0o755)
    for name in ("cert.pem", "key.pem"):
        (mine / name).write_text("-----BEGIN PRIVATE KEY-----\n")
        os.chown(mine / name, NOBODY, grp.getgrnam("abota").gr_gid)
        os.chmod(mine / name, 0o600)
    url = "https://127.0.0.1:9/update.raucb"

    def call(method, d, group="abota"):
        return subprocess.run(
            ["setpriv", "--reuid=nobody", f"--regid={group}", "--clear-groups", "busctl",
             f"--address={bus.addr}", "call", "de.pengutronix.rauc", "/",
             "de.pengutronix.rauc.Installer", method, "sa{sv}", url, "2",
             "tls-cert", "s", str(d / "cert.pem"), "tls-key", "s", str(d / "key.pem")],
            capture_output=True, text=True, env=bus.env)

    p = call("InstallBundle", secret)
    assert p.returncode != 0
    assert f"tls-cert: '{secret}/cert.pem' is not readable by the caller (uid {NOBODY})" \
        in p.stderr, p.stderr
    p = call("InspectBundle", secret, group="nogroup")
    assert p.returncode != 0 and "is not readable by the caller" in p.stderr, p.stderr
    # the caller's own files pass this check; what fails then is the download
    p = call("InspectBundle", mine)
    assert "not readable by the caller" not in p.stderr, p.stderr
    p = call("InstallBundle", mine)
    assert p.returncode == 0, p.stderr
    for _ in range(100):  # the install fails on the unreachable server
        time.sleep(0.1)
        if "idle" in bus.busctl("get-property", "de.pengutronix.rauc", "/",
                                "de.pengutronix.rauc.Installer", "Operation").stdout:
            break
    last = bus.busctl("get-property", "de.pengutronix.rauc", "/",
                      "de.pengutronix.rauc.Installer", "LastError").stdout
    assert "not readable" not in last and "127.0.0.1:9" in last, last
    assert dev.board.boot()["bank"] == 0
    shutil.rmtree(mine)
