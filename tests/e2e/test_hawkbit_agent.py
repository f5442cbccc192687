"""abotad end to end against the DDI test server (ddiserver.py, a real HTTP
stack) on a simulated STM32MP157F-DK2: forced update -> reboot -> trial ->
accepted -> closed/success; a bank that fails to boot -> fallback ->
closed/failure; cancel; maintenance window; download only; streaming;
power cut during the download; SIGTERM.  Every request body abotad sends is
validated by the server against hawkBit's OpenAPI document, and every
response the server sends is validated before it goes out."""
import os
import signal
import time

import pytest

from ddiserver import DDIServer
from hawkbithelp import Device, details, executions, stop, wait_for
from test_install_sim import make_bundle


@pytest.fixture(scope="module")
def bundles(pki, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("hbbundles"))
    return {"v2": make_bundle(pki, d, "2.0.0")}


@pytest.fixture
def server():
    s = DDIServer()
    yield s
    s.close()
    assert not s.violations, s.violations


def serve(server, path, name="update.raucb"):
    with open(path, "rb") as f:
        server.add_artifact(name, f.read())
    return name


def test_forced_update_reboot_trial_accept(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]), kind="forced", version="2.0.0")
    p = dev.once()
    # configData with the [device] attributes (trailing spaces trimmed)
    assert server.attributes == {"hwRevision": "2", "serial": "8922673153"}
    fb = server.feedback_of(a.id)
    ex = executions(fb)
    assert ("closed", "success") not in ex, "closed before the reboot"
    assert ex[-1] == ("proceeding", "none"), ex
    assert "Installed 2.0.0 into B; rebooting" in details(fb)[-1]
    # progress feedback: percent in progress.cnt/of, a sensible number of them
    prog = [b["status"]["result"]["progress"]["cnt"] for b in fb
            if "progress" in b["status"]["result"]]
    assert 3 <= len(prog) <= 20 and prog == sorted(prog), prog
    assert os.path.exists(dev.reboot_flag), p.stderr
    assert dev.phase() == "installed"
    assert a.status == "running"
    # not rebooted yet (the board still runs A): nothing is concluded
    n = len(server.feedback_of(a.id))
    dev.once()
    assert dev.phase() == "installed" and a.status == "running"
    assert len(server.feedback_of(a.id)) == n
    # power cycle: the board boots B in trial
    h = dev.reboot()
    assert h["bank"] == 1
    dev.once()
    assert a.status == "running"
    assert "Booted B in trial" in details(server.feedback_of(a.id))[-1]
    assert dev.phase() == "installed"
    # the health check accepts the bank (abota-mark-good.service)
    dev.abota("status", "mark-good")
    dev.once()
    assert a.status == "finished", executions(server.feedback_of(a.id))
    last = server.feedback_of(a.id)[-1]["status"]
    assert (last["execution"], last["result"]["finished"]) == ("closed", "success")
    assert "accepted" in last["details"][0]
    assert dev.phase() == "idle"
    # the running version is reported once
    assert server.installed_base == [{"name": "stm32mpu", "version": "2.0.0"}] or \
        server.installed_base[-1]["version"] == "2.0.0"
    n = len(server.installed_base)
    dev.once()
    assert len(server.installed_base) == n
    # the artifact was downloaded once, without range requests after the first
    assert len(server.requests_to(r"/artifacts/")) == 1
    assert not os.path.exists(dev.download)


def test_failed_boot_falls_back_and_reports_failure(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]), kind="forced")
    dev.once()
    assert dev.phase() == "installed"
    banks = [dev.reboot("--fail-boot")["bank"] for _ in range(4)]
    assert banks[-1] == 0, banks
    dev.reboot()
    dev.once()
    assert a.status == "error"
    last = server.feedback_of(a.id)[-1]["status"]
    assert (last["execution"], last["result"]["finished"]) == ("closed", "failure")
    assert "fell back" in last["details"][0] and "B" in last["details"][0], last
    assert dev.phase() == "idle"


def board_untouched(dev, md_before):
    assert dev.board.md() == md_before


