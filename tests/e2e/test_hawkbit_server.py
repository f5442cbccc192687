"""abotad against our own deployment server (abota-server), on the simulated
board: the operator assigns through the Management API, the agent installs,
the board reboots into the trial, the slot is accepted, and the server
records the action as finished -- or as error after a fallback.  Skipped
when abota-server is not built."""
import os

import pytest

from hawkbithelp import Device
from serverhelp import SERVER, Server
from test_hawkbit_agent import bundles  # noqa: F401  (module fixture)

pytestmark = pytest.mark.skipif(not os.path.exists(SERVER), reason="abota-server not built")


class Target:
    """What Device needs to know about the server."""

    def __init__(self, srv, cid, token):
        self.host = f"127.0.0.1:{srv.port}"
        self.tenant = "DEFAULT"
        self.controller = cid
        self.token = token


@pytest.fixture
def srv(tmp_path, pki):
    s = Server(tmp_path / "srvdata", keyring=pki.keyring)
    yield s
    assert s.alive(), "server died: " + s.stderr()[-2000:]
    s.stop()


def action(srv, cid, aid):
    return srv.mgmt("GET", f"/targets/{cid}/actions/{aid}").json()


def is_open(a):
    """hawkBit's MgmtAction: detailStatus is the action status in lower case."""
    return a["detailStatus"] not in ("finished", "error", "canceled")


def statuses(srv, cid, aid):
    r = srv.mgmt("GET", f"/targets/{cid}/actions/{aid}/status?offset=0&limit=50&sort=id:DESC")
    return r.json()["content"]


@pytest.mark.parametrize("outcome", ["accepted", "fallback"])
def test_update_against_abota_server(tmp_path, pki, bundles, srv, outcome):  # noqa: F811
    token = srv.create_target("board-1", token="board-1-token-xyz")
    dev = Device(tmp_path / "dev", Target(srv, "board-1", token), pki)
    _, ds = srv.publish(bundles["v2"], name="stm32mpu", version="2.0.0")
    aid = srv.assign(ds, "board-1", "forced")
    p = dev.once()
    assert dev.phase() == "installed", p.stderr
    assert is_open(action(srv, "board-1", aid))
    assert srv.mgmt("GET", "/targets/board-1/attributes").json()["serial"] == "8922673153"
    if outcome == "accepted":
        assert dev.reboot()["bank"] == 1
        dev.once()
        assert is_open(action(srv, "board-1", aid))  # trial: still open
        dev.abota("status", "mark-good")
        dev.once()
        a = action(srv, "board-1", aid)
        assert a["detailStatus"] == "finished", a
    else:
        banks = [dev.reboot("--fail-boot")["bank"] for _ in range(4)]
        assert banks[-1] == 0
        dev.reboot()
        dev.once()
        a = action(srv, "board-1", aid)
        assert a["detailStatus"] == "error", a
        msgs = " ".join(m for s in statuses(srv, "board-1", aid) for m in s.get("messages", []))
        assert "fell back" in msgs, msgs
    assert dev.phase() == "idle"


def test_daemon_against_abota_server(tmp_path, pki, bundles, srv):  # noqa: F811
    """The production mode: abotad as a daemon (not --run-once), acceptance
    noticed while it runs."""
    from hawkbithelp import stop, wait_for
    token = srv.create_target("board-2", token="board-2-token-abc")
    dev = Device(tmp_path / "dev", Target(srv, "board-2", token), pki)
    _, ds = srv.publish(bundles["v2"], name="stm32mpu", version="2.0.0")
    aid = srv.assign(ds, "board-2", "forced")
    proc = dev.start()
    try:
        assert wait_for(lambda: os.path.exists(dev.reboot_flag), timeout=60)
    finally:
        rc, _, err = stop(proc)
    assert rc == 0, err
    assert is_open(action(srv, "board-2", aid))
    assert dev.reboot()["bank"] == 1
    proc = dev.start()
    try:
        assert wait_for(lambda: dev.state().get("action.reported_trial") == "true", timeout=30)
        assert is_open(action(srv, "board-2", aid))
        dev.abota("status", "mark-good")  # the health check passes
        assert wait_for(lambda: action(srv, "board-2", aid)["detailStatus"] == "finished",
                        timeout=30)
    finally:
        rc, _, err = stop(proc)
    assert rc == 0, err
    assert token not in err
