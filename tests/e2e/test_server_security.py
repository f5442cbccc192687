"""abota-server against the server-side security cases of
../shared/specs/security-cases.md (SC-46, SC-160 .. SC-174): each test names
its case and checks the row's outcome on a real server.  One server serves
the whole module (foreign, i.e. unsigned, artifacts allowed so no bundle has
to be built: the DDI side treats every artifact alike; bundle verification
is covered by test_server_mgmt.py); SC-174 starts servers of its own."""
import base64
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import string
import tempfile
import time

import pytest

from serverhelp import ADMIN, Server

BASE = "/DEFAULT/controller/v1"
OK_CLOSE = {"status": {"execution": "closed", "result": {"finished": "success"}}}
PROCEEDING = {"status": {"execution": "proceeding", "result": {"finished": "none"}}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    # in memory where there is a tmpfs: SC-164 stores 1000 statuses, each one
    # fsynced transaction, which on a busy disk takes seconds (durability is
    # tested in test_server_robustness.py, not here)
    shm = tempfile.mkdtemp(prefix="abota-sec-", dir="/dev/shm") \
        if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    data = os.path.join(shm, "data") if shm else tmp_path_factory.mktemp("sec") / "data"
    try:
        s = Server(data, extra=["--allow-foreign-artifacts"])
        yield s
        assert s.alive(), "server died: " + s.stderr()[-2000:]
        assert s.stop() == 0
    finally:
        if shm:
            shutil.rmtree(shm, ignore_errors=True)


class KeepAlive:
    """One persistent HTTP/1.1 connection, as a streaming client keeps."""

    def __init__(self, srv):
        self.c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)

    def send(self, method, path, body=None, headers=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        return r.status, r.getheaders(), r.read()

    def close(self):
        self.c.close()


def new_module(srv, name):
    r = srv.mgmt("POST", "/softwaremodules", [{"name": name, "version": "1", "type": "os"}])
    assert r.status == 201, r
    return r.json()[0]["id"]


def deploy(srv, cid, data=None, typ="forced", filename="image.swu"):
    """A target with an open action whose module holds one artifact."""
    data = os.urandom(4096) if data is None else data
    tok = srv.create_target(cid)
    sm = new_module(srv, "m-" + cid)
    r = srv.upload(sm, filename, data)
    assert r.status == 201, r
    r = srv.mgmt("POST", "/distributionsets",
                 [{"name": "ds-" + cid, "version": "1", "type": "os", "modules": [{"id": sm}]}])
    assert r.status == 201, r
    ds = r.json()[0]["id"]
    return tok, sm, ds, srv.assign(ds, cid, typ=typ), data


def status_total(srv, cid, action):
    r = srv.mgmt("GET", f"/targets/{cid}/actions/{action}/status?limit=1")
    assert r.status == 200, r
    return r.json()["total"]


def offered(srv, cid, tok, action):
    """The action is still open: the device's poll offers it."""
    poll = srv.ddi("GET", cid, token=tok).json()
    return poll["_links"].get("deploymentBase", {}).get("href", "").split("?")[0].endswith(
        f"/deploymentBase/{action}")


def multipart(boundary, name, data, close=True):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data
    return body + (f"\r\n--{boundary}--\r\n".encode() if close else b"")


def raw_upload(srv, sm, body, content_type):
    return srv.request("POST", f"/rest/v1/softwaremodules/{sm}/artifacts", body,
                       headers={"Content-Type": content_type}, auth="admin")


# ---------------------------------------------------------------- SC-46

def test_sc46_multipart_boundary_edges(srv):
    """SC-46: multipart upload, boundary length +-2 around every guard
    (libmicrohttpd's minimum 2, RFC 2046's maximum 70, and far beyond), quoted
    boundaries that leave 0 or 1 characters, a missing final boundary, a
    boundary longer than the body -> 400 (and the lengths inside the guards
    201 with the exact bytes sent); nothing half-stored, server alive (the
    ASan pass checks for size_t wraps: the boundary arithmetic is also
    unit-tested in test_server_multipart and fuzzed by fuzz_server_multipart)."""
    sm = new_module(srv, "sc46")
    rnd = random.Random(46)
    accepted = []
    for n in (0, 1, 2, 3, 4, 68, 69, 70, 71, 72, 200, 4000):
        b = "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(n))
        # content that nearly contains the delimiter: only the real one may end the part
        data = os.urandom(3000) + f"\r\n--{b[:-1]}".encode() + b"\r\n" + f"--{b}".encode()[:-1]
        for quoted in (False, True):
            name = f"b{n}{'q' if quoted else ''}.bin"
            ct = f'multipart/form-data; boundary="{b}"' if quoted else \
                f"multipart/form-data; boundary={b}"
            r = raw_upload(srv, sm, multipart(b, name, data), ct)
            if 2 <= n <= 70:
                assert r.status == 201, (n, quoted, r)
                assert r.json()["hashes"]["sha256"] == hashlib.sha256(data).hexdigest()
                assert r.json()["size"] == len(data)
                accepted.append(name)
            else:
                assert r.status == 400, (n, quoted, r)
                assert "boundary" in r.json()["message"]
    b = "sc46boundary"
    data = os.urandom(5000)
    full = multipart(b, "cut.bin", data)
    # the body stops before its closing boundary, at every place near the end
    for cut in (multipart(b, "cut.bin", data, close=False),
                full[:-len(f"--{b}--\r\n") - 2],       # data, no CRLF
                full[:-len(f"--{b}--\r\n")],           # CRLF, no delimiter
                full[:-len("--\r\n")],                 # delimiter, not the final one
                full[:-len("-\r\n")],                  # one dash of two
                multipart(b, "cut.bin", data, close=False) + f"\r\n--{b}\r\n".encode()):
        r = raw_upload(srv, sm, cut, f"multipart/form-data; boundary={b}")
        assert r.status == 400, (cut[-20:], r)
        assert "closing boundary" in r.json()["message"] or "file" in r.json()["message"], r
    # two parts named 'file' would be appended to each other: refused
    two = (multipart(b, "two.bin", b"first", close=False) + f"\r\n--{b}\r\n".encode()
           + b'Content-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\nsecond'
           + f"\r\n--{b}--\r\n".encode())
    r = raw_upload(srv, sm, two, f"multipart/form-data; boundary={b}")
    assert r.status == 400 and "more than one part" in r.json()["message"], r
    # other parts besides 'file' are skipped
    extra = (f"--{b}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n".encode()
             + multipart(b, "extra.bin", data))
    r = raw_upload(srv, sm, extra, f"multipart/form-data; boundary={b}")
    assert r.status == 201 and r.json()["hashes"]["sha256"] == hashlib.sha256(data).hexdigest(), r
    accepted.append("extra.bin")
    # the complete body is fine (so the refusals above were about the end)
    assert raw_upload(srv, sm, full, f"multipart/form-data; boundary={b}").status == 201
    accepted.append("cut.bin")
    # a boundary longer than the whole body, an empty body, a lone final delimiter
    long_b = "L" * 70
    for body in (b"", b"-", b"--" + long_b.encode()[:10], f"--{long_b}--".encode(),
                 f"--{long_b}\r\n".encode()):
        r = raw_upload(srv, sm, body, f"multipart/form-data; boundary={long_b}")
        assert r.status == 400, (body, r)
    # headers that libmicrohttpd would read differently than the client meant
    for ct in ("multipart/form-data; boundary=abc; charset=utf-8",
               "multipart/form-data; boundary=\"\"", "multipart/form-data; boundary=\"",
               "multipart/form-data; boundary=\"a\"", "multipart/form-data; Boundary=abc",
               "multipart/form-data", "multipart/form-dataX; boundary=abc",
               "application/x-www-form-urlencoded", "application/octet-stream"):
        body = multipart("abc", "h.bin", b"x") if "abc" in ct else b"file=abc"
        r = raw_upload(srv, sm, body, ct)
        assert r.status == 400, (ct, r)
    # a boundary beyond the header size libmicrohttpd takes: refused, not parsed
    # (libmicrohttpd's own 431 page is not a hawkBit body: a raw connection,
    # which the server may close before all of the request is sent)
    body = multipart("x" * 40000, "big.bin", b"x")
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    head = (f"POST /rest/v1/softwaremodules/{sm}/artifacts HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {auth}\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={'x' * 40000}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        sock.sendall(head + body)
    except OSError:
        pass
    answer = sock.recv(100)
    sock.close()
    status = int(answer.split()[1])
    assert status in (400, 413, 431), status
    arts = srv.mgmt("GET", f"/softwaremodules/{sm}/artifacts").json()
    assert sorted(a["providedFilename"] for a in arts) == sorted(accepted)
    assert os.listdir(os.path.join(srv.data, "tmp")) == []
    assert srv.alive()


# ---------------------------------------------------------------- SC-160

def test_sc160_controller_id_length_and_whitespace(srv):
    """SC-160: a controllerId of 257 characters -> 400; one containing
    whitespace (space, tab, newline, leading/trailing) or control characters,
    an encoded NUL included -> 400 (rejected before authentication); 256
    characters work."""
    tok160 = srv.create_target("sc160")
    long_ok = "c" * 256
    r = srv.mgmt("POST", "/targets", [{"controllerId": long_ok, "name": "long"}])
    assert r.status == 201, r
    tok = r.json()[0]["securityToken"]
    assert srv.ddi("GET", long_ok, token=tok).status == 200
    for cid in ("c" * 257, "c" * 1000, "a%20b", "a%09b", "%20lead", "trail%20", "a%0Ab",
                "a%0Db", "a%0Bb", "a%0Cb", "a%01b", "a%7Fb"):
        r = srv.request("GET", f"{BASE}/{cid}", auth=f"TargetToken {tok}")
        assert r.status == 400, (cid, r)
        assert "controllerId" in r.json()["message"]
        r = srv.request("POST", f"{BASE}/{cid}/deploymentBase/1/feedback", OK_CLOSE,
                        auth=f"TargetToken {tok}")
        assert r.status == 400, (cid, r)
    # an encoded NUL would cut the decoded path short ("a%00b" -> "a"): refused
    for cid in ("sc160%00x", "sc160%00", "sc160%00/configData"):
        r = srv.request("GET", f"{BASE}/{cid}", auth=f"TargetToken {tok160}")
        assert r.status == 400, (cid, r)
    assert srv.ddi("GET", "sc160", token=tok160).status == 200
    # the management API refuses to create such ids in the first place
    for cid in ("a b", "a\tb", "c" * 257):
        assert srv.mgmt("POST", "/targets", [{"controllerId": cid}]).status == 400, cid


# ---------------------------------------------------------------- SC-161

def test_sc161_unsupported_content_type_415(srv):
    """SC-161: a request body with a content type other than JSON -> 415 on
    feedback, configData, installedBase and the management API; nothing is
    stored.  (hawkBit also takes CBOR; abota-server does not, so
    application/cbor is a 415 as well, see docs/server.md.)  JSON with
    parameters or as a +json type is accepted."""
    tok, sm, ds, action, _ = deploy(srv, "sc161")
    before = status_total(srv, "sc161", action)
    fb = f"/deploymentBase/{action}/feedback"
    bad = ("text/plain", "application/xml", "application/x-www-form-urlencoded",
           "text/plain; charset=json", "application/jsonp", "application/json-seq",
           "text/json+x", "application/cbor", "multipart/form-data; boundary=json",
           "application/x+jsonx", "")
    for ct in bad:
        h = {"Content-Type": ct}
        r = srv.ddi("POST", "sc161", fb, token=tok, body=json.dumps(PROCEEDING), headers=h)
        assert r.status == 415, (ct, r)
        r = srv.ddi("PUT", "sc161", "/configData", token=tok,
                    body=json.dumps({"data": {"k": ct}}), headers=h)
        assert r.status == 415, (ct, r)
        r = srv.ddi("PUT", "sc161", "/installedBase", token=tok,
                    body=json.dumps({"name": "ds-sc161", "version": "1"}), headers=h)
        assert r.status == 415, (ct, r)
        r = srv.mgmt("POST", "/targets", json.dumps([{"controllerId": "x161"}]), headers=h)
        assert r.status == 415, (ct, r)
    assert status_total(srv, "sc161", action) == before
    assert srv.mgmt("GET", "/targets/sc161/attributes").json() == {}
    assert srv.mgmt("GET", "/targets/x161").status == 404
    for ct in ("application/json", "application/json;charset=UTF-8", "Application/JSON",
               "application/hal+json", " application/json ; charset=utf-8"):
        r = srv.ddi("PUT", "sc161", "/configData", token=tok,
                    body=json.dumps({"data": {"k": ct}}), headers={"Content-Type": ct})
        assert r.status == 200, (ct, r)
        r = srv.ddi("POST", "sc161", fb, token=tok, body=json.dumps(PROCEEDING),
                    headers={"Content-Type": ct})
        assert r.status == 200, (ct, r)


# ---------------------------------------------------------------- SC-162

def test_sc162_feedback_validation_400(srv):
    """SC-162: feedback without status, without result, without finished,
    with an invalid execution or finished value, or malformed JSON -> 400
    with a message; none of it reaches the action."""
    tok, sm, ds, action, _ = deploy(srv, "sc162")
    before = status_total(srv, "sc162", action)
    fb = f"/deploymentBase/{action}/feedback"
    for body in (
            {}, {"id": "1", "time": "20260101T000000"},                      # no status
            {"status": {"execution": "closed"}},                             # no result
            {"status": {"execution": "closed", "result": {}}},               # no finished
            {"status": {"result": {"finished": "success"}}},                 # no execution
            {"status": {"execution": "exploded", "result": {"finished": "success"}}},
            {"status": {"execution": "CLOSED", "result": {"finished": "success"}}},
            {"status": {"execution": "closed", "result": {"finished": "maybe"}}},
            {"status": {"execution": "closed", "result": {"finished": None}}},
            {"status": {"execution": 1, "result": {"finished": "none"}}},
            {"status": "closed"}):
        r = srv.ddi("POST", "sc162", fb, token=tok, body=body)
        assert r.status == 400, (body, r)
        assert r.json()["message"], body
    for raw in (b"{", b'{"status": {"execution": "closed", "result": {"finished": "none"}}',
                b"not json", b'{"status": {"execution": "closed",}}', b"\xff\xfe", b"[]"):
        r = srv.ddi("POST", "sc162", fb, token=tok, body=raw,
                    headers={"Content-Type": "application/json"})
        assert r.status == 400, (raw, r)
    assert status_total(srv, "sc162", action) == before
    assert offered(srv, "sc162", tok, action)


# ---------------------------------------------------------------- SC-163

def test_sc163_feedback_to_closed_action_410(srv):
    """SC-163: a second closed feedback, any later feedback, and feedback to
    an action canceled by the operator -> 410 Gone; nothing is recorded."""
    tok, sm, ds, action, _ = deploy(srv, "sc163")
    fb = f"/deploymentBase/{action}/feedback"
    assert srv.ddi("POST", "sc163", fb, token=tok, body=OK_CLOSE).status == 200
    after_close = status_total(srv, "sc163", action)
    for body in (OK_CLOSE, PROCEEDING,
                 {"status": {"execution": "closed", "result": {"finished": "failure"}}},
                 {"status": {"execution": "canceled", "result": {"finished": "none"}}}):
        r = srv.ddi("POST", "sc163", fb, token=tok, body=body)
        assert r.status == 410, (body, r)
    assert status_total(srv, "sc163", action) == after_close
    assert srv.mgmt("GET", f"/targets/sc163/actions/{action}").json()["status"] == "finished"
    # an action the operator force-closed is just as gone
    a2 = srv.assign(ds, "sc163")
    assert srv.mgmt("DELETE", f"/targets/sc163/actions/{a2}?force=true").status == 200
    for path in (f"/deploymentBase/{a2}/feedback", f"/cancelAction/{a2}/feedback"):
        r = srv.ddi("POST", "sc163", path, token=tok, body=PROCEEDING)
        assert r.status == 410, (path, r)


# ---------------------------------------------------------------- SC-164

def test_sc164_details_and_status_entry_quotas_429(srv):
    """SC-164: 51 details in one feedback -> 429 (50 are fine); the 1001st
    intermediate status on one action -> 429 and not stored; the action can
    still be closed."""
    tok, sm, ds, action, _ = deploy(srv, "sc164")
    fb = f"{BASE}/sc164/deploymentBase/{action}/feedback"

    def with_details(n):
        return {"status": {"execution": "proceeding", "result": {"finished": "none"},
                           "details": [f"d{i}" for i in range(n)]}}

    r = srv.request("POST", fb, with_details(51), auth=f"TargetToken {tok}")
    assert r.status == 429, r
    r = srv.request("POST", fb, with_details(50), auth=f"TargetToken {tok}")
    assert r.status == 200, r
    have = status_total(srv, "sc164", action)
    c = KeepAlive(srv)
    h = {"Authorization": f"TargetToken {tok}", "Content-Type": "application/json"}
    body = json.dumps(PROCEEDING)
    try:
        for _ in range(1000 - have):
            st, _, resp = c.send("POST", fb, body, h)
            assert st == 200, resp
        assert status_total(srv, "sc164", action) == 1000
        st, _, resp = c.send("POST", fb, body, h)
        assert st == 429, resp
        assert b"1000" in resp
    finally:
        c.close()
    assert status_total(srv, "sc164", action) == 1000
    r = srv.request("POST", fb, OK_CLOSE, auth=f"TargetToken {tok}")
    assert r.status == 200, r
    assert srv.mgmt("GET", f"/targets/sc164/actions/{action}").json()["status"] == "finished"


# ---------------------------------------------------------------- SC-165

def test_sc165_config_data_limits(srv):
    """SC-165: configData key or value longer than 128 characters -> 400
    (128 is fine); the 101st attribute of a target -> 429 (in one request or
    added to 100 stored ones); missing data -> 400; empty data map -> 400
    (rejected); nothing of a refused request is stored."""
    tok = srv.create_target("sc165")

    def put(data, **extra):
        body = dict(extra)
        if data is not None:
            body["data"] = data
        return srv.ddi("PUT", "sc165", "/configData", token=tok, body=body)

    assert put({"k" * 128: "v" * 128}).status == 200
    for data in ({"k" * 129: "v"}, {"k": "v" * 129}, {"ok": "v", "k" * 200: "v"}):
        r = put(data)
        assert r.status == 400, r
        assert r.json()["errorCode"] == "hawkbit.server.error.target.attributesInvalid"
    for data in (None, {}, [], "k=v", {"k": 1}, {"k": None}, {"k": ["v"]}):
        assert put(data).status == 400, data
    assert put(None, mode="merge").status == 400
    assert srv.mgmt("GET", "/targets/sc165/attributes").json() == {"k" * 128: "v" * 128}
    assert put({f"a{i}": "v" for i in range(101)}, mode="replace").status == 429
    assert put({f"a{i}": "v" for i in range(100)}, mode="replace").status == 200
    r = put({"a100": "one too many"})
    assert r.status == 429, r
    attrs = srv.mgmt("GET", "/targets/sc165/attributes").json()
    assert len(attrs) == 100 and "a100" not in attrs
    # changing a stored key is not a new attribute
    assert put({"a5": "changed"}).status == 200


# ---------------------------------------------------------------- SC-166

def test_sc166_authorization_scheme_exact(srv):
    """SC-166: 'targettoken x', two spaces, no space, a tab, another target's
    token (and the scheme in other cases) -> 401 with an empty body on the
    poll, the deployment, feedback and the artifact; the exact form works."""
    tok, sm, ds, action, data = deploy(srv, "sc166")
    other = srv.create_target("sc166-other")
    paths = [("GET", "", None), ("GET", f"/deploymentBase/{action}", None),
             ("POST", f"/deploymentBase/{action}/feedback", PROCEEDING),
             ("GET", f"/softwaremodules/{sm}/artifacts/image.swu", None),
             ("PUT", "/configData", {"data": {"k": "v"}})]
    before = status_total(srv, "sc166", action)
    for auth in (f"targettoken {tok}", f"TARGETTOKEN {tok}", f"Targettoken {tok}",
                 f"TargetToken  {tok}", f"TargetToken{tok}", f"TargetToken\t{tok}",
                 f"TargetToken {other}", f"TargetToken {tok[:-1]}", f"TargetToken {tok}x",
                 f"Bearer {tok}", f"GatewayToken {tok}", "TargetToken", tok):
        for method, p, body in paths:
            r = srv.request(method, f"{BASE}/sc166{p}", body, auth=auth)
            assert r.status == 401 and r.body == b"", (auth, method, p, r)
            assert r.header("WWW-Authenticate") is None
    assert status_total(srv, "sc166", action) == before
    assert srv.mgmt("GET", "/targets/sc166/attributes").json() == {}
    r = srv.request("GET", f"{BASE}/sc166/softwaremodules/{sm}/artifacts/image.swu",
                    auth=f"TargetToken {tok}")
    assert r.status == 200 and r.body == data


# ---------------------------------------------------------------- SC-167

def test_sc167_controller_id_header_and_header_auth(srv):
    """SC-167: X-Controller-Id different from the controllerId in the URL ->
    401 (with a valid target token as well); header authentication (a
    reverse proxy's X-Controller-Id + X-Authority) while it is not enabled
    for the tenant -> 401; enabled, it works only with a trusted issuer hash
    and the matching id, and registers unknown devices (plug and play)."""
    tok, sm, ds, action, _ = deploy(srv, "sc167")
    issuer = "a1b2c3d4"

    def poll(cid, **h):
        return srv.request("GET", f"{BASE}/{cid}", headers=h)

    assert srv.ddi("GET", "sc167", token=tok).status == 200
    r = srv.ddi("GET", "sc167", token=tok, headers={"X-Controller-Id": "someone-else"})
    assert r.status == 401 and r.body == b""
    r = srv.ddi("POST", "sc167", f"/deploymentBase/{action}/feedback", token=tok,
                body=PROCEEDING, headers={"X-Controller-Id": "sc167x"})
    assert r.status == 401 and r.body == b""
    assert srv.ddi("GET", "sc167", token=tok, headers={"X-Controller-Id": "sc167"}).status == 200
    # header authentication is off by default: the headers alone are nothing
    for h in ({"X-Controller-Id": "sc167", "X-Authority": issuer},
              {"X-Controller-Id": "sc167", "X-Authority-1": issuer}):
        r = poll("sc167", **h)
        assert r.status == 401 and r.body == b"", h
    srv.mgmt("PUT", "/system/configs/authentication.header.enabled", {"value": True})
    try:
        # enabled but no trusted issuer configured: still nothing (fail closed)
        r = poll("sc167", **{"X-Controller-Id": "sc167", "X-Authority": issuer})
        assert r.status == 401
        srv.mgmt("PUT", "/system/configs/authentication.header.authority",
                 {"value": f"ffff0000, {issuer}"})
        assert poll("sc167", **{"X-Controller-Id": "sc167", "X-Authority": issuer}).status == 200
        assert poll("sc167", **{"X-Controller-Id": "sc167",
                                "X-Authority-1": issuer.upper()}).status == 200
        assert poll("sc167", **{"X-Controller-Id": "sc167",
                                "X-Authority": f"0000, {issuer}"}).status == 200
        for h in ({"X-Controller-Id": "other", "X-Authority": issuer},    # id mismatch
                  {"X-Controller-Id": "SC167", "X-Authority": issuer},    # ids are exact
                  {"X-Authority": issuer},                                # no id
                  {"X-Controller-Id": "sc167"},                           # no issuer
                  {"X-Controller-Id": "sc167", "X-Authority": "a1b2c3"},  # prefix only
                  {"X-Controller-Id": "sc167", "X-Authority": issuer + "0"},
                  {"X-Controller-Id": "sc167", "X-Authority-0": "bad"}):
            r = poll("sc167", **h)
            assert r.status == 401 and r.body == b"", h
        # a device the proxy vouches for is registered on its first poll
        r = poll("sc167-new", **{"X-Controller-Id": "sc167-new", "X-Authority": issuer})
        assert r.status == 200, r
        assert srv.mgmt("GET", "/targets/sc167-new").json()["updateStatus"] == "registered"
        # an Authorization header, if sent, still has to be right
        r = srv.request("GET", f"{BASE}/sc167", auth="TargetToken wrong",
                        headers={"X-Controller-Id": "sc167", "X-Authority": issuer})
        assert r.status == 401
    finally:
        srv.mgmt("PUT", "/system/configs/authentication.header.enabled", {"value": False})
    r = poll("sc167", **{"X-Controller-Id": "sc167", "X-Authority": issuer})
    assert r.status == 401


# ---------------------------------------------------------------- SC-168

def test_sc168_unsatisfiable_ranges_416(srv):
    """SC-168: Range with start >= length, overlapping or unordered
    multi-ranges, bad syntax -> 416 with 'Content-Range: bytes */<length>'
    and no body; no action status is recorded for them."""
    tok, sm, ds, action, data = deploy(srv, "sc168", data=os.urandom(10000))
    n = len(data)
    path = f"{BASE}/sc168/softwaremodules/{sm}/artifacts/image.swu"
    before = status_total(srv, "sc168", action)
    for rng in (f"bytes={n}-", f"bytes={n}-{n + 5}", f"bytes={n + 1}-", "bytes=18446744073709551615-",
                "bytes=0-10,5-20", "bytes=0-5,5-9", "bytes=100-200,0-10", "bytes=0-1,0-1",
                "bytes=-5,0-3", "bytes=10-5", "bytes=abc", "bytes=", "bytes=-", "bytes=-0",
                "bytes=1-2-3", "bytes=0-1;2-3", "bits=0-1", "bytes 0-1", "bytes=+1-2",
                "bytes=0x10-0x20", "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(17))):
        r = srv.request("GET", path, auth=f"TargetToken {tok}", headers={"Range": rng})
        assert r.status == 416, (rng, r)
        assert r.header("Content-Range") == f"bytes */{n}", rng
        assert r.body == b""
    r = srv.request("GET", path, auth=f"TargetToken {tok}", headers={"Range": "bytes=0-4,5-9"})
    assert r.status == 206
    assert status_total(srv, "sc168", action) == before


# ---------------------------------------------------------------- SC-169

def test_sc169_if_match_412(srv):
    """SC-169: If-Match not matching the artifact's SHA-1 ETag -> 412 with no
    body (another hash of the artifact, the SHA-1 unquoted, weak, or with
    extra characters around it); the ETag itself, '*' or a list holding it
    -> the download."""
    tok, sm, ds, action, data = deploy(srv, "sc169")
    path = f"{BASE}/sc169/softwaremodules/{sm}/artifacts/image.swu"
    sha1 = hashlib.sha1(data).hexdigest()
    for im in ('"nope"', f'"{hashlib.md5(data).hexdigest()}"',
               f'"{hashlib.sha256(data).hexdigest()}"', sha1, f'W/"{sha1}"', f'"{sha1}"x',
               f'x"{sha1}"', f'"{sha1[:-1]}"', f'"{sha1.upper()}"', '""', f'"a", "{sha1}0"'):
        for rng in (None, "bytes=0-9"):
            h = {"If-Match": im}
            if rng:
                h["Range"] = rng
            r = srv.request("GET", path, auth=f"TargetToken {tok}", headers=h)
            assert r.status == 412 and r.body == b"", (im, rng, r)
    for im in (f'"{sha1}"', "*", f'"other", "{sha1}"', f' "{sha1}" '):
        r = srv.request("GET", path, auth=f"TargetToken {tok}", headers={"If-Match": im})
        assert r.status == 200 and r.body == data, im


# ---------------------------------------------------------------- SC-170

def test_sc170_artifact_of_unassigned_module_404(srv):
    """SC-170: the artifact (binary, list, .MD5SUM) of a module that is not
    in the target's open or installed action -> 404: never assigned, another
    target's, a canceled action's, a formerly installed one's; the open and
    the installed action's modules are served."""
    tok, sm_open, ds_open, action, data = deploy(srv, "sc170")
    auth = f"TargetToken {tok}"

    def get(sm, suffix="/image.swu"):
        return srv.request("GET", f"{BASE}/sc170/softwaremodules/{sm}/artifacts{suffix}",
                           auth=auth)

    def expect(sm, status):
        for suffix in ("/image.swu", "", "/image.swu.MD5SUM"):
            r = get(sm, suffix)
            assert r.status == status, (sm, suffix, r)

    expect(sm_open, 200)
    # a module nobody assigned to this target
    loose = new_module(srv, "sc170-loose")
    assert srv.upload(loose, "image.swu", b"loose").status == 201
    expect(loose, 404)
    # another target's action
    _, sm_other, _, _, _ = deploy(srv, "sc170-other")
    expect(sm_other, 404)
    expect(999999, 404)
    # install the open action; then a second one is installed: the first is no longer
    assert srv.ddi("POST", "sc170", f"/deploymentBase/{action}/feedback", token=tok,
                   body=OK_CLOSE).status == 200
    expect(sm_open, 200)  # installed: re-downloads allowed
    sm2 = new_module(srv, "sc170-2")
    assert srv.upload(sm2, "image.swu", b"second").status == 201
    ds2 = srv.mgmt("POST", "/distributionsets", [{"name": "sc170-2", "version": "1",
                                                   "modules": [{"id": sm2}]}]).json()[0]["id"]
    a2 = srv.assign(ds2, "sc170")
    expect(sm2, 200)
    assert srv.ddi("POST", "sc170", f"/deploymentBase/{a2}/feedback", token=tok,
                   body=OK_CLOSE).status == 200
    expect(sm_open, 404)
    expect(sm2, 200)
    # a canceled action's module
    sm3 = new_module(srv, "sc170-3")
    assert srv.upload(sm3, "image.swu", b"third").status == 201
    ds3 = srv.mgmt("POST", "/distributionsets", [{"name": "sc170-3", "version": "1",
                                                   "modules": [{"id": sm3}]}]).json()[0]["id"]
    a3 = srv.assign(ds3, "sc170")
    expect(sm3, 200)
    assert srv.mgmt("DELETE", f"/targets/sc170/actions/{a3}?force=true").status == 200
    expect(sm3, 404)


# ---------------------------------------------------------------- SC-171

def test_sc171_many_range_requests(srv):
    """SC-171: ~1,500 range requests for one artifact over one connection, as
    RAUC's HTTP streaming makes them (here 1 KiB each over a 1.5 MB
    artifact instead of 128 KiB over 190 MiB, to stay fast): every one is a
    206 with the right bytes (no quota error), no action status is recorded
    per range request, and the device can still report progress and close."""
    data = os.urandom(1500 * 1024)
    tok, sm, ds, action, _ = deploy(srv, "sc171", data=data)
    # the deployment was fetched by the device first (records 'retrieved')
    assert srv.ddi("GET", "sc171", f"/deploymentBase/{action}", token=tok).status == 200
    before = status_total(srv, "sc171", action)
    path = f"{BASE}/sc171/softwaremodules/{sm}/artifacts/image.swu"
    c = KeepAlive(srv)
    got = bytearray()
    t0 = time.monotonic()
    try:
        for i in range(1500):
            st, hdrs, body = c.send("GET", path, headers={
                "Authorization": f"TargetToken {tok}",
                "Range": f"bytes={i * 1024}-{i * 1024 + 1023}"})
            assert st == 206, (i, st, body[:200])
            got += body
    finally:
        c.close()
    elapsed = time.monotonic() - t0
    assert bytes(got) == data
    assert status_total(srv, "sc171", action) == before, "range requests recorded statuses"
    r = srv.ddi("POST", "sc171", f"/deploymentBase/{action}/feedback", token=tok, body={
        "status": {"execution": "proceeding", "result": {"finished": "none",
                                                         "progress": {"cnt": 1, "of": 2}}}})
    assert r.status == 200, r
    assert srv.ddi("POST", "sc171", f"/deploymentBase/{action}/feedback", token=tok,
                   body=OK_CLOSE).status == 200
    print(f"SC-171: 1500 range requests in {elapsed:.2f} s")


# ---------------------------------------------------------------- SC-172

def test_sc172_upload_checksum_mismatch_and_duplicate(srv):
    """SC-172: artifact upload with an md5sum, sha1sum or sha256sum parameter
    that does not match -> 400 naming it, nothing stored; matching ones (any
    case) -> 201; the same filename again in the module -> 409 and the first
    artifact unchanged; the same name in another module is fine."""
    sm = new_module(srv, "sc172")
    data = os.urandom(2048)
    good = {"md5sum": hashlib.md5(data).hexdigest(), "sha1sum": hashlib.sha1(data).hexdigest(),
            "sha256sum": hashlib.sha256(data).hexdigest()}
    other = os.urandom(2048)
    for param in good:
        wrong = getattr(hashlib, param[:-3])(other).hexdigest()
        for value in (wrong, "0" * len(wrong), good[param][:-1], good[param] + "0", "zz"):
            r = srv.upload(sm, "a.bin", data, query=f"?{param}={value}")
            assert r.status == 400, (param, value, r)
            assert param in r.json()["message"]
        # one wrong among right ones is enough
        q = "&".join(f"{k}={v}" for k, v in good.items() if k != param)
        r = srv.upload(sm, "a.bin", data, query=f"?{q}&{param}={wrong}")
        assert r.status == 400, (param, r)
    assert srv.mgmt("GET", f"/softwaremodules/{sm}/artifacts").json() == []
    assert os.listdir(os.path.join(srv.data, "tmp")) == []
    q = "&".join(f"{k}={v.upper()}" for k, v in good.items())
    r = srv.upload(sm, "a.bin", data, query="?" + q)
    assert r.status == 201, r
    first = r.json()
    r = srv.upload(sm, "a.bin", other)
    assert r.status == 409, r
    arts = srv.mgmt("GET", f"/softwaremodules/{sm}/artifacts").json()
    assert len(arts) == 1 and arts[0]["hashes"] == first["hashes"]
    # the filename parameter names the artifact: a duplicate that way too
    assert srv.upload(sm, "b.bin", other, query="?filename=a.bin").status == 409
    sm2 = new_module(srv, "sc172-2")
    assert srv.upload(sm2, "a.bin", other).status == 201


# ---------------------------------------------------------------- SC-173

def test_sc173_cancel_feedback_not_canceling_405(srv):
    """SC-173: cancel feedback for an action that is not being canceled
    (open and running) -> 405 for every execution value, the action stays
    open and untouched; once it is closed -> 410 (gone beats not allowed)."""
    tok, sm, ds, action, _ = deploy(srv, "sc173", typ="soft")
    before = status_total(srv, "sc173", action)
    for ex, fin in (("closed", "success"), ("closed", "none"), ("closed", "failure"),
                    ("rejected", "none"), ("canceled", "success"), ("proceeding", "none")):
        r = srv.ddi("POST", "sc173", f"/cancelAction/{action}/feedback", token=tok,
                    body={"status": {"execution": ex, "result": {"finished": fin}}})
        assert r.status == 405, (ex, fin, r)
    assert status_total(srv, "sc173", action) == before
    a = srv.mgmt("GET", f"/targets/sc173/actions/{action}").json()
    assert a["type"] == "update" and a["status"] == "running", a
    assert offered(srv, "sc173", tok, action)
    assert srv.ddi("GET", "sc173", f"/cancelAction/{action}", token=tok).status == 404
    assert srv.ddi("POST", "sc173", f"/deploymentBase/{action}/feedback", token=tok,
                   body=OK_CLOSE).status == 200
    r = srv.ddi("POST", "sc173", f"/cancelAction/{action}/feedback", token=tok, body=OK_CLOSE)
    assert r.status == 410


# ---------------------------------------------------------------- SC-174

def burst(port, method, path, n, headers, body=None):
    """n requests back to back on one connection: the statuses and the time."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    codes = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            b = r.read()
            if r.status == 429:
                assert b == b"" and r.getheader("Retry-After") == "1"
            codes.append(r.status)
    finally:
        c.close()
    return codes, time.monotonic() - t0


def test_sc174_request_rate_limits_429(tmp_path):
    """SC-174: device API requests above the per-address limits -> 429 with
    an empty body and Retry-After (reads and writes counted apart, the
    limits set by --dos-max-read / --dos-max-write; hawkBit's defaults are
    200 / 50 per second); refused writes are not stored; the address is
    served again as its budget refills; the management API is not limited;
    loopback and private IPv4 addresses are exempt by default as in hawkBit
    (so the limited runs say --dos-whitelist none or another range)."""
    # the defaults: loopback is exempt, so a burst far above 200/s is served
    s = Server(tmp_path / "data", extra=["--allow-foreign-artifacts"])
    try:
        tok, sm, ds, action, _ = deploy(s, "sc174")
        auth = {"Authorization": f"TargetToken {tok}"}
        codes, t = burst(s.port, "GET", f"{BASE}/sc174", 400, auth)
        assert codes == [200] * 400, (codes.count(429), t)
    finally:
        assert s.stop() == 0
    s = Server(tmp_path / "data", extra=["--dos-whitelist", "none",
                                         "--dos-max-read", "20", "--dos-max-write", "5"])
    try:
        codes, t = burst(s.port, "GET", f"{BASE}/sc174", 80, auth)
        ok = codes.count(200)
        assert codes.count(429) + ok == 80, codes
        # 20 at once plus 20 per second of the burst's duration
        assert codes[:20] == [200] * 20, codes
        assert ok <= 20 + int(20 * t) + 1, (ok, t)
        fb = f"{BASE}/sc174/deploymentBase/{action}/feedback"
        wcodes, t = burst(s.port, "POST", fb, 30, dict(auth, **{"Content-Type": "application/json"}),
                          json.dumps(PROCEEDING))
        assert wcodes[:5] == [200] * 5 and wcodes.count(200) <= 5 + int(5 * t) + 1, (wcodes, t)
        assert 429 in wcodes
        # refused writes were not stored (+1: the 'running' entry of the assignment)
        st = s.mgmt("GET", f"/targets/sc174/actions/{action}/status?limit=100").json()
        assert sum(1 for e in st["content"] if e["type"] == "running") == wcodes.count(200) + 1
        # the operator side is not limited
        mcodes, _ = burst(s.port, "GET", "/rest/v1/targets", 40, {
            "Authorization": "Basic " + base64.b64encode(
                f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()})
        assert mcodes == [200] * 40
        time.sleep(0.2)  # 20 per second: a few requests' worth again
        assert s.ddi("GET", "sc174", token=tok).status == 200
    finally:
        assert s.stop() == 0
    # 0 switches a limit off; a whitelist without loopback limits it
    s = Server(tmp_path / "data", extra=["--dos-whitelist", "10.0.0.0/8", "--dos-max-read", "0",
                                         "--dos-max-write", "2"])
    try:
        codes, _ = burst(s.port, "GET", f"{BASE}/sc174", 200, auth)
        assert codes == [200] * 200
        wcodes, t = burst(s.port, "PUT", f"{BASE}/sc174/configData", 10,
                          dict(auth, **{"Content-Type": "application/json"}),
                          json.dumps({"data": {"k": "v"}}))
        assert wcodes[:2] == [200] * 2 and 429 in wcodes, wcodes
        assert wcodes.count(200) <= 2 + int(2 * t) + 1, (wcodes, t)
    finally:
        assert s.stop() == 0
