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
    # SC-119: out-of-range size / id, huge strings, invalid UTF-8, duplicate keys
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
    # SC-121: several chunks each with a bundle, or none: failed before any download
    "two-bundles": (lambda d: d["deployment"]["chunks"].append(
        json.loads(json.dumps(d["deployment"]["chunks"][0]))), "expected exactly one bundle"),
    "no-artifacts": (lambda d: d["deployment"]["chunks"][0].__setitem__("artifacts", []),
                     "has no artifact"),
    "size-2^64": (lambda d: json.dumps(d).encode().replace(
        b'"size": %d' % d["deployment"]["chunks"][0]["artifacts"][0]["size"],
        b'"size": 18446744073709551616'), "artifacts[0].size"),
    "id-too-long": (lambda d: d.__setitem__("id", "12345678901234567890"), "not an action id"),
    "duplicate-key": (lambda d: json.dumps(d).encode().replace(b'"update":', b'"update": "skip", "update":'),
                      "duplicate keys"),
    "invalid-utf8": (lambda d: json.dumps(d).encode().replace(b'"os"', b'"o\xff\xfes"'),
                     "invalid utf-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_DEPLOYMENTS))
def test_bad_deployment(tmp_path, pki, bundles, server, case):  # noqa: F811
    """SC-119 (size/id out of range, huge strings, invalid UTF-8, duplicate
    keys) and SC-121 (two bundles, none): a bad deployment is reported as
    closed/failure with the parser's message before anything is downloaded
    or written; the agent keeps polling."""
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]))
    d = deployment_json(server, a)
    mutate, msg = BAD_DEPLOYMENTS[case]
    raw = mutate(d)  # bytes: the raw body (what json.dumps cannot express)
    a.deployment_override = raw if isinstance(raw, bytes) else json.dumps(d).encode()
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
                                  "endless", "duplicate-keys", "invalid-utf8"])
def test_bad_poll_response(tmp_path, pki, server, case):
    """SC-119: DDI JSON abuse on the poll -- a multi-MB body (endless), deep
    nesting, invalid UTF-8, duplicate keys, wrong types: rejected with one
    message, no crash, and the next poll works.  (The deployment side:
    test_bad_deployment; all DDI parsers: fuzz/fuzz_ddi.c.)"""
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
        "duplicate-keys": (b'{"_links":{"configData":{"href":"http://x/1"}},'
                           b'"_links":{"deploymentBase":{"href":"http://x/deploymentBase/1"}}}',
                           "duplicate keys"),
        "invalid-utf8": (b'{"config":{"polling":{"sleep":"00:00:01"}},"x":"\xc3\x28"}',
                         "invalid utf-8"),
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
    """SC-117 (default): with allow_redirects=false not even one redirect of
    the artifact is followed; the action fails naming the target."""
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
    """SC-110: the server sends 8 MiB more than the artifact's declared
    size (and announces them in Content-Length): the download is aborted at
    size + 1, the file never holds more than the size, the action fails."""
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


# --- security cases (../shared/specs/security-cases.md) ----------------------

def edit_conf(dev, *pairs):
    with open(dev.conf) as f:
        text = f.read()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    with open(dev.conf, "w") as f:
        f.write(text)


def files_under(d):
    return {os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs}


@pytest.mark.parametrize("filename", ["../../etc/x.raucb", "/", "a/../../b.raucb",
                                      "x" * 4096 + ".raucb"])
def test_server_filename_never_names_a_local_file(tmp_path, pki, bundles, server, filename):  # noqa: F811
    """SC-54: a server-supplied artifact filename with a path (`../../etc/x`,
    `/`) or 4 KiB long is rejected with a failure feedback; no file appears
    anywhere but the configured download location, state and status files."""
    dev = Device(tmp_path, server, pki)
    before = files_under(tmp_path)
    a = server.assign(serve(server, bundles["v2"]))
    d = deployment_json(server, a)
    d["deployment"]["chunks"][0]["artifacts"][0]["filename"] = filename
    a.deployment_override = json.dumps(d).encode()
    p = dev.once(expect_rc=1)
    assert "not a plain file name" in p.stderr or "longer than 255" in p.stderr, p.stderr
    assert executions(server.feedback_of(a.id)) == [("closed", "failure")]
    assert not server.requests_to("/artifacts/")
    new = files_under(tmp_path) - before
    assert new <= {"board/data/hawkbit.state", "board/data/hawkbit.state.lock",
                   "run/hawkbit.status"}, new


