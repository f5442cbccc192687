"""abota-server, device side: the hawkBit DDI API with real bundles, every
response checked against hawkBit's DDI OpenAPI document."""
import hashlib
import json
import os
import time
import urllib.parse

import pytest

from conftest import abota, make_content
from serverhelp import Contract, Server

BASE = "/{tenant}/controller/v1/{controllerId}"


@pytest.fixture(scope="module")
def bundle(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("srvbundle")
    content = make_content(str(d / "content"), compatible="abota-sim-stm32mp257f-ev1",
                           version="2.0", rootfs_kib=2048)
    out = str(d / "update.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, out)
    return out


@pytest.fixture(scope="module")
def ddi_contract():
    return Contract("ddi-openapi.json")


@pytest.fixture
def srv(tmp_path, pki):
    s = Server(tmp_path / "data", keyring=pki.keyring)
    yield s
    assert s.alive(), "server died: " + s.stderr()[-2000:]
    assert s.stop() == 0


def test_poll_deploy_download_feedback(srv, bundle, ddi_contract):
    c = ddi_contract
    tok = srv.create_target("dev1")
    r = srv.ddi("GET", "dev1", token=tok)
    poll = c.validate(BASE, "GET", r)
    assert r.status == 200
    assert poll["config"]["polling"]["sleep"] == "00:05:00"
    # a new target is asked for its attributes, nothing to deploy yet
    assert set(poll["_links"]) == {"configData"}
    etag = r.header("ETag")
    r = srv.ddi("GET", "dev1", token=tok, headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""

    r = srv.ddi("PUT", "dev1", "/configData", token=tok,
                body={"mode": "merge", "data": {"hwRevision": "2", "booted": "A"}})
    c.validate(BASE + "/configData", "PUT", r)
    assert r.status == 200
    assert srv.mgmt("GET", "/targets/dev1/attributes").json() == {"hwRevision": "2",
                                                                   "booted": "A"}

    sm, ds = srv.publish(bundle, version="2.0")
    action = srv.assign(ds, "dev1")
    r = srv.ddi("GET", "dev1", token=tok, headers={"Host": "ota.example:8080"})
    poll = c.validate(BASE, "GET", r)
    href = poll["_links"]["deploymentBase"]["href"]
    # links are built from the request's Host
    assert href.startswith(f"http://ota.example:8080/DEFAULT/controller/v1/dev1/deploymentBase/{action}?c=")
    r = srv.ddi("GET", "dev1", f"/deploymentBase/{action}", token=tok)
    dep = c.validate(BASE + "/deploymentBase/{actionId}", "GET", r)
    assert dep["id"] == str(action)
    assert dep["deployment"]["download"] == "forced" and dep["deployment"]["update"] == "forced"
    [chunk] = dep["deployment"]["chunks"]
    assert chunk["part"] == "os" and chunk["version"] == "2.0"
    [art] = chunk["artifacts"]
    data = open(bundle, "rb").read()
    assert art["size"] == len(data)
    assert art["hashes"] == {"sha1": hashlib.sha1(data).hexdigest(),
                             "md5": hashlib.md5(data).hexdigest(),
                             "sha256": hashlib.sha256(data).hexdigest()}
    dl = art["_links"]["download-http"]["href"]
    assert dl == art["_links"]["download"]["href"]
    assert dl.startswith(srv.url + "/DEFAULT/controller/v1/dev1/softwaremodules/")
    path = urllib.parse.urlsplit(dl).path
    r = srv.request("GET", path, auth=f"TargetToken {tok}")
    assert r.status == 200 and r.body == data
    assert r.header("ETag") == '"%s"' % hashlib.sha1(data).hexdigest()
    assert r.header("Accept-Ranges") == "bytes"
    r = srv.request("GET", path + ".MD5SUM", auth=f"TargetToken {tok}")
    assert r.body.decode() == f"{hashlib.md5(data).hexdigest()}  update.raucb"
    r = srv.ddi("GET", "dev1", f"/softwaremodules/{sm}/artifacts", token=tok)
    c.validate(BASE + "/softwaremodules/{softwareModuleId}/artifacts", "GET", r)
    assert r.json()[0]["filename"] == "update.raucb"

    fb = f"/deploymentBase/{action}/feedback"
    # legacy fields (id, time) as rauc-hawkbit-updater and SWUpdate send them
    r = srv.ddi("POST", "dev1", fb, token=tok, body={
        "id": str(action), "time": "20261125T101522",
        "status": {"execution": "proceeding", "result": {"finished": "none",
                                                         "progress": {"cnt": 1, "of": 3}},
                   "details": ["Downloading"]}})
    c.validate(BASE + "/deploymentBase/{actionId}/feedback", "POST", r)
    assert r.status == 200 and r.body == b""
    r = srv.ddi("POST", "dev1", fb, token=tok, body={
        "status": {"execution": "closed", "result": {"finished": "success"}, "code": 0,
                   "details": ["Installed"]}, "timestamp": 1764066000000})
    assert r.status == 200
    # a second close: the action is gone
    r = srv.ddi("POST", "dev1", fb, token=tok, body={
        "status": {"execution": "closed", "result": {"finished": "success"}}})
    c.validate(BASE + "/deploymentBase/{actionId}/feedback", "POST", r)
    assert r.status == 410
    r = srv.ddi("GET", "dev1", token=tok)
    poll = c.validate(BASE, "GET", r)
    assert "deploymentBase" not in poll["_links"]
    assert poll["_links"]["installedBase"]["href"].endswith(f"/installedBase/{action}")
    r = srv.ddi("GET", "dev1", f"/installedBase/{action}?actionHistory=-1", token=tok)
    inst = c.validate(BASE + "/installedBase/{actionId}", "GET", r)
    assert inst["actionHistory"]["status"] == "FINISHED"
    assert "Installed" in inst["actionHistory"]["messages"]
    r = srv.ddi("GET", "dev1", f"/deploymentBase/{action}", token=tok)
    assert r.status == 404
    t = srv.mgmt("GET", "/targets/dev1").json()
    assert t["updateStatus"] == "in_sync" and t["installedAt"] > 0
    st = srv.mgmt("GET", f"/targets/dev1/actions/{action}/status?offset=0&limit=50&sort=id:DESC").json()
    types = [e["type"] for e in st["content"]]
    assert types[0] == "finished" and "download" in types and "retrieved" in types
    assert st["content"][0]["code"] == 0
    assert "Device reported status code: 0" in st["content"][0]["messages"]


def test_ranges(srv, bundle):
    """Ranges on a real bundle.  SC-168: start >= length, overlapping and
    unordered multi-ranges, bad syntax -> 416 with 'Content-Range: bytes
    */<length>'.  SC-169: If-Match not matching the SHA-1 -> 412."""
    tok = srv.create_target("dev2")
    sm, ds = srv.publish(bundle, name="r", version="1")
    srv.assign(ds, "dev2")
    data = open(bundle, "rb").read()
    n = len(data)
    path = f"/DEFAULT/controller/v1/dev2/softwaremodules/{sm}/artifacts/update.raucb"
    auth = f"TargetToken {tok}"

    def get(rng, **h):
        return srv.request("GET", path, auth=auth, headers=dict(Range=rng, **h))

    r = get("bytes=10-19")
    assert r.status == 206 and r.body == data[10:20]
    assert r.header("Content-Range") == f"bytes 10-19/{n}"
    r = get(f"bytes={n - 5}-")
    assert r.status == 206 and r.body == data[-5:]
    r = get("bytes=-7")
    assert r.status == 206 and r.body == data[-7:]
    r = get(f"bytes=-{n + 100}")  # a suffix longer than the file is the whole file
    assert r.status == 206 and r.body == data
    r = get(f"bytes=0-{n + 1000}")
    assert r.status == 206 and r.body == data
    r = get("bytes=0-3,100-103,-2")
    assert r.status == 206
    ct = r.header("Content-Type")
    assert ct.startswith("multipart/byteranges; boundary=")
    boundary = ct.split("boundary=")[1].encode()
    parts = [p for p in r.body.split(b"--" + boundary) if p.strip(b"-\r\n")]
    got = []
    for p in parts:
        head, body = p.split(b"\r\n\r\n", 1)
        assert body.endswith(b"\r\n")
        got.append((head.decode().split("Content-Range: ")[1].strip(), body[:-2]))
    assert got == [(f"bytes 0-3/{n}", data[0:4]), (f"bytes 100-103/{n}", data[100:104]),
                   (f"bytes {n - 2}-{n - 1}/{n}", data[-2:])]
    # unsatisfiable / invalid: 416 with the size
    for bad in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=5-2", "bytes=abc",
                "items=0-1", "bytes=0-10,5-20", "bytes=20-30,0-5", "bytes=-0",
                "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(17)),
                "bytes=99999999999999999999999-"):
        r = get(bad)
        assert r.status == 416, bad
        assert r.header("Content-Range") == f"bytes */{n}"
    # If-Range with the ETag: ranges; with another: the whole file
    etag = '"%s"' % hashlib.sha1(data).hexdigest()
    r = get("bytes=0-9", **{"If-Range": etag})
    assert r.status == 206 and r.body == data[:10]
    r = get("bytes=0-9", **{"If-Range": '"other"'})
    assert r.status == 200 and r.body == data
    r = srv.request("GET", path, auth=auth, headers={"If-Match": '"nope"'})
    assert r.status == 412
    r = srv.request("GET", path, auth=auth, headers={"If-None-Match": etag})
    assert r.status == 304
    r = srv.request("HEAD", path, auth=auth)
    assert r.status == 200 and r.body == b"" and int(r.header("Content-Length")) == n


def test_cancel_flow(srv, bundle, ddi_contract):
    """The cancel flow of hawkbit-ddi.md §1.6.  SC-173: cancel feedback for an
    action that is not canceling -> 405."""
    c = ddi_contract
    tok = srv.create_target("dev3")
    sm, ds = srv.publish(bundle, name="c", version="1")
    action = srv.assign(ds, "dev3", typ="soft")
    dep = srv.ddi("GET", "dev3", f"/deploymentBase/{action}", token=tok).json()
    assert dep["deployment"]["download"] == "attempt"
    # cancel feedback for an action that is not being canceled: 405
    body = {"status": {"execution": "closed", "result": {"finished": "success"}}}
    r = srv.ddi("POST", "dev3", f"/cancelAction/{action}/feedback", token=tok, body=body)
    c.validate(BASE + "/cancelAction/{actionId}/feedback", "POST", r)
    assert r.status == 405
    r = srv.ddi("GET", "dev3", f"/cancelAction/{action}", token=tok)
    assert r.status == 404
    assert srv.mgmt("DELETE", f"/targets/dev3/actions/{action}").status == 200
    poll = c.validate(BASE, "GET", srv.ddi("GET", "dev3", token=tok))
    assert "deploymentBase" not in poll["_links"]
    assert poll["_links"]["cancelAction"]["href"].endswith(f"/cancelAction/{action}")
    r = srv.ddi("GET", "dev3", f"/cancelAction/{action}", token=tok)
    cancel = c.validate(BASE + "/cancelAction/{actionId}", "GET", r)
    assert cancel == {"id": str(action), "cancelAction": {"stopId": str(action)}}
    assert srv.ddi("GET", "dev3", f"/deploymentBase/{action}", token=tok).status == 404
    # "canceled" is not how a device accepts (hawkBit #952): a warning, still canceling
    r = srv.ddi("POST", "dev3", f"/cancelAction/{action}/feedback", token=tok,
                body={"status": {"execution": "canceled", "result": {"finished": "success"}}})
    assert r.status == 200
    a = srv.mgmt("GET", f"/targets/dev3/actions/{action}").json()
    assert a["detailStatus"] == "canceling" and a["type"] == "cancel"
    r = srv.ddi("POST", "dev3", f"/cancelAction/{action}/feedback", token=tok, body=body)
    assert r.status == 200
    a = srv.mgmt("GET", f"/targets/dev3/actions/{action}").json()
    assert a["detailStatus"] == "canceled" and a["status"] == "canceled"
    r = srv.ddi("POST", "dev3", f"/cancelAction/{action}/feedback", token=tok, body=body)
    assert r.status == 410
    # rejected sends a canceling action back to running
    a2 = srv.assign(ds, "dev3")
    srv.mgmt("DELETE", f"/targets/dev3/actions/{a2}")
    r = srv.ddi("POST", "dev3", f"/cancelAction/{a2}/feedback", token=tok,
                body={"status": {"execution": "rejected", "result": {"finished": "none"}}})
    assert r.status == 200
    poll = srv.ddi("GET", "dev3", token=tok).json()
    assert f"/deploymentBase/{a2}" in poll["_links"]["deploymentBase"]["href"]


def test_download_only_and_superseded(srv, bundle):
    tok = srv.create_target("dev4")
    sm, ds = srv.publish(bundle, name="d", version="1")
    a1 = srv.assign(ds, "dev4", typ="downloadonly")
    dep = srv.ddi("GET", "dev4", f"/deploymentBase/{a1}", token=tok).json()
    assert dep["deployment"]["download"] == "forced" and dep["deployment"]["update"] == "skip"
    r = srv.ddi("POST", "dev4", f"/deploymentBase/{a1}/feedback", token=tok,
                body={"status": {"execution": "downloaded", "result": {"finished": "success"}}})
    assert r.status == 200
    a = srv.mgmt("GET", f"/targets/dev4/actions/{a1}").json()
    assert a["detailStatus"] == "downloaded" and a["status"] == "downloaded"
    # a newer assignment supersedes an open one: the old one is canceled first
    sm2, ds2 = srv.publish(bundle, name="e", version="1")
    b1 = srv.assign(ds, "dev4")
    b2 = srv.assign(ds2, "dev4")
    poll = srv.ddi("GET", "dev4", token=tok).json()
    assert poll["_links"]["cancelAction"]["href"].endswith(f"/cancelAction/{b1}")
    srv.ddi("POST", "dev4", f"/cancelAction/{b1}/feedback", token=tok,
            body={"status": {"execution": "closed", "result": {"finished": "success"}}})
    poll = srv.ddi("GET", "dev4", token=tok).json()
    assert f"/deploymentBase/{b2}" in poll["_links"]["deploymentBase"]["href"]


def test_auth(srv, bundle, ddi_contract):
    """SC-166: 'targettoken x', two spaces, an empty token, another scheme,
    another target's token -> 401 with an empty body (the scheme is matched
    exactly)."""
    c = ddi_contract
    tok = srv.create_target("dev5")
    srv.create_target("other")
    for auth in (None, "TargetToken wrong", "TargetToken ", "Basic YWRtaW46YWRtaW4=",
                 "GatewayToken " + tok, "targettoken " + tok, "TargetToken  " + tok):
        r = srv.request("GET", "/DEFAULT/controller/v1/dev5", auth=auth)
        c.validate(BASE, "GET", r)
        assert r.status == 401 and r.body == b"", auth
    # another target's token does not work for dev5
    other = srv.mgmt("GET", "/targets/other").json()["securityToken"]
    assert srv.ddi("GET", "dev5", token=other).status == 401
    assert srv.ddi("GET", "nosuch", token=tok).status == 401
    # tenant names are case-insensitive; other tenants do not exist
    assert srv.request("GET", "/default/controller/v1/dev5", auth=f"TargetToken {tok}").status == 200
    assert srv.request("GET", "/OTHER/controller/v1/dev5", auth=f"TargetToken {tok}").status == 404
    # too long controllerId
    r = srv.ddi("GET", "x" * 257, token=tok)
    c.validate(BASE, "GET", r)
    assert r.status == 400
    # target tokens can be switched off
    r = srv.mgmt("PUT", "/system/configs/authentication.targettoken.enabled", {"value": False})
    assert r.status == 200 and r.json()["value"] is False
    assert srv.ddi("GET", "dev5", token=tok).status == 401
    srv.mgmt("PUT", "/system/configs/authentication.targettoken.enabled", {"value": True})
    # gateway token: off by default, registers unknown devices when on
    gw = "gw-" + "k" * 30
    assert srv.request("GET", "/DEFAULT/controller/v1/newdev",
                       auth=f"GatewayToken {gw}").status == 401
    srv.mgmt("PUT", "/system/configs/authentication.gatewaytoken.key", {"value": gw})
    srv.mgmt("PUT", "/system/configs/authentication.gatewaytoken.enabled", {"value": True})
    r = srv.request("GET", "/DEFAULT/controller/v1/newdev", auth=f"GatewayToken {gw}")
    assert r.status == 200
    t = srv.mgmt("GET", "/targets/newdev").json()
    assert t["updateStatus"] == "registered"
    # the artifact of an action of another target is not reachable
    sm, ds = srv.publish(bundle, name="a", version="1")
    srv.assign(ds, "other")
    r = srv.ddi("GET", "dev5", f"/softwaremodules/{sm}/artifacts/update.raucb", token=tok)
    assert r.status == 404
    r = srv.ddi("GET", "other", f"/softwaremodules/{sm}/artifacts/update.raucb", token=other)
    assert r.status == 200


def test_polling_time_and_methods(srv, ddi_contract):
    tok = srv.create_target("dev6")
    r = srv.mgmt("PUT", "/system/configs/pollingTime", {"value": "00:00:30"})
    assert r.status == 200
    for bad in ("30", "24:00:00", "00:00:00", "aa:bb:cc", "00:00:30x"):
        assert srv.mgmt("PUT", "/system/configs/pollingTime", {"value": bad}).status == 400, bad
    assert srv.ddi("GET", "dev6", token=tok).json()["config"]["polling"]["sleep"] == "00:00:30"
    r = srv.ddi("POST", "dev6", token=tok, body={})
    ddi_contract.validate(BASE, "GET", srv.ddi("GET", "dev6", token=tok))
    assert r.status == 405
    assert srv.ddi("DELETE", "dev6", "/configData", token=tok).status == 405
    assert srv.ddi("GET", "dev6", "/nosuch", token=tok).status == 404


def test_installed_base_put(srv, bundle, ddi_contract):
    c = ddi_contract
    tok = srv.create_target("dev7")
    sm, ds = srv.publish(bundle, name="factory", version="1.0")
    path = BASE + "/installedBase"
    r = srv.ddi("PUT", "dev7", "/installedBase", token=tok, body={"name": "factory", "version": "1.0"})
    c.validate(path, "PUT", r)
    assert r.status == 200 and r.body == b""
    t = srv.mgmt("GET", "/targets/dev7").json()
    assert t["updateStatus"] == "in_sync"
    assert srv.mgmt("GET", "/targets/dev7/installedDS").json()["id"] == ds
    poll = srv.ddi("GET", "dev7", token=tok).json()
    assert "/installedBase/" in poll["_links"]["installedBase"]["href"]
    acts = srv.mgmt("GET", "/targets/dev7/actions").json()["total"]
    r = srv.ddi("PUT", "dev7", "/installedBase", token=tok, body={"name": "factory", "version": "1.0"})
    assert r.status == 200
    assert srv.mgmt("GET", "/targets/dev7/actions").json()["total"] == acts  # nothing new
    r = srv.ddi("PUT", "dev7", "/installedBase", token=tok, body={"name": "factory", "version": "9"})
    c.validate(path, "PUT", r)
    assert r.status == 404
    r = srv.ddi("PUT", "dev7", "/installedBase", token=tok, body={"name": "factory"})
    c.validate(path, "PUT", r)
    assert r.status == 400


def test_gateway_and_polling_options(tmp_path, pki):
    gw = "gateway-token-0123456789"
    s = Server(tmp_path / "data", keyring=pki.keyring,
               extra=["--gateway-token", gw, "--polling-time", "00:00:10"])
    try:
        r = s.request("GET", "/DEFAULT/controller/v1/plugged", auth=f"GatewayToken {gw}")
        assert r.status == 200 and r.json()["config"]["polling"]["sleep"] == "00:00:10"
        assert s.mgmt("GET", "/targets/plugged").status == 200
        # a registered target's own token works as well
        tok = s.mgmt("GET", "/targets/plugged").json()["securityToken"]
        assert s.ddi("GET", "plugged", token=tok).status == 200
    finally:
        assert s.stop() == 0


def test_maintenance_window(srv, bundle, ddi_contract):
    """An action with a maintenance window may be downloaded at once and
    installed only while the window is open (update skip/forced,
    maintenanceWindow unavailable/available)."""
    import datetime
    tok = srv.create_target("mw1")
    sm, ds = srv.publish(bundle, name="mw", version="1")
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
    window = {"schedule": start.strftime("%-S %-M %-H ? %-m * %Y"), "duration": "00:01:00",
              "timezone": "+00:00"}
    r = srv.mgmt("POST", f"/distributionsets/{ds}/assignedTargets",
                 [{"id": "mw1", "type": "forced", "maintenanceWindow": window}])
    assert r.status == 200, r
    action = r.json()["assignedActions"][0]["id"]
    dep = ddi_contract.validate(BASE + "/deploymentBase/{actionId}", "GET",
                                srv.ddi("GET", "mw1", f"/deploymentBase/{action}", token=tok))
    assert dep["deployment"]["maintenanceWindow"] == "unavailable"
    assert (dep["deployment"]["download"], dep["deployment"]["update"]) == ("forced", "skip")
    time.sleep(max(0, (start - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 1)
    dep = srv.ddi("GET", "mw1", f"/deploymentBase/{action}", token=tok).json()
    assert dep["deployment"]["maintenanceWindow"] == "available"
    assert dep["deployment"]["update"] == "forced"
    # malformed windows are refused with the reason
    for bad, why in (({"schedule": "0 0 10 * *", "duration": "00:01:00", "timezone": "+00:00"},
                      "6 or 7 fields"),
                     ({"schedule": "0 0 10 ? * *", "duration": "1h", "timezone": "+00:00"},
                      "duration"),
                     ({"schedule": "0 0 10 ? * *", "duration": "00:01:00", "timezone": "CET"},
                      "timezone"),
                     ({"schedule": "0 0 10 L * ?", "duration": "00:01:00", "timezone": "+00:00"},
                      "day-of-month"),
                     ({"duration": "00:01:00"}, "schedule, duration and timezone")):
        r = srv.mgmt("POST", f"/distributionsets/{ds}/assignedTargets",
                     [{"id": "mw1", "maintenanceWindow": bad}])
        assert r.status == 400 and why in r.json()["message"], (bad, r)
