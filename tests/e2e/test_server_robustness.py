"""abota-server under bad input and crashes: malformed and oversized bodies,
SQL metacharacters, bad tokens, feedback for unknown or closed actions, raw
garbage on the socket; kill -9 during an upload and during feedback, then
restart and check that every acknowledged state survived."""
import json
import select
import socket
import sqlite3
import threading
import time

import pytest

from conftest import abota, make_content
from serverhelp import Server


@pytest.fixture(scope="module")
def bundle(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("srvrob")
    content = make_content(str(d / "content"), version="1.0", rootfs_kib=2048)
    out = str(d / "b.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, out)
    return out


@pytest.fixture
def srv(tmp_path, pki):
    s = Server(tmp_path / "data", keyring=pki.keyring)
    yield s
    assert s.alive(), "server died: " + s.stderr()[-2000:]
    assert "AddressSanitizer" not in s.stderr() and "runtime error" not in s.stderr()
    assert s.stop() == 0


SQLI = ["x'; DROP TABLE targets; --", "\" OR 1=1 --", "a%_\\'\"", "Robert'); DELETE FROM actions;--"]


def test_sql_metacharacters_are_data(srv, bundle):
    for i, evil in enumerate(SQLI):
        cid = f"t{i}-" + evil.replace(" ", "_").replace("\\", "")
        r = srv.mgmt("POST", "/targets", [{"controllerId": cid, "name": evil, "description": evil}])
        assert r.status == 201, r
        tok = r.json()[0]["securityToken"]
        got = srv.mgmt("GET", "/targets/" + cid.replace("%", "%25")).json()
        assert got["name"] == evil and got["description"] == evil
        r = srv.ddi("PUT", cid.replace("%", "%25"), "/configData", token=tok,
                    body={"data": {evil: evil}})
        assert r.status == 200
        assert srv.mgmt("GET", "/targets/" + cid.replace("%", "%25") + "/attributes").json() == \
            {evil: evil}
        r = srv.mgmt("POST", "/softwaremodules", [{"name": evil, "version": evil, "type": "os",
                                                    "description": evil, "vendor": evil}])
        assert r.status == 201 and r.json()[0]["name"] == evil
        r = srv.mgmt("POST", "/distributionsets", [{"name": evil, "version": evil}])
        assert r.status == 201 and r.json()[0]["version"] == evil
    assert srv.mgmt("GET", "/targets").json()["total"] == len(SQLI)
    # a search with LIKE metacharacters finds only what it names
    r = srv.mgmt("GET", "/targets?q=name==" + "DROP")
    assert r.status == 200


def test_malformed_bodies(srv, bundle):
    """SC-162: feedback without status, result or finished, invalid enum
    values, malformed JSON -> 400.  SC-165: configData key or value over 128
    characters, missing or empty data -> 400, 101 attributes -> 429."""
    tok = srv.create_target("m1")
    sm, ds = srv.publish(bundle)
    action = srv.assign(ds, "m1")
    fb = f"/deploymentBase/{action}/feedback"
    bad_bodies = [
        b"", b"{", b"[]", b"null", b"42", b'{"status": 1}', b'{"status": {}}',
        b'{"status": {"execution": "closed"}}',
        b'{"status": {"execution": "closed", "result": {}}}',
        b'{"status": {"execution": "exploded", "result": {"finished": "success"}}}',
        b'{"status": {"execution": "closed", "result": {"finished": "maybe"}}}',
        b'{"status": {"execution": "closed", "result": {"finished": "none", "progress": {"of": 2}}}}',
        b'{"status": {"execution": "closed", "result": {"finished": "none"}, "code": "x"}}',
        b'{"status": {"execution": "closed", "result": {"finished": "none"}, "details": [1]}}',
        b'{"status": {"execution": "closed", "result": {"finished": "none"}}} trailing',
        b'{"status": {"execution": "closed", "result": {"finished": "none"}, "code": 99999999999}}',
        b"[" * 100000, b'{"a":' * 5000, b"\xff\xfe\x00garbage",
        json.dumps({"status": {"execution": "closed", "result": {"finished": "none"}},
                    "timestamp": "yesterday"}).encode(),
    ]
    for body in bad_bodies:
        r = srv.ddi("POST", "m1", fb, token=tok, body=body,
                    headers={"Content-Type": "application/json"})
        assert r.status == 400, (body[:60], r)
        assert json.loads(r.body)["message"]
    # 51 details: quota
    r = srv.ddi("POST", "m1", fb, token=tok, body={"status": {
        "execution": "proceeding", "result": {"finished": "none"}, "details": ["x"] * 51}})
    assert r.status == 429
    # wrong content type
    r = srv.ddi("POST", "m1", fb, token=tok, body=b"<xml/>",
                headers={"Content-Type": "application/xml"})
    assert r.status == 415
    # oversized body (bounded at 1 MiB): refused from its Content-Length, before
    # the body is read, and when it arrives chunked without a length
    for te in (False, True):
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        hdr = (f"POST /DEFAULT/controller/v1/m1{fb} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: TargetToken {tok}\r\nContent-Type: application/json\r\n")
        hdr += "Transfer-Encoding: chunked\r\n\r\n" if te else f"Content-Length: {2 << 20}\r\n\r\n"
        sock.sendall(hdr.encode())
        try:
            chunk = b"x" * 65536
            for _ in range(40):
                sock.sendall((b"10000\r\n" + chunk + b"\r\n") if te else chunk)
            if te:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may stop reading once it has answered
        resp = sock.recv(4096)
        sock.close()
        assert resp.startswith(b"HTTP/1.1 413"), (te, resp[:100])
    # none of this reached the action
    st = srv.mgmt("GET", f"/targets/m1/actions/{action}/status").json()
    assert {e["type"] for e in st["content"]} <= {"running", "retrieved"}
    for body in (b"{}", b'{"data": {}}', b'{"data": {"k": 1}}', b'{"data": {"k": "v"}, "mode": "wipe"}',
                 json.dumps({"data": {"k" * 129: "v"}}).encode(),
                 json.dumps({"data": {"k": "v" * 129}}).encode()):
        r = srv.ddi("PUT", "m1", "/configData", token=tok, body=body,
                    headers={"Content-Type": "application/json"})
        assert r.status == 400, (body[:50], r)
    r = srv.ddi("PUT", "m1", "/configData", token=tok,
                body={"data": {f"k{i}": "v" for i in range(101)}})
    assert r.status == 429
    for body in (b"[{}]", b'[{"controllerId": ""}]', b'[{"controllerId": "a b"}]',
                 b'{"controllerId": "x"}', b'[{"controllerId": "x", "name": 5}]', b"[1]"):
        assert srv.mgmt("POST", "/targets", body,
                        headers={"Content-Type": "application/json"}).status == 400, body


def test_feedback_for_unknown_and_closed_actions(srv, bundle):
    """Unknown or foreign actions -> 404.  SC-163: a second closed feedback,
    and cancel feedback to a closed action -> 410."""
    tok = srv.create_target("f1")
    tok2 = srv.create_target("f2")
    sm, ds = srv.publish(bundle)
    a = srv.assign(ds, "f1")
    ok = {"status": {"execution": "closed", "result": {"finished": "success"}}}
    for aid in ("999999", "abc", "-1", "1e3", str(a) + "0", "99999999999999999999"):
        assert srv.ddi("POST", "f1", f"/deploymentBase/{aid}/feedback", token=tok,
                       body=ok).status == 404, aid
    # another target's action
    assert srv.ddi("POST", "f2", f"/deploymentBase/{a}/feedback", token=tok2, body=ok).status == 404
    assert srv.ddi("GET", "f2", f"/deploymentBase/{a}", token=tok2).status == 404
    assert srv.ddi("POST", "f1", f"/deploymentBase/{a}/feedback", token=tok, body=ok).status == 200
    assert srv.ddi("POST", "f1", f"/deploymentBase/{a}/feedback", token=tok, body=ok).status == 410
    assert srv.ddi("POST", "f1", f"/cancelAction/{a}/feedback", token=tok, body=ok).status == 410


def test_concurrent_closes(srv, bundle):
    """Ten devices' worth of racing "closed" reports for one action: one wins
    (200), the others see a closed action (410), one final entry is stored."""
    tok = srv.create_target("race")
    sm, ds = srv.publish(bundle)
    aid = srv.assign(ds, "race")
    codes = []
    body = {"status": {"execution": "closed", "result": {"finished": "success"}}}

    def close():
        codes.append(srv.ddi("POST", "race", f"/deploymentBase/{aid}/feedback", token=tok,
                             body=body).status)

    ts = [threading.Thread(target=close) for _ in range(10)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(codes) == [200] + [410] * 9, codes
    st = srv.mgmt("GET", f"/targets/race/actions/{aid}/status").json()["content"]
    assert [e["type"] for e in st].count("finished") == 1


def test_bad_paths_and_raw_garbage(srv):
    for p in ("/web/../../../etc/passwd", "/web/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/web/.x",
              "/../../etc/passwd", "/web/a/b", "/" + "a/" * 50, "/web/%00index.html"):
        r = srv.request("GET", p)
        assert r.status in (400, 404), (p, r)
        assert b"root:" not in r.body
    # garbage on the socket: the server answers or closes, and keeps running
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"A" * 70000 + b"\r\n\r\n",
                 b"GET /rest/v1/targets HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                 b"POST /DEFAULT/controller/v1/x/configData HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            s.sendall(junk)
            s.recv(1024)
        except OSError:
            pass
        s.close()
    assert srv.request("GET", "/").status in (200, 404)


def _count_status(db, aid):
    c = sqlite3.connect(db)
    try:
        return [r[0] for r in c.execute(
            "SELECT messages FROM action_status WHERE action_id = ? ORDER BY id", (aid,))]
    finally:
        c.close()


def test_kill9_during_feedback_and_upload(tmp_path, pki, bundle):
    s = Server(tmp_path / "data", keyring=pki.keyring)
    tok = s.create_target("k1")
    sm, ds = s.publish(bundle)
    aid = s.assign(ds, "k1")
    acked = []
    stop = threading.Event()

    def post():
        i = 0
        while not stop.is_set():
            try:
                r = s.ddi("POST", "k1", f"/deploymentBase/{aid}/feedback", token=tok, timeout=5,
                          body={"status": {"execution": "proceeding",
                                           "result": {"finished": "none"},
                                           "details": [f"fb-{i}"]}})
                if r.status == 200:
                    acked.append(f"fb-{i}")
            except OSError:
                return
            i += 1

    threads = [threading.Thread(target=post) for _ in range(1)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    # an upload in flight: half of the body sent
    data = open(bundle, "rb").read()
    sock = socket.create_connection(("127.0.0.1", s.port))
    import base64
    auth = base64.b64encode(b"%s:%s" % (s.admin[0].encode(), s.admin[1].encode())).decode()
    body = (b"--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"k.raucb\"\r\n\r\n"
            + data + b"\r\n--bnd--\r\n")
    sock.sendall((f"POST /rest/v1/softwaremodules/{sm}/artifacts HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Basic {auth}\r\nContent-Type: multipart/form-data; boundary=bnd\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2])
    time.sleep(0.5)
    s.kill9()
    stop.set()
    for t in threads:
        t.join()
    sock.close()
    assert len(acked) > 10
    # every acknowledged feedback is on disk, before the restart touches anything
    stored = " ".join(_count_status(str(tmp_path / "data" / "abota-server.db"), aid))
    lost = [m for m in acked if f'"{m}"' not in stored]
    assert not lost, lost
    s.start()
    try:
        assert s.mgmt("GET", f"/targets/k1/actions/{aid}").json()["detailStatus"] == "running"
        arts = s.mgmt("GET", f"/softwaremodules/{sm}/artifacts").json()
        assert [a["providedFilename"] for a in arts] == ["update.raucb"]
        import os
        assert os.listdir(os.path.join(s.data, "tmp")) == []
        assert len(os.listdir(os.path.join(s.data, "artifacts"))) == 1
        # and the server works on: the interrupted upload can be redone
        r = s.upload(sm, "k.raucb", data)
        assert r.status == 201
        r = s.ddi("POST", "k1", f"/deploymentBase/{aid}/feedback", token=tok,
                  body={"status": {"execution": "closed", "result": {"finished": "success"}}})
        assert r.status == 200
    finally:
        assert s.stop() == 0


def test_bodies_in_flight_are_bounded(srv):
    """Many connections each holding most of a 1 MiB body: the server keeps
    its total buffered bodies under a budget (503 beyond) and carries on."""
    tok = srv.create_target("mem")
    hdr = (f"PUT /DEFAULT/controller/v1/mem/configData HTTP/1.1\r\nHost: x\r\n"
           f"Authorization: TargetToken {tok}\r\nContent-Type: application/json\r\n"
           f"Content-Length: 1000000\r\n\r\n").encode()
    holders = []
    for i in range(80):  # 80 x ~1 MiB buffered > the 64 MiB budget
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(hdr + b"x" * 950_000)
        holders.append(s)
    time.sleep(1)
    statuses = []
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(hdr + b"x" * 1_000_000)
        statuses.append(s.recv(100)[:12])
        s.close()
    assert b"HTTP/1.1 503" in statuses, statuses
    for s in holders:
        s.close()
    time.sleep(0.5)
    r = srv.ddi("PUT", "mem", "/configData", token=tok, body={"data": {"k": "v"}})
    assert r.status == 200