def test_server_ids_never_name_local_files(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-54: an accepted but hostile artifact name and action ids with path
    characters: the download goes to bundle_download_location only (no file
    is named after the server's artifact name or action id), and a
    deploymentBase / cancelAction id that is not 1-19 digits is refused."""
    dev = Device(tmp_path, server, pki)
    base = server.base
    for aid in ("..%2F..%2Fetc%2Fx", "9" * 25, ".."):
        server.base_override = json.dumps(
            {"_links": {"deploymentBase": {"href": f"{base}/deploymentBase/{aid}"}}}).encode()
        p = dev.once(expect_rc=1)
        assert "deploymentBase link without an action id" in p.stderr, p.stderr
    server.base_override = None
    before = files_under(tmp_path)
    name = "..update;rm-rf.raucb"
    a = server.assign(serve(server, bundles["v2"], name=name))
    p = dev.once()
    assert dev.phase() == "installed", p.stderr
    new = files_under(tmp_path) - before
    assert not [f for f in new if "update;" in f or f.endswith("/" + a.id)], new
    assert dev.state()["action.artifact"] == name  # kept as data only


def test_endless_chunked_artifact_is_cut_off(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-111: an artifact answered with a chunked body that never ends (no
    Content-Length) is cut off at the artifact's declared size: the action
    fails, the file never grows past the size, nothing is installed."""
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]))
    size = len(server.artifacts["update.raucb"])
    server.endless_chunked = True
    p = dev.once(expect_rc=1)
    assert "server sent more than the artifact's" in p.stderr, p.stderr
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")
    assert os.path.getsize(dev.download) <= size
    assert server.endless_sent < size + (4 << 20)  # the client hung up early
    assert dev.board.md() == md


def test_slow_drip_times_out(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-112: a server that drips 50 B/s against low_speed_rate=100 for
    low_speed_time=1 s: the download is aborted with curl's timeout and the
    action fails with it (resume_downloads=false: no second attempt)."""
    dev = Device(tmp_path, server, pki,
                 extra="low_speed_time=1\nlow_speed_rate=100\nresume_downloads=false\n")
    a = server.assign(serve(server, bundles["v2"]))
    server.rate = 50
    t0 = time.time()
    p = dev.once(expect_rc=1)
    assert time.time() - t0 < 8
    assert "too slow" in p.stderr.lower() or "Timeout" in p.stderr, p.stderr
    fb = server.feedback_of(a.id)
    assert executions(fb)[-1] == ("closed", "failure") and "Download failed" in details(fb)[-1]


@pytest.mark.slow
def test_slow_drip_with_resume_is_not_retried_forever(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-112: with resume_downloads=true each low-speed abort is resumed,
    but the bytes a drip delivers do not renew the retry budget: after 5
    retries the action fails with the timeout."""
    dev = Device(tmp_path, server, pki, extra="low_speed_time=1\nlow_speed_rate=100\n")
    a = server.assign(serve(server, bundles["v2"]))
    server.rate = 50
    p = dev.once(expect_rc=1)
    assert "retries exhausted" in p.stderr, p.stderr
    assert len(server.requests_to("/artifacts/")) == 6
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")


def test_range_answered_with_200_restarts(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-113: the resume request (Range) is answered with 200 and the whole
    file: the download starts over from byte 0 -- never appended -- and the
    result verifies and installs."""
    dev = Device(tmp_path, server, pki)
    server.assign(serve(server, bundles["v2"]))
    server.cut_after = 100_000
    server.ignore_range = True
    p = dev.once()
    assert "server ignored the range request; downloading from the start" in p.stderr
    reqs = server.requests_to("/artifacts/")
    assert len(reqs) == 2 and reqs[1]["range"] == "bytes=100000-", reqs
    assert dev.phase() == "installed"


def test_streaming_from_a_server_without_ranges_fails(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-113 (streaming): stream_bundle=true against an artifact server that
    answers range requests with 200 and the whole body: the install fails
    with "range requests not supported by server", the action is closed with
    failure, the boot selection (FWU metadata) is unchanged."""
    dev = Device(tmp_path, server, pki, stream=True)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]))
    server.ignore_range = True
    p = dev.once(expect_rc=1)
    assert "range requests not supported by server" in p.stderr, p.stderr
    fb = server.feedback_of(a.id)
    assert executions(fb)[-1] == ("closed", "failure")
    assert "range requests not supported" in details(fb)[-1]
    assert dev.board.md() == md


