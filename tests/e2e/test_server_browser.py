"""The abota-server web UI in a real browser: Debian's chromium, headless,
driven by Playwright (playwright-core from npm, tests/browser/).  Log in,
upload a bundle, assign it to a device, watch the action go to success while
a simulated device follows the DDI links; screenshots are kept in
$ABOTA_BUILD/test-artifacts/."""
import os
import shutil
import subprocess
import threading
import urllib.parse

import pytest

from conftest import BUILD, SRCDIR, abota, make_content
from serverhelp import Server

BROWSER_DIR = os.path.join(SRCDIR, "tests", "browser")
CHROMIUM = "/usr/bin/chromium"


def ensure_playwright():
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=BROWSER_DIR,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr


def device_loop(srv, cid, tok, stop, seen):
    """A device that follows the server: poll, fetch the deployment, download
    the artifact, report progress and success."""
    while not stop.wait(0.5):
        links = srv.ddi("GET", cid, token=tok).json().get("_links", {})
        if "deploymentBase" not in links:
            continue
        href = urllib.parse.urlsplit(links["deploymentBase"]["href"])
        dep = srv.request("GET", href.path + "?" + href.query, auth=f"TargetToken {tok}").json()
        aid = dep["id"]
        art = dep["deployment"]["chunks"][0]["artifacts"][0]
        r = srv.request("GET", urllib.parse.urlsplit(art["_links"]["download"]["href"]).path,
                        auth=f"TargetToken {tok}")
        assert r.status == 200 and len(r.body) == art["size"]
        for body in ({"execution": "proceeding", "result": {"finished": "none"},
                      "details": ["Downloaded and verified"]},
                     {"execution": "closed", "result": {"finished": "success"},
                      "details": ["Installed into bank B, booted, accepted"]}):
            stop.wait(1.0)
            srv.ddi("POST", cid, f"/deploymentBase/{aid}/feedback", token=tok,
                    body={"status": body})
        seen.append(aid)
        return


@pytest.mark.slow
def test_ui_login_upload_assign_follow(tmp_path, pki):
    if not os.path.exists(CHROMIUM) or not shutil.which("node"):
        pytest.fail("chromium and node are needed (scripts/install-deps.sh)")
    ensure_playwright()
    content = make_content(str(tmp_path / "content"), compatible="abota-sim-stm32mp257f-ev1",
                           version="4.2", rootfs_kib=2048)
    bundle = str(tmp_path / "release-4.2.raucb")
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, bundle)
    srv = Server(tmp_path / "data", keyring=pki.keyring)
    stop = threading.Event()
    seen = []
    try:
        tok = srv.create_target("board-42")
        srv.ddi("PUT", "board-42", "/configData", token=tok,
                body={"data": {"booted_bank": "A", "compatible": "abota-sim-stm32mp257f-ev1"}})
        dev = threading.Thread(target=device_loop, args=(srv, "board-42", tok, stop, seen))
        dev.start()
        outdir = os.path.join(BUILD, "test-artifacts")
        os.makedirs(outdir, exist_ok=True)
        shot = os.path.join(outdir, "server-ui")
        p = subprocess.run(["node", os.path.join(BROWSER_DIR, "ui.mjs"), srv.url + "/",
                            srv.admin[0], srv.admin[1], bundle, "board-42", shot],
                           capture_output=True, text=True, timeout=240, cwd=BROWSER_DIR)
        stop.set()
        dev.join()
        assert p.returncode == 0, p.stdout + p.stderr
        assert "upload: Verified: abota-sim-stm32mp257f-ev1 4.2, signed by" in p.stdout
        assert "Installed into bank B" in p.stdout
        assert os.path.getsize(shot + "-desktop.png") > 10000
        assert os.path.getsize(shot + "-phone.png") > 10000
        assert seen
        t = srv.mgmt("GET", "/targets/board-42").json()
        assert t["updateStatus"] == "in_sync"
    finally:
        stop.set()
        srv.stop()