def test_maintenance_window_skip_then_install(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]), kind="forced", window="unavailable")
    dev.once()
    assert dev.phase() == "waiting"
    assert os.path.getsize(dev.download) == len(server.artifacts["update.raucb"])
    board_untouched(dev, md)
    ex = executions(server.feedback_of(a.id))
    assert ("scheduled", "none") in ex and ("closed", "success") not in ex, ex
    n_fb, n_dl = len(server.feedback_of(a.id)), len(server.requests_to("/artifacts/"))
    dev.once()  # still closed: nothing new, no second download
    assert len(server.feedback_of(a.id)) == n_fb
    assert len(server.requests_to("/artifacts/")) == n_dl
    board_untouched(dev, md)
    a.window = "available"
    dev.once()
    assert dev.phase() == "installed"
    assert len(server.requests_to("/artifacts/")) == n_dl  # installed from the local file
    assert dev.board.md()[0] == 1  # bank B active for the trial


def test_cancel_before_install_is_accepted(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]), kind="soft", window="unavailable")
    dev.once()
    assert dev.phase() == "waiting" and os.path.exists(dev.download)
    server.cancel(a.id)
    dev.once()
    assert a.status == "canceled"
    fb = server.feedback_of(a.id, "cancelAction")
    assert executions(fb) == [("closed", "success")], fb
    assert dev.phase() == "idle"
    assert not os.path.exists(dev.download)
    board_untouched(dev, md)


def test_cancel_of_unstarted_action_is_acknowledged(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    server.cancel(a.id)
    dev.once()
    assert a.status == "canceled"
    assert executions(server.feedback_of(a.id, "cancelAction")) == [("closed", "success")]
    assert not server.requests_to("/artifacts/")


def test_cancel_after_writing_began_is_rejected(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    dev.once()
    assert dev.phase() == "installed"
    server.cancel(a.id)
    p = dev.once()
    assert executions(server.feedback_of(a.id, "cancelAction")) == [("rejected", "none")], p.stderr
    assert a.status == "running"  # hawkBit: CANCEL_REJECTED -> running again
    dev.reboot()
    dev.abota("status", "mark-good")
    dev.once()
    assert a.status == "finished"


def test_download_only(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]), kind="downloadonly")
    dev.once()
    assert a.status == "downloaded"
    assert executions(server.feedback_of(a.id))[-1] == ("downloaded", "success")
    with open(dev.download, "rb") as f:
        assert f.read() == server.artifacts["update.raucb"]
    board_untouched(dev, md)
    assert dev.phase() == "idle"
    # the same artifact assigned again later: the complete file is reused
    n = len(server.requests_to("/artifacts/"))
    b = server.assign("update.raucb", kind="forced")
    dev.once()
    assert dev.phase() == "installed" and b.status == "running"
    assert len(server.requests_to("/artifacts/")) == n


def test_streaming_install(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki, stream=True)
    a = server.assign(serve(server, bundles["v2"]))
    dev.once()
    assert dev.phase() == "installed"
    reqs = server.requests_to("/artifacts/")
    assert reqs and all(r["range"] for r in reqs), reqs
    assert all(r["auth"] == f"TargetToken {server.token}" for r in reqs)
    assert not os.path.exists(dev.download)
    dev.reboot()
    dev.abota("status", "mark-good")
    dev.once()
    assert a.status == "finished"


