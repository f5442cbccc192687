"""abotad through abota-server: a full update cycle on the simulated
STM32MP157F-DK2 — assignment in the management API, download, install into
bank B, reboot into trial, acceptance, closed/success stored by the server —
and a bank that fails to boot, reported as closed/failure."""
import pytest

from hawkbithelp import Device
from serverhelp import Server
from test_install_sim import make_bundle


class Endpoint:
    """What hawkbithelp.Device needs to know of a DDI server."""

    def __init__(self, srv, controller, token):
        self.host = f"127.0.0.1:{srv.port}"
        self.tenant = "DEFAULT"
        self.controller = controller
        self.token = token


@pytest.fixture(scope="module")
def bundle(pki, tmp_path_factory):
    return make_bundle(pki, str(tmp_path_factory.mktemp("srvagent")), "2.0.0")


@pytest.fixture
def srv(tmp_path, pki):
    s = Server(tmp_path / "data", keyring=pki.keyring)
    yield s
    assert s.alive(), s.stderr()[-2000:]
    assert s.stop() == 0


def history(srv, cid, action):
    st = srv.mgmt("GET", f"/targets/{cid}/actions/{action}/status?limit=100&sort=id:ASC").json()
    return [(e["type"], " ".join(e["messages"])) for e in st["content"]]


def test_abotad_full_cycle(tmp_path, pki, bundle, srv):
    tok = srv.create_target("dk2")
    sm, ds = srv.publish(bundle, name="stm32mpu", version="2.0.0")
    action = srv.assign(ds, "dk2")
    dev = Device(tmp_path / "dev", Endpoint(srv, "dk2", tok), pki)
    dev.once()
    assert srv.mgmt("GET", "/targets/dk2/attributes").json() == {"hwRevision": "2",
                                                                  "serial": "8922673153"}
    h = history(srv, "dk2", action)
    assert any("Installed 2.0.0 into B; rebooting" in m for _, m in h), h
    assert srv.mgmt("GET", f"/targets/dk2/actions/{action}").json()["status"] == "running"
    assert dev.reboot()["bank"] == 1
    dev.once()
    dev.abota("status", "mark-good")
    dev.once()
    a = srv.mgmt("GET", f"/targets/dk2/actions/{action}").json()
    assert a["detailStatus"] == "finished", history(srv, "dk2", action)
    t = srv.mgmt("GET", "/targets/dk2").json()
    assert t["updateStatus"] == "in_sync"
    assert srv.mgmt("GET", "/targets/dk2/installedDS").json()["version"] == "2.0.0"
    assert any(t == "finished" and "accepted" in m for t, m in history(srv, "dk2", action))
    # the device stays idle: nothing more to do
    dev.once()
    assert dev.phase() == "idle"


def test_abotad_failed_boot_reported(tmp_path, pki, bundle, srv):
    tok = srv.create_target("dk2b")
    sm, ds = srv.publish(bundle, name="stm32mpu", version="2.0.0")
    action = srv.assign(ds, "dk2b")
    dev = Device(tmp_path / "dev", Endpoint(srv, "dk2b", tok), pki)
    dev.once()
    banks = [dev.reboot("--fail-boot")["bank"] for _ in range(4)]
    assert banks[-1] == 0, banks
    dev.reboot()
    dev.once()
    a = srv.mgmt("GET", f"/targets/dk2b/actions/{action}").json()
    assert a["detailStatus"] == "error", history(srv, "dk2b", action)
    assert srv.mgmt("GET", "/targets/dk2b").json()["updateStatus"] == "error"
    assert any("fell back" in m for _, m in history(srv, "dk2b", action))
