"""abota-server under fleet load: N simulated devices (default 2,000) poll the
DDI base resource on loopback with wrk for D seconds (default 60) while one
device downloads its bundle again and again and posts feedback.  Reports polls
per second, latency percentiles, errors, and whether every acknowledged
feedback was stored.

    python3 bench/server_load.py BUILD [--devices 2000] [--seconds 60] [--out FILE]
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import WORK, make_signer, sh  # noqa: E402

ADMIN = ("admin", "bench-password")


class Client:
    def __init__(self, port):
        self.port = port
        self.auth = "Basic " + base64.b64encode(("%s:%s" % ADMIN).encode()).decode()

    def req(self, method, path, body=None, auth=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = dict(headers or {})
        h["Authorization"] = auth or self.auth
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("build")
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--threads", type=int, default=4, help="server worker threads")
    ap.add_argument("--out")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("server_load: wrk is needed (apt-get install wrk)")
    server = os.path.join(a.build, "src", "abota-server", "abota-server")
    abota = os.path.join(a.build, "src", "abota", "abota")
    os.makedirs(WORK, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="server-load-", dir=WORK)
    try:
        # a real signed bundle (16 MiB of payload) for the downloading device
        cert, key = make_signer(tmp)
        content = os.path.join(tmp, "content")
        os.makedirs(content)
        with open(os.path.join(content, "rootfs.img"), "wb") as f:
            f.write(os.urandom(16 << 20))
        with open(os.path.join(content, "manifest.raucm"), "w") as f:
            f.write("[update]\ncompatible=bench\nversion=1\n\n[image.rootfs]\nfilename=rootfs.img\n")
        bundle = os.path.join(tmp, "bench.raucb")
        sh(abota, "bundle", "--cert", cert, "--key", key, content, bundle)

        proc = subprocess.Popen([server, "--data", os.path.join(tmp, "data"), "--listen",
                                 "127.0.0.1:0", "--keyring", cert, "--admin-user", ADMIN[0],
                                 "--admin-password", ADMIN[1], "--threads", str(a.threads)],
                                stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "server.log"), "w"),
                                text=True)
        port = None
        for line in proc.stdout:
            m = re.search(r"listening on http://127.0.0.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        c = Client(port)
        tokens = []
        for start in range(0, a.devices, 500):
            body = [{"controllerId": f"dev{i:05d}", "name": f"dev{i:05d}"}
                    for i in range(start, min(a.devices, start + 500))]
            st, data = c.req("POST", "/rest/v1/targets", body)
            assert st == 201, data
            tokens += [(t["controllerId"], t["securityToken"]) for t in json.loads(data)]
        st, data = c.req("POST", "/rest/v1/softwaremodules", [{"name": "b", "version": "1", "type": "os"}])
        sm = json.loads(data)[0]["id"]
        with open(bundle, "rb") as f:
            payload = f.read()
        body = (b"--BenchBoundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.raucb\"\r\n\r\n"
                + payload + b"\r\n--BenchBoundary--\r\n")
        st, data = c.req("POST", f"/rest/v1/softwaremodules/{sm}/artifacts", body,
                         headers={"Content-Type": "multipart/form-data; boundary=BenchBoundary"})
        assert st == 201, data
        st, data = c.req("POST", "/rest/v1/distributionsets",
                         [{"name": "b", "version": "1", "modules": [{"id": sm}]}])
        ds = json.loads(data)[0]["id"]
        dl_dev, dl_tok = tokens[0]
        st, data = c.req("POST", f"/rest/v1/distributionsets/{ds}/assignedTargets", [{"id": dl_dev}])
        action = json.loads(data)["assignedActions"][0]["id"]

        lua = os.path.join(tmp, "poll.lua")
        with open(lua, "w") as f:
            f.write("local devs = {\n")
            for cid, tok in tokens:
                f.write(f'  {{"/DEFAULT/controller/v1/{cid}", "TargetToken {tok}"}},\n')
            f.write("}\nlocal i = 0\n"
                    "function setup(thread) thread:set('offset', math.random(#devs)) end\n"
                    "function init(args) i = tonumber(offset) or 0 end\n"
                    "request = function()\n  i = i % #devs + 1\n"
                    "  local d = devs[i]\n"
                    "  return wrk.format('GET', d[1], {['Authorization'] = d[2],"
                    " ['Accept'] = 'application/hal+json'})\nend\n")

        # the downloading device: full downloads and feedback, all the time
        stop = threading.Event()
        acked, downloads, dl_bytes = [], [0], [0]

        def downloader():
            path = f"/DEFAULT/controller/v1/{dl_dev}/softwaremodules/{sm}/artifacts/bench.raucb"
            n = 0
            while not stop.is_set():
                st, data = c.req("GET", path, auth=f"TargetToken {dl_tok}")
                assert st == 200 and len(data) == len(payload)
                downloads[0] += 1
                dl_bytes[0] += len(data)
                msg = f"download {n} complete"
                st, _ = c.req("POST", f"/DEFAULT/controller/v1/{dl_dev}/deploymentBase/{action}/feedback",
                              {"status": {"execution": "proceeding", "result": {"finished": "none"},
                                          "details": [msg]}}, auth=f"TargetToken {dl_tok}")
                if st == 200:
                    acked.append(msg)
                n += 1

        t = threading.Thread(target=downloader)
        t.start()
        t0 = time.time()
        w = subprocess.run(["wrk", "-t", "2", "-c", str(a.devices), "-d", f"{a.seconds}s",
                            "--timeout", "10s", "--latency", "-s", lua, f"http://127.0.0.1:{port}"],
                           capture_output=True, text=True)
        stop.set()
        t.join()
        elapsed = time.time() - t0
        out = w.stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: (.*)", out)
        # every acknowledged feedback must be in the action's history
        st, data = c.req("GET", f"/rest/v1/targets/{dl_dev}/actions/{action}/status?limit=500&sort=id:ASC")
        stored = set()
        offset = 0
        while True:
            st, data = c.req("GET", f"/rest/v1/targets/{dl_dev}/actions/{action}/status"
                                    f"?offset={offset}&limit=500&sort=id:ASC")
            page = json.loads(data)
            for e in page["content"]:
                stored.update(e["messages"])
            offset += len(page["content"])
            if not page["content"] or offset >= page["total"]:
                break
        lost = [m for m in acked if m not in stored]
        proc.terminate()
        proc.wait(timeout=30)
        res = {
            "devices": a.devices, "seconds": a.seconds, "server_threads": a.threads,
            "polls_per_second": rps, "latency": lat,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "none",
            "downloads": downloads[0], "download_MiB_per_s": round(dl_bytes[0] / elapsed / (1 << 20), 1),
            "feedback_acked": len(acked), "feedback_lost": len(lost),
            "server_exit": proc.returncode,
        }
        text = (f"abota-server load: {a.devices} devices polling for {a.seconds} s on loopback "
                f"(wrk -t2 -c{a.devices}), one device downloading a {len(payload) >> 20} MiB bundle "
                f"and posting feedback\n"
                f"  polls/s: {rps:.0f}   latency p50 {lat.get('50')}  p90 {lat.get('90')}  "
                f"p99 {lat.get('99')}\n"
                f"  non-2xx: {res['non_2xx']}   socket errors: {res['socket_errors']}\n"
                f"  downloads: {downloads[0]} ({res['download_MiB_per_s']} MiB/s)   feedback acked: "
                f"{len(acked)}, lost: {len(lost)}\n")
        print(text, end="")
        print(out if os.environ.get("VERBOSE") else "", end="")
        if a.out:
            with open(a.out, "w") as f:
                f.write("```\n" + text + "```\n\n```json\n" + json.dumps(res, indent=2) + "\n```\n")
        ok = not lost and res["non_2xx"] == 0 and proc.returncode == 0
        sys.exit(0 if ok else 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
