"""abotad against a broken or hostile DDI server: malformed and wrongly
typed JSON, huge values, a hash that does not match the download, download
URLs on other hosts, redirects, bodies that never end, and bad configs.
Each gives one clear log message, a `failure` feedback where DDI allows one,
nothing installed, and the agent keeps working (the next poll succeeds)."""
import hashlib
import json
import os
import time

import pytest

from ddiserver import DDIServer
from hawkbithelp import ABOTAD, Device, details, executions, stop
from test_hawkbit_agent import bundles, serve  # noqa: F401  (module fixture)


@pytest.fixture
def server():
    s = DDIServer()
    yield s
    s.close()
    assert not s.violations, s.violations


def deployment_json(server, a):
    return server.deployment(a)


def assert_recovers(dev, server):
    """After the bad input the agent still polls normally."""
    server.base_override = None
    n = len(server.requests)
    dev.once()
    assert len(server.requests) > n


BAD_DEPLOYMENTS = {
    # name: (mutation of the deployment dict, expected message)
    "missing-chunks": (lambda d: d["deployment"].pop("chunks"), "deployment.chunks: missing"),
    "chunks-not-array": (lambda d: d["deployment"].__setitem__("chunks", {"a": 1}),
                         "deployment.chunks: expected array"),
    "size-is-string": (lambda d: d["deployment"]["chunks"][0]["artifacts"][0]
                       .__setitem__("size", "210000"), "size: expected number"),
    "negative-size": (lambda d: d["deployment"]["chunks"][0]["artifacts"][0]
                      .__setitem__("size", -5), "size: out of range"),
    "huge-size": (lambda d: d["deployment"]["chunks"][0]["artifacts"][0]
                  .__setitem__("size", 2 ** 62), "exceeds max_artifact_size"),
    "bad-update-enum": (lambda d: d["deployment"].__setitem__("update", "now"),
                        "deployment.update: 'now' is not one of the allowed values"),
    "missing-id": (lambda d: d.pop("id"), "id: missing"),
    "id-mismatch": (lambda d: d.__setitem__("id", "77"), "does not match its link"),
    "short-sha256": (lambda d: d["deployment"]["chunks"][0]["artifacts"][0]["hashes"]
                     .__setitem__("sha256", "abc"), "sha256: not 64 hex digits"),
    "filename-path": (lambda d: d["deployment"]["chunks"][0]["artifacts"][0]
                      .__setitem__("filename", "../../etc/passwd"), "not a plain file name"),
    "href-not-url": (lambda d: d["deployment"]["chunks"][0]["artifacts"][0]["_links"]
                     ["download"].__setitem__("href", "file:///etc/shadow"),
                     "not an absolute http(s) URL"),
    "huge-string": (lambda d: d["deployment"]["chunks"][0].__setitem__("version", "9" * 100000),
                    "version: longer than"),
    "two-bundles": (lambda d: d["deployment"]["chunks"].append(
        json.loads(json.dumps(d["deployment"]["chunks"][0]))), "expected exactly one bundle"),
    "no-artifacts": (lambda d: d["deployment"]["chunks"][0].__setitem__("artifacts", []),
                     "has no artifact"),
}


@pytest.mark.parametrize("case", sorted(BAD_DEPLOYMENTS))
def test_bad_deployment(tmp_path, pki, bundles, server, case):  # noqa: F811
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]))
    d = deployment_json(server, a)
    mutate, msg = BAD_DEPLOYMENTS[case]
    mutate(d)
    a.deployment_override = json.dumps(d).encode()
    p = dev.once(expect_rc=1)
    assert msg in p.stderr, p.stderr
    fb = server.feedback_of(a.id)
    assert executions(fb) == [("closed", "failure")], fb
    assert msg in details(fb)[0]
    assert a.status == "error"
    assert dev.board.md() == md
    assert not server.requests_to("/artifacts/")
    assert_recovers(dev, server)


@pytest.mark.parametrize("case", ["not-json", "trailing-garbage", "array", "sleep-number",
                                  "sleep-garbage", "link-not-object", "deep-nesting",
                                  "endless"])