def test_wrong_content_range_is_rejected(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-114: a 206 whose Content-Range starts elsewhere than the requested
    range is rejected: nothing of it is written, the action fails."""
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    a = server.assign(serve(server, bundles["v2"]))
    server.cut_after = 100_000
    server.content_range_shift = 1
    p = dev.once(expect_rc=1)
    assert "unexpected Content-Range 'bytes 100001-" in p.stderr, p.stderr
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")
    assert os.path.getsize(dev.download) == 100_000
    assert dev.board.md() == md


@pytest.mark.parametrize("good", [True, False])
def test_resume_from_eof_completes_only_if_hash_matches(tmp_path, pki, bundles, server, good):  # noqa: F811
    """SC-115: a download that is already complete (power cut after the last
    byte) is not requested again -- abota never sends the range from EOF
    that a server answers with 416 -- and counts as complete only when the
    size and the sha256 match: a file of the right size with other content
    fails the action and is deleted."""
    dev = Device(tmp_path, server, pki)
    md = dev.board.md()
    name = serve(server, bundles["v2"])
    data = server.artifacts[name]
    sha = hashlib.sha256(data).hexdigest()
    with open(dev.download, "wb") as f:
        f.write(data if good else b"\0" * len(data))
    os.makedirs(os.path.dirname(dev.state_path), exist_ok=True)
    with open(dev.state_path, "w") as f:
        f.write(f"[download]\nsha256={sha}\n")
    a = server.assign(name)
    p = dev.once(expect_rc=0 if good else 1)
    assert not server.requests_to("/artifacts/")
    if good:
        assert dev.phase() == "installed", p.stderr
    else:
        assert "sha256 checksum mismatch" in p.stderr
        assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")
        assert not os.path.exists(dev.download)
        assert dev.board.md() == md


def test_artifact_404_mid_download_fails_at_once(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-116: the artifact vanishes (404) after part of it arrived: the
    resume gets 404 and the action fails at once (no loop, issue #158)."""
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    server.cut_after = 100_000
    server.gone_after_cut = 404
    p = dev.once(expect_rc=1)
    assert "HTTP status 404" in p.stderr, p.stderr
    assert len(server.requests_to("/artifacts/")) == 2
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")


def test_artifact_503_mid_download_retries_are_capped(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-116: the artifact answers 503 after part of it arrived
    (resume_downloads=true): 5 retries with backoff (bounded by retry_wait),
    then the action fails -- no endless loop."""
    dev = Device(tmp_path, server, pki)
    a = server.assign(serve(server, bundles["v2"]))
    server.cut_after = 100_000
    server.gone_after_cut = 503
    t0 = time.time()
    p = dev.once(expect_rc=1)
    assert time.time() - t0 < 15
    assert "retries exhausted" in p.stderr and "HTTP status 503" in p.stderr, p.stderr
    assert len(server.requests_to("/artifacts/")) == 1 + 6
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")


def test_redirect_chain_of_9_fails(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-117: allow_redirects=true and a chain of 9 redirects: at most 3
    are followed (RAUC follows 8), then the download fails -- without
    retrying the chain."""
    dev = Device(tmp_path, server, pki, extra="allow_redirects=true\n")
    a = server.assign(serve(server, bundles["v2"]))
    url = f"{server.base}/softwaremodules/1/artifacts/update.raucb"
    server.inject("/artifacts/", 302, count=9, headers={"Location": url})
    p = dev.once(expect_rc=1)
    assert "redirects" in p.stderr, p.stderr
    assert len(server.requests_to("/artifacts/")) == 4
    assert executions(server.feedback_of(a.id))[-1] == ("closed", "failure")


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory):
    """A CA; server certificates for 127.0.0.1 (good), for another host and
    expired, both from the CA; and a self-signed one for 127.0.0.1."""
    from pki import CA, _run
    d = str(tmp_path_factory.mktemp("hbtls"))
    ca = CA(d, "ca")
    with open(ca.cnf, "a") as f:
        for sec, san in (("v3_srv", "IP:127.0.0.1"), ("v3_other", "DNS:other.example,IP:127.0.0.2")):
            f.write(f"[ {sec} ]\nbasicConstraints = critical,CA:FALSE\n"
                    f"keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n"
                    f"subjectAltName = {san}\n")
    certs = {"good": ca.issue("good", "v3_srv"), "wrong-host": ca.issue("other", "v3_other"),
             "expired": ca.issue("expired", "v3_srv", start="20200101000000Z",
                                 end="20210101000000Z")}
    key, cert = os.path.join(d, "self.key"), os.path.join(d, "self.pem")
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1")
    certs["self-signed"] = (cert, key)
    certs["ca"] = ca.cert
    return certs


@pytest.mark.parametrize("case,verify,ok", [("good", True, True), ("self-signed", True, False),
                                            ("wrong-host", True, False), ("expired", True, False),
                                            ("self-signed", False, True)])
def test_tls_server_certificate(tmp_path, pki, tls_certs, case, verify, ok):
    """SC-118: abotad over https with ssl_ca=<test CA>: a self-signed, a
    wrong-host and an expired server certificate fail the poll (no request
    reaches the server's API); only ssl_verify=false accepts the
    self-signed one."""
    cert, key = tls_certs[case]
    server = DDIServer(tls=(cert, key, tls_certs["ca"]))
    try:
        dev = Device(tmp_path, server, pki)
        edit_conf(dev, ("ssl=false\n", f"ssl=true\nssl_ca={tls_certs['ca']}\n"
                                       f"ssl_verify={'true' if verify else 'false'}\n"))
        p = dev.once(expect_rc=0 if ok else 1)
        if ok:
            assert server.requests_to(r"/controller/v1/dev1$")
        else:
            assert "SSL" in p.stderr or "certificate" in p.stderr, p.stderr
            assert not server.requests, server.requests
    finally:
        server.close()


SLEEP_CASES = {
    # config.polling.sleep: (accepted?, seconds until the next poll)
    "25:00:00": (True, 43200),      # capped at stale_after / 2 (stale_after=86400 here)
    "P99999D": (True, 43200),       # likewise
    "00:00:00": (True, 1),          # taken as absent: retry_wait (1 s here), no busy loop
    "-1": (False, 1),               # rejected: retry_wait
    "PT": (False, 1),
    "P1000Y": (False, 1),
    None: (True, 1),                # missing: retry_wait
}


@pytest.mark.parametrize("sleep", list(SLEEP_CASES), ids=str)
def test_poll_sleep_values_fall_back_or_clamp(tmp_path, pki, server, sleep):
    """SC-120: config.polling.sleep 25:00:00, P99999D (clamped to half of
    stale_after), 00:00:00 (taken as absent), -1, PT, P1000Y (rejected with
    the poll response), missing: the next poll comes after retry_wait or the
    clamp -- never immediately."""
    dev = Device(tmp_path, server, pki, extra="stale_after=86400\n")
    server.base_override = json.dumps(
        {"config": {"polling": {"sleep": sleep}}} if sleep is not None else {}).encode()
    accepted, seconds = SLEEP_CASES[sleep]
    t0 = time.time()
    p = dev.once(expect_rc=0 if accepted else 1)
    with open(dev.status_file) as f:
        st = json.load(f)
    assert t0 + seconds - 1 <= st["next_poll"] <= time.time() + seconds + 1, (st, p.stderr)
    if not accepted:
        assert "config.polling.sleep" in p.stderr
    elif seconds == 43200 or sleep == "00:00:00":
        assert "server poll interval" in p.stderr, p.stderr


def test_several_artifacts_install_the_single_bundle(tmp_path, pki, bundles, server):  # noqa: F811
    """SC-121: a deployment with several artifacts -- the bundle plus a
    signature file and a document -- installs the single *.raucb and
    downloads nothing else; two bundles (test_bad_deployment[two-bundles])
    or none fail the action before any download."""
    dev = Device(tmp_path, server, pki)
    name = serve(server, bundles["v2"])
    server.add_artifact("update.raucb.sig", b"sig")
    server.add_artifact("README.txt", b"doc")
    a = server.assign(name, extra_artifacts=["update.raucb.sig", "README.txt"])
    p = dev.once()
    assert dev.phase() == "installed", p.stderr
    assert {r["path"].rsplit("/", 1)[1] for r in server.requests_to("/artifacts/")} == {name}
    assert len(deployment_json(server, a)["deployment"]["chunks"][0]["artifacts"]) == 3
