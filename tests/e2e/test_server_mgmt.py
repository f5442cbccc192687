"""abota-server, operator side: the hawkBit Management API subset, every
response checked against hawkBit's management OpenAPI document; bundle
uploads verified with the configured keyring."""
import json
import os

import pytest

from conftest import abota, make_content
from serverhelp import ADMIN, Contract, Server


@pytest.fixture(scope="module")
def bundles(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("srvbundles")
    content = make_content(str(d / "content"), compatible="abota-sim-stm32mp257f-ev1",
                           version="3.1", rootfs_kib=2048)
    out = {}
    out["good"] = str(d / "good.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, out["good"])
    out["stranger"] = str(d / "stranger.raucb")
    abota("bundle", "--cert", pki.stranger[0], "--key", pki.stranger[1], content,
          out["stranger"])
    out["plain"] = str(d / "plain.raucb")
    abota("bundle", "--format=plain", "--cert", pki.signer[0], "--key", pki.signer[1], content,
          out["plain"])
    data = bytearray(open(out["good"], "rb").read())
    data[len(data) // 3] ^= 0x55
    out["corrupt"] = str(d / "corrupt.raucb")
    open(out["corrupt"], "wb").write(bytes(data))
    return out


@pytest.fixture(scope="module")
def mc():
    return Contract("mgmt-openapi.json")


@pytest.fixture
def srv(tmp_path, pki):
    s = Server(tmp_path / "data", keyring=pki.keyring)
    yield s
    assert s.alive(), "server died: " + s.stderr()[-2000:]
    assert s.stop() == 0


def test_targets(srv, mc):
    r = srv.mgmt("POST", "/targets", [{"controllerId": "t1", "name": "Target 1",
                                        "description": "d"},
                                       {"controllerId": "t2", "name": "t2",
                                        "securityToken": "my-own-token-0123456789"}])
    body = mc.validate("/rest/v1/targets", "POST", r)
    assert r.status == 201 and [t["controllerId"] for t in body] == ["t1", "t2"]
    assert len(body[0]["securityToken"]) == 32
    assert body[1]["securityToken"] == "my-own-token-0123456789"
    assert body[0]["updateStatus"] == "unknown"
    r = srv.mgmt("POST", "/targets", [{"controllerId": "t1", "name": "again"}])
    assert r.status == 409
    r = srv.mgmt("GET", "/targets?offset=0&limit=1")
    page = mc.validate("/rest/v1/targets", "GET", r)
    assert page["total"] == 2 and page["size"] == 1
    r = srv.mgmt("GET", "/targets?q=controllerId==t2")
    assert [t["controllerId"] for t in r.json()["content"]] == ["t2"]
    r = srv.mgmt("GET", "/targets/t1")
    assert mc.validate("/rest/v1/targets/{targetId}", "GET", r)["name"] == "Target 1"
    r = srv.mgmt("PUT", "/targets/t1", {"name": "renamed", "description": "x"})
    assert mc.validate("/rest/v1/targets/{targetId}", "PUT", r)["name"] == "renamed"
    r = srv.mgmt("GET", "/targets/t1/attributes")
    assert mc.validate("/rest/v1/targets/{targetId}/attributes", "GET", r) == {}
    r = srv.mgmt("GET", "/targets/t1/actions")
    assert mc.validate("/rest/v1/targets/{targetId}/actions", "GET", r)["total"] == 0
    r = srv.mgmt("DELETE", "/targets/t2")
    mc.validate("/rest/v1/targets/{targetId}", "DELETE", r)
    assert r.status == 200
    assert srv.mgmt("GET", "/targets/t2").status == 404
    assert srv.mgmt("DELETE", "/targets/t2").status == 404


def test_modules_artifacts_sets_assign(srv, mc, bundles):
    r = srv.mgmt("POST", "/softwaremodules", [{"name": "rootfs", "version": "3.1", "type": "os",
                                               "vendor": "ACME"}])
    [sm] = mc.validate("/rest/v1/softwaremodules", "POST", r)
    assert r.status == 201
    data = open(bundles["good"], "rb").read()
    r = srv.upload(sm["id"], "good.raucb", data)
    art = mc.validate("/rest/v1/softwaremodules/{softwareModuleId}/artifacts", "POST", r)
    assert r.status == 201 and art["size"] == len(data)
    assert art["bundle"]["compatible"] == "abota-sim-stm32mp257f-ev1"
    assert art["bundle"]["version"] == "3.1"
    assert "CN = signer" in art["bundle"]["signer"]
    # the same name twice in a module: 409
    assert srv.upload(sm["id"], "good.raucb", data).status == 409
    r = srv.mgmt("GET", f"/softwaremodules/{sm['id']}/artifacts")
    assert [a["providedFilename"] for a in
            mc.validate("/rest/v1/softwaremodules/{softwareModuleId}/artifacts", "GET", r)] == \
        ["good.raucb"]
    r = srv.mgmt("GET", f"/softwaremodules/{sm['id']}/artifacts/{art['id']}")
    mc.validate("/rest/v1/softwaremodules/{softwareModuleId}/artifacts/{artifactId}", "GET", r)
    r = srv.mgmt("GET", "/softwaremodules")
    assert mc.validate("/rest/v1/softwaremodules", "GET", r)["total"] == 1
    r = srv.mgmt("GET", f"/softwaremodules/{sm['id']}")
    mc.validate("/rest/v1/softwaremodules/{softwareModuleId}", "GET", r)

    r = srv.mgmt("POST", "/distributionsets", [{"name": "fw", "version": "3.1", "type": "os",
                                                "modules": [{"id": sm["id"]}]}])
    [ds] = mc.validate("/rest/v1/distributionsets", "POST", r)
    assert [m["id"] for m in ds["modules"]] == [sm["id"]]
    assert srv.mgmt("POST", "/distributionsets",
                    [{"name": "fw", "version": "3.1", "modules": []}]).status == 409
    assert srv.mgmt("POST", "/distributionsets",
                    [{"name": "x", "version": "1", "modules": [{"id": 9999}]}]).status == 404
    r = srv.mgmt("GET", "/distributionsets")
    assert mc.validate("/rest/v1/distributionsets", "GET", r)["total"] == 1
    r = srv.mgmt("GET", f"/distributionsets/{ds['id']}")
    mc.validate("/rest/v1/distributionsets/{distributionSetId}", "GET", r)

    srv.create_target("a1")
    srv.create_target("a2")
    r = srv.mgmt("POST", f"/distributionsets/{ds['id']}/assignedTargets",
                 [{"id": "a1", "type": "soft", "weight": 100}, {"id": "a2"}])
    res = mc.validate("/rest/v1/distributionsets/{distributionSetId}/assignedTargets", "POST", r)
    assert res["assigned"] == 2 and res["total"] == 2 and len(res["assignedActions"]) == 2
    r = srv.mgmt("POST", f"/distributionsets/{ds['id']}/assignedTargets", [{"id": "a1"}])
    assert r.json()["alreadyAssigned"] == 1 and r.json()["assigned"] == 0
    r = srv.mgmt("POST", "/targets/a1/assignedDS", {"id": ds["id"], "type": "forced"})
    mc.validate("/rest/v1/targets/{targetId}/assignedDS", "POST", r)
    assert r.status == 200
    r = srv.mgmt("GET", "/targets/a1/assignedDS")
    assert mc.validate("/rest/v1/targets/{targetId}/assignedDS", "GET", r)["id"] == ds["id"]
    aid = res["assignedActions"][0]["id"]
    r = srv.mgmt("GET", f"/targets/a1/actions/{aid}")
    act = mc.validate("/rest/v1/targets/{targetId}/actions/{actionId}", "GET", r)
    assert act["type"] == "update" and act["status"] == "running"
    assert act["forceType"] == "soft" and act["weight"] == 100
    r = srv.mgmt("GET", f"/targets/a1/actions/{aid}/status?offset=0&limit=50&sort=id:DESC")
    st = mc.validate("/rest/v1/targets/{targetId}/actions/{actionId}/status", "GET", r)
    assert st["content"][0]["type"] == "running"
    r = srv.mgmt("GET", "/actions")
    assert mc.validate("/rest/v1/actions", "GET", r)["total"] == 2
    r = srv.mgmt("DELETE", f"/targets/a1/actions/{aid}")
    mc.validate("/rest/v1/targets/{targetId}/actions/{actionId}", "DELETE", r)
    assert srv.mgmt("GET", f"/targets/a1/actions/{aid}").json()["detailStatus"] == "canceling"
    r = srv.mgmt("DELETE", f"/targets/a1/actions/{aid}?force=true")
    assert r.status == 200
    a = srv.mgmt("GET", f"/targets/a1/actions/{aid}").json()
    assert a["detailStatus"] == "canceled" and a["status"] == "canceled"
    assert srv.mgmt("DELETE", f"/targets/a1/actions/{aid}").status == 400
    # used module and set are soft-deleted (still readable, flagged)
    r = srv.mgmt("DELETE", f"/distributionsets/{ds['id']}")
    mc.validate("/rest/v1/distributionsets/{distributionSetId}", "DELETE", r)
    assert srv.mgmt("GET", f"/distributionsets/{ds['id']}").json()["deleted"] is True
    assert srv.mgmt("DELETE", f"/softwaremodules/{sm['id']}").status == 200
    # unused artifact is deleted with its blob
    r = srv.mgmt("POST", "/softwaremodules", [{"name": "tmp", "version": "1", "type": "os"}])
    sm2 = r.json()[0]["id"]
    a2 = srv.upload(sm2, "other.raucb", data).json()["id"]
    r = srv.mgmt("DELETE", f"/softwaremodules/{sm2}/artifacts/{a2}")
    mc.validate("/rest/v1/softwaremodules/{softwareModuleId}/artifacts/{artifactId}",
                "DELETE", r)
    assert r.status == 200
    blobs = os.listdir(os.path.join(srv.data, "artifacts"))
    assert len(blobs) == 1  # still used by good.raucb in the first module


def test_configs(srv, mc):
    r = srv.mgmt("GET", "/system/configs/pollingTime")
    assert mc.validate("/rest/v1/system/configs/{keyName}", "GET", r)["value"] == "00:05:00"
    r = srv.mgmt("PUT", "/system/configs/authentication.gatewaytoken.enabled", {"value": True})
    assert mc.validate("/rest/v1/system/configs/{keyName}", "PUT", r)["value"] is True
    assert srv.mgmt("PUT", "/system/configs/authentication.gatewaytoken.enabled",
                    {"value": "yes"}).status == 400
    assert srv.mgmt("GET", "/system/configs/no.such.key").status == 404
    r = srv.mgmt("DELETE", "/system/configs/authentication.gatewaytoken.enabled")
    mc.validate("/rest/v1/system/configs/{keyName}", "DELETE", r)
    assert srv.mgmt("GET", "/system/configs/authentication.gatewaytoken.enabled").json()[
        "value"] is False


def test_upload_plain_bundle(srv, bundles):
    """A plain bundle is verified on upload like a verity one (the server's own temporary
    file is exempt from the checks for foreign writers an install makes: the server still
    holds it open while it verifies it)."""
    sm = srv.mgmt("POST", "/softwaremodules", [{"name": "p", "version": "1", "type": "os"}])
    sm = sm.json()[0]["id"]
    data = open(bundles["plain"], "rb").read()
    r = srv.upload(sm, "plain.raucb", data)
    assert r.status == 201, r
    assert r.json()["bundle"]["format"] == "plain"
    assert r.json()["size"] == len(data)


def test_upload_refusals(srv, bundles, tmp_path):
    sm = srv.mgmt("POST", "/softwaremodules",
                  [{"name": "r", "version": "1", "type": "os"}]).json()[0]["id"]
    good = open(bundles["good"], "rb").read()
    cases = {
        "stranger": (open(bundles["stranger"], "rb").read(), "signature"),
        "corrupt": (open(bundles["corrupt"], "rb").read(), "upload refused"),
        "text": (b"this is not a bundle\n" * 100, "upload refused"),
        "empty": (b"", "upload refused"),
    }
    for name, (data, reason) in cases.items():
        r = srv.upload(sm, name + ".raucb", data)
        assert r.status == 400, (name, r)
        msg = r.json()["message"]
        assert reason in msg and name + ".raucb" in msg, (name, msg)
        assert r.json()["errorCode"] == "hawkbit.server.error.artifact.invalidBundle"
    # names that could escape or break headers/links
    for bad in ("../../etc/passwd", "a/b.raucb", ".hidden.raucb", "x\r\nSet-Cookie: a",
                "a b.raucb", "'; DROP TABLE artifacts; --", "é.raucb", "x" * 300):
        r = srv.upload(sm, bad, good)
        assert r.status == 400 and "file name" in r.json()["message"], (bad, r)
    # the filename query parameter wins over the part's name, and is checked as well
    r = srv.upload(sm, "ok.raucb", good, query="?filename=..%2Fevil.raucb")
    assert r.status == 400
    # hash parameters are checked
    r = srv.upload(sm, "h.raucb", good, query="?sha1sum=" + "0" * 40)
    assert r.status == 400 and "sha1sum" in r.json()["message"]
    # not multipart
    r = srv.request("POST", f"/rest/v1/softwaremodules/{sm}/artifacts", b"raw",
                    headers={"Content-Type": "application/octet-stream"}, auth="admin")
    assert r.status == 400
    # no such module
    assert srv.upload(999, "g.raucb", good).status == 404
    # nothing of the refused uploads is left behind
    assert os.listdir(os.path.join(srv.data, "tmp")) == []
    assert os.listdir(os.path.join(srv.data, "artifacts")) == []
    assert srv.mgmt("GET", f"/softwaremodules/{sm}/artifacts").json() == []


def test_upload_size_limit(tmp_path, pki, bundles):
    s = Server(tmp_path / "data", keyring=pki.keyring, extra=["--max-artifact-size", "100000"])
    try:
        sm = s.mgmt("POST", "/softwaremodules",
                    [{"name": "r", "version": "1", "type": "os"}]).json()[0]["id"]
        r = s.upload(sm, "big.raucb", open(bundles["good"], "rb").read())
        assert r.status == 413
        assert os.listdir(os.path.join(s.data, "tmp")) == []
    finally:
        s.stop()


def test_foreign_artifacts_need_the_option(srv, tmp_path, pki):
    sm = srv.mgmt("POST", "/softwaremodules",
                  [{"name": "s", "version": "1", "type": "os"}]).json()[0]["id"]
    assert srv.upload(sm, "image.swu", b"070701" + b"0" * 200).status == 400
    s2 = Server(tmp_path / "data2", keyring=pki.keyring, extra=["--allow-foreign-artifacts"])
    try:
        sm = s2.mgmt("POST", "/softwaremodules",
                     [{"name": "s", "version": "1", "type": "os"}]).json()[0]["id"]
        r = s2.upload(sm, "image.swu", b"070701" + b"0" * 200)
        assert r.status == 201 and "bundle" not in r.json()
        # a .raucb is still verified
        assert s2.upload(sm, "x.raucb", b"junk").status == 400
    finally:
        s2.stop()


def test_operator_auth(srv, mc):
    for auth in (None, ("admin", "wrong"), ("nobody", ADMIN[1]), "Basic !!!!", "Basic ",
                 "Bearer x", "Basic " + "A" * 2000, "Basic YWRtaW4="):
        r = srv.request("GET", "/rest/v1/targets", auth=auth)
        assert r.status == 401, auth
    r = srv.request("GET", "/rest/v1/targets")
    assert r.header("WWW-Authenticate") == 'Basic realm="abota-server"'
    # an upload without credentials is refused before its body is read
    r = srv.request("POST", "/rest/v1/softwaremodules/1/artifacts", b"x" * 1000,
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status == 401


def test_first_start_creates_admin(tmp_path):
    s = Server(tmp_path / "data", admin=None)
    try:
        line = [l for l in s.banner if "admin credentials" in l]
        assert line, s.banner
        pw = line[0].split("password ")[1].strip()
        assert len(pw) == 24
        assert s.request("GET", "/rest/v1/targets", auth=("admin", pw)).status == 200
    finally:
        s.stop()
    # a restart keeps them and does not print them again
    s = Server(tmp_path / "data", admin=None)
    try:
        assert not [l for l in s.banner if "admin credentials" in l]
        assert s.request("GET", "/rest/v1/targets", auth=("admin", pw)).status == 200
    finally:
        s.stop()


def test_tls(tmp_path, pki):
    """--tls-cert/--tls-key: HTTPS, and the links say https://."""
    import http.client
    import ssl
    import subprocess
    key, cert = str(tmp_path / "tls.key"), str(tmp_path / "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    s = Server(tmp_path / "data", keyring=pki.keyring, extra=["--tls-cert", cert, "--tls-key", key])
    try:
        assert s.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=cert)
        c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=10)
        import base64
        auth = "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
        c.request("POST", "/rest/v1/targets", body=json.dumps([{"controllerId": "tls1"}]),
                  headers={"Authorization": auth, "Content-Type": "application/json"})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 201
        c.request("GET", "/DEFAULT/controller/v1/tls1",
                  headers={"Authorization": "TargetToken " + body[0]["securityToken"]})
        r = c.getresponse()
        poll = json.loads(r.read())
        assert r.status == 200
        assert poll["_links"]["configData"]["href"].startswith(
            f"https://127.0.0.1:{s.port}/DEFAULT/controller/v1/tls1/")
        c.close()
        # plain HTTP on the TLS port gets no answer
        with pytest.raises(Exception):
            s.request("GET", "/", timeout=3)
    finally:
        s.stop()


@pytest.mark.parametrize("args,msg", [
    ([], "--data DIR is required"),
    (["--data", "D", "--listen", "localhost"], "--listen localhost: HOST:PORT"),
    (["--data", "D", "--listen", "example.com:80"], "numeric address"),
    (["--data", "D", "--admin-user", "a"], "--admin-user and --admin-password go together"),
    (["--data", "D", "--admin-user", "a", "--admin-password", "short"], "8-256 characters"),
    (["--data", "D", "--admin-user", "a:b", "--admin-password", "longenough"], "without ':'"),
    (["--data", "D", "--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
    (["--data", "D", "--keyring", "/nonexistent.pem"], "--keyring /nonexistent.pem"),
    (["--data", "D", "--threads", "0"], "--threads: 1 to 256"),
    (["--data", "D", "--max-artifact-size", "-5"], "--max-artifact-size"),
    (["--data", "D", "extra"], "unexpected argument extra"),
    (["--data", "D", "--bogus"], "usage"),
    (["--data", "D", "--polling-time", "5m"], "--polling-time 5m: HH:MM:SS"),
    (["--data", "D", "--gateway-token", "short"], "--gateway-token: 16 to 128"),
    (["--data", "D", "--dos-max-read", "x"], "--dos-max-read x: 0 (no limit) to 1000000"),
    (["--data", "D", "--dos-max-write", "-1"], "--dos-max-write -1: 0 (no limit)"),
    (["--data", "D", "--dos-max-read", "1000001"], "--dos-max-read 1000001"),
    (["--data", "D", "--dos-whitelist", "10.0.0.0/33"], "--dos-whitelist: '10.0.0.0/33'"),
    (["--data", "D", "--dos-whitelist", "localhost"], "ADDRESS[/PREFIX]"),
])
def test_bad_options(tmp_path, args, msg):
    from serverhelp import SERVER
    import subprocess
    args = [str(tmp_path / "d") if a == "D" else a for a in args]
    p = subprocess.run([SERVER] + args, capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert msg in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "d")  # nothing created


def test_unusable_data_dir(tmp_path):
    from serverhelp import SERVER
    import subprocess
    f = tmp_path / "file"
    f.write_text("x")
    p = subprocess.run([SERVER, "--data", str(f / "sub")], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1 and "cannot create" in p.stderr, p.stderr
    # a database that is not one is refused, not overwritten
    d = tmp_path / "data"
    d.mkdir()
    (d / "abota-server.db").write_bytes(b"not a database" * 100)
    p = subprocess.run([SERVER, "--data", str(d), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "abota-server.db" in p.stderr, p.stderr
    assert (d / "abota-server.db").read_bytes() == b"not a database" * 100