def test_power_cut_during_download_resumes(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    size = len(server.artifacts["update.raucb"])
    server.rate = 40_000  # bytes/s: the download takes several seconds
    proc = dev.start()
    try:
        assert wait_for(lambda: os.path.exists(dev.download) and
                        os.path.getsize(dev.download) > 40_000, timeout=30)
    finally:
        proc.kill()  # power cut: no chance to clean up
        proc.communicate()
    part = os.path.getsize(dev.download)
    assert 0 < part < size
    assert dev.phase() == "downloading"
    server.rate = None
    p = dev.once()
    rng = server.requests_to("/artifacts/")[-1]["range"]
    assert rng and int(rng.split("=")[1].rstrip("-")) > 0, rng
    assert dev.phase() == "installed", p.stderr
    assert any("resumed at byte" in d for d in details(server.feedback_of(a.id)))


def test_dropped_connection_is_resumed_in_the_same_run(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    server.assign(serve(server, bundles["v2"]))
    server.cut_after = 70_000
    p = dev.once()
    assert dev.phase() == "installed", p.stderr
    reqs = server.requests_to("/artifacts/")
    assert len(reqs) == 2 and reqs[1]["range"] == "bytes=70000-", reqs
    assert "download interrupted at byte 70000" in p.stderr


def test_sigterm_stops_cleanly_and_resumes(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    server.assign(serve(server, bundles["v2"]))
    server.rate = 40_000
    proc = dev.start()
    assert wait_for(lambda: os.path.exists(dev.download) and
                    os.path.getsize(dev.download) > 20_000, timeout=30)
    t0 = time.time()
    rc, out, err = stop(proc, signal.SIGTERM)
    assert rc == 0, err
    assert time.time() - t0 < 5
    assert "stopping" in err
    assert dev.phase() == "downloading"
    server.rate = None
    dev.once()
    assert dev.phase() == "installed"


@pytest.mark.slow
def test_daemon_polls_at_the_server_interval(tmp_path, pki, server):
    dev = Device(tmp_path, server, pki)
    proc = dev.start()
    try:
        time.sleep(3.5)
    finally:
        rc, out, err = stop(proc)
    polls = server.requests_to(r"/controller/v1/dev1$", "GET")
    assert 3 <= len(polls) <= 5, polls  # sleep 00:00:01
    assert rc == 0
    assert "error" not in err and "warning" not in err, err
    # unchanged answers come back as 304 (If-None-Match with hawkBit's ETag)
    assert sum(1 for r in polls if r.get("status") == 304) >= len(polls) - 2, polls
    import json
    with open(dev.status_file) as f:
        assert json.load(f)["polls_not_modified"] >= 1


def test_429_and_500_on_poll_then_recovers(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    server.inject(r"/controller/v1/dev1$", 429, headers={"Retry-After": "1"})
    p = dev.once(expect_rc=1)
    assert "HTTP 429" in p.stderr
    server.inject(r"/controller/v1/dev1$", 500)
    p = dev.once(expect_rc=1)
    assert "HTTP 500" in p.stderr
    a = server.assign(serve(server, bundles["v2"]))
    # feedback answered 429 and 409: retried, then delivered
    server.inject(r"/feedback$", 429, count=2, headers={"Retry-After": "1"})
    server.inject(r"/feedback$", 409, count=1)
    p = dev.once()
    assert "retrying" in p.stderr
    assert dev.phase() == "installed"
    assert executions(server.feedback_of(a.id))[0] == ("download", "none")


def test_wrong_token(tmp_path, pki, server):
    dev = Device(tmp_path, server, pki, token="wrong-token-42")
    p = dev.once(expect_rc=1)
    assert "authentication failed; check auth_token" in p.stderr
    assert "wrong-token-42" not in p.stderr
    assert all(r["auth"] == "TargetToken wrong-token-42" for r in server.requests)


def test_gateway_token(tmp_path, pki, server):
    server.gateway_token = "gw-secret-7"
    dev = Device(tmp_path, server, pki)
    with open(dev.conf) as f:
        text = f.read().replace(f"auth_token={server.token}", "gateway_token=gw-secret-7")
    with open(dev.conf, "w") as f:
        f.write(text)
    p = dev.once()
    assert "gw-secret-7" not in p.stderr
    assert server.requests[0]["auth"] == "GatewayToken gw-secret-7"


def test_hawkbit_status_cli(tmp_path, pki, bundles, server):
    import json
    dev = Device(tmp_path, server, pki)
    p = dev.abota("hawkbit", "status", "--config", dev.conf)
    assert "Action:          none" in p.stdout and "abotad has not run" in p.stdout, p.stdout
    server.assign(serve(server, bundles["v2"]), version="2.0.0")
    dev.once()
    p = dev.abota("hawkbit", "status", "--config", dev.conf, "--output-format=json")
    st = json.loads(p.stdout)
    assert st["action"]["phase"] == "installed" and st["action"]["target_slot"] == "B"
    assert st["action"]["version"] == "2.0.0" and st["authentication"] == "TargetToken"
    assert st["last_result"] == "ok" and st["daemon_running"] is False
    assert st["server"] == server.base
    p = dev.abota("hawkbit", "status", "--config", dev.conf)
    assert "installed, waiting for the reboot" in p.stdout
    assert server.token not in p.stdout + p.stderr
    bad = dev.abota("hawkbit", "status", "--config", str(tmp_path / "missing.conf"), check=False)
    assert bad.returncode == 1 and "missing.conf" in bad.stderr


def make_tls(d):
    """A CA, a server certificate for 127.0.0.1 and client certificates."""
    import subprocess
    os.makedirs(d, exist_ok=True)

    def sh(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
       "-subj", "/CN=abotad test CA", "-days", "30")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, subj, ext in (("server", "/CN=127.0.0.1", "san.ext"), ("dev1", "/CN=dev1", "client.ext"),
                            ("other", "/CN=other", "client.ext")):
        sh("openssl", "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj)
        sh("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
           "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", f"{name}.pem")
    return {k: os.path.join(d, k) for k in ("ca.pem", "server.pem", "server.key", "dev1.pem",
                                             "dev1.key", "other.pem", "other.key")}


@pytest.mark.parametrize("stream", [False, True])
def test_client_certificate(tmp_path, pki, bundles, stream):
    t = make_tls(str(tmp_path / "tls"))
    server = DDIServer(token=None, tls=(t["server.pem"], t["server.key"], t["ca.pem"]))
    try:
        dev = Device(tmp_path / "dev", server, pki, stream=stream, token="unused")

        def conf(cert):
            with open(dev.conf) as f:
                text = f.read()
            text = text.replace("ssl=false\n", f"ssl=true\nssl_ca={t['ca.pem']}\n"
                                f"ssl_cert={t[cert + '.pem']}\nssl_key={t[cert + '.key']}\n")
            text = text.replace("auth_token=unused\n", "")
            with open(dev.conf + ".new", "w") as f:
                f.write(text)
        # a certificate for another controller id is refused
        conf("other")
        os.replace(dev.conf + ".new", dev.conf)
        p = dev.once(expect_rc=1)
        assert "authentication failed; check ssl_cert / ssl_key" in p.stderr
        dev.write_conf(stream=stream, token="unused")
        conf("dev1")
        os.replace(dev.conf + ".new", dev.conf)
        a = server.assign(serve(server, bundles["v2"]))
        p = dev.once()
        assert dev.phase() == "installed", p.stderr
        assert server.requests_to("/artifacts/")
        assert all(r["auth"] is None for r in server.requests)
        dev.reboot()
        dev.abota("status", "mark-good")
        dev.once()
        assert a.status == "finished"
        assert not server.violations, server.violations
    finally:
        server.close()


def test_failed_reboot_command_is_retried_after_restart(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    with open(dev.conf) as f:
        text = f.read()
    with open(dev.conf, "w") as f:
        f.write(text.replace(f"reboot_command=touch {dev.reboot_flag}", "reboot_command=false"))
    a = server.assign(serve(server, bundles["v2"]))
    p = dev.once(expect_rc=1)
    assert "reboot command 'false' failed" in p.stderr
    assert dev.phase() == "installed" and a.status == "running"
    dev.write_conf()
    dev.once()
    assert os.path.exists(dev.reboot_flag)
    assert dev.state()["action.reboot_requested"] == "true"


@pytest.mark.parametrize("fraction", [0.3, pytest.param(0.7, marks=pytest.mark.slow)])
def test_power_cut_during_install_resumes(tmp_path, pki, bundles, server, fraction):
    """A simulated power cut (powercut.h) inside the install: abotad dies
    with 137 without reporting anything; after the restart the same action
    is installed (the installer's journal resumes it) and only then reported."""
    log = str(tmp_path / "points.log")
    # count the install's write points once, on a separate device
    ref = Device(tmp_path / "ref", server, pki)
    a0 = server.assign(serve(server, bundles["v2"]))
    ref.once(env={"ABOTA_POWERCUT_LOG": log})
    server.cancel(a0.id)
    a0.status = "canceled"
    with open(log) as f:
        points = len(f.readlines())
    assert points > 10, points
    dev = Device(tmp_path / "dev", server, pki)
    a = server.assign("update.raucb")
    p = dev.once(expect_rc=137, env={"ABOTA_POWERCUT": str(int(points * fraction))})
    assert dev.phase() == "installing", p.stderr
    assert ("closed", "failure") not in executions(server.feedback_of(a.id))
    p = dev.once()
    assert dev.phase() == "installed", p.stderr
    assert "install resumed" in p.stderr  # the journal continued, not a fresh write
    assert a.status == "running"
    assert dev.reboot()["bank"] == 1
    dev.abota("status", "mark-good")
    dev.once()
    assert a.status == "finished"


@pytest.mark.parametrize("sleep,seconds", [("00:00:07", 7), ("PT24H", 86400),
                                           pytest.param("P1DT2H", 93600, marks=pytest.mark.slow)])
def test_poll_interval_formats(tmp_path, pki, server, sleep, seconds):
    import json
    server.sleep = sleep
    dev = Device(tmp_path, server, pki)
    t0 = time.time()
    dev.once()
    with open(dev.status_file) as f:
        st = json.load(f)
    assert st["server_poll_interval"] == seconds
    assert abs(st["next_poll"] - (t0 + seconds)) <= 3


def test_201_and_204_count_as_success(tmp_path, pki, bundles, server):
    dev = Device(tmp_path, server, pki)
    server.assign(serve(server, bundles["v2"]), kind="soft")  # update: attempt
    server.inject(r"/configData$", 201)
    server.inject(r"/feedback$", 204, count=2)
    p = dev.once()
    assert "configData" not in p.stderr.replace("sent 2 device attributes (configData)", "")
    assert dev.phase() == "installed"


def test_unknown_target_404(tmp_path, pki, server):
    dev = Device(tmp_path, server, pki)
    with open(dev.conf) as f:
        text = f.read().replace("target_name=dev1", "target_name=dev2")
    with open(dev.conf, "w") as f:
        f.write(text)
    p = dev.once(expect_rc=1)
    assert "HTTP 404: target 'dev2' unknown to the server" in p.stderr


def test_410_on_final_feedback_forgets_the_action(tmp_path, pki, bundles, server):
    """410: the server says the action is gone.  The agent forgets it -- and
    when a (broken) server offers the same action again, it sends the result
    again instead of installing a second time."""
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    dev.once()
    dev.reboot()
    dev.abota("status", "mark-good")
    md = dev.board.md()
    n_art = len(server.requests_to("/artifacts/"))
    server.inject(r"/deploymentBase/\d+/feedback$", 410, count=1)
    p = dev.once()
    assert "no longer active" in p.stderr
    assert "offers action 1 again" in p.stderr
    assert dev.phase() == "idle", p.stderr
    assert a.status == "finished"  # the second copy of the result arrived
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "success")
    assert len(server.requests_to("/artifacts/")) == n_art  # not installed twice
    assert dev.board.md() == md


@pytest.mark.parametrize("mode", ["wait", "auto", "deny"])
def test_consent_flow(tmp_path, pki, bundles, server, mode):
    """hawkBit's user-consent flow (confirmationBase), which
    rauc-hawkbit-updater does not support (its issue #155)."""
    import json
    dev = Device(tmp_path, server, pki, extra=f"confirm_actions={mode}\n")
    a = server.assign(serve(server, bundles["v2"]), confirm=True)
    p = dev.once()
    fb = server.feedback_of(a.id, "confirmationBase")
    if mode == "wait":
        assert fb == [] and a.status == "waiting"
        assert "waits for confirmation" in p.stderr
        st = json.loads(dev.abota("hawkbit", "status", "--config", dev.conf,
                                  "--output-format=json").stdout)
        assert st["waiting_confirmation"] == a.id
    elif mode == "deny":
        assert [b["confirmation"] for b in fb] == ["denied"] and a.status == "waiting"
    else:
        assert [b["confirmation"] for b in fb] == ["confirmed"] and a.status == "running"
        dev.once()
        assert dev.phase() == "installed"
    assert not server.requests_to("/deploymentBase/") or mode == "auto"


@pytest.mark.slow
def test_download_progress_feedback(tmp_path, pki, server):
    dev = Device(tmp_path, server, pki)
    server.add_artifact("big.raucb", os.urandom(600_000))
    a = server.assign("big.raucb", kind="downloadonly")
    server.rate = 100_000  # about 6 s
    dev.once()
    prog = [(b["status"]["result"]["progress"]["cnt"], b["status"]["details"][0])
            for b in server.feedback_of(a.id) if "progress" in b["status"]["result"]]
    assert 2 <= len(prog) <= 5, prog
    cnts = [c for c, _ in prog]
    assert cnts == sorted(cnts) and all(0 < c < 100 for c in cnts), prog
    assert all("Downloading:" in d for _, d in prog)
    assert a.status == "downloaded"


def test_unreadable_boot_state_does_not_stop_polling(tmp_path, pki, bundles, server):
    """When the agent cannot tell which slot runs (here: no kernel command
    line), it concludes nothing, says why, and keeps polling."""
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    dev.once()
    dev.reboot()
    dev.abota("status", "mark-good")
    cmdline = os.path.join(dev.board.dir, "cmdline")
    os.rename(cmdline, cmdline + ".away")
    n = len(server.requests)
    p = dev.once(expect_rc=1)
    assert "judging the installed update" in p.stderr, p.stderr
    assert len(server.requests) > n  # polled anyway
    assert dev.phase() == "installed" and a.status == "running"
    os.rename(cmdline + ".away", cmdline)
    dev.once()
    assert a.status == "finished"


def write_poll_state(dev, last_success=None, since=None):
    os.makedirs(os.path.dirname(dev.state_path), exist_ok=True)
    with open(dev.state_path, "w") as f:
        f.write("[poll]\n")
        if last_success:
            f.write(f"last_success={last_success}\n")
        if since:
            f.write(f"since={since}\n")


def hawkbit_status(dev):
    import json
    return json.loads(dev.abota("hawkbit", "status", "--config", dev.conf,
                                "--output-format=json").stdout)


def test_stale_after_days_without_a_successful_poll(tmp_path, pki, server):
    """SC-104: no successful poll for longer than stale_after (default 7
    days): abotad logs that the device is stale, and `abota hawkbit status`
    (readable and JSON) and the runtime status report it with the time of
    the last successful poll -- which survives restarts in hawkbit.state.
    One good poll clears it."""
    dev = Device(tmp_path, server, pki)
    now = int(time.time())
    eight_days = now - 8 * 86400
    write_poll_state(dev, last_success=eight_days, since=now - 30 * 86400)
    server.inject(r"/controller/v1/dev1$", 500)
    p = dev.once(expect_rc=1)
    assert "this device's update state is stale" in p.stderr, p.stderr
    st = hawkbit_status(dev)
    assert st["stale"] is True and st["last_successful_poll"] == eight_days, st
    assert st["stale_after"] == 7 * 86400
    txt = dev.abota("hawkbit", "status", "--config", dev.conf).stdout
    assert "Stale:           yes: no successful poll since " + \
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(eight_days)) in txt, txt
    import json
    with open(dev.status_file) as f:
        assert json.load(f)["stale"] is True
    # the server answers again: no longer stale, and the time is saved
    p = dev.once()
    assert "no longer stale" in p.stderr
    st = hawkbit_status(dev)
    assert st["stale"] is False and st["last_successful_poll"] >= now, st
    assert int(dev.state()["poll.last_success"]) >= now
    assert "Stale:" not in dev.abota("hawkbit", "status", "--config", dev.conf).stdout


def test_stale_when_no_poll_ever_succeeded(tmp_path, pki, server):
    """SC-104: a device that never reached its server counts from its first
    poll attempt; within stale_after it is not stale, after it it is."""
    dev = Device(tmp_path, server, pki, extra="stale_after=3600\n")
    server.inject(r"/controller/v1/dev1$", 503, count=5)
    dev.once(expect_rc=1)
    st = hawkbit_status(dev)
    assert st["stale"] is False and st["last_successful_poll"] is None, st
    since = int(dev.state()["poll.since"])
    write_poll_state(dev, since=since - 7200)
    p = dev.once(expect_rc=1)
    assert "never succeeded" in p.stderr, p.stderr
    st = hawkbit_status(dev)
    assert st["stale"] is True and st["stale_after"] == 3600, st
    assert "Last success:    never" in dev.abota("hawkbit", "status", "--config", dev.conf).stdout


def test_runtime_status_and_state_not_writable_by_others(tmp_path, pki, server):
    """SC-180: what abotad exposes locally -- the runtime status file (under
    /run/abota by default) and its directory, the state and lock files --
    is writable by abotad's user only; a status directory that others can
    write to (or another user owns) is refused: the status is not written
    there, with a warning.  (abotad has no socket of its own; its D-Bus
    interface is guarded by the bus policy, see docs/dbus.md.)"""
    import stat
    dev = Device(tmp_path, server, pki)
    dev.once()
    for path in (dev.status_file, os.path.dirname(dev.status_file), dev.state_path,
                 dev.state_path + ".lock"):
        st = os.stat(path)
        assert st.st_uid == os.geteuid(), path
        assert not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), (path, oct(st.st_mode))
    for path in (dev.state_path, dev.state_path + ".lock"):
        assert not os.stat(path).st_mode & 0o077, path
    # a world-writable status directory (made by someone else) is not used
    d2 = tmp_path / "shared-run"
    d2.mkdir()
    os.chmod(d2, 0o777)
    dev.write_conf(extra="")
    with open(dev.conf) as f:
        text = f.read().replace(f"status_file={dev.status_file}", f"status_file={d2}/hawkbit.status")
    with open(dev.conf, "w") as f:
        f.write(text)
    p = dev.once()
    assert "writable by group or others; the runtime status (status_file) is not written" in \
        p.stderr, p.stderr
    assert not os.path.exists(d2 / "hawkbit.status")
