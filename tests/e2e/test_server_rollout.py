"""abota-server rollouts (/ui/v1/rollouts): groups assigned one after the
other as the previous group closes; the rollout stops when the failure rate
passes its threshold."""
import time

import pytest

from conftest import abota, make_content
from serverhelp import Server


@pytest.fixture(scope="module")
def bundle(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("srvroll")
    content = make_content(str(d / "content"), version="1.0", rootfs_kib=2048)
    out = str(d / "b.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, out)
    return out


@pytest.fixture
def srv(tmp_path, pki):
    s = Server(tmp_path / "data", keyring=pki.keyring)
    yield s
    assert s.alive()
    assert s.stop() == 0


def open_action(srv, cid, tok):
    links = srv.ddi("GET", cid, token=tok).json()["_links"]
    href = links.get("deploymentBase", {}).get("href")
    return int(href.split("/deploymentBase/")[1].split("?")[0]) if href else None


def report(srv, cid, tok, aid, ok):
    r = srv.ddi("POST", cid, f"/deploymentBase/{aid}/feedback", token=tok, body={
        "status": {"execution": "closed", "result": {"finished": "success" if ok else "failure"}}})
    assert r.status == 200


def rollout(srv, rid):
    return [x for x in srv.request("GET", "/ui/v1/rollouts", auth="admin").json()
            if x["id"] == rid][0]


def test_groups_and_stop_on_failures(srv, bundle):
    toks = {f"r{i}": srv.create_target(f"r{i}") for i in range(6)}
    sm, ds = srv.publish(bundle)
    r = srv.request("POST", "/ui/v1/rollouts", auth="admin", body={
        "distributionSetId": ds, "targets": list(toks), "groupSize": "34%",
        "errorThreshold": 40, "type": "forced"})
    assert r.status == 201, r
    rid = r.json()["id"]
    assert r.json()["groupSize"] == 3  # 34 % of 6, rounded up
    opened = {c: open_action(srv, c, t) for c, t in toks.items()}
    first = [c for c, a in opened.items() if a]
    assert first == ["r0", "r1", "r2"]
    # one of three fails (33 % <= 40 %): the next group starts once all are closed
    report(srv, "r0", toks["r0"], opened["r0"], True)
    report(srv, "r1", toks["r1"], opened["r1"], False)
    assert open_action(srv, "r3", toks["r3"]) is None
    report(srv, "r2", toks["r2"], opened["r2"], True)
    second = {c: open_action(srv, c, toks[c]) for c in ("r3", "r4", "r5")}
    assert all(second.values()), second
    x = rollout(srv, rid)
    assert (x["finished"], x["failed"], x["running"], x["waiting"]) == (2, 1, 3, 0)
    # two more failures: 3 of 4 closed failed, above 40 %: stopped
    report(srv, "r3", toks["r3"], second["r3"], False)
    report(srv, "r4", toks["r4"], second["r4"], False)
    x = rollout(srv, rid)
    assert x["status"] == "stopped" and "threshold 40%" in x["message"]


def test_count_groups_finish(srv, bundle):
    toks = {f"c{i}": srv.create_target(f"c{i}") for i in range(3)}
    sm, ds = srv.publish(bundle)
    rid = srv.request("POST", "/ui/v1/rollouts", auth="admin", body={
        "distributionSetId": ds, "targets": list(toks), "groupSize": "1"}).json()["id"]
    for c in toks:
        aid = open_action(srv, c, toks[c])
        assert aid, c
        report(srv, c, toks[c], aid, True)
    x = rollout(srv, rid)
    assert x["status"] == "finished" and x["finished"] == 3


def test_rollout_bad_input(srv, bundle):
    srv.create_target("b1")
    sm, ds = srv.publish(bundle)
    for body in ({}, {"distributionSetId": ds}, {"distributionSetId": ds, "targets": []},
                 {"distributionSetId": ds, "targets": ["b1"], "groupSize": "0"},
                 {"distributionSetId": ds, "targets": ["b1"], "groupSize": "101%"},
                 {"distributionSetId": ds, "targets": ["b1"], "groupSize": "x"},
                 {"distributionSetId": ds, "targets": ["b1"], "errorThreshold": 101},
                 {"distributionSetId": ds, "targets": [1]},
                 {"distributionSetId": ds, "targets": ["b1"], "type": "weird"}):
        r = srv.request("POST", "/ui/v1/rollouts", auth="admin", body=body)
        assert r.status == 400, (body, r)
    r = srv.request("POST", "/ui/v1/rollouts", auth="admin",
                    body={"distributionSetId": ds, "targets": ["b1", "nosuch"]})
    assert r.status == 404
    assert srv.request("GET", "/ui/v1/rollouts", auth="admin").json() == []
    assert srv.request("GET", "/ui/v1/rollouts").status == 401