def test_bad_poll_response(tmp_path, pki, server, case):
    dev = Device(tmp_path, server, pki)
    body, msg = {
        "not-json": (b"<html>hello</html>", "malformed JSON"),
        "trailing-garbage": (b'{"config":{}} {"x":1}', "malformed JSON"),
        "array": (b"[1,2,3]", "not an object"),
        "sleep-number": (b'{"config":{"polling":{"sleep":300}}}',
                         "config.polling.sleep: expected string"),
        "sleep-garbage": (b'{"config":{"polling":{"sleep":"5 minutes"}}}',
                          "neither HH:MM:SS nor an ISO-8601 duration"),
        "link-not-object": (b'{"_links":{"deploymentBase":"http://x/1"}}',
                            "_links.deploymentBase: expected object"),
        "deep-nesting": (b'{"a":' * 100 + b"1" + b"}" * 100, "malformed JSON"),
        "endless": (b'{"config":{"polling":{"sleep":"00:00:01"}},"x":"' + b"A" * (3 << 20) +
                    b'"}', "response body exceeds"),
    }[case]
    server.base_override = body
    p = dev.once(expect_rc=1)
    assert msg in p.stderr, p.stderr
    assert_recovers(dev, server)


def test_hash_mismatch(tmp_path, pki, bundles, server):  # noqa: F811
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]))
    d = deployment_json(server, a)
    d["deployment"]["chunks"][0]["artifacts"][0]["hashes"]["sha256"] = \
        hashlib.sha256(b"something else").hexdigest()
    a.deployment_override = json.dumps(d).encode()
    p = dev.once(expect_rc=1)
    assert "sha256 checksum mismatch" in p.stderr
    fb = server.feedback_of(a.id)
    assert executions(fb)[-1] == ("closed", "failure") and "checksum mismatch" in details(fb)[-1]
    assert not os.path.exists(dev.download)
    assert dev.board.md() == md
    assert_recovers(dev, server)


def test_download_url_on_another_host_is_refused(tmp_path, pki, bundles, server):  # noqa: F811
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    d = deployment_json(server, a)
    links = d["deployment"]["chunks"][0]["artifacts"][0]["_links"]
    for k in ("download", "download-http"):
        links[k]["href"] = links[k]["href"].replace("127.0.0.1", "127.0.0.2")
    a.deployment_override = json.dumps(d).encode()
    p = dev.once(expect_rc=1)
    assert "refused" in p.stderr and "127.0.0.2" in p.stderr
    assert executions(server.feedback_of(a.id)) == [("closed", "failure")]
    assert not server.requests_to("/artifacts/")


def test_download_url_on_allowed_host(tmp_path, pki, bundles, server):  # noqa: F811
    """With allowed_download_hosts the other host is used -- without the
    device's token (a CDN must not see it)."""
    other = DDIServer(token=None)  # serves artifacts without authentication
    try:
        dev = Device(tmp_path, server, pki, extra=f"allowed_download_hosts={other.host}\n")
        name = serve(server, bundles["v2"])
        other.add_artifact(name, server.artifacts[name])
        a = server.assign(name)
        d = deployment_json(server, a)
        links = d["deployment"]["chunks"][0]["artifacts"][0]["_links"]
        for k in ("download", "download-http"):
            links[k]["href"] = links[k]["href"].replace(server.host, other.host)
        a.deployment_override = json.dumps(d).encode()
        # the CDN answers 401 to any Authorization header, like S3 would
        other._auth_ok = lambda h: h.headers.get("Authorization") is None
        dev.once()
        assert dev.phase() == "installed"
        reqs = other.requests_to("/artifacts/")
        assert reqs and all(r["auth"] is None for r in reqs)
    finally:
        other.close()


def test_redirect_is_not_followed(tmp_path, pki, bundles, server):  # noqa: F811
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    server.inject("/artifacts/", 302, headers={"Location": "http://127.0.0.3:1/evil.raucb"})
    p = dev.once(expect_rc=1)
    assert "not followed (allow_redirects=false)" in p.stderr
    assert executions(server.feedback_of(a.id)) [-1] == ("closed", "failure")


def test_redirect_on_poll_is_not_followed(tmp_path, pki, server):
    dev = Device(tmp_path, server, pki)
    server.inject(r"/controller/v1/dev1$", 301, headers={"Location": "http://127.0.0.3:1/"})
    p = dev.once(expect_rc=1)
    assert "not followed" in p.stderr
    assert_recovers(dev, server)


def test_endless_artifact_body_is_cut_off(tmp_path, pki, bundles, server):  # noqa: F811
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    server.extra_body = 8 << 20  # the server keeps sending past the artifact
    p = dev.once(expect_rc=1)
    assert "more than the artifact's" in p.stderr
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")
    assert os.path.getsize(dev.download) <= len(server.artifacts["update.raucb"])


def test_vanished_artifact_fails_the_action(tmp_path, pki, bundles, server):  # noqa: F811
    """rauc-hawkbit-updater issue #158: a 404 on the artifact must fail the
    action, not loop."""
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    server.inject("/artifacts/", 404, count=100)
    p = dev.once(expect_rc=1)
    assert "HTTP status 404" in p.stderr
    assert len(server.requests_to("/artifacts/")) == 1
    assert a.status == "error"


@pytest.mark.slow
def test_daemon_survives_bad_input_and_then_updates(tmp_path, pki, bundles, server):  # noqa: F811
    dev = Device(tmp_path, server, pki)
    server.base_override = b'{"config":'
    proc = dev.start()
    try:
        time.sleep(2.5)
        assert proc.poll() is None
        server.base_override = None
        server.assign(serve(server, bundles["v2"]))
        deadline = time.time() + 30
        while not os.path.exists(dev.reboot_flag) and time.time() < deadline:
            time.sleep(0.1)
        assert os.path.exists(dev.reboot_flag)
    finally:
        rc, out, err = stop(proc)
    assert rc == 0
    assert "malformed JSON" in err
    assert server.token not in err


CONFIG_CASES = {
    "no-auth": ("auth_token=TOKEN\n", "", "no authentication"),
    "two-tokens": ("auth_token=TOKEN\n", "auth_token=TOKEN\ngateway_token=x\n",
                   "both 'auth_token' and 'gateway_token' set"),
    "token-and-cert": ("ssl=false\n", "ssl=true\nssl_cert=/c.pem\nssl_key=/k.pem\n",
                       "both token and client certificate"),
    "unknown-key": ("retry_wait=1\n", "retry_wait=1\nretry_wiat=5\n", "retry_wiat"),
    "bad-bool": ("ssl=false\n", "ssl=maybe\n", "ssl"),
    "server-with-scheme": ("hawkbit_server=", "hawkbit_server=http://", "not host[:port]"),
    "connect-over-timeout": ("timeout=20\n", "timeout=5\nconnect_timeout=10\n",
                             "exceeds 'timeout'"),
    "no-download-location": ("bundle_download_location=", "#", "bundle_download_location"),
    "token-with-space": ("auth_token=TOKEN\n", "auth_token=a b\n", "whitespace"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config(tmp_path, pki, server, case):
    dev = Device(tmp_path, server, pki)
    old, new, msg = CONFIG_CASES[case]
    with open(dev.conf) as f:
        text = f.read().replace(old.replace("TOKEN", server.token),
                                new.replace("TOKEN", server.token), 1)
    with open(dev.conf, "w") as f:
        f.write(text)
    p = dev.once(expect_rc=4)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and msg in lines[0] and "hawkbit.conf" in lines[0], p.stderr
    assert not server.requests


def test_download_location_missing_directory(tmp_path, pki, bundles, server):  # noqa: F811
    dev = Device(tmp_path, server, pki)
    with open(dev.conf) as f:
        text = f.read().replace(f"bundle_download_location={dev.download}",
                                f"bundle_download_location={tmp_path}/no-such-dir/b.raucb")
    with open(dev.conf, "w") as f:
        f.write(text)
    a = server.assign(serve(server, bundles["v2"]))
    p = dev.once(expect_rc=1)
    assert "no-such-dir/b.raucb: No such file or directory" in p.stderr
    fb = server.feedback_of(a.id)
    assert executions(fb)[-1] == ("closed", "failure") and "Download failed" in details(fb)[-1]
    assert not server.requests_to("/artifacts/")


def test_download_location_too_small(tmp_path, pki, bundles, server):  # noqa: F811
    """Free space is checked before the first byte (a 64 KiB tmpfs)."""
    import subprocess
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        dev = Device(tmp_path / "dev", server, pki)
        with open(dev.conf) as f:
            text = f.read().replace(f"bundle_download_location={dev.download}",
                                    f"bundle_download_location={small}/b.raucb")
        with open(dev.conf, "w") as f:
            f.write(text)
        a = server.assign(serve(server, bundles["v2"]))
        p = dev.once(expect_rc=1)
        assert "bytes needed" in p.stderr and "available" in p.stderr, p.stderr
        assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")
        assert not server.requests_to("/artifacts/")
    finally:
        subprocess.run(["umount", str(small)])


@pytest.mark.slow
def test_poll_body_that_never_ends_times_out(tmp_path, pki, server):
    dev = Device(tmp_path, server, pki, extra="")
    with open(dev.conf) as f:
        text = f.read().replace("timeout=20\n", "timeout=2\nconnect_timeout=2\n")
    with open(dev.conf, "w") as f:
        f.write(text)
    server.stall_poll = 6
    t0 = time.time()
    p = dev.once(expect_rc=1)
    assert time.time() - t0 < 5
    assert "Timeout was reached" in p.stderr or "timed out" in p.stderr, p.stderr
    server.stall_poll = 0
    assert_recovers(dev, server)
